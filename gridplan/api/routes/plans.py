"""Plan routes: list, summary, base grids as paged GeoJSON, diff of two versions, re-import."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, UploadFile
from fastapi.responses import Response

from gridplan.api.auth import Principal
from gridplan.api.deps import ServiceDep, require
from gridplan.api.routes.uploads import store_upload
from gridplan.api.tasks import reimport_task, start_job

__all__ = ["router"]

router = APIRouter(prefix="/plans", tags=["plans"])


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


@router.get("/{plan_id}/grids")
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


@router.post("/{plan_id}/reimport", status_code=202)
def reimport(
    plan_id: str,
    file: Annotated[UploadFile, File()],
    p: Annotated[Principal, require("plans:write")],
    service: ServiceDep,
) -> dict[str, Any]:
    """Upload a base-grid layer edited in QGIS; a job turns it into a new plan version."""
    service.plans.summary(plan_id)  # 404 before storing anything
    up = store_upload(service, file, "grids", p.name)
    params = {"plan_id": plan_id, "upload_id": up["upload_id"]}
    return {**start_job(service, "reimport", p.name, params, reimport_task), "upload": up}
