"""Plan diff: grids added, removed, reshaped, recoded, and what changed grid."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import shapely

from gridplan.errors import CRSError
from gridplan.plans.model import numeric_column, text_column

if TYPE_CHECKING:
    from gridplan.plans.model import Plan

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlanDiff:
    """What changed between two plan versions.

    Attributes
    ----------
    grids
        One row per grid: ``grid_code`` (new code, or old code for removed grids), ``old_code``,
        ``new_code`` (``""`` when absent), ``change`` ∈ {``added``, ``removed``, ``reshaped``,
        ``recoded``, ``unchanged``}, ``area_old_m2``, ``area_new_m2``, ``changed_area_m2``
        (symmetric difference with the matched grid), ``households_old``, ``households_new``.
    moves
        Households/addresses that changed grid: ``unit_id``, ``from_grid``, ``to_grid`` (new codes;
        ``""`` = no grid), ``share`` (of the unit that moved, 1.0 for a whole unit), ``area_m2``,
        ``households``, ``residents``, ``addresses``.  When the new plan's units are the old ones,
        some cut into pieces (a planner's vertex move: a piece's ``parent_unit_id`` names the old
        unit, the pieces of a unit cover it), each piece that changed grid is a row under its own
        ``unit_id`` with the figures the edit gave it.
    summary
        Counts: ``old_plan_id``, ``new_plan_id``, ``grids_old``, ``grids_new``, one count per
        change, ``units_moved``, ``households_moved``, ``residents_moved``, ``addresses_moved``,
        ``moves_method`` (``units`` or ``area``).

    """

    grids: pd.DataFrame
    moves: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


#: Columns of :attr:`PlanDiff.grids`, and the order of its ``change`` values.
_GRID_COLUMNS = [
    "grid_code",
    "old_code",
    "new_code",
    "change",
    "area_old_m2",
    "area_new_m2",
    "changed_area_m2",
    "households_old",
    "households_new",
]
_CHANGE_ORDER = {"added": 0, "removed": 1, "reshaped": 2, "recoded": 3, "unchanged": 4}


@dataclass(frozen=True)
class _Grids:
    """One plan's base grids as arrays: code, geometry, area, households."""

    code: np.ndarray
    geom: np.ndarray
    area: np.ndarray
    households: np.ndarray

    @classmethod
    def of(cls, grids: pd.DataFrame) -> _Grids:
        geom = np.asarray(grids.geometry.values, dtype=object)
        return cls(
            text_column(grids, "grid_code"), geom, shapely.area(geom), numeric_column(grids, "households")
        )

    def pick(self, idx: np.ndarray, values: np.ndarray, absent: Any) -> np.ndarray:
        """``values[idx]`` where ``idx >= 0``, *absent* where ``idx == -1``."""
        out = np.full(len(idx), absent, dtype=values.dtype)
        have = idx >= 0
        out[have] = values[idx[have]]
        return out


def _grid_rows(
    old: _Grids, new: _Grids, oi: np.ndarray, nj: np.ndarray, change: Any, changed: np.ndarray
) -> pd.DataFrame:
    """Rows of the grid table for old grids *oi* paired with new grids *nj* (``-1``: none)."""
    old_code, new_code = old.pick(oi, old.code, ""), new.pick(nj, new.code, "")
    return pd.DataFrame(
        {
            "grid_code": np.where(nj >= 0, new_code, old_code),
            "old_code": old_code,
            "new_code": new_code,
            "change": change,
            "area_old_m2": old.pick(oi, old.area, 0.0),
            "area_new_m2": new.pick(nj, new.area, 0.0),
            "changed_area_m2": changed,
            "households_old": old.pick(oi, old.households, 0.0),
            "households_new": new.pick(nj, new.households, 0.0),
        },
        columns=_GRID_COLUMNS,
    )


def _same_shapes(old: _Grids, new: _Grids, tolerance_m2: float) -> tuple[np.ndarray, np.ndarray]:
    """Old grid → new grid of (nearly) the same shape, ``-1`` if none; and their symmetric difference.

    Candidates are the new grids holding the old grid's representative point; each grid pairs at
    most once, the closest shapes first.
    """
    match_new = np.full(len(old.code), -1, dtype=np.int64)
    match_sd = np.full(len(old.code), np.nan)
    if len(old.code) and len(new.code):
        tree = shapely.STRtree(new.geom)
        oi, ni = tree.query(shapely.point_on_surface(old.geom), predicate="intersects")
        sd = shapely.area(shapely.symmetric_difference(old.geom[oi], new.geom[ni]))
        ok = sd <= tolerance_m2
        pairs = pd.DataFrame({"o": oi[ok], "n": ni[ok], "sd": sd[ok]}).sort_values("sd", kind="stable")
        pairs = pairs.drop_duplicates("o").drop_duplicates("n")
        match_new[pairs["o"].to_numpy()] = pairs["n"].to_numpy()
        match_sd[pairs["o"].to_numpy()] = pairs["sd"].to_numpy()
    return match_new, match_sd


def _grid_changes(old: _Grids, new: _Grids, tolerance_m2: float) -> pd.DataFrame:
    """Build the grid table: same shape (unchanged/recoded), same code (reshaped), removed, added."""
    match_new, match_sd = _same_shapes(old, new, tolerance_m2)
    same = np.flatnonzero(match_new >= 0)
    kept = match_new[same]
    frames = [
        _grid_rows(
            old,
            new,
            same,
            kept,
            np.where(old.code[same] == new.code[kept], "unchanged", "recoded"),
            match_sd[same],
        )
    ]
    rest_old = np.flatnonzero(match_new < 0)
    matched_new = np.zeros(len(new.code), dtype=bool)
    matched_new[kept] = True
    rest_new = np.flatnonzero(~matched_new)
    by_code = {new.code[j]: j for j in rest_new}
    partner = np.array([by_code.get(c, -1) for c in old.code[rest_old]], dtype=np.int64)
    ro, rn = rest_old[partner >= 0], partner[partner >= 0]
    reshaped = shapely.area(shapely.symmetric_difference(old.geom[ro], new.geom[rn]))
    frames.append(_grid_rows(old, new, ro, rn, "reshaped", reshaped))
    gone = rest_old[partner < 0]
    frames.append(_grid_rows(old, new, gone, np.full(len(gone), -1), "removed", old.area[gone]))
    born = rest_new[~np.isin(rest_new, rn)]
    frames.append(_grid_rows(old, new, np.full(len(born), -1), born, "added", new.area[born]))
    grids = pd.concat(frames, ignore_index=True)
    grids = grids.assign(_o=grids["change"].map(_CHANGE_ORDER)).sort_values(
        ["_o", "grid_code"], kind="stable"
    )
    grids = grids.drop(columns="_o").reset_index(drop=True)
    for c in ("grid_code", "old_code", "new_code", "change"):
        grids[c] = grids[c].astype(object)
    return grids


def diff_plans(old: Plan, new: Plan, *, tolerance_m2: float = 1.0) -> PlanDiff:
    """Compare two plan versions: grids added/removed/reshaped/recoded and what moved grid.

    Parameters
    ----------
    old, new
        :class:`~gridplan.plans.Plan` objects in the same CRS.
    tolerance_m2
        Two grid shapes whose symmetric difference is at most this (m²) are the same shape.

    Returns
    -------
    PlanDiff
        See :class:`PlanDiff` (rules in the module docstring).

    Raises
    ------
    CRSError
        The plans are in different CRSs.

    """
    t0 = time.perf_counter()
    og, ng = old.base_grids, new.base_grids
    if og.crs is not None and ng.crs is not None and not og.crs.equals(ng.crs):
        raise CRSError(
            f"plans are in different CRSs ({og.crs.to_string()} vs {ng.crs.to_string()}); "
            "reproject one of them"
        )
    grids = _grid_changes(_Grids.of(og), _Grids.of(ng), tolerance_m2)
    recoded = grids[grids["change"] == "recoded"]
    recode = dict(zip(recoded["old_code"], recoded["new_code"], strict=True))
    moves, method = _moves(old, new, recode, tolerance_m2=tolerance_m2)
    counts = grids["change"].value_counts()
    summary: dict[str, Any] = {
        "old_plan_id": old.meta.plan_id,
        "new_plan_id": new.meta.plan_id,
        "grids_old": len(og),
        "grids_new": len(ng),
        **{k: int(counts.get(k, 0)) for k in _CHANGE_ORDER},
        "units_moved": int(moves["unit_id"].nunique()),
        "households_moved": float(moves["households"].sum()),
        "residents_moved": float(moves["residents"].sum()),
        "addresses_moved": float(moves["addresses"].sum()),
        "moves_method": method,
    }
    logger.info(
        "diff %s → %s: %d added, %d removed, %d reshaped, %d recoded; %.0f households moved in %.1f s",
        old.meta.plan_id,
        new.meta.plan_id,
        summary["added"],
        summary["removed"],
        summary["reshaped"],
        summary["recoded"],
        summary["households_moved"],
        time.perf_counter() - t0,
    )
    return PlanDiff(grids=grids, moves=moves, summary=summary)


_MOVE_COLUMNS = [
    "unit_id",
    "from_grid",
    "to_grid",
    "share",
    "area_m2",
    "households",
    "residents",
    "addresses",
]


def _moves(old: Plan, new: Plan, recode: dict[str, str], *, tolerance_m2: float) -> tuple[pd.DataFrame, str]:
    """Units that changed grid: whole units (or their pieces) when the plans share units, else area shares."""
    ou, nu = old.atomic_units, new.atomic_units
    pieces = _piece_moves(ou, nu, recode, tolerance_m2=tolerance_m2)
    if pieces is not None:
        return pieces, "units"
    if "unit_id" in ou.columns and "unit_id" in nu.columns and len(ou) == len(nu):
        a = ou.set_index(ou["unit_id"].astype(str))
        b = nu.set_index(nu["unit_id"].astype(str))
        if a.index.is_unique and set(a.index) == set(b.index):
            b = b.loc[a.index]
            if np.allclose(
                shapely.area(a.geometry.values), shapely.area(b.geometry.values), atol=tolerance_m2
            ):
                return _unit_moves(a, b, recode), "units"
    return _area_moves(ou, new.base_grids, recode, tolerance_m2=tolerance_m2), "area"


def _piece_moves(
    ou: pd.DataFrame, nu: pd.DataFrame, recode: dict[str, str], *, tolerance_m2: float
) -> pd.DataFrame | None:
    """Return moves of whole units and of pieces cut from them if *nu* is *ou* with units cut, else None.

    Every old unit must still be there (reshaped or not), every new unit be an old one or name one
    in ``parent_unit_id``, and the pieces of each old unit cover its area.
    """
    if "unit_id" not in ou.columns or "parent_unit_id" not in nu.columns or len(nu) <= len(ou):
        return None
    old_ids = text_column(ou, "unit_id")
    new_ids = text_column(nu, "unit_id")
    root = np.where(np.isin(new_ids, old_ids), new_ids, text_column(nu, "parent_unit_id"))
    pos = pd.Index(old_ids)
    if not pos.is_unique or not np.isin(old_ids, new_ids).all():
        return None
    k = pos.get_indexer(root)
    if (k < 0).any():
        return None
    new_area = shapely.area(np.asarray(nu.geometry.values, dtype=object))
    old_area = shapely.area(np.asarray(ou.geometry.values, dtype=object))
    if not np.allclose(np.bincount(k, new_area, len(ou)), old_area, atol=tolerance_m2):
        return None
    old_grid = np.array([recode.get(c, c) for c in text_column(ou, "base_grid_code")], dtype=object)
    frm, to = old_grid[k], text_column(nu, "base_grid_code")
    moved = frm != to
    df = pd.DataFrame(
        {
            "unit_id": new_ids[moved],
            "from_grid": frm[moved],
            "to_grid": to[moved],
            "share": (new_area / np.maximum(old_area[k], 1e-12))[moved],
            "area_m2": new_area[moved],
            "households": numeric_column(nu, "households")[moved],
            "residents": numeric_column(nu, "residents")[moved],
            "addresses": numeric_column(nu, "addresses")[moved],
        },
        columns=_MOVE_COLUMNS,
    )
    return df.sort_values("unit_id", kind="stable").reset_index(drop=True)


def _unit_moves(a: pd.DataFrame, b: pd.DataFrame, recode: dict[str, str]) -> pd.DataFrame:
    """List the units whose grid changed, the same units in both plans (*a*, *b* indexed alike)."""
    frm = np.array([recode.get(c, c) for c in text_column(a, "base_grid_code")], dtype=object)
    to = text_column(b, "base_grid_code")
    moved = frm != to
    df = pd.DataFrame(
        {
            "unit_id": a.index.to_numpy(dtype=object)[moved],
            "from_grid": frm[moved],
            "to_grid": to[moved],
            "share": 1.0,
            "area_m2": shapely.area(a.geometry.values)[moved],
            "households": numeric_column(a, "households")[moved],
            "residents": numeric_column(a, "residents")[moved],
            "addresses": numeric_column(a, "addresses")[moved],
        },
        columns=_MOVE_COLUMNS,
    )
    return df.sort_values("unit_id", kind="stable").reset_index(drop=True)


def _area_moves(
    ou: pd.DataFrame, grids: pd.DataFrame, recode: dict[str, str], *, tolerance_m2: float
) -> pd.DataFrame:
    """Different unit sets: each old unit spread over the new grids by area (``""``: outside all)."""
    ugeom = np.asarray(ou.geometry.values, dtype=object)
    uarea = np.maximum(shapely.area(ugeom), 1e-12)
    ngeom = np.asarray(grids.geometry.values, dtype=object)
    ncode = text_column(grids, "grid_code")
    frm = np.array([recode.get(c, c) for c in text_column(ou, "base_grid_code")], dtype=object)
    ui, gi = shapely.STRtree(ngeom).query(ugeom, predicate="intersects")
    inter = shapely.area(shapely.intersection(ugeom[ui], ngeom[gi]))
    keep = inter > 0
    ui, gi, inter = ui[keep], gi[keep], inter[keep]
    lost = uarea - np.bincount(ui, inter, len(ou))
    outside = np.flatnonzero(lost > tolerance_m2)
    parts = pd.concat(
        [
            pd.DataFrame({"u": ui, "to_grid": ncode[gi], "area_m2": inter}),
            pd.DataFrame({"u": outside, "to_grid": "", "area_m2": lost[outside]}),
        ],
        ignore_index=True,
    )
    parts = parts[parts["to_grid"].to_numpy(dtype=object) != frm[parts["u"].to_numpy()]]
    u = parts["u"].to_numpy()
    share = parts["area_m2"].to_numpy() / uarea[u]
    df = pd.DataFrame(
        {
            "unit_id": text_column(ou, "unit_id")[u],
            "from_grid": frm[u],
            "to_grid": parts["to_grid"].to_numpy(dtype=object),
            "share": share,
            "area_m2": parts["area_m2"].to_numpy(),
            "households": numeric_column(ou, "households")[u] * share,
            "residents": numeric_column(ou, "residents")[u] * share,
            "addresses": numeric_column(ou, "addresses")[u] * share,
        },
        columns=_MOVE_COLUMNS,
    )
    df = df[df["area_m2"] > tolerance_m2]
    return df.sort_values(["unit_id", "to_grid"], kind="stable").reset_index(drop=True)
