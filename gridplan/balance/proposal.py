"""Private helper of :mod:`gridplan.balance`: assemble the proposed plan version.

Only grids touched by a move are re-dissolved (union of their atomic units) and re-counted; the
others keep their geometry and attributes.  The departmental crosswalk and fit tables are recomputed
from the atomic units' ``<dept>_grid_id`` lineage (share of each departmental grid's area and
households per base grid), the band QA rows are redone, and the H3 index is rebuilt with
:func:`gridplan.hexindex.build_h3_index`.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridplan.balance.graph import polsby_popper
from gridplan.merge import crosswalk_from_units
from gridplan.plans import Plan

_STATS = ("households", "residents", "floating_residents", "rental_rooms", "addresses")


def build_proposal_plan(
    plan: Plan,
    *,
    grid_of_new: np.ndarray,
    codes: np.ndarray,
    unit_workload: np.ndarray,
    staff: np.ndarray,
    grid_workload: np.ndarray,
    moved: np.ndarray,
    households_band: tuple[float, float],
    rebuild_h3: bool,
    params: dict[str, Any],
) -> tuple[Any, np.ndarray | None, np.ndarray]:
    """Build the proposed plan; also return the compactness of the input and proposed grids (per code)."""
    hmin, hmax = households_band
    au = plan.atomic_units.copy()
    new_code = np.where(grid_of_new >= 0, codes[np.maximum(grid_of_new, 0)], "")
    old_code = au["base_grid_code"].astype("string").fillna("").to_numpy(dtype=object)
    au["base_grid_code"] = np.where(grid_of_new >= 0, new_code, old_code).astype(object)
    au["workload"] = unit_workload

    bg = plan.base_grids.copy()
    bg["grid_code"] = bg["grid_code"].astype(str)
    bg = bg.set_index("grid_code", drop=False)
    pp_before = None
    if len(bg) == len(codes) and set(bg.index) == set(codes):
        g0 = bg.loc[list(codes)].geometry.to_numpy()
        pp_before = polsby_popper(shapely.area(g0), shapely.length(g0))
    changed = set(old_code[moved]) | set(np.asarray(au["base_grid_code"])[moved])
    changed.discard("")
    if changed:
        sub = au[au["base_grid_code"].isin(changed)]
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
                sums = np.bincount(
                    inv,
                    weights=pd.to_numeric(sub[c], errors="coerce").fillna(0).to_numpy(float),
                    minlength=len(codes_sorted),
                )
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
    bg = gpd.GeoDataFrame(bg, geometry="geometry", crs=plan.base_grids.crs)
    if "households" in bg:
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
    code_pos = {c: i for i, c in enumerate(codes)}
    pos = np.array([code_pos[c] for c in bg.index])
    bg["staff"] = staff[pos].astype(np.int64)
    bg["workload"] = grid_workload[pos]
    bg["workload_per_staff"] = grid_workload[pos] / np.maximum(staff[pos], 1)
    geoms = bg.geometry.to_numpy()
    bg["compactness"] = polsby_popper(shapely.area(geoms), shapely.length(geoms))
    bg = bg.reset_index(drop=True)
    pp_after = (
        bg["compactness"].to_numpy()[np.argsort(pos)]
        if len(pos) == len(codes)
        else bg["compactness"].to_numpy()
    )

    meta = plan.meta
    if moved.any():
        cw, fit = crosswalk_from_units(au, tuple(meta.departments))
        if not len(cw):
            cw, fit = plan.crosswalk, plan.dept_fit
    else:
        cw, fit = plan.crosswalk, plan.dept_fit
    h3_cells = plan.h3_cells
    if rebuild_h3 and moved.any():
        from gridplan.hexindex import build_h3_index

        h3_cells = build_h3_index(bg, res=int(meta.h3_res))
    qa = plan.qa_issues
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
    qa = gpd.GeoDataFrame(qa, geometry="geometry", crs=bg.crs) if "geometry" in qa else qa
    out = plan.derive(
        kind="proposal",
        params={**{k: v for k, v in (meta.params or {}).items() if k != "summary"}, "balance": params},
        atomic_units=au,
        base_grids=bg,
        crosswalk=cw,
        dept_fit=fit,
        h3_cells=h3_cells,
        qa_issues=qa,
    )
    return out, pp_before, pp_after
