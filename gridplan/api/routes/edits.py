"""Plan edit routes: the editor engine over HTTP (reassign, split, merge), preview and save.

``POST /plans/{id}/edits/preview`` applies a list of operations to a working copy and answers
their consequences (households, band status, contiguity and community nesting of each affected
grid, departmental grids newly cut, units and households moved, violations); nothing is stored.
``POST /plans/{id}/edits`` applies them and, when legal, stores the result as a new plan version
whose parent is *id* — 422 naming the violations otherwise, 409 when *id* already has a newer
child (another planner saved first) unless the request says ``"branch": true``.  The operations are
those of :mod:`gridplan.balance.edit` (one engine behind the API, the CLI re-import and scripts).

Sessions are cached per plan version (plans are immutable): the unit adjacency of a city plan takes
seconds to build, an edit's consequences then take tens of milliseconds.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException

from gridplan.api.auth import Principal
from gridplan.api.deps import ServiceDep, require
from gridplan.api.schemas import errors
from gridplan.api.service import Service
from gridplan.balance.edit import Consequences, EditSession, operation_from_json
from gridplan.errors import InputError

__all__ = ["router"]

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
    base = EditSession(service.plans.load(plan_id))
    with _LOCK:
        _SESSIONS[key] = base
        while len(_SESSIONS) > _KEEP:
            _SESSIONS.popitem(last=False)
    return base.fresh()


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


def _apply(session: EditSession, operations: list[dict[str, Any]]) -> Consequences:
    if not isinstance(operations, list) or not operations:
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
    """Apply *operations* to a working copy of the plan and say what they do; nothing is stored."""
    return _apply(_session(service, plan_id), operations).to_json()


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
