"""Plan diff and re-import of an edited base-grid layer (private helper of :mod:`gridplan.plans`).

:func:`diff_plans` compares two plan versions; :func:`reimport_base_grids` turns a base-grid layer
edited in QGIS into a new plan version.  Both are re-exported by :mod:`gridplan.plans`.

Diff rules
----------
Grids are matched by geometry first, then by code:

1. an old and a new grid whose symmetric difference is at most ``tolerance_m2`` are the *same
   shape*: ``unchanged`` if the code is the same, ``recoded`` otherwise;
2. of the rest, a code present in both plans is ``reshaped``;
3. what is left is ``removed`` (old only) or ``added`` (new only).

Moves (households, residents, addresses that changed grid) come from the atomic units.  When both
plans have the same units (same ``unit_id`` and area — every edit and proposal), a unit moved when
its new grid is not its old grid (after following recodes), and it moves whole.  Otherwise (two
independent merges) each old unit is split over the new grids by area and its counts are moved in
proportion to the area that lands in another grid.

Re-import rules
---------------
* the edited layer is read with any CRS and reprojected to the plan's; ``grid_code`` is found
  case-insensitively (Shapefile field names are upper-cased or truncated by some tools);
* features are repaired (``make_valid``; QA ``invalid_geometry``), null/empty/non-polygon features are
  dropped (QA ``null_geometry`` / ``empty_geometry`` / ``wrong_geometry_type``);
* a split grid arrives as several features with one code: the part covering most of the old grid
  keeps the code, the others get new codes continuing the community's sequence (max sequence in the
  community + 1, …, in north→south, west→east order); a feature without a valid 15-digit code, or
  whose code names another community, gets a new code the same way;
* atomic units stay as they are (they are atomic) and go to the edited grid covering most of their
  area; a unit in no edited grid gets ``base_grid_code = ""``;
* the edited geometries are kept as drawn; QA reports, on layer ``base_grids``: ``overlap`` (two edited
  grids overlap by more than ``tolerance_m2``), ``gap`` (part of the old plan's coverage no edited
  grid covers), ``outside_boundary`` (an edited grid reaching beyond the old coverage),
  ``crosses_community`` (an edited grid with more than ``tolerance_m2`` in a second community) and
  ``band`` (households outside the plan's band); the other QA rows of the parent plan are kept;
* grid statistics, the departmental crosswalk and fit are recomputed from the units, and the H3
  index is rebuilt.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from gridplan.errors import CRSError, InputError

logger = logging.getLogger("gridplan.plans")

_STATS = ("households", "residents", "floating_residents", "rental_rooms", "addresses")
_QA_COLUMNS = ["layer", "feature_id", "issue", "detail"]
_GRID_CODE_RE = re.compile(r"^\d{15}$")


# --------------------------------------------------------------------------------------------
# diff
# --------------------------------------------------------------------------------------------


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


def _num(df: pd.DataFrame, col: str) -> np.ndarray:
    if col not in df.columns:
        return np.zeros(len(df))
    return pd.to_numeric(df[col], errors="coerce").fillna(0).to_numpy(dtype=np.float64)


def _codes(df: pd.DataFrame, col: str) -> np.ndarray:
    return df[col].astype(object).where(df[col].notna(), "").astype(str).to_numpy(dtype=object)


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
    ocode, ncode = _codes(og, "grid_code"), _codes(ng, "grid_code")
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
    ohh, nhh = _num(og, "households"), _num(ng, "households")
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
        frm = _codes(a, "base_grid_code")
        to = _codes(b, "base_grid_code")
        frm_new = np.array([recode.get(c, c) for c in frm], dtype=object)
        moved = frm_new != to
        df = pd.DataFrame(
            {
                "unit_id": a.index.to_numpy(dtype=object)[moved],
                "from_grid": frm_new[moved],
                "to_grid": to[moved],
                "share": 1.0,
                "area_m2": shapely.area(a.geometry.values)[moved],
                "households": _num(a, "households")[moved],
                "residents": _num(a, "residents")[moved],
                "addresses": _num(a, "addresses")[moved],
            },
            columns=cols,
        )
        return df.sort_values("unit_id", kind="stable").reset_index(drop=True), "units"
    # different unit sets: spread each old unit over the new grids by area
    ugeom = np.asarray(ou.geometry.values, dtype=object)
    uarea = np.maximum(shapely.area(ugeom), 1e-12)
    ngeom = np.asarray(new.base_grids.geometry.values, dtype=object)
    ncode = _codes(new.base_grids, "grid_code")
    frm = np.array([recode.get(c, c) for c in _codes(ou, "base_grid_code")], dtype=object)
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
            "unit_id": _codes(ou, "unit_id")[u],
            "from_grid": frm[u],
            "to_grid": parts["to_grid"].to_numpy(dtype=object),
            "share": share,
            "area_m2": parts["area_m2"].to_numpy(),
            "households": _num(ou, "households")[u] * share,
            "residents": _num(ou, "residents")[u] * share,
            "addresses": _num(ou, "addresses")[u] * share,
        },
        columns=cols,
    )
    df = df[df["area_m2"] > tolerance_m2]
    return df.sort_values(["unit_id", "to_grid"], kind="stable").reset_index(drop=True), "area"


# --------------------------------------------------------------------------------------------
# re-import
# --------------------------------------------------------------------------------------------


def _read_edited(path: Path, layer: str | None, crs: str) -> tuple[gpd.GeoDataFrame, str]:
    if not path.exists():
        raise InputError("edited layer file does not exist", file=path)
    try:
        names = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
    except Exception as exc:
        raise InputError(f"cannot be opened as a vector layer ({exc})", file=path) from None
    if layer is None:
        if "base_grids" in names:
            layer = "base_grids"
        elif len(names) == 1:
            layer = names[0]
        else:
            raise InputError(f"holds several layers ({', '.join(names)}); choose one with --layer", file=path)
    elif layer not in names:
        raise InputError(f"no such layer; the file has {', '.join(names)}", file=path, layer=layer)
    gdf = pyogrio.read_dataframe(path, layer=layer)
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise InputError("layer has no geometry", file=path, layer=layer)
    if gdf.crs is None:
        raise CRSError(f"{path}: layer {layer} has no CRS; save it from QGIS with its CRS (e.g. EPSG:4547)")
    gdf = gdf.to_crs(crs)
    lower = {c.lower(): c for c in gdf.columns}
    col = lower.get("grid_code") or lower.get("gridcode") or lower.get("grid_cod")
    if col is None:
        raise InputError(
            "no grid_code field; keep the plan's attributes when editing",
            file=path,
            layer=layer,
            field="grid_code",
        )
    if col != "grid_code":
        gdf = gdf.rename(columns={col: "grid_code"})
    return gdf, layer


def _code_text(v: Any) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)) or pd.isna(v):
        return ""
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v).strip()


def _qa(rows: list[dict[str, Any]], crs: str) -> gpd.GeoDataFrame:
    geoms = [r.pop("geometry", None) for r in rows]
    return gpd.GeoDataFrame(
        pd.DataFrame(rows, columns=_QA_COLUMNS), geometry=gpd.GeoSeries(geoms, crs=crs), crs=crs
    )


def _cover_shares(a: np.ndarray, b: np.ndarray, b_codes: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    """Majority cover of every polygon of *a* by the polygons of *b*, by area.

    Returns ``best`` (index into *b* covering most of each *a*, ties → smallest code; -1 if none)
    and the partial-overlap table ``(i, j, a)`` for the polygons of *a* that no single *b* contains.
    Fast path: a polygon contained by a *b* polygon (prepared ``contains``) needs no intersection.
    """
    best = np.full(len(a), -1, dtype=np.int64)
    empty = pd.DataFrame({"i": np.empty(0, np.int64), "j": np.empty(0, np.int64), "a": np.empty(0)})
    if len(a) == 0 or len(b) == 0:
        return best, empty
    shapely.prepare(b)
    ai, bj = shapely.STRtree(b).query(a)
    inside = shapely.contains(b[bj], a[ai])
    cont = pd.DataFrame({"i": ai[inside], "j": bj[inside], "code": b_codes[bj[inside]]})
    cont = cont.sort_values(["i", "code"], kind="stable").drop_duplicates("i")
    best[cont["i"].to_numpy()] = cont["j"].to_numpy()
    rest = best[ai] < 0
    ai, bj = ai[rest], bj[rest]
    area = shapely.area(shapely.intersection(a[ai], b[bj]))
    part = pd.DataFrame({"i": ai, "j": bj, "a": area, "code": b_codes[bj]})
    part = part[part["a"] > 0].sort_values(["i", "a", "code"], ascending=[True, False, True], kind="stable")
    top = part.drop_duplicates("i")
    best[top["i"].to_numpy()] = top["j"].to_numpy()
    return best, part[["i", "j", "a"]].reset_index(drop=True)


def reimport_base_grids(
    plan: Any, edited_path: str | Path, *, layer: str | None = None, tolerance_m2: float = 1.0
) -> Any:
    """Turn a base-grid layer edited in QGIS into a new, re-validated plan version.

    Parameters
    ----------
    plan
        The plan the layer was exported from (the parent version).
    edited_path
        GeoPackage, Shapefile or any GDAL vector file with the edited grids (``grid_code`` kept).
    layer
        Layer name; default ``base_grids`` or the file's only layer.
    tolerance_m2
        Overlaps, gaps and community crossings up to this area (m²) are ignored.

    Returns
    -------
    Plan
        ``kind="edit"``, ``parent_id`` = the plan's id, new ``plan_id``; rules in the module docstring.

    Raises
    ------
    InputError
        Missing file/layer, no ``grid_code`` field, no usable polygon left, or a community that
        would need more than 999 grids.
    CRSError
        The edited layer has no CRS.

    """
    from gridplan.hexindex import build_h3_index
    from gridplan.layers import fingerprint
    from gridplan.plans import Plan, new_plan_id, utc_now

    t0 = time.perf_counter()
    path = Path(edited_path)
    crs = plan.meta.crs
    gdf, layer = _read_edited(path, layer, crs)
    qa_rows: list[dict[str, Any]] = []

    # ---- geometry repair -------------------------------------------------------------------
    codes = np.array([_code_text(v) for v in gdf["grid_code"].tolist()], dtype=object)
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    keep = np.ones(len(gdf), dtype=bool)
    for i in np.flatnonzero(shapely.is_missing(geoms)):
        qa_rows.append(
            {
                "layer": "base_grids",
                "feature_id": codes[i],
                "issue": "null_geometry",
                "detail": f"edited feature {i} has no geometry; dropped",
            }
        )
        keep[i] = False
    empty = ~shapely.is_missing(geoms) & shapely.is_empty(geoms)
    for i in np.flatnonzero(empty):
        qa_rows.append(
            {
                "layer": "base_grids",
                "feature_id": codes[i],
                "issue": "empty_geometry",
                "detail": f"edited feature {i} has an empty geometry; dropped",
            }
        )
        keep[i] = False
    ok = keep.copy()
    invalid = np.zeros(len(gdf), dtype=bool)
    invalid[ok] = ~shapely.is_valid(geoms[ok])
    for i in np.flatnonzero(invalid):
        reason = shapely.is_valid_reason(geoms[i])
        geoms[i] = shapely.make_valid(geoms[i])
        qa_rows.append(
            {
                "layer": "base_grids",
                "feature_id": codes[i],
                "issue": "invalid_geometry",
                "detail": f"repaired with make_valid: {reason}",
                "geometry": geoms[i],
            }
        )
    for i in np.flatnonzero(keep):
        g = geoms[i]
        if shapely.get_type_id(g) not in (3, 6):
            parts = shapely.get_parts(g)
            polys = parts[np.isin(shapely.get_type_id(parts), (3, 6))]
            if len(polys):
                geoms[i] = shapely.union_all(polys)
            else:
                qa_rows.append(
                    {
                        "layer": "base_grids",
                        "feature_id": codes[i],
                        "issue": "wrong_geometry_type",
                        "detail": f"edited feature {i} is a {shapely.get_type_id(g)}-type geometry, "
                        "not a polygon; dropped",
                        "geometry": g,
                    }
                )
                keep[i] = False
    codes, geoms = codes[keep], geoms[keep]
    if len(geoms) == 0:
        raise InputError("no polygon left in the edited layer", file=path, layer=layer)
    garea = shapely.area(geoms)

    # ---- communities of the edited grids --------------------------------------------------------
    units = plan.atomic_units
    ucomm = _codes(units, "community_code")
    ugeom = np.asarray(units.geometry.values, dtype=object)
    comm_codes, comm_idx = np.unique(ucomm, return_inverse=True)
    comm_geom = np.array(
        [shapely.coverage_union_all(ugeom[comm_idx == k]) for k in range(len(comm_codes))], dtype=object
    )
    gbest, share = _cover_shares(geoms, comm_geom, comm_codes)
    gcomm = np.where(gbest >= 0, comm_codes[np.maximum(gbest, 0)], "").astype(object)
    main = pd.Series(gbest)
    for g, grp in share[share["a"] > tolerance_m2].groupby("i"):
        if len(grp) > 1:
            others = [
                f"{comm_codes[c]} ({a:.1f} m²)"
                for c, a in zip(grp["j"].iloc[1:], grp["a"].iloc[1:], strict=True)
            ]
            qa_rows.append(
                {
                    "layer": "base_grids",
                    "feature_id": codes[g],
                    "issue": "crosses_community",
                    "detail": f"grid in community {gcomm[g]} reaches into {', '.join(others)}",
                    "geometry": shapely.difference(geoms[g], comm_geom[main[g]]),
                }
            )

    # ---- codes: splits and new grids ------------------------------------------------------------
    old_codes = _codes(plan.base_grids, "grid_code")
    old_geom = dict(zip(old_codes, plan.base_grids.geometry.values, strict=True))
    need = np.zeros(len(codes), dtype=bool)
    for k, c in enumerate(codes):
        if not _GRID_CODE_RE.match(c) or (gcomm[k] and c[:12] != gcomm[k]):
            need[k] = True
    dup = pd.Series(codes)[~need]
    for c, idx in dup.groupby(dup).groups.items():
        if len(idx) > 1:
            idx = np.asarray(list(idx))
            og = old_geom.get(c)
            kept = shapely.area(shapely.intersection(geoms[idx], og)) if og is not None else garea[idx]
            winner = idx[int(np.argmax(kept))]
            need[idx[idx != winner]] = True
    taken: dict[str, int] = {}
    for c in [*old_codes.tolist(), *codes[~need].tolist()]:
        if _GRID_CODE_RE.match(c):
            taken[c[:12]] = max(taken.get(c[:12], 0), int(c[12:]))
    if need.any():
        reps = shapely.point_on_surface(geoms[need])
        order = np.lexsort((shapely.get_x(reps), -shapely.get_y(reps)))
        idx = np.flatnonzero(need)[order]
        for i in idx:
            comm = gcomm[i]
            if not comm:
                raise InputError(
                    f"edited feature with code {codes[i]!r} lies outside every community",
                    file=path,
                    layer=layer,
                )
            seq = taken.get(comm, 0) + 1
            if seq > 999:
                raise InputError(
                    f"community {comm} would need more than 999 base grids", file=path, layer=layer
                )
            taken[comm] = seq
            logger.debug("edited grid %r gets new code %s%03d", codes[i], comm, seq)
            codes[i] = f"{comm}{seq:03d}"

    # ---- QA: overlaps, gaps, outside ------------------------------------------------------------
    # overlaps: only pairs with a grid that differs from the parent plan's grid of the same code
    same_old = np.array([old_geom.get(c) for c in codes], dtype=object)
    known = ~shapely.is_missing(same_old)
    changed = np.ones(len(geoms), dtype=bool)
    changed[known] = ~shapely.equals_exact(geoms[known], same_old[known], tolerance=1e-9)
    pa, pb = shapely.STRtree(geoms).query(geoms)
    keep = (pa < pb) & (changed[pa] | changed[pb])
    pa, pb = pa[keep], pb[keep]
    hit = shapely.intersects(geoms[pa], geoms[pb])
    pa, pb = pa[hit], pb[hit]
    inter = shapely.intersection(geoms[pa], geoms[pb])
    ia = shapely.area(inter)
    for x, y, g, ar in zip(pa.tolist(), pb.tolist(), inter, ia.tolist(), strict=True):
        if ar > tolerance_m2:
            lo, hi = sorted((codes[x], codes[y]))
            qa_rows.append(
                {
                    "layer": "base_grids",
                    "feature_id": lo,
                    "issue": "overlap",
                    "detail": f"{lo} and {hi} overlap by {ar:.1f} m²",
                    "geometry": g,
                }
            )
    old_cover = shapely.coverage_union_all(np.asarray(plan.base_grids.geometry.values, dtype=object))
    new_cover = shapely.union_all(geoms)
    for part in shapely.get_parts(shapely.difference(old_cover, new_cover)):
        if shapely.area(part) > tolerance_m2:
            qa_rows.append(
                {
                    "layer": "base_grids",
                    "feature_id": "",
                    "issue": "gap",
                    "detail": f"{shapely.area(part):.1f} m² covered by no edited grid",
                    "geometry": part,
                }
            )
    outside = shapely.difference(new_cover, old_cover)
    if shapely.area(outside) > tolerance_m2:
        otree = shapely.STRtree(geoms)
        for part in shapely.get_parts(outside):
            if shapely.area(part) > tolerance_m2:
                hit = sorted({codes[k] for k in otree.query(part, predicate="intersects")})
                qa_rows.append(
                    {
                        "layer": "base_grids",
                        "feature_id": hit[0] if hit else "",
                        "issue": "outside_boundary",
                        "detail": f"{shapely.area(part):.1f} m² outside the plan's coverage",
                        "geometry": part,
                    }
                )

    # ---- units → edited grids by majority area --------------------------------------------------
    ugrid, _ = _cover_shares(ugeom, geoms, codes)
    new_units = units.copy()
    new_units["base_grid_code"] = np.where(ugrid >= 0, codes[np.maximum(ugrid, 0)], "").astype(object)

    # ---- base grid table ------------------------------------------------------------------------
    ob = plan.base_grids
    names = {}
    for c, cn, t, tn in zip(
        _codes(ob, "community_code"),
        _codes(ob, "community_name") if "community_name" in ob else [""] * len(ob),
        _codes(ob, "town_code"),
        _codes(ob, "town_name") if "town_name" in ob else [""] * len(ob),
        strict=True,
    ):
        names[c] = (cn, t, tn)
    utown = dict(
        zip(ucomm, _codes(units, "town_code") if "town_code" in units else [""] * len(units), strict=True)
    )
    params = plan.meta.params or {}
    hh_min = float(params.get("households_min", 300))
    hh_max = float(params.get("households_max", 500))
    n = len(codes)
    valid = ugrid >= 0
    table: dict[str, Any] = {
        "grid_code": codes,
        "community_code": gcomm,
        "town_code": np.array(
            [names.get(c, ("", utown.get(c, ""), ""))[1] or utown.get(c, "") for c in gcomm], dtype=object
        ),
        "community_name": np.array([names.get(c, ("", "", ""))[0] for c in gcomm], dtype=object),
        "town_name": np.array([names.get(c, ("", "", ""))[2] for c in gcomm], dtype=object),
    }
    for s in _STATS:
        table[s] = np.bincount(ugrid[valid], _num(units, s)[valid], n).round().astype(np.int64)
    table["area_m2"] = garea
    table["units"] = np.bincount(ugrid[valid], minlength=n)
    hh = table["households"]
    status = np.where(hh < hh_min, "below", np.where(hh > hh_max, "above", "ok")).astype(object)
    table["band_status"] = status
    table["band_reason"] = np.where(status == "ok", "", "edited by a planner").astype(object)
    grids = gpd.GeoDataFrame(table, geometry=gpd.GeoSeries(geoms, crs=crs), crs=crs)
    grids = grids.sort_values("grid_code", kind="stable").reset_index(drop=True)
    for g in np.flatnonzero(grids["band_status"].to_numpy() != "ok"):
        r = grids.iloc[g]
        qa_rows.append(
            {
                "layer": "base_grids",
                "feature_id": r["grid_code"],
                "issue": "band",
                "detail": f"{r['band_status']}: {r['households']} households outside "
                f"{int(hh_min)}-{int(hh_max)}; edited by a planner",
                "geometry": r.geometry,
            }
        )

    old_qa = plan.qa_issues
    if len(old_qa) and "layer" in old_qa.columns:
        old_qa = old_qa[old_qa["layer"].astype(str) != "base_grids"]
    new_qa = _qa(qa_rows, crs)
    parts = [
        q
        for q in (
            gpd.GeoDataFrame(old_qa, geometry="geometry", crs=crs) if "geometry" in old_qa else None,
            new_qa,
        )
        if q is not None and len(q)
    ]
    qa = pd.concat(parts, ignore_index=True) if parts else new_qa
    qa = gpd.GeoDataFrame(qa, geometry="geometry", crs=crs)

    crosswalk, fit = crosswalk_from_units(new_units, plan.meta.departments)
    h3_cells = build_h3_index(grids, res=plan.meta.h3_res)
    meta = plan.meta.__class__(
        plan_id=new_plan_id(),
        parent_id=plan.meta.plan_id,
        created_at=utc_now(),
        params={**params, "edited_from": path.name, "edited_layer": layer, "tolerance_m2": tolerance_m2},
        inputs={**plan.meta.inputs, "edited_base_grids": fingerprint(path)},
        county_code=plan.meta.county_code,
        crs=crs,
        h3_res=plan.meta.h3_res,
        departments=plan.meta.departments,
        kind="edit",
    )
    new_plan = Plan(
        atomic_units=new_units,
        base_grids=grids,
        crosswalk=crosswalk,
        dept_fit=fit,
        h3_cells=h3_cells,
        qa_issues=qa,
        meta=meta,
    )
    logger.info(
        "re-imported %d edited base grids from %s as plan %s (%d new codes, %d QA rows) in %.1f s",
        n,
        path.name,
        meta.plan_id,
        int(need.sum()),
        len(new_qa),
        time.perf_counter() - t0,
    )
    return new_plan


def crosswalk_from_units(
    units: gpd.GeoDataFrame, departments: tuple[str, ...] | list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Departmental crosswalk and fit recomputed from the units' lineage columns.

    Each department's grid is the set of units whose ``<dept>_grid_id`` names it (units in a
    departmental gap, ``""``, are left out); shares are by unit area and households.
    """
    area = shapely.area(np.asarray(units.geometry.values, dtype=object))
    hh = _num(units, "households")
    code = _codes(units, "base_grid_code")
    cw_parts, fit_parts = [], []
    for d in departments:
        col = f"{d}_grid_id"
        if col not in units.columns:
            continue
        ids = _codes(units, col)
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
