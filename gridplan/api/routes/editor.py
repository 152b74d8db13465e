"""The planners' editor page: ``GET /plans/{id}/edit`` and the units it draws.

The page (``gridplan/api/editor/editor.html`` + ``editor.js``, Leaflet inlined from the offline
assets, no CDN) lets a planner select atomic units and give them to a grid, cut a grid by a drawn
line, merge two grids and move a vertex of a grid's outline (its vertices from
``/plans/{id}/edits/outline``; click one, click its new place); after each step it sends the whole
list of operations to ``/plans/{id}/edits/preview`` (:mod:`gridplan.api.routes.edits`) and shows
what the server's engine answers — households, band status, parts and communities of every affected
grid, departmental grids newly cut, addresses and buildings changing grid, violations, and the new
shapes of the units a vertex move cut — so undo and redo are list operations and no rule lives in
JavaScript.  Save posts the same list to ``/plans/{id}/edits``.  The version history lists the
plan's ancestors and descendants; each version opens side by side against its parent (two
synchronised maps from ``/plans/{id}/diff?against=parent``, changed grids highlighted, households
moved).  ``GET /plans/{id}/units`` serves the atomic units as
GeoJSON (EPSG:4326) with their grid codes: a whole plan up to :data:`MAX_UNITS`, else one community
(``?community=CODE``, also accepted by the page).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse, Response

from gridplan.api.auth import Principal
from gridplan.api.deps import ServiceDep, require
from gridplan.api.schemas import errors
from gridplan.maps.escape import escape_html, js_json

__all__ = ["MAX_UNITS", "router"]

router = APIRouter(prefix="/plans", tags=["edits"], responses=errors(401, 403, 404, 413, 422))

#: Most units the page draws at once (a city plan is edited one community at a time).
MAX_UNITS = 20_000
_HERE = Path(__file__).resolve().parents[1] / "editor"
_UNIT_FIELDS = ("unit_id", "base_grid_code", "community_code", "households", "residents")


@cache
def _page_parts() -> tuple[str, str, str]:
    from gridplan.maps.assets import inline_bundles

    return (
        (_HERE / "editor.html").read_text(encoding="utf-8"),
        (_HERE / "editor.js").read_text(encoding="utf-8"),
        inline_bundles(["leaflet"]),
    )


@router.get("/{plan_id}/edit", response_class=HTMLResponse)
def editor_page(
    plan_id: str,
    _: Annotated[Principal, require("plans:write")],
    service: ServiceDep,
    community: Annotated[str | None, Query(max_length=32, pattern=r"^[0-9A-Za-z_-]+$")] = None,
) -> HTMLResponse:
    """Serve the editor page for *plan_id* (planners; offline, one self-contained page)."""
    summary = service.plans.summary(plan_id)  # 404 before anything else
    params = summary.get("params") or {}
    cfg = {
        "plan_id": plan_id,
        "community": community,
        "band": [params.get("households_min", 300), params.get("households_max", 500)],
    }
    html, script, assets = _page_parts()
    page = (
        html.replace("{{ASSETS}}", assets)
        .replace("{{PLAN_ID}}", escape_html(plan_id))
        .replace("{{CONFIG}}", js_json(cfg))
        .replace("{{SCRIPT}}", script)
    )
    return HTMLResponse(page)


@router.get("/{plan_id}/units")
def plan_units(
    plan_id: str,
    _: Annotated[Principal, require("plans:read")],
    service: ServiceDep,
    community: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """Atomic units of the plan as GeoJSON (EPSG:4326) with ``grid_code``; one community on request."""
    units = service.plans.load(plan_id).atomic_units
    if community:
        units = units[units["community_code"].astype(str) == community]
    if len(units) > MAX_UNITS:
        raise HTTPException(
            413, f"the plan has {len(units):,} atomic units: ask for one community (?community=CODE)"
        )
    cols = [c for c in _UNIT_FIELDS if c in units.columns]
    gdf = units[[*cols, "geometry"]].rename(columns={"base_grid_code": "grid_code"}).to_crs(4326)
    fc: dict[str, Any] = json.loads(gdf.to_json(drop_id=True, na="null"))
    return Response(json.dumps(fc, ensure_ascii=False), media_type="application/geo+json")
