"""Plan tables of a merge (private helper of :mod:`gridplan.merge.build`).

Owns the step units + grid labels → the plan's tables: base-grid geometry and 15-digit codes,
unit ids (with ``parent_unit_id`` for pieces of split units), the departmental crosswalk and fit,
and the band QA rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridplan.errors import InputError
from gridplan.merge.basegrids import GridNote, grid_sequence
from gridplan.merge.inputs import MergeInputs
from gridplan.merge.lineage import FaceLineage
from gridplan.merge.units import STAT_COLUMNS, Units, dissolve

__all__ = ["Grids", "base_grid_table", "crosswalk_tables", "grids_of", "unit_table"]


@dataclass
class Grids:
    """Base grids: label per unit, geometry, codes, stats and band notes."""

    label: np.ndarray
    n: int
    geom: np.ndarray
    area: np.ndarray
    comm: np.ndarray
    code: np.ndarray
    stats: np.ndarray
    notes: dict[int, GridNote]
    fgrid: np.ndarray


def grids_of(units: Units, fl: FaceLineage, glabel: np.ndarray, notes: dict[int, GridNote]) -> Grids:
    """Dissolve faces into grids and number them in reading order inside their community."""
    n_grids = int(glabel.max()) + 1
    fgrid = glabel[units.unit]
    ggeom = dissolve(fl.fg, fgrid, n_grids)
    garea = np.bincount(fgrid, fl.farea, n_grids)
    gcomm = np.zeros(n_grids, np.int64)
    gcomm[glabel] = units.lineage[:, 0]
    gpts = shapely.point_on_surface(ggeom)
    gb = shapely.bounds(ggeom)
    per_comm = pd.DataFrame({"c": gcomm, "area": garea, "north": gb[:, 3]}).groupby("c").agg(
        area=("area", "sum"), north=("north", "max"), n=("area", "size"))
    north = per_comm["north"].reindex(gcomm).to_numpy()
    row_h = np.sqrt(per_comm["area"] / per_comm["n"]).reindex(gcomm).to_numpy()
    seq = grid_sequence(gcomm, shapely.get_x(gpts), shapely.get_y(gpts), north, row_h)
    codes_u = fl.comm_codes_u
    if seq.max() > 999:
        c = codes_u[gcomm[int(np.argmax(seq))]]
        raise InputError(f"community {c} would need more than 999 base grids; raise households_max",
                         field="households_max")
    gcode = np.array([f"{codes_u[c]}{s:03d}" for c, s in zip(gcomm, seq, strict=True)], dtype=object)
    gstats = np.column_stack([np.bincount(glabel, units.stats[:, j], n_grids)
                              for j in range(units.stats.shape[1])])
    return Grids(label=glabel, n=n_grids, geom=ggeom, area=garea, comm=gcomm, code=gcode, stats=gstats,
                 notes=notes, fgrid=fgrid)


def _unit_ids(units: Units, comm_str: np.ndarray, parent: np.ndarray,
              parent_geom: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Give units ids in reading order (community, north → south, west → east); pieces ``<parent>-<j>``.

    *parent* is -1 for a whole unit, else the index of the unit it was split from (*parent_geom*).
    Returns ids, parent ids (``""`` for whole units) and the row order.
    """
    n = units.n
    key = np.where(parent >= 0, n + np.maximum(parent, 0), np.arange(n))
    ukey, inv = np.unique(key, return_inverse=True)
    pgeom = np.empty(len(ukey), dtype=object)
    for i, k in enumerate(ukey.tolist()):
        pgeom[i] = units.geom[k] if k < n else parent_geom[k - n]
    ppts = shapely.point_on_surface(pgeom)
    parea = shapely.area(pgeom)
    pcomm = np.empty(len(ukey), dtype=object)
    pcomm[inv] = comm_str
    porder = np.lexsort((parea, np.round(shapely.get_x(ppts), 3), -np.round(shapely.get_y(ppts), 3), pcomm))
    width = max(6, len(str(len(ukey))))
    pid = np.empty(len(ukey), dtype=object)
    pid[porder] = [f"U{i + 1:0{width}d}" for i in range(len(ukey))]
    prank = np.empty(len(ukey), np.int64)
    prank[porder] = np.arange(len(ukey))
    uorder = np.lexsort((units.area, np.round(units.x, 3), -np.round(units.y, 3), prank[inv]))
    uid = pid[inv].copy()
    parent_id = np.full(n, "", dtype=object)
    split = parent >= 0
    seq = pd.Series(np.arange(n)).iloc[uorder].groupby(inv[uorder]).cumcount().to_numpy()
    piece_no = np.empty(n, np.int64)
    piece_no[uorder] = seq + 1
    for u in np.flatnonzero(split):
        parent_id[u] = pid[inv[u]]
        uid[u] = f"{pid[inv[u]]}-{piece_no[u]}"
    return uid, parent_id, uorder


def unit_table(units: Units, grids: Grids, inp: MergeInputs, fl: FaceLineage, parent: np.ndarray,
               parent_geom: np.ndarray) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Build the ``atomic_units`` table (sorted by id) and the id of every unit (by unit index)."""
    ucomm = units.lineage[:, 0]
    ucode_str = fl.comm_codes_u[ucomm]
    uid, parent_id, uorder = _unit_ids(units, ucode_str, parent, parent_geom)
    units_df: dict[str, Any] = {
        "unit_id": uid, "parent_unit_id": parent_id, "community_code": ucode_str,
        "town_code": np.array([inp.town_code_of[c] for c in ucode_str], dtype=object),
        "base_grid_code": grids.code[grids.label],
    }
    for j, d in enumerate(inp.depts):
        col = units.lineage[:, j + 1]
        units_df[f"{d}_grid_id"] = np.where(col >= 0, fl.dept_ids[d][np.maximum(col, 0)], "").astype(object)
    units_df["area_m2"] = units.area
    for j, c in enumerate(STAT_COLUMNS):
        units_df[c] = units.stats[:, j].round().astype(np.int64)
    atomic = gpd.GeoDataFrame(units_df, geometry=gpd.GeoSeries(units.geom, crs=inp.crs), crs=inp.crs)
    return atomic.iloc[uorder].reset_index(drop=True), uid


def base_grid_table(grids: Grids, inp: MergeInputs, fl: FaceLineage) -> gpd.GeoDataFrame:
    """Build the ``base_grids`` table, sorted by grid code."""
    gcomm_str = fl.comm_codes_u[grids.comm]
    gtown = np.array([inp.town_code_of[c] for c in gcomm_str], dtype=object)
    grids_df: dict[str, Any] = {
        "grid_code": grids.code, "community_code": gcomm_str, "town_code": gtown,
        "community_name": np.array([inp.comm_name_of.get(c, "") for c in gcomm_str], dtype=object),
        "town_name": np.array([inp.town_name_of.get(t, "") for t in gtown], dtype=object),
    }
    for j, c in enumerate(STAT_COLUMNS):
        grids_df[c] = grids.stats[:, j].round().astype(np.int64)
    grids_df["area_m2"] = grids.area
    grids_df["units"] = np.bincount(grids.label, minlength=grids.n)
    grids_df["band_status"] = np.array([grids.notes[g].status for g in range(grids.n)], dtype=object)
    grids_df["band_reason"] = np.array([grids.notes[g].reason for g in range(grids.n)], dtype=object)
    base = gpd.GeoDataFrame(grids_df, geometry=gpd.GeoSeries(grids.geom, crs=inp.crs), crs=inp.crs)
    gorder = np.argsort(grids.code, kind="stable")
    return base.iloc[gorder].reset_index(drop=True)


def crosswalk_tables(members: dict[str, np.ndarray], inp: MergeInputs, fl: FaceLineage, units: Units,
                     grids: Grids) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Crosswalk and fit of every department (exact: by face)."""
    return _crosswalk(members, inp.depts, fl.dept_ids, inp.dept_gdfs, fl.farea, units.fstats[:, 0],
                      grids.code[grids.fgrid])


def _crosswalk(members: dict[str, np.ndarray], depts: Sequence[str], dept_ids: dict[str, np.ndarray],
               dept_gdfs: dict[str, gpd.GeoDataFrame], farea: np.ndarray, fhh: np.ndarray,
               fcode: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every departmental grid as shares of base grids, and how much each keeps in its best one."""
    cw_parts = []
    fit_parts = []
    for d in depts:
        pairs = members[f"dept_{d}"]
        ids = dept_gdfs[d]["dept_grid_id"].astype(str).str.strip().to_numpy(dtype=object)
        df = pd.DataFrame({"dept_grid_id": ids[pairs[1]], "face": pairs[0]}).drop_duplicates()
        df["grid_code"] = fcode[df["face"].to_numpy()]
        df["area"] = farea[df["face"].to_numpy()]
        df["hh"] = fhh[df["face"].to_numpy()]
        agg = df.groupby(["dept_grid_id", "grid_code"], as_index=False, sort=True)[["area", "hh"]].sum()
        tot = agg.groupby("dept_grid_id")[["area", "hh"]].transform("sum")
        agg["area_share"] = agg["area"] / tot["area"]
        agg["household_share"] = np.where(tot["hh"] > 0, agg["hh"] / tot["hh"].where(tot["hh"] > 0, 1),
                                           np.nan)
        agg.insert(0, "department", d)
        cw_parts.append(agg[["department", "dept_grid_id", "grid_code", "area_share", "household_share",
                             "area", "hh"]])
        best = agg.sort_values(["dept_grid_id", "area_share", "household_share", "grid_code"],
                               ascending=[True, False, False, True], kind="stable",
                               na_position="last").drop_duplicates("dept_grid_id")
        n_bg = agg.groupby("dept_grid_id").size()
        tot1 = agg.groupby("dept_grid_id")[["area", "hh"]].sum()
        fit = pd.DataFrame({
            "department": d, "dept_grid_id": best["dept_grid_id"].to_numpy(),
            "best_grid_code": best["grid_code"].to_numpy(),
            "area_kept": best["area_share"].to_numpy(), "households_kept": best["household_share"].to_numpy(),
            "base_grids": n_bg.reindex(best["dept_grid_id"]).to_numpy(),
        })
        kept_area = float(best["area"].sum()) / max(float(tot1["area"].sum()), 1e-12)
        hh_tot = float(tot1["hh"].sum())
        kept_hh = float(best["hh"].sum()) / hh_tot if hh_tot > 0 else np.nan
        summary = pd.DataFrame({"department": [d], "dept_grid_id": ["*"], "best_grid_code": [""],
                                "area_kept": [kept_area], "households_kept": [kept_hh],
                                "base_grids": [int(fit["base_grids"].sum())]})
        fit_parts.append(pd.concat([fit, summary], ignore_index=True))
    cw = pd.concat(cw_parts, ignore_index=True).drop(columns=["area", "hh"])
    fit_all = pd.concat(fit_parts, ignore_index=True)
    for df in (cw, fit_all):
        for c in ("department", "dept_grid_id"):
            df[c] = df[c].astype(object)
    fit_all["best_grid_code"] = fit_all["best_grid_code"].astype(object)
    cw["grid_code"] = cw["grid_code"].astype(object)
    return cw, fit_all
