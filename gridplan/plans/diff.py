"""Plan diff: grids added, removed, reshaped, recoded, and what changed grid."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import shapely

from gridplan.errors import CRSError
from gridplan.plans.model import numeric_column, text_column

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
        ``households``, ``residents``, ``addresses``.
    summary
        Counts: ``old_plan_id``, ``new_plan_id``, ``grids_old``, ``grids_new``, one count per
        change, ``units_moved``, ``households_moved``, ``residents_moved``, ``addresses_moved``,
        ``moves_method`` (``units`` or ``area``).

    """

    grids: pd.DataFrame
    moves: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

def diff_plans(old: Any, new: Any, *, tolerance_m2: float = 1.0) -> PlanDiff:
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
    ocode, ncode = text_column(og, "grid_code"), text_column(ng, "grid_code")
    ogeom = np.asarray(og.geometry.values, dtype=object)
    ngeom = np.asarray(ng.geometry.values, dtype=object)
    oarea, narea = shapely.area(ogeom), shapely.area(ngeom)

    # 1. same shapes: a new grid holding the old grid's representative point, nearly equal
    match_new = np.full(len(og), -1, dtype=np.int64)
    match_sd = np.full(len(og), np.nan)
    if len(og) and len(ng):
        tree = shapely.STRtree(ngeom)
        oi, ni = tree.query(shapely.point_on_surface(ogeom), predicate="intersects")
        sd = shapely.area(shapely.symmetric_difference(ogeom[oi], ngeom[ni]))
        ok = sd <= tolerance_m2
        pairs = pd.DataFrame({"o": oi[ok], "n": ni[ok], "sd": sd[ok]}).sort_values("sd", kind="stable")
        pairs = pairs.drop_duplicates("o").drop_duplicates("n")
        match_new[pairs["o"].to_numpy()] = pairs["n"].to_numpy()
        match_sd[pairs["o"].to_numpy()] = pairs["sd"].to_numpy()
    matched_new = np.zeros(len(ng), dtype=bool)
    matched_new[match_new[match_new >= 0]] = True

    rows: list[dict[str, Any]] = []
    ohh, nhh = numeric_column(og, "households"), numeric_column(ng, "households")
    for i in np.flatnonzero(match_new >= 0):
        j = match_new[i]
        rows.append(
            {
                "grid_code": ncode[j],
                "old_code": ocode[i],
                "new_code": ncode[j],
                "change": "unchanged" if ocode[i] == ncode[j] else "recoded",
                "area_old_m2": oarea[i],
                "area_new_m2": narea[j],
                "changed_area_m2": match_sd[i],
                "households_old": ohh[i],
                "households_new": nhh[j],
            }
        )
    # 2. same code, different shape
    rest_old = np.flatnonzero(match_new < 0)
    rest_new = np.flatnonzero(~matched_new)
    new_pos = {ncode[j]: j for j in rest_new}
    used_new: set[int] = set()
    reshaped_o = [i for i in rest_old if ocode[i] in new_pos]
    if reshaped_o:
        ro = np.asarray(reshaped_o)
        rn = np.asarray([new_pos[ocode[i]] for i in reshaped_o])
        sd = shapely.area(shapely.symmetric_difference(ogeom[ro], ngeom[rn]))
        for i, j, s in zip(ro.tolist(), rn.tolist(), sd.tolist(), strict=True):
            used_new.add(j)
            rows.append(
                {
                    "grid_code": ncode[j],
                    "old_code": ocode[i],
                    "new_code": ncode[j],
                    "change": "reshaped",
                    "area_old_m2": oarea[i],
                    "area_new_m2": narea[j],
                    "changed_area_m2": s,
                    "households_old": ohh[i],
                    "households_new": nhh[j],
                }
            )
    # 3. the rest
    for i in rest_old:
        if ocode[i] not in new_pos:
            rows.append(
                {
                    "grid_code": ocode[i],
                    "old_code": ocode[i],
                    "new_code": "",
                    "change": "removed",
                    "area_old_m2": oarea[i],
                    "area_new_m2": 0.0,
                    "changed_area_m2": oarea[i],
                    "households_old": ohh[i],
                    "households_new": 0.0,
                }
            )
    for j in rest_new:
        if j not in used_new:
            rows.append(
                {
                    "grid_code": ncode[j],
                    "old_code": "",
                    "new_code": ncode[j],
                    "change": "added",
                    "area_old_m2": 0.0,
                    "area_new_m2": narea[j],
                    "changed_area_m2": narea[j],
                    "households_old": 0.0,
                    "households_new": nhh[j],
                }
            )
    cols = [
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
    grids = pd.DataFrame(rows, columns=cols)
    order = {"added": 0, "removed": 1, "reshaped": 2, "recoded": 3, "unchanged": 4}
    grids = grids.assign(_o=grids["change"].map(order)).sort_values(["_o", "grid_code"], kind="stable")
    grids = grids.drop(columns="_o").reset_index(drop=True)
    for c in ("grid_code", "old_code", "new_code", "change"):
        grids[c] = grids[c].astype(object)

    recode = {r.old_code: r.new_code for r in grids.itertuples() if r.change == "recoded"}
    moves, method = _moves(old, new, recode, tolerance_m2=tolerance_m2)
    counts = grids["change"].value_counts()
    summary: dict[str, Any] = {
        "old_plan_id": old.meta.plan_id,
        "new_plan_id": new.meta.plan_id,
        "grids_old": len(og),
        "grids_new": len(ng),
        **{k: int(counts.get(k, 0)) for k in order},
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

def _moves(old: Any, new: Any, recode: dict[str, str], *, tolerance_m2: float) -> tuple[pd.DataFrame, str]:
    ou, nu = old.atomic_units, new.atomic_units
    cols = ["unit_id", "from_grid", "to_grid", "share", "area_m2", "households", "residents", "addresses"]
    same_units = False
    if "unit_id" in ou.columns and "unit_id" in nu.columns and len(ou) == len(nu):
        a = ou.set_index(ou["unit_id"].astype(str))
        b = nu.set_index(nu["unit_id"].astype(str))
        if a.index.is_unique and set(a.index) == set(b.index):
            b = b.loc[a.index]
            same_units = bool(
                np.allclose(
                    shapely.area(a.geometry.values), shapely.area(b.geometry.values), atol=tolerance_m2
                )
            )
    if same_units:
        frm = text_column(a, "base_grid_code")
        to = text_column(b, "base_grid_code")
        frm_new = np.array([recode.get(c, c) for c in frm], dtype=object)
        moved = frm_new != to
        df = pd.DataFrame(
            {
                "unit_id": a.index.to_numpy(dtype=object)[moved],
                "from_grid": frm_new[moved],
                "to_grid": to[moved],
                "share": 1.0,
                "area_m2": shapely.area(a.geometry.values)[moved],
                "households": numeric_column(a, "households")[moved],
                "residents": numeric_column(a, "residents")[moved],
                "addresses": numeric_column(a, "addresses")[moved],
            },
            columns=cols,
        )
        return df.sort_values("unit_id", kind="stable").reset_index(drop=True), "units"
    # different unit sets: spread each old unit over the new grids by area
    ugeom = np.asarray(ou.geometry.values, dtype=object)
    uarea = np.maximum(shapely.area(ugeom), 1e-12)
    ngeom = np.asarray(new.base_grids.geometry.values, dtype=object)
    ncode = text_column(new.base_grids, "grid_code")
    frm = np.array([recode.get(c, c) for c in text_column(ou, "base_grid_code")], dtype=object)
    tree = shapely.STRtree(ngeom)
    ui, gi = tree.query(ugeom, predicate="intersects")
    inter = shapely.area(shapely.intersection(ugeom[ui], ngeom[gi]))
    keep = inter > 0
    ui, gi, inter = ui[keep], gi[keep], inter[keep]
    covered = np.bincount(ui, inter, len(ou))
    parts = pd.DataFrame({"u": ui, "to_grid": ncode[gi], "area_m2": inter})
    lost = uarea - covered
    outside = np.flatnonzero(lost > tolerance_m2)
    parts = pd.concat(
        [parts, pd.DataFrame({"u": outside, "to_grid": "", "area_m2": lost[outside]})], ignore_index=True
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
        columns=cols,
    )
    df = df[df["area_m2"] > tolerance_m2]
    return df.sort_values(["unit_id", "to_grid"], kind="stable").reset_index(drop=True), "area"
