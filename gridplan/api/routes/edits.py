"""Plan edit routes: the editor engine over HTTP (reassign, split, merge, move_vertex), preview and save.

``POST /plans/{id}/edits/preview`` applies a list of operations to a working copy and answers
their consequences (households, band status, contiguity and community nesting of each affected
grid, departmental grids newly cut, units and households moved, the standard addresses and
buildings that change grid, violations) and, as ``changed_units``, the units whose shape a vertex
move changed (GeoJSON, EPSG:4326); nothing is stored.  ``POST /plans/{id}/edits/outline`` answers
a grid's outline after the operations (GeoJSON, EPSG:4326): the vertices a planner may move.
``POST /plans/{id}/edits`` applies them and, when legal, stores the result as a new plan version
whose parent is *id* — 422 naming the violations otherwise, 409 when *id* already has a newer
child (another planner saved first) unless the request says ``"branch": true``.  The operations are
those of :mod:`gridplan.balance.edit` (one engine behind the API, the CLI re-import and scripts).

Sessions are cached per plan version (plans are immutable): the unit adjacency of a city plan takes
seconds to build, an edit's consequences then take tens of milliseconds.  A session is opened with
the ``buildings`` and ``std_addresses`` of the layers upload the plan was merged from, when the
store still has it: a vertex move then divides a cut unit by its buildings and addresses, and the
consequences list the ids of the addresses and buildings that change grid (without them: the
addresses' count from the units, by area).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from typing import Annotated, Any

import geopandas as gpd
import shapely
from fastapi import APIRouter, Body, HTTPException

from gridplan.api.auth import Principal
from gridplan.api.deps import ServiceDep, require
from gridplan.api.schemas import errors
from gridplan.api.service import Service
from gridplan.balance.edit import Consequences, EditSession, operation_from_json
from gridplan.errors import GridplanError, InputError

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/plans", tags=["edits"], responses=errors(401, 403, 404, 409, 413, 422))

_SESSIONS: OrderedDict[tuple[int, str], EditSession] = OrderedDict()
_LOCK = threading.Lock()
_KEEP = 4


def _session(service: Service, plan_id: str) -> EditSession:
    """Return a fresh edit session on *plan_id* (the opened plan is kept for the next request)."""
    key = (id(service), plan_id)
    with _LOCK:
        base = _SESSIONS.get(key)
        if base is not None:
            _SESSIONS.move_to_end(key)
            return base.fresh()
    base = EditSession(service.plans.load(plan_id), **_points_layers(service, plan_id))
    with _LOCK:
        _SESSIONS[key] = base
        while len(_SESSIONS) > _KEEP:
            _SESSIONS.popitem(last=False)
    return base.fresh()


_POINTS: OrderedDict[tuple[int, str], dict[str, gpd.GeoDataFrame]] = OrderedDict()


def _points_layers(service: Service, plan_id: str) -> dict[str, gpd.GeoDataFrame]:
    """Read ``buildings`` and ``addresses`` of the layers upload *plan_id* was merged from (if stored).

    The layers of the last upload read are kept: the versions of a plan share their upload.
    """
    from gridplan.layers import read_layer

    source = service.meta.get_plan(plan_id).get("source_upload")
    if not source:
        return {}
    key = (id(service), str(source))
    with _LOCK:
        if key in _POINTS:
            return _POINTS[key]
    try:
        up = service.meta.get_upload(source)
    except GridplanError:  # the upload was purged: edit without them
        return {}
    wanted = {"buildings": "buildings", "std_addresses": "addresses"}
    if up.get("kind") != "layers":
        return {}
    try:
        out = {arg: read_layer(up["path"], name) for name, arg in wanted.items() if name in up["layers"]}
    except GridplanError as exc:  # unreadable now: edit by area, say so in the log
        logger.warning("plan %s: edits without buildings/addresses of upload %s (%s)", plan_id, source, exc)
        return {}
    with _LOCK:
        _POINTS[key] = out
        while len(_POINTS) > 1:
            _POINTS.popitem(last=False)
    return out


def _in_plan_crs(session: EditSession, obj: dict[str, Any]) -> dict[str, Any]:
    """Bring a split line drawn on a web map (``"line_crs": "EPSG:4326"``) to the plan's CRS."""
    crs = obj.get("line_crs")
    if obj.get("op") != "split" or crs is None:
        return obj
    from pyproj import CRS, Transformer

    try:
        tr = Transformer.from_crs(CRS.from_user_input(crs), session.plan.atomic_units.crs, always_xy=True)
        line = [list(tr.transform(float(x), float(y))) for x, y in obj["line"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"split line in {crs!r} cannot be read ({exc})", field="line") from None
    return {**obj, "line": line}


def _apply(
    session: EditSession, operations: list[dict[str, Any]], *, allow_empty: bool = False
) -> Consequences:
    if not isinstance(operations, list) or not (operations or allow_empty):
        raise InputError("send a non-empty list of operations", field="operations")
    result = session.consequences()
    for k, obj in enumerate(operations):
        if not isinstance(obj, dict):
            raise InputError("each operation is an object with an 'op' field", field=f"operations[{k}]")
        try:
            result = session.apply(operation_from_json(_in_plan_crs(session, obj)))
        except InputError as exc:
            raise InputError(f"operation {k + 1}: {exc.reason}", field=exc.field) from None
    return result


@router.post("/{plan_id}/edits/preview")
def preview_edits(
    plan_id: str,
    _: Annotated[Principal, require("plans:write")],
    service: ServiceDep,
    operations: Annotated[list[dict[str, Any]], Body(embed=True)],
) -> dict[str, Any]:
    """Apply *operations* to a working copy of the plan and say what they do; nothing is stored.

    ``changed_units`` holds the units whose shape differs from the plan's (GeoJSON, EPSG:4326).
    """
    result = _apply(_session(service, plan_id), operations)
    return {**result.to_json(), "changed_units": _geojson(result.changed_units)}


@router.post("/{plan_id}/edits/outline")
def grid_outline(
    plan_id: str,
    _: Annotated[Principal, require("plans:write")],
    service: ServiceDep,
    grid: Annotated[str, Body(embed=True, max_length=32)],
    operations: Annotated[list[dict[str, Any]], Body(embed=True)] = [],  # noqa: B006 - FastAPI copies
) -> dict[str, Any]:
    """Outline of grid *grid* after *operations* (GeoJSON Feature, EPSG:4326): the movable vertices."""
    session = _session(service, plan_id)
    _apply(session, operations, allow_empty=True)
    outline = gpd.GeoSeries([session.grid_outline(grid)], crs=session.plan.atomic_units.crs).to_crs(4326)
    geom = shapely.geometry.mapping(outline.iloc[0])
    return {"type": "Feature", "geometry": geom, "properties": {"grid_code": grid}}


def _geojson(gdf: gpd.GeoDataFrame | None) -> dict[str, Any]:
    if gdf is None or not len(gdf):
        return {"type": "FeatureCollection", "features": []}
    out: dict[str, Any] = json.loads(gdf.to_crs(4326).to_json(drop_id=True, na="null"))
    return out


@router.post("/{plan_id}/edits", status_code=201)
def save_edits(
    plan_id: str,
    p: Annotated[Principal, require("plans:write")],
    service: ServiceDep,
    operations: Annotated[list[dict[str, Any]], Body(embed=True)],
    message: Annotated[str, Body(embed=True, max_length=500)] = "",
    branch: Annotated[bool, Body(embed=True)] = False,
) -> dict[str, Any]:
    """Apply *operations* and store the edited plan as a new version (parent *plan_id*).

    422 when an edit breaks a hard rule (the violations are named); 409 when *plan_id* already has
    a newer version and ``branch`` is not set.
    """
    service.plans.summary(plan_id)  # 404 before any work
    children = [r["plan_id"] for r in service.meta.list_plans() if r["parent_id"] == plan_id]
    if children and not branch:
        raise HTTPException(
            409,
            detail=f"plan {plan_id} already has newer versions ({', '.join(children)}): edit the newest, "
            'or send "branch": true to branch on purpose',
        )
    session = _session(service, plan_id)
    result = _apply(session, operations)
    if not result.legal:
        raise InputError("the edits break a rule: " + "; ".join(result.violations[:5]), field="operations")
    new = session.to_plan(message)
    source = service.meta.get_plan(plan_id)["source_upload"]
    new_id = service.plans.save(new, source_upload=source, created_by=p.name)
    return {"plan_id": new_id, "parent_id": plan_id, "href": f"/plans/{new_id}", **result.to_json()}
