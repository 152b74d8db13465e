"""Plan routes: list, summary, base grids as paged GeoJSON, diff of two versions, re-import, adopt a proposal.

``POST /plans/{id}/reimport`` (a QGIS-edited layer) and ``POST /plans/{id}/proposals`` (a balance
job's proposal) make a new version whose parent is *id*, under optimistic concurrency: 409 with
the newer version's diff when *id* already has a child (or one is being made), unless
``branch=true``.

``GET /plans/{id}/diff?against=parent`` is the diff a map draws: the grids that changed, before
(in the older plan) and after (in *id*), as GeoJSON in EPSG:4326 with their change and households,
plus the unchanged grids around them for context and the diff's figures (households moved …).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from fastapi import APIRouter, File, Query, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from gridplan.api.auth import Principal
from gridplan.api.deps import ServiceDep, require
from gridplan.api.routes.uploads import store_upload
from gridplan.api.schemas import content, errors
from gridplan.api.service import Service
from gridplan.api.tasks import start_job
from gridplan.errors import InputError
from gridplan.store.meta import PlanConflictError

__all__ = ["router"]

router = APIRouter(prefix="/plans", tags=["plans"], responses=errors(401, 403, 404, 413, 422))


@router.get("")
def list_plans(
    _: Annotated[Principal, require("plans:summary")], service: ServiceDep
) -> list[dict[str, Any]]:
    """Plan versions, newest first: id, parent, created_at, kind, grid count."""
    return [
        {k: r[k] for k in ("plan_id", "parent_id", "created_at", "kind", "grid_count")}
        for r in service.meta.list_plans()
    ]


@router.get("/{plan_id}")
def plan_summary(
    plan_id: str, _: Annotated[Principal, require("plans:summary")], service: ServiceDep
) -> dict[str, Any]:
    """Summary of one plan: parameters, departments, totals, band status counts."""
    return service.plans.summary(plan_id)


@router.get(
    "/{plan_id}/grids",
    response_class=Response,
    responses=content("application/geo+json", "a page of base grids: GeoJSON FeatureCollection"),
)
def plan_grids(
    plan_id: str,
    _: Annotated[Principal, require("plans:read")],
    service: ServiceDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> Response:
    """Return base grids as a GeoJSON FeatureCollection in EPSG:4326, one page at a time."""
    gdf, total = service.plans.base_grids_page(plan_id, offset=offset, limit=limit)
    fc = json.loads(gdf.to_crs(4326).to_json(drop_id=True, na="null"))
    fc["numberMatched"] = total
    fc["numberReturned"] = len(gdf)
    if offset + len(gdf) < total:
        fc["next"] = f"/plans/{plan_id}/grids?offset={offset + len(gdf)}&limit={limit}"
    return Response(json.dumps(fc, ensure_ascii=False), media_type="application/geo+json")


@router.get("/{plan_id}/diff/{other_id}")
def plan_diff(
    plan_id: str,
    other_id: str,
    _: Annotated[Principal, require("plans:read")],
    service: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
) -> dict[str, Any]:
    """Show what changed from plan *plan_id* (old) to *other_id* (new): summary, grids, moves."""
    from gridplan.plans import diff_plans

    d = diff_plans(service.plans.load(plan_id), service.plans.load(other_id))
    grids = d.grids.drop(columns=["geometry"], errors="ignore")
    moves = d.moves.drop(columns=["geometry"], errors="ignore")
    return {
        "summary": json.loads(json.dumps(d.summary, default=float)),
        "grids": json.loads(grids.head(limit).to_json(orient="records", force_ascii=False)),
        "moves": json.loads(moves.head(limit).to_json(orient="records", force_ascii=False)),
    }


#: Most unchanged grids sent around the changed ones (context for the diff map).
MAX_CONTEXT_GRIDS = 2000


@router.get("/{plan_id}/diff")
def plan_diff_map(
    plan_id: str,
    _: Annotated[Principal, require("plans:read")],
    service: ServiceDep,
    against: Annotated[str, Query(max_length=64, description='"parent" or an older plan id')] = "parent",
) -> dict[str, Any]:
    """Show what changed from *against* (default: the parent) to *plan_id*, for a before/after map.

    ``before`` and ``after`` are FeatureCollections (EPSG:4326) of the changed grids in each plan
    (``grid_code``, ``change``, ``households_old``, ``households_new``, ``changed: true``) and of
    the unchanged grids in their bounding box (``changed: false``, up to
    :data:`MAX_CONTEXT_GRIDS`); ``summary`` is :func:`~gridplan.plans.diff_plans`'s.  422 when
    the plan has no parent.
    """
    from gridplan.plans import diff_plans

    old_id = against
    if against == "parent":
        parent = service.meta.get_plan(plan_id)["parent_id"]
        if not parent:
            raise InputError(f"plan {plan_id} has no parent: give against=<plan id>", field="against")
        old_id = parent
    old, new = service.plans.load(old_id), service.plans.load(plan_id)
    d = diff_plans(old, new)
    changed = d.grids[d.grids["change"] != "unchanged"]
    sides = {
        side: _diff_side(plan.base_grids, set(changed[col]) - {""}, d.grids, col)
        for side, plan, col in (("before", old, "old_code"), ("after", new, "new_code"))
    }
    return {
        "old_plan_id": old_id,
        "new_plan_id": plan_id,
        "summary": json.loads(json.dumps(d.summary, default=float)),
        "changed_grids": json.loads(
            changed.drop(columns=["geometry"], errors="ignore").to_json(orient="records", force_ascii=False)
        ),
        **sides,
    }


def _diff_side(grids: gpd.GeoDataFrame, codes: set[str], table: pd.DataFrame, col: str) -> dict[str, Any]:
    """Return one side of the diff map: grids *codes* of *grids* and the unchanged ones around them."""
    code = grids["grid_code"].astype(str)
    hit = code.isin(codes).to_numpy()
    if hit.any():
        box = shapely.box(*grids.geometry[hit].total_bounds)
        near = np.flatnonzero(~hit & grids.geometry.intersects(box).to_numpy())[:MAX_CONTEXT_GRIDS]
    else:
        near = np.zeros(0, dtype=np.int64)
    pick = np.r_[np.flatnonzero(hit), near]
    gdf = grids.iloc[pick][["grid_code", "households", "geometry"]].copy()
    info = table[table[col] != ""].drop_duplicates(col).set_index(col)
    gdf["changed"] = hit[pick]
    gdf["change"] = info["change"].reindex(gdf["grid_code"].astype(str)).fillna("unchanged").to_numpy()
    hh = pd.to_numeric(gdf["households"], errors="coerce").to_numpy(dtype=float)
    for k in ("households_old", "households_new"):
        got = info[k].reindex(gdf["grid_code"].astype(str)).to_numpy(dtype=float)
        gdf[k] = np.where(np.isnan(got), hh, got)
    out: dict[str, Any] = json.loads(gdf.to_crs(4326).to_json(drop_id=True, na="null"))
    return out


def _conflict(service: Service, plan_id: str) -> JSONResponse | None:
    """409 with the diff when *plan_id* already has a newer child (or one is being made), else None."""
    children = service.meta.children_of(plan_id)
    pending = [j for j in service.meta.unfinished_jobs("reimport") if j["params"].get("plan_id") == plan_id]
    pending = [j for j in pending if not j["params"].get("branch")]
    if not children and not pending:
        return None
    if children:
        from gridplan.plans import diff_plans

        newer = children[0]
        exc = PlanConflictError(plan_id, newer["plan_id"])
        d = diff_plans(service.plans.load(plan_id), service.plans.load(newer["plan_id"]))
        extra = {
            "newer_id": newer["plan_id"],
            "newer_by": newer.get("created_by"),
            "newer_at": newer["created_at"],
            "diff": json.loads(json.dumps(d.summary, default=float)),
        }
    else:
        exc = PlanConflictError(plan_id, None, pending_job=pending[0]["job_id"])
        extra = {"newer_id": None, "pending_job": pending[0]["job_id"], "diff": None}
    body = {"detail": str(exc), "error": "PlanConflictError", "parent_id": plan_id, **extra}
    return JSONResponse(body, status_code=409)


#: ``?branch=true``: a new version beside a newer one, on purpose (no 409).
Branch = Annotated[
    bool, Query(description="make a sibling version on purpose, even if the plan already has a newer one")
]


@router.post("/{plan_id}/reimport", status_code=202, responses=errors(409))
def reimport(
    plan_id: str,
    file: Annotated[UploadFile, File()],
    p: Annotated[Principal, require("plans:write")],
    service: ServiceDep,
    branch: Branch = False,
) -> Any:
    """Upload a base-grid layer edited in QGIS; a job turns it into a new version of *plan_id*.

    *plan_id* is the version the edit started from.  If it already has a newer child (another
    planner re-imported first), the answer is 409 with what that version changed, unless
    ``branch=true``.
    """
    service.plans.summary(plan_id)  # 404 before storing anything
    if not branch and (conflict := _conflict(service, plan_id)) is not None:
        return conflict
    up = store_upload(service, file, "grids", p.name)
    params = {"plan_id": plan_id, "upload_id": up["upload_id"], "branch": branch}
    return {**start_job(service, "reimport", p.name, params), "upload": up}


class AdoptProposal(BaseModel):
    job_id: str = Field(..., max_length=32, description="a succeeded balance job on this plan")


@router.post("/{plan_id}/proposals", status_code=201, responses=errors(409))
def adopt_proposal(
    plan_id: str,
    body: AdoptProposal,
    p: Annotated[Principal, require("plans:write")],
    service: ServiceDep,
    branch: Branch = False,
) -> Any:
    """Store the proposal of balance job *job_id* as a new version of *plan_id* (its parent).

    An analyst runs ``POST /jobs/balance``; a planner adopts the proposal here.  The proposal names
    its parent: 422 when the job balanced another plan (or is not a succeeded balance job, or was
    adopted already); 409 with the newer version's diff when *plan_id* already has a newer child,
    unless ``branch=true``.
    """
    from gridplan.plans import read_plan

    service.plans.summary(plan_id)  # 404 before anything else
    job = service.meta.get_job(body.job_id)
    if job["kind"] != "balance" or job["state"] != "succeeded":
        raise InputError(f"job {body.job_id} is not a succeeded balance job", field="job_id")
    if job["params"].get("plan_id") != plan_id:
        raise InputError(
            f"job {body.job_id} proposed a change of plan {job['params'].get('plan_id')}, not of {plan_id}",
            field="job_id",
        )
    proposal = read_plan(service.data_dir / "results" / str(job["result"]["file"]))
    new_id = proposal.meta.plan_id
    if proposal.meta.parent_id != plan_id:
        raise InputError(f"the proposal of job {body.job_id} is not a child of {plan_id}", field="job_id")
    if any(c["plan_id"] == new_id for c in service.meta.children_of(plan_id)):
        raise InputError(f"the proposal of job {body.job_id} is version {new_id} already", field="job_id")
    if not branch and (conflict := _conflict(service, plan_id)) is not None:
        return conflict
    source = service.meta.get_plan(plan_id)["source_upload"]
    try:
        service.plans.save(proposal, source_upload=source, created_by=p.name, sole_child=not branch)
    except PlanConflictError:  # another version landed between the check and the save
        conflict = _conflict(service, plan_id)
        if conflict is None:
            raise
        return conflict
    return {"plan_id": new_id, "parent_id": plan_id, "href": f"/plans/{new_id}"}
