"""Job routes: start a merge or a geocode, follow or cancel your jobs, download a result file.

Starting a job checks its inputs at once (4xx before anything is queued) and queues it in the
metadata store; a worker of any server process on that store runs it (:mod:`gridplan.api.jobs`,
the work itself in :mod:`gridplan.api.tasks`).  A caller sees and cancels only its own jobs (an
admin: all); someone else's job answers 404, as an unknown one does.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from gridplan.api.auth import Principal
from gridplan.api.deps import ServiceDep, require
from gridplan.api.schemas import errors, scrub_paths
from gridplan.api.service import Service
from gridplan.api.tasks import start_job
from gridplan.errors import InputError, NotFoundError
from gridplan.params import merge_params as checked_merge_params

__all__ = ["router"]

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=errors(401, 403, 404, 413, 422))

_RESULT_TYPES = {".csv": "text/csv", ".tif": "image/tiff", ".gpkg": "application/geopackage+sqlite3"}
_ID = re.compile(r"^[a-f0-9]{16}$")


class MergeJob(BaseModel):
    """Start a merge of an uploaded layers GeoPackage."""

    upload_id: str = Field(..., description="id from POST /uploads/layers")
    departments: list[str] | None = Field(None, description="department names (default: every dept_* layer)")
    min_area_m2: float | None = Field(None, ge=0)
    households_min: int | None = Field(None, ge=0)
    households_max: int | None = Field(None, ge=1)


class GeocodeJob(BaseModel):
    """Geocode an uploaded cases/hazards CSV against the standard address library."""

    upload_id: str = Field(..., description="id from POST /uploads/cases")
    plan_id: str | None = Field(None, description="plan whose base grids rows are assigned to")
    layers_upload_id: str | None = Field(
        None, description="layers upload with std_addresses (default: the layers the plan was merged from)"
    )
    min_score: float = Field(80.0, ge=0, le=100)


def _upload_of_kind(service: Service, upload_id: str, kind: str) -> dict[str, Any]:
    """Return the upload row of *upload_id*, which must be a *kind* upload (``InputError`` otherwise)."""
    up = service.meta.get_upload(upload_id)
    if up["kind"] != kind:
        raise InputError(f"upload {upload_id} is a {up['kind']} upload, not {kind}", field="upload_id")
    return up


def _merge_params(service: Service, body: MergeJob) -> dict[str, Any]:
    """Check a merge request; return its parameters, settings filling what it leaves out."""
    up = _upload_of_kind(service, body.upload_id, "layers")
    missing = [d for d in body.departments or [] if f"dept_{d}" not in up["layers"]]
    if missing:
        there = ", ".join(sorted(k[5:] for k in up["layers"] if k.startswith("dept_")))
        raise InputError(
            f"no layer dept_{missing[0]} in upload {body.upload_id} (departments there: {there})",
            field="departments",
        )
    s = service.settings
    params: dict[str, Any] = {
        "upload_id": body.upload_id,
        "departments": body.departments,
        "min_area_m2": body.min_area_m2 if body.min_area_m2 is not None else s.min_area_m2,
        "households_min": body.households_min if body.households_min is not None else s.households_min,
        "households_max": body.households_max if body.households_max is not None else s.households_max,
        "h3_res": s.h3_res,
    }
    params.update(checked_merge_params(**params))  # the CLI's checks, in the CLI's words
    return params


def _geocode_params(service: Service, body: GeocodeJob) -> dict[str, Any]:
    """Check a geocode request: a cases upload and a layers upload (given, or the plan's)."""
    meta = service.meta
    _upload_of_kind(service, body.upload_id, "cases")
    layers_id = body.layers_upload_id
    if body.plan_id is not None:
        row = meta.get_plan(body.plan_id)
        layers_id = layers_id or row["source_upload"]
    if not layers_id:
        raise InputError(
            "give layers_upload_id (a layers upload with std_addresses) or a plan_id",
            field="layers_upload_id",
        )
    if meta.get_upload(layers_id)["kind"] != "layers":
        raise InputError(f"upload {layers_id} is not a layers upload", field="layers_upload_id")
    return {
        "upload_id": body.upload_id,
        "plan_id": body.plan_id,
        "layers_upload_id": layers_id,
        "min_score": body.min_score,
        "result_name": secrets.token_hex(8),
    }


@router.post("/merge", status_code=202)
def start_merge(
    body: MergeJob, p: Annotated[Principal, require("plans:write")], service: ServiceDep
) -> dict[str, Any]:
    """Merge an uploaded layers GeoPackage into a new plan, in the background."""
    return start_job(service, "merge", p.name, _merge_params(service, body))


@router.post("/geocode", status_code=202)
def start_geocode(
    body: GeocodeJob, p: Annotated[Principal, require("analysis:run")], service: ServiceDep
) -> dict[str, Any]:
    """Geocode an uploaded CSV in the background; download the result from the job."""
    return start_job(service, "geocode", p.name, _geocode_params(service, body))


def _job_view(job: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        k: job[k]
        for k in ("job_id", "kind", "state", "progress", "message", "owner", "created_at", "updated_at")
        if k in job
    }
    if isinstance(out.get("message"), str):
        out["message"] = scrub_paths(out["message"])  # a failure message never shows a server path
    if job.get("state") == "running" and job.get("cancel_requested"):
        out["cancel_requested"] = True
    res = job.get("result")
    if res is not None:
        out["result"] = {k: v for k, v in res.items() if k != "file"}
    return out


def _own_job(service: Service, job_id: str, p: Principal) -> dict[str, Any]:
    job = service.meta.get_job(job_id if _ID.match(job_id) else "-")
    if job["owner"] != p.name and p.role != "admin":
        raise NotFoundError(f"job {job_id!r} does not exist")
    return job


@router.get("")
def list_jobs(p: Annotated[Principal, require("jobs:read")], service: ServiceDep) -> list[dict[str, Any]]:
    """Your recent jobs (all jobs for an admin)."""
    return [_job_view(j) for j in service.meta.list_jobs(owner=None if p.role == "admin" else p.name)]


@router.get("/{job_id}")
def get_job(
    job_id: str, p: Annotated[Principal, require("jobs:read")], service: ServiceDep
) -> dict[str, Any]:
    """State (queued/running/succeeded/failed/cancelled), progress 0–1, message and result link."""
    job = _own_job(service, job_id, p)
    view = _job_view(job)
    if job["state"] == "succeeded" and job["result"] and job["result"].get("file"):
        view["result"]["href"] = f"/jobs/{job_id}/result"
    return view


@router.post("/{job_id}/cancel", responses=errors(409))
def cancel_job(
    job_id: str, p: Annotated[Principal, require("jobs:cancel")], service: ServiceDep
) -> dict[str, Any]:
    """Cancel one of your jobs (an admin: anyone's); answer its state.

    A queued job is ``cancelled`` at once.  A running one answers ``running`` with
    ``cancel_requested``: its worker stops it — a merge, geocode or re-import at its next progress
    step, an analysis within about a second (its child process is killed) — and it ends
    ``cancelled``, having stored nothing; poll ``GET /jobs/{id}``.  Cancelling
    a cancelled job changes nothing; a job that has already succeeded or failed answers 409.
    """
    job = _own_job(service, job_id, p)
    service.jobs.cancel(job["job_id"])
    return _job_view(service.meta.get_job(job["job_id"]))


@router.get(
    "/{job_id}/result",
    response_class=FileResponse,
    responses={
        200: {
            "description": "the result file: CSV (geocode), GeoTIFF (heatmap), GeoPackage (others)",
            "content": {t: {"schema": {"type": "string"}} for t in _RESULT_TYPES.values()},
        }
    },
)
def job_result(
    job_id: str, p: Annotated[Principal, require("results:read")], service: ServiceDep
) -> FileResponse:
    """Download a finished job's result file (geocoded CSV)."""
    job = _own_job(service, job_id, p)
    name = (job.get("result") or {}).get("file")
    if job["state"] != "succeeded" or not name:
        raise NotFoundError(f"job {job_id} has no result file (state {job['state']})")
    path = service.data_dir / "results" / Path(name).name
    if not path.is_file():
        raise NotFoundError(f"result of job {job_id} is no longer available")
    media = _RESULT_TYPES.get(path.suffix.lower(), "application/octet-stream")
    if path.suffix.lower() == ".csv":
        return FileResponse(path, media_type="text/csv; charset=utf-8", filename=f"geocoded-{job_id}.csv")
    return FileResponse(path, media_type=media, filename=f"{job['kind']}-{job_id}{path.suffix.lower()}")
