"""Re-import of a base-grid layer edited in QGIS as a new, re-validated plan version."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from gridplan.errors import CRSError, InputError
from gridplan.merge.crosswalk import crosswalk_from_units
from gridplan.plans.model import UNIT_STATS, numeric_column, text_column

logger = logging.getLogger(__name__)


_QA_COLUMNS = ["layer", "feature_id", "issue", "detail"]

_GRID_CODE_RE = re.compile(r"^\d{15}$")

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


def _drop_missing(codes: np.ndarray, geoms: np.ndarray, qa_rows: list[dict[str, Any]]) -> np.ndarray:
    """Report features without geometry; return the mask of those kept."""
    keep = np.ones(len(geoms), dtype=bool)
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
    return keep


def _repair_geometry(gdf: gpd.GeoDataFrame, path: Path, layer: str,
                     qa_rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Drop missing geometries, repair invalid ones, keep polygons; return codes and geometries."""
    codes = np.array([_code_text(v) for v in gdf["grid_code"].tolist()], dtype=object)
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    keep = _drop_missing(codes, geoms, qa_rows)
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
    return codes, geoms


def _communities(plan: Any, codes: np.ndarray, geoms: np.ndarray, tolerance_m2: float,
                 qa_rows: list[dict[str, Any]]) -> np.ndarray:
    """Community of each edited grid (largest share); report grids reaching into others."""
    units = plan.atomic_units
    ucomm = text_column(units, "community_code")
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

    return gcomm


def _new_codes(plan: Any, codes: np.ndarray, geoms: np.ndarray, gcomm: np.ndarray, path: Path,
               layer: str) -> tuple[np.ndarray, np.ndarray]:
    """Keep valid, unique codes in the right community; give the others the next free ones."""
    garea = shapely.area(geoms)
    old_codes = text_column(plan.base_grids, "grid_code")
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

    return codes, need


def _coverage_qa(plan: Any, codes: np.ndarray, geoms: np.ndarray, tolerance_m2: float,
                 qa_rows: list[dict[str, Any]]) -> None:
    """Report overlaps (of changed grids), gaps and areas outside the parent plan's coverage."""
    old_codes = text_column(plan.base_grids, "grid_code")
    old_geom = dict(zip(old_codes, plan.base_grids.geometry.values, strict=True))
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



def _grid_table(plan: Any, codes: np.ndarray, geoms: np.ndarray, gcomm: np.ndarray, ugrid: np.ndarray,
                qa_rows: list[dict[str, Any]]) -> gpd.GeoDataFrame:
    """Build the new ``base_grids`` table with band status (and band QA rows)."""
    crs = plan.meta.crs
    units = plan.atomic_units
    ucomm = text_column(units, "community_code")
    garea = shapely.area(geoms)
    ob = plan.base_grids
    names = {}
    for c, cn, t, tn in zip(
        text_column(ob, "community_code"),
        text_column(ob, "community_name") if "community_name" in ob else [""] * len(ob),
        text_column(ob, "town_code"),
        text_column(ob, "town_name") if "town_name" in ob else [""] * len(ob),
        strict=True,
    ):
        names[c] = (cn, t, tn)
    utown_codes = text_column(units, "town_code") if "town_code" in units else [""] * len(units)
    utown = dict(zip(ucomm, utown_codes, strict=True))
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
    for s in UNIT_STATS:
        table[s] = np.bincount(ugrid[valid], numeric_column(units, s)[valid], n).round().astype(np.int64)
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

    return grids


def _merged_qa(plan: Any, qa_rows: list[dict[str, Any]]) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Return the parent's QA without its base-grid rows plus the new rows, and the new rows."""
    crs = plan.meta.crs
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

    return qa, new_qa


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

    t0 = time.perf_counter()
    path = Path(edited_path)
    crs = plan.meta.crs
    gdf, layer = _read_edited(path, layer, crs)
    qa_rows: list[dict[str, Any]] = []
    codes, geoms = _repair_geometry(gdf, path, layer, qa_rows)
    gcomm = _communities(plan, codes, geoms, tolerance_m2, qa_rows)
    codes, need = _new_codes(plan, codes, geoms, gcomm, path, layer)
    _coverage_qa(plan, codes, geoms, tolerance_m2, qa_rows)
    # units → edited grids by majority area
    units = plan.atomic_units
    ugrid, _ = _cover_shares(np.asarray(units.geometry.values, dtype=object), geoms, codes)
    new_units = units.copy()
    new_units["base_grid_code"] = np.where(ugrid >= 0, codes[np.maximum(ugrid, 0)], "").astype(object)
    grids = _grid_table(plan, codes, geoms, gcomm, ugrid, qa_rows)
    params = plan.meta.params or {}
    n = len(codes)
    qa, new_qa = _merged_qa(plan, qa_rows)

    crosswalk, fit = crosswalk_from_units(new_units, plan.meta.departments)
    h3_cells = build_h3_index(grids, res=plan.meta.h3_res)
    new_plan = plan.derive(
        kind="edit",
        params={**params, "edited_from": path.name, "edited_layer": layer, "tolerance_m2": tolerance_m2},
        inputs={**plan.meta.inputs, "edited_base_grids": fingerprint(path)},
        crs=crs,
        atomic_units=new_units,
        base_grids=grids,
        crosswalk=crosswalk,
        dept_fit=fit,
        h3_cells=h3_cells,
        qa_issues=qa,
    )
    logger.info(
        "re-imported %d edited base grids from %s as plan %s (%d new codes, %d QA rows) in %.1f s",
        n,
        path.name,
        new_plan.meta.plan_id,
        int(need.sum()),
        len(new_qa),
        time.perf_counter() - t0,
    )
    return new_plan
