"""Analysis job routes: ``POST /jobs/{heatmap,hotspots,balance,coverage,publish}``.

Each checks its inputs at once (404/422 before anything is queued) and queues a job whose kind is
the command; a worker runs it with :func:`gridplan.api.analyses.analysis_task`, which runs the CLI
command of the same name, so the result is what ``gridplan heatmap …`` etc. would write.  Options
carry the CLI's names and defaults.  Download the result from ``GET /jobs/{id}/result``.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from gridplan.api.auth import Principal
from gridplan.api.deps import ServiceDep, require
from gridplan.api.schemas import errors
from gridplan.api.service import Service
from gridplan.api.tasks import start_job
from gridplan.errors import InputError, NotFoundError

__all__ = ["router"]

router = APIRouter(prefix="/jobs", tags=["analyses"], responses=errors(401, 403, 404, 413, 422))
Analyst = Annotated[Principal, require("analysis:run")]
_DATE = r"^\d{4}-\d{2}-\d{2}$"


class Events(BaseModel):
    """Located events: a cases upload with lon/lat, or the result of a geocode job."""

    events_upload_id: str | None = Field(None, description="id from POST /uploads/cases")
    events_job_id: str | None = Field(None, description="a succeeded geocode job")
    category: str | None = Field(None, max_length=256, description="only these categories (comma-separated)")
    since: str | None = Field(None, pattern=_DATE)
    until: str | None = Field(None, pattern=_DATE)


class HeatmapJob(Events):
    plan_id: str = Field(..., max_length=64)
    cell_m: float = Field(50.0, ge=1, le=10_000)
    bandwidth_m: str = Field("auto", pattern=r"^(auto|\d+(\.\d+)?)$")
    weight: str | None = Field(None, max_length=64)


class HotspotsJob(Events):
    plan_id: str = Field(..., max_length=64)
    by: Literal["auto", "grid", "h3", "community", "town"] = "auto"
    time_step: Literal["week", "month", "quarter", "none"] = "month"
    permutations: int = Field(999, ge=0, le=9999)
    inference: Literal["analytic", "permutation"] = "analytic"
    seed: int = Field(0, ge=0, le=2**31)


class BalanceJob(BaseModel):
    plan_id: str = Field(..., max_length=64)
    layers_upload_id: str = Field(..., description="layers upload with units and roads")
    staff: int = Field(..., ge=1, le=1_000_000)
    min_staff: int | None = Field(None, ge=0)
    max_staff: int | None = Field(None, ge=1)


class CoverageJob(BaseModel):
    layers_upload_id: str = Field(..., description="layers upload with buildings (and facilities)")
    radius_m: float = Field(1000.0, gt=0, le=100_000)
    posts: int | None = Field(None, ge=1, le=10_000)


class PublishJob(BaseModel):
    plan_id: str = Field(..., max_length=64)
    layers_upload_id: str | None = Field(None, description="background layers (city, towns, roads)")
    hotspots_job_id: str | None = Field(None, description="a succeeded hotspots job")
    heatmap_job_id: str | None = Field(None, description="a succeeded heatmap job")
    data_date: str | None = Field(None, pattern=_DATE)


def _upload(service: Service, upload_id: str, kinds: tuple[str, ...], field: str) -> dict[str, str]:
    up = service.meta.get_upload(upload_id if len(upload_id) <= 32 else "-")
    if up["kind"] not in kinds:
        raise InputError(
            f"upload {upload_id} is a {up['kind']} upload, not {' or '.join(kinds)}", field=field
        )
    return {"upload_id": upload_id}


def _job(service: Service, job_id: str, kinds: tuple[str, ...], p: Principal, field: str) -> dict[str, str]:
    job = service.meta.get_job(job_id if len(job_id) <= 32 else "-")
    if job["owner"] != p.name and p.role != "admin":
        raise NotFoundError(f"job {job_id!r} does not exist")
    if job["kind"] not in kinds or job["state"] != "succeeded":
        raise InputError(f"job {job_id} is not a succeeded {' or '.join(kinds)} job", field=field)
    return {"job_id": job_id}


def _events(service: Service, body: Events, p: Principal) -> dict[str, str]:
    if body.events_job_id:
        return _job(service, body.events_job_id, ("geocode",), p, "events_job_id")
    if body.events_upload_id:
        return _upload(service, body.events_upload_id, ("cases",), "events_upload_id")
    raise InputError("give events_upload_id or events_job_id", field="events_upload_id")


def _start(service: Service, p: Principal, command: str, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("plan_id"):
        service.meta.get_plan(params["plan_id"])  # 404 before anything is queued
    params = {"command": command, "result_name": f"{command}-{secrets.token_hex(8)}", **params}
    return start_job(service, command, p.name, params)


_FILTERS = ("category", "since", "until")


@router.post("/heatmap", status_code=202)
def start_heatmap(body: HeatmapJob, p: Analyst, service: ServiceDep) -> dict[str, Any]:
    """Kernel density heatmap (``gridplan heatmap``): a GeoTIFF clipped to the plan."""
    opts = body.model_dump(include={"cell_m", "bandwidth_m", "weight", *_FILTERS})
    inputs = {"events": _events(service, body, p)}
    return _start(service, p, "heatmap", {"plan_id": body.plan_id, "inputs": inputs, "options": opts})


@router.post("/hotspots", status_code=202)
def start_hotspots(body: HotspotsJob, p: Analyst, service: ServiceDep) -> dict[str, Any]:
    """Hot spots (``gridplan hotspots``): Gi* and emerging hot spots as a GeoPackage."""
    opts = body.model_dump(include={"by", "time_step", "permutations", "inference", "seed", *_FILTERS})
    inputs = {"events": _events(service, body, p)}
    return _start(service, p, "hotspots", {"plan_id": body.plan_id, "inputs": inputs, "options": opts})


@router.post("/balance", status_code=202)
def start_balance(body: BalanceJob, p: Analyst, service: ServiceDep) -> dict[str, Any]:
    """Staff apportionment proposal (``gridplan balance``) as a GeoPackage."""
    inputs = {"layers": _upload(service, body.layers_upload_id, ("layers",), "layers_upload_id")}
    opts = body.model_dump(include={"staff", "min_staff", "max_staff"})
    return _start(service, p, "balance", {"plan_id": body.plan_id, "inputs": inputs, "options": opts})


@router.post("/coverage", status_code=202)
def start_coverage(body: CoverageJob, p: Analyst, service: ServiceDep) -> dict[str, Any]:
    """Coverage of buildings by posts (``gridplan coverage``) as a GeoPackage."""
    inputs = {"layers": _upload(service, body.layers_upload_id, ("layers",), "layers_upload_id")}
    return _start(
        service, p, "coverage", {"inputs": inputs, "options": body.model_dump(include={"radius_m", "posts"})}
    )


@router.post("/publish", status_code=202)
def start_publish(body: PublishJob, p: Analyst, service: ServiceDep) -> dict[str, Any]:
    """Publish the standard maps of a plan (``gridplan publish``) into the served maps folder."""
    inputs: dict[str, dict[str, str]] = {}
    if body.layers_upload_id:
        inputs["layers"] = _upload(service, body.layers_upload_id, ("layers",), "layers_upload_id")
    if body.hotspots_job_id:
        inputs["hotspots"] = _job(service, body.hotspots_job_id, ("hotspots",), p, "hotspots_job_id")
    if body.heatmap_job_id:
        inputs["heatmap"] = _job(service, body.heatmap_job_id, ("heatmap",), p, "heatmap_job_id")
    opts = body.model_dump(include={"data_date"})
    return _start(service, p, "publish", {"plan_id": body.plan_id, "inputs": inputs, "options": opts})
