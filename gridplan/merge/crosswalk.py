"""Departmental crosswalk: every departmental grid as a set of base grids, with fit."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridplan.plans.model import numeric_column, text_column


def crosswalk_from_units(
    units: gpd.GeoDataFrame, departments: tuple[str, ...] | list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Departmental crosswalk and fit recomputed from the units' lineage columns.

    Each department's grid is the set of units whose ``<dept>_grid_id`` names it (units in a
    departmental gap, ``""``, are left out); shares are by unit area and households.
    """
    area = shapely.area(np.asarray(units.geometry.values, dtype=object))
    hh = numeric_column(units, "households")
    code = text_column(units, "base_grid_code")
    cw_parts, fit_parts = [], []
    for d in departments:
        col = f"{d}_grid_id"
        if col not in units.columns:
            continue
        ids = text_column(units, col)
        m = (ids != "") & (code != "")
        df = pd.DataFrame({"dept_grid_id": ids[m], "grid_code": code[m], "area": area[m], "hh": hh[m]})
        agg = df.groupby(["dept_grid_id", "grid_code"], as_index=False, sort=True)[["area", "hh"]].sum()
        tot = agg.groupby("dept_grid_id")[["area", "hh"]].transform("sum")
        agg["area_share"] = agg["area"] / tot["area"].where(tot["area"] > 0, 1)
        agg["household_share"] = np.where(
            tot["hh"] > 0, agg["hh"] / tot["hh"].where(tot["hh"] > 0, 1), np.nan
        )
        agg.insert(0, "department", d)
        cw_parts.append(agg)
        best = agg.sort_values(
            ["dept_grid_id", "area_share", "grid_code"], ascending=[True, False, True], kind="stable"
        ).drop_duplicates("dept_grid_id")
        n_bg = agg.groupby("dept_grid_id").size()
        tot1 = agg.groupby("dept_grid_id")[["area", "hh"]].sum()
        fit = pd.DataFrame(
            {
                "department": d,
                "dept_grid_id": best["dept_grid_id"].to_numpy(),
                "best_grid_code": best["grid_code"].to_numpy(),
                "area_kept": best["area_share"].to_numpy(),
                "households_kept": best["household_share"].to_numpy(),
                "base_grids": n_bg.reindex(best["dept_grid_id"]).to_numpy(),
            }
        )
        hh_tot = float(tot1["hh"].sum())
        summary = pd.DataFrame(
            {
                "department": [d],
                "dept_grid_id": ["*"],
                "best_grid_code": [""],
                "area_kept": [float(best["area"].sum()) / max(float(tot1["area"].sum()), 1e-12)],
                "households_kept": [float(best["hh"].sum()) / hh_tot if hh_tot > 0 else np.nan],
                "base_grids": [int(fit["base_grids"].sum())],
            }
        )
        fit_parts.append(pd.concat([fit, summary], ignore_index=True))
    cw_cols = ["department", "dept_grid_id", "grid_code", "area_share", "household_share"]
    fit_cols = ["department", "dept_grid_id", "best_grid_code", "area_kept", "households_kept", "base_grids"]
    cw = pd.concat(cw_parts, ignore_index=True)[cw_cols] if cw_parts else pd.DataFrame(columns=cw_cols)
    fit_all = (
        pd.concat(fit_parts, ignore_index=True)[fit_cols] if fit_parts else pd.DataFrame(columns=fit_cols)
    )
    for df in (cw, fit_all):
        for c in df.columns:
            if c in ("department", "dept_grid_id", "grid_code", "best_grid_code"):
                df[c] = df[c].astype(object)
    return cw, fit_all
