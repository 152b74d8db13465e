"""Private helper of :mod:`gridplan.balance`: assemble the proposed plan version.

Only grids touched by a move are re-dissolved (union of their atomic units) and re-counted; the
others keep their geometry and attributes.  The departmental crosswalk and fit tables are recomputed
from the atomic units' ``<dept>_grid_id`` lineage (share of each departmental grid's area and
households per base grid), the band QA rows are redone, and the H3 index is rebuilt with
:func:`gridplan.hexindex.build_h3_index`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridplan.balance.graph import polsby_popper
from gridplan.merge import crosswalk_from_units
from gridplan.plans import Plan, numeric_column

_STATS = ("households", "residents", "floating_residents", "rental_rooms", "addresses")


@dataclass(frozen=True)
class ProposalChange:
    """What the rebalancer decided: each unit's new grid, its workload, staff and workload per grid.

    Attributes
    ----------
    grid_of_new
        New grid of every atomic unit (index into *codes*; ``-1``: unchanged / no grid).
    codes
        Grid codes, in the order of *staff* and *grid_workload*.
    unit_workload
        Workload of every atomic unit (hours per month).
    staff, grid_workload
        Proposed staff and workload per grid.
    moved
        Which atomic units changed grid.
    origin
        Grid created by a split → the grid it was cut from (its attributes are copied); grids of
        the input missing from *codes* were merged away and are dropped.

    """

    grid_of_new: np.ndarray
    codes: np.ndarray
    unit_workload: np.ndarray
    staff: np.ndarray
    grid_workload: np.ndarray
    moved: np.ndarray
    origin: dict[str, str] = field(default_factory=dict)


def build_proposal_plan(
    plan: Plan,
    change: ProposalChange,
    *,
    households_band: tuple[float, float],
    rebuild_h3: bool,
    params: dict[str, Any],
    extra_params: dict[str, Any] | None = None,
) -> tuple[Plan, np.ndarray | None, np.ndarray]:
    """Build the proposed plan; also return the compactness of the input and proposed grids (per code)."""
    codes, moved = change.codes, change.moved
    au = plan.atomic_units.copy()
    old_code = au["base_grid_code"].astype("string").fillna("").to_numpy(dtype=object)
    new_code = np.where(change.grid_of_new >= 0, codes[np.maximum(change.grid_of_new, 0)], "")
    au["base_grid_code"] = np.where(change.grid_of_new >= 0, new_code, old_code).astype(object)
    au["workload"] = change.unit_workload
    bg = plan.base_grids.copy()
    bg["grid_code"] = bg["grid_code"].astype(str)
    bg = bg.set_index("grid_code", drop=False)
    pp_before = None
    if len(bg) == len(codes) and set(bg.index) == set(codes):
        g0 = bg.loc[list(codes)].geometry.to_numpy()
        pp_before = polsby_popper(shapely.area(g0), shapely.length(g0))
    bg = _new_and_retired(bg, codes, change.origin)
    changed = (set(old_code[moved]) | set(np.asarray(au["base_grid_code"])[moved])) - {""}
    changed &= set(bg.index)
    if changed:
        _redissolve(bg, au[au["base_grid_code"].isin(changed)])
    bg = gpd.GeoDataFrame(bg, geometry="geometry", crs=plan.base_grids.crs)
    _band_status(bg, changed, households_band)
    bg, pp_after = _staff_columns(bg, change)
    if moved.any():
        cw, fit = crosswalk_from_units(au, tuple(plan.meta.departments))
        if not len(cw):
            cw, fit = plan.crosswalk, plan.dept_fit
    else:
        cw, fit = plan.crosswalk, plan.dept_fit
    h3_cells = plan.h3_cells
    if rebuild_h3 and moved.any():
        from gridplan.hexindex import build_h3_index

        h3_cells = build_h3_index(bg, res=int(plan.meta.h3_res))
    out = plan.derive(
        kind="proposal",
        params={
            **{k: v for k, v in (plan.meta.params or {}).items() if k != "summary"},
            **(extra_params or {}),
            "balance": params,
        },
        atomic_units=au,
        base_grids=bg,
        crosswalk=cw,
        dept_fit=fit,
        h3_cells=h3_cells,
        qa_issues=band_qa(plan.qa_issues, bg, households_band),
    )
    return out, pp_before, pp_after


def _new_and_retired(bg: pd.DataFrame, codes: np.ndarray, origin: dict[str, str]) -> pd.DataFrame:
    """Drop the rows of grids merged away; add a row per grid created by a split (copied from its origin)."""
    keep = bg[bg.index.isin(set(codes))]
    new = [c for c in codes if c not in set(bg.index)]
    if not new:
        return keep
    src = [origin.get(c, "") for c in new]
    missing = [c for c, o in zip(new, src, strict=True) if o not in bg.index]
    if missing:
        raise ValueError(f"new grid {missing[0]} has no origin grid")  # an engine bug, not bad input
    rows = bg.loc[src].copy()
    rows.index = pd.Index(new)
    rows["grid_code"] = new
    return pd.concat([keep, rows])


def _redissolve(bg: pd.DataFrame, sub: pd.DataFrame) -> None:
    """Re-dissolve and re-count, in place, the grids (indexed by code) of the changed units *sub*."""
    codes_sorted, inv = np.unique(sub["base_grid_code"].to_numpy(dtype=object), return_inverse=True)
    order = np.argsort(inv, kind="stable")
    cuts = np.r_[0, np.cumsum(np.bincount(inv, minlength=len(codes_sorted)))]
    ugeoms = sub.geometry.to_numpy()[order]
    new_geoms = np.empty(len(codes_sorted), dtype=object)
    for k in range(len(codes_sorted)):
        parts = ugeoms[cuts[k] : cuts[k + 1]]
        # atomic units tile without overlaps: the coverage union is exact and much faster
        geom = shapely.coverage_union_all(parts)
        if not shapely.is_valid(geom) or geom.is_empty:
            geom = shapely.union_all(parts)
        new_geoms[k] = geom
    rows = bg.index.get_indexer(codes_sorted)
    keep = rows >= 0
    geo_col = bg.geometry.name
    geo_values = bg[geo_col].to_numpy().copy()
    geo_values[rows[keep]] = new_geoms[keep]
    bg[geo_col] = geo_values
    for c in _STATS:
        if c in sub and c in bg:
            sums = np.bincount(inv, weights=numeric_column(sub, c), minlength=len(codes_sorted))
            col = pd.to_numeric(bg[c], errors="coerce").fillna(0).to_numpy(np.int64).copy()
            col[rows[keep]] = np.round(sums[keep]).astype(np.int64)
            bg[c] = col
    if "area_m2" in bg:
        col = pd.to_numeric(bg["area_m2"], errors="coerce").to_numpy(float).copy()
        col[rows[keep]] = shapely.area(new_geoms[keep])
        bg["area_m2"] = col
    if "units" in bg:
        col = pd.to_numeric(bg["units"], errors="coerce").fillna(0).to_numpy(np.int64).copy()
        col[rows[keep]] = np.bincount(inv, minlength=len(codes_sorted))[keep]
        bg["units"] = col


def _band_status(bg: gpd.GeoDataFrame, changed: set[str], band: tuple[float, float]) -> None:
    """Redo ``band_status`` and, for changed grids or changed status, ``band_reason`` (in place)."""
    if "households" not in bg:
        return
    hmin, hmax = band
    hh = pd.to_numeric(bg["households"], errors="coerce").fillna(0).to_numpy(float)
    status = np.where(hh < hmin, "below", np.where(hh > hmax, "above", "ok"))
    old_status = bg["band_status"].astype(str).to_numpy() if "band_status" in bg else status
    old_reason = (
        bg["band_reason"].astype("string").fillna("").to_numpy(dtype=object)
        if "band_reason" in bg
        else np.full(len(bg), "", dtype=object)
    )
    is_changed = bg.index.isin(list(changed))
    reason = np.where(
        status == "ok",
        "",
        np.where(
            is_changed | (status != old_status),
            [f"{int(h)} households outside {int(hmin)}-{int(hmax)} after rebalancing" for h in hh],
            old_reason,
        ),
    )
    bg["band_status"] = status.astype(object)
    bg["band_reason"] = reason.astype(object)


def _staff_columns(bg: gpd.GeoDataFrame, change: ProposalChange) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Add staff, workload, workload per staff and compactness; return the table and compactness by code."""
    code_pos = {c: i for i, c in enumerate(change.codes)}
    pos = np.array([code_pos[c] for c in bg.index])
    bg["staff"] = change.staff[pos].astype(np.int64)
    bg["workload"] = change.grid_workload[pos]
    bg["workload_per_staff"] = change.grid_workload[pos] / np.maximum(change.staff[pos], 1)
    geoms = bg.geometry.to_numpy()
    bg["compactness"] = polsby_popper(shapely.area(geoms), shapely.length(geoms))
    bg = bg.reset_index(drop=True)
    pp = bg["compactness"].to_numpy()
    return bg, pp[np.argsort(pos)] if len(pos) == len(change.codes) else pp


def band_qa(qa: pd.DataFrame, bg: gpd.GeoDataFrame, band: tuple[float, float]) -> pd.DataFrame:
    """Drop the plan's old band QA rows and add one band row per grid off the band."""
    hmin, hmax = band
    if len(qa) and "issue" in qa:
        qa = qa[qa["issue"].astype(str) != "band"]
    band_rows = bg[bg["band_status"] != "ok"] if "band_status" in bg else bg.iloc[:0]
    if len(band_rows):
        new_qa = gpd.GeoDataFrame(
            {
                "layer": "base_grids",
                "feature_id": band_rows["grid_code"].to_numpy(dtype=object),
                "issue": "band",
                "detail": [
                    f"{s}: {int(h)} households outside {int(hmin)}-{int(hmax)}; {r}"
                    for s, h, r in zip(
                        band_rows["band_status"],
                        band_rows["households"],
                        band_rows["band_reason"],
                        strict=True,
                    )
                ],
            },
            geometry=band_rows.geometry.to_numpy(),
            crs=bg.crs,
        )
        qa = pd.concat([qa, new_qa], ignore_index=True) if len(qa) else new_qa
    return gpd.GeoDataFrame(qa, geometry="geometry", crs=bg.crs) if "geometry" in qa else qa
