"""Validation: a QA table of every defect in a layer, and the layer with its geometry repaired.

Data floor: imports :mod:`gridplan.errors`, :mod:`gridplan.crs` and :mod:`gridplan.layers`.

What this module owns
---------------------
The QA vocabulary shared by every module (``qa_issues`` of plans): a QA table is a GeoDataFrame
with columns ``layer, feature_id, issue, detail, geometry`` in the layer's CRS, one row per defect,
``geometry`` being where the defect is (the gap or overlap polygon, the part outside the city, the
repaired feature; ``None`` when there is nothing to draw).  Issues found here:

``null_geometry``, ``empty_geometry``, ``wrong_geometry_type``, ``invalid_geometry`` (repaired with
:func:`shapely.make_valid`, polygonal part kept for polygon layers; counted, never dropped),
``duplicate_id``, ``missing_value`` (NULL/blank in a required field), ``overlap`` (two features of
one layer share more than ``min_overlap_m2``), ``gap`` (parts of the city that a coverage layer —
towns, communities, departmental grids — leaves uncovered, above ``min_gap_m2``),
``outside_boundary`` (a feature partly outside the city) and ``crosses_community`` (a departmental
grid with more than ``max_cross_share`` of its area outside its main community).

Everything is vectorised: STRtree pair queries with predicates, shapely 2 array operations, one
``union_all`` per coverage layer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from gridplan import crs
from gridplan.layers import GEOMETRY_TYPES, Catalog, load_catalog

logger = logging.getLogger(__name__)

#: Every QA issue this module (and merge) may report.
QA_ISSUES: tuple[str, ...] = (
    "invalid_geometry",
    "empty_geometry",
    "null_geometry",
    "wrong_geometry_type",
    "duplicate_id",
    "missing_value",
    "overlap",
    "gap",
    "outside_boundary",
    "crosses_community",
    "sliver",
    "band",
)
QA_COLUMNS: tuple[str, ...] = ("layer", "feature_id", "issue", "detail")

_POLYGONAL = ("Polygon", "MultiPolygon")
_TYPE_NAMES = np.array(
    ["Point", "LineString", "LinearRing", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon",
     "GeometryCollection"],
    dtype=object,
)


def empty_qa(crs_: Any = crs.COMPUTE_EPSG) -> gpd.GeoDataFrame:
    """Return an empty QA table with the contract's columns.

    Examples
    --------
    >>> list(empty_qa().columns)
    ['layer', 'feature_id', 'issue', 'detail', 'geometry']

    """
    return gpd.GeoDataFrame(
        {c: pd.Series([], dtype="str") for c in QA_COLUMNS},
        geometry=gpd.GeoSeries([], crs=crs_),
        crs=crs_,
    )


def _qa(
    layer: str,
    feature_id: Any,
    issue: str,
    detail: Any,
    geometry: Any,
    crs_: Any,
) -> gpd.GeoDataFrame:
    """Build QA rows from scalars or equal-length arrays."""
    n = len(geometry)
    if n == 0:
        return empty_qa(crs_)
    data = {
        "layer": np.full(n, layer, dtype=object),
        "feature_id": np.broadcast_to(np.asarray(feature_id, dtype=object), (n,)).copy(),
        "issue": np.full(n, issue, dtype=object),
        "detail": np.broadcast_to(np.asarray(detail, dtype=object), (n,)).copy(),
    }
    frame = pd.DataFrame({k: pd.Series(v, dtype="str") for k, v in data.items()})
    geo = gpd.GeoSeries(np.asarray(geometry, dtype=object), crs=crs_)
    return gpd.GeoDataFrame(frame, geometry=geo, crs=crs_)


def _type_names(geoms: NDArray[np.object_]) -> NDArray[np.object_]:
    """Geometry type names ("" for missing geometries), vectorised through the GEOS type ids."""
    ids = shapely.get_type_id(geoms)
    return np.where(ids >= 0, _TYPE_NAMES[np.clip(ids, 0, None)], "").astype(object)


def _polygonal_part(geoms: NDArray[np.object_]) -> NDArray[np.object_]:
    """Keep only the polygons of GeometryCollections (e.g. from make_valid); others unchanged."""
    out = geoms.copy()
    mixed = np.flatnonzero(shapely.get_type_id(geoms) == 7)
    if mixed.size == 0:
        return out
    parts, idx = shapely.get_parts(geoms[mixed], return_index=True)
    multi = shapely.get_type_id(parts) == 6
    if multi.any():
        sub, sub_idx = shapely.get_parts(parts[multi], return_index=True)
        parts = np.concatenate([parts[~multi], sub])
        idx = np.concatenate([idx[~multi], idx[multi][sub_idx]])
    poly = shapely.get_type_id(parts) == 3
    out[mixed] = _group_multipolygons(parts[poly], idx[poly], mixed.size)
    return out


def _group_multipolygons(parts: NDArray[np.object_], idx: NDArray[np.int64], n: int) -> NDArray[np.object_]:
    """One MultiPolygon per group 0..n-1 from polygon *parts* labelled by *idx* (empty if none)."""
    out = np.array([shapely.MultiPolygon()] * n, dtype=object)
    if parts.size == 0:
        return out
    order = np.argsort(idx, kind="stable")
    parts, idx = parts[order], idx[order]
    present = np.unique(idx)
    out[present] = shapely.multipolygons(parts, indices=np.searchsorted(present, idx))
    return out


@dataclass(frozen=True)
class QAOptions:
    """Thresholds of the area checks, and the checks to skip.

    Attributes
    ----------
    min_overlap_m2, min_gap_m2, min_outside_m2
        Smallest overlap / gap part / area outside the boundary reported, in square metres (for
        line layers ``min_outside_m2`` is read as metres of line outside).
    max_cross_share
        A departmental grid crosses a community line when more than this share (0–1) of its area
        lies outside its main community.
    skip
        Area checks not to run, from ``{"overlap", "gap", "outside_boundary",
        "crosses_community"}`` (e.g. when the caller computes them itself; ``gap`` costs one
        ``union_all`` of the layer, a few seconds for 3,000 hand-drawn grids).

    """

    min_overlap_m2: float = 1.0
    min_gap_m2: float = 1.0
    min_outside_m2: float = 25.0
    max_cross_share: float = 0.05
    skip: Collection[str] = ()


class _Findings:
    """Collects the QA rows of one layer (feature ids resolved once)."""

    def __init__(self, layer_name: str, ids: NDArray[np.object_], crs_: Any) -> None:
        self.layer_name, self.ids, self.crs, self.n = layer_name, ids, crs_, len(ids)
        self.parts: list[gpd.GeoDataFrame] = []

    def add(self, mask_or_idx: Any, issue: str, detail: Any, geometry: Any, feature_id: Any = None) -> None:
        """Record *issue* for the features of a boolean mask or an index array."""
        arr = np.asarray(mask_or_idx)
        idx = np.flatnonzero(arr) if arr.dtype == bool else arr
        if idx.size == 0:
            return
        n = self.n
        fid = self.ids[idx] if feature_id is None else feature_id
        det = detail[idx] if isinstance(detail, np.ndarray) and detail.shape == (n,) else detail
        geo = geometry[idx] if isinstance(geometry, np.ndarray) and geometry.shape == (n,) else geometry
        self.parts.append(_qa(self.layer_name, fid, issue, det, geo, self.crs))

    def table(self) -> gpd.GeoDataFrame:
        """Return the QA table of everything recorded."""
        qa = pd.concat(self.parts, ignore_index=True) if self.parts else empty_qa(self.crs)
        return gpd.GeoDataFrame(qa, geometry="geometry", crs=self.crs)


def _feature_ids(gdf: gpd.GeoDataFrame, id_field: str | None) -> NDArray[np.object_]:
    """Return the id of each feature (``#<row>`` where there is no id field or the id is NULL)."""
    rows = np.array([f"#{i}" for i in range(len(gdf))], dtype=object)
    if id_field is None or id_field not in gdf.columns:
        return rows
    raw = gdf[id_field]
    return np.where(raw.isna().to_numpy(), rows, raw.astype("str").to_numpy()).astype(object)


def _check_geometry(
    geoms: NDArray[np.object_], geom_kind: str | None, found: _Findings
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """NULL, empty, invalid (repaired in place) and wrong-type geometries; return (present, wrong)."""
    n = len(geoms)
    is_null = shapely.is_missing(geoms)
    found.add(is_null, "null_geometry", "geometry is NULL", np.full(n, None, dtype=object))
    is_empty = ~is_null & shapely.is_empty(geoms)
    found.add(is_empty, "empty_geometry", "geometry is empty", np.full(n, None, dtype=object))
    present = ~is_null & ~is_empty
    invalid = present & ~shapely.is_valid(geoms)
    if invalid.any():
        reasons = np.full(n, "", dtype=object)
        reasons[invalid] = shapely.is_valid_reason(geoms[invalid])
        fixed = shapely.make_valid(geoms[invalid])
        geoms[invalid] = _polygonal_part(fixed) if geom_kind == "polygon" else fixed
        detail = np.array([f"{r}; repaired with make_valid" for r in reasons], dtype=object)
        found.add(invalid, "invalid_geometry", detail, geoms)
    wrong = np.zeros(n, dtype=bool)
    if geom_kind is not None:
        type_names = _type_names(geoms)
        wrong = present & ~np.isin(type_names, list(GEOMETRY_TYPES[geom_kind]))
        if wrong.any():
            detail = np.array([f"{t} in a {geom_kind} layer" for t in type_names], dtype=object)
            if geom_kind == "polygon":  # keep the polygonal part of collections
                collection = wrong & (type_names == "GeometryCollection")
                if collection.any():
                    geoms[collection] = _polygonal_part(geoms[collection])
                    detail[collection] = "GeometryCollection in a polygon layer; polygonal part kept"
            found.add(wrong, "wrong_geometry_type", detail, geoms)
    return present, wrong


def _check_attributes(
    gdf: gpd.GeoDataFrame, spec: Any, id_field: str | None, geoms: NDArray[np.object_], found: _Findings
) -> None:
    """Duplicate ids and NULL/blank values of required fields."""
    ids = found.ids
    if id_field is not None and id_field in gdf.columns:
        known = gdf[id_field].notna().to_numpy()
        dup = known & pd.Series(ids).duplicated(keep=False).to_numpy()
        if dup.any():
            counts = pd.Series(ids[dup]).value_counts()
            detail = np.array(
                [f"{id_field} {v} is used by {counts.get(v, 0)} features" for v in ids], dtype=object
            )
            found.add(dup, "duplicate_id", detail, geoms)
    if spec is None:
        return
    for name in spec.required:
        if name not in gdf.columns or name in spec.nullable:
            continue
        col = gdf[name]
        missing = col.isna().to_numpy().copy()
        if pd.api.types.is_string_dtype(col):
            missing |= col.astype("str").str.strip().eq("").fillna(False).to_numpy(dtype=bool)
        found.add(missing, "missing_value", f"{name} is NULL", geoms)


def _check_areas(
    geoms: NDArray[np.object_],
    usable: NDArray[np.bool_],
    kind: str | None,
    spec: Any,
    context: tuple[Any, gpd.GeoDataFrame | None],
    options: QAOptions,
    found: _Findings,
) -> None:
    """Overlaps, gaps, parts outside the boundary, departmental grids crossing communities."""
    boundary, communities = context
    geom_kind = spec.geometry if spec is not None else None
    poly_idx = np.flatnonzero(usable & np.isin(_type_names(geoms), _POLYGONAL))
    skip, add = options.skip, found.add
    if geom_kind == "polygon" and poly_idx.size > 1 and "overlap" not in skip:
        _overlaps(geoms, poly_idx, found.ids, options.min_overlap_m2, add)
    boundary_geom = _as_geometry(boundary)
    if boundary_geom is not None and kind != "city":
        shapely.prepare(boundary_geom)
        if spec is not None and spec.coverage and poly_idx.size and "gap" not in skip:
            _gaps(geoms[poly_idx], boundary_geom, options.min_gap_m2, add)
        if "outside_boundary" not in skip:
            _outside(geoms, np.flatnonzero(usable), boundary_geom, options.min_outside_m2, geom_kind, add)
    if kind == "dept" and communities is not None and poly_idx.size and "crosses_community" not in skip:
        _crosses(geoms, poly_idx, found.ids, communities, options.max_cross_share, add)


def validate_layer(
    gdf: gpd.GeoDataFrame,
    kind: str | None,
    *,
    layer_name: str,
    boundary: Any = None,
    id_field: str | None = None,
    communities: gpd.GeoDataFrame | None = None,
    options: QAOptions | None = None,
    catalog: Catalog | None = None,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Check one layer and return ``(repaired, qa)``.

    Parameters
    ----------
    gdf
        The layer, in a projected CRS (metres), canonical field names (see :mod:`gridplan.layers`).
    kind
        Catalog layer kind (``"dept"``, ``"communities"``, …) or a layer name such as
        ``"dept_police"``; ``None`` checks geometry validity only.
    layer_name
        Name written in the QA ``layer`` column.
    boundary
        The city polygon (shapely geometry or GeoSeries/GeoDataFrame, same CRS) for the
        ``gap`` (coverage layers) and ``outside_boundary`` checks; ``None`` skips them.
    id_field
        Field identifying features (default: the catalog's ``id_field``); without one, features
        are named ``#<row>``.
    communities
        Community polygons for the ``crosses_community`` check of departmental layers.
    options
        Thresholds and checks to skip (:class:`QAOptions`; default: its defaults).
    catalog
        Catalog (default :func:`gridplan.layers.load_catalog`).

    Returns
    -------
    tuple of GeoDataFrame
        ``repaired``: every input row, in order, invalid geometries replaced by their
        :func:`shapely.make_valid` repair (polygonal part for polygon layers); ``qa``: the QA
        table (columns ``layer, feature_id, issue, detail, geometry``).

    Raises
    ------
    CRSError
        *gdf* is not in a projected CRS.

    Examples
    --------
    >>> from shapely import box, Polygon
    >>> bowtie = Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])
    >>> gdf = gpd.GeoDataFrame({"dept_grid_id": ["A", "B", "B"], "dept_grid_name": ["a", "b", None]},
    ...                        geometry=[box(0, 0, 10, 10), box(5, 0, 15, 10), bowtie], crs=4547)
    >>> repaired, qa = validate_layer(gdf, "dept", layer_name="dept_x")
    >>> sorted(qa["issue"].unique())
    ['duplicate_id', 'invalid_geometry', 'missing_value', 'overlap']
    >>> bool(repaired.is_valid.all())
    True

    """
    t0 = time.perf_counter()
    crs.require_projected(gdf, what=f"layer {layer_name}")
    options = options or QAOptions()
    cat = catalog or load_catalog()
    if kind is not None and kind not in cat.layers:
        kind = cat.kind_for(kind)
    spec = cat.layers.get(kind) if kind else None
    id_field = id_field or (spec.id_field if spec is not None else None)
    found = _Findings(layer_name, _feature_ids(gdf, id_field), gdf.crs)
    geoms = gdf.geometry.to_numpy().copy()
    present, wrong = _check_geometry(geoms, spec.geometry if spec is not None else None, found)
    _check_attributes(gdf, spec, id_field, geoms, found)
    _check_areas(geoms, present & ~wrong, kind, spec, (boundary, communities), options, found)
    qa = found.table()
    repaired = gdf.copy()
    repaired[gdf.geometry.name] = gpd.GeoSeries(geoms, index=gdf.index, crs=gdf.crs)
    counts = qa["issue"].value_counts().to_dict()
    logger.info(
        "validated %s: %d features, %d QA issues (%s) in %.2f s",
        layer_name, len(gdf), len(qa), ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none",
        time.perf_counter() - t0,
    )
    return repaired, qa


def _as_geometry(boundary: Any) -> Any:
    if boundary is None:
        return None
    if isinstance(boundary, (gpd.GeoDataFrame, gpd.GeoSeries)):
        geoms = boundary.geometry.to_numpy()
        geoms = geoms[~shapely.is_missing(geoms)]
        geom = shapely.union_all(shapely.make_valid(geoms))
    else:
        geom = shapely.make_valid(boundary)
    return None if geom is None or shapely.is_empty(geom) else geom


def _overlaps(geoms: NDArray[np.object_], poly_idx: NDArray[np.int64], ids: NDArray[np.object_],
              min_overlap_m2: float, add: Any) -> None:
    polys = geoms[poly_idx]
    tree = shapely.STRtree(polys)
    left, right = tree.query(polys, predicate="intersects")
    sel = left < right
    left, right = left[sel], right[sel]
    if left.size == 0:
        return
    inter = shapely.intersection(polys[left], polys[right])
    inter = _polygonal_part(inter)
    area = shapely.area(inter)
    big = area > min_overlap_m2
    if not big.any():
        return
    a, b, area, inter = poly_idx[left[big]], poly_idx[right[big]], area[big], inter[big]
    detail = np.array(
        [f"{ids[i]} overlaps {ids[j]} by {s:.1f} m²" for i, j, s in zip(a, b, area, strict=True)],
        dtype=object,
    )
    add(np.arange(a.size), "overlap", detail, inter, feature_id=ids[a])


def _gaps(polys: NDArray[np.object_], boundary: Any, min_gap_m2: float, add: Any) -> None:
    cover = shapely.union_all(polys)
    holes, detail = _gap_parts(shapely.difference(boundary, cover), min_gap_m2)
    if holes.size:
        add(np.arange(holes.size), "gap", detail, holes, feature_id="")


def _gap_parts(uncovered: Any, min_gap_m2: float) -> tuple[NDArray[np.object_], NDArray[np.object_]]:
    """Return the polygonal parts of *uncovered* larger than *min_gap_m2*, and their QA details."""
    holes = shapely.get_parts(uncovered)
    holes = holes[np.isin(shapely.get_type_id(holes), (3, 6))]
    area = shapely.area(holes)
    big = area > min_gap_m2
    detail = np.array([f"{s:.1f} m² of the city not covered" for s in area[big]], dtype=object)
    return holes[big], detail


def gap_qa(layer_name: str, uncovered: Any, crs_: Any, *, min_gap_m2: float = 1.0) -> gpd.GeoDataFrame:
    """Build the ``gap`` QA rows of a layer whose uncovered part of the city is already known.

    :func:`validate_layer` finds gaps with one ``union_all`` of the layer (seconds for a few
    thousand hand-drawn grids); a caller that has overlaid the layer anyway (the merge's faces
    say which face no feature covers) passes ``QAOptions(skip={"gap"})`` and builds the same rows
    here from the union of the uncovered faces.
    """
    holes, detail = _gap_parts(uncovered, min_gap_m2)
    return _qa(layer_name, "", "gap", detail, holes, crs_)


def _outside(geoms: NDArray[np.object_], idx: NDArray[np.int64], boundary: Any, min_outside: float,
             geom_kind: str | None, add: Any) -> None:
    if idx.size == 0:
        return
    cand = idx[~shapely.contains_properly(boundary, geoms[idx])]
    cand = cand[~shapely.covers(boundary, geoms[cand])]
    if cand.size == 0:
        return
    diff = shapely.difference(geoms[cand], boundary)
    types = shapely.get_type_id(geoms[cand])
    size = np.where(np.isin(types, (3, 6)), shapely.area(diff), shapely.length(diff))
    is_point = np.isin(types, (0, 4))
    keep = is_point | (size > min_outside)
    if not keep.any():
        return
    unit = np.where(np.isin(types, (3, 6)), "m²", "m")
    detail = np.array(
        ["outside the city" if p else f"{s:.1f} {u} outside the city"
         for p, s, u in zip(is_point[keep], size[keep], unit[keep], strict=True)],
        dtype=object,
    )
    geo = np.where(is_point, geoms[cand], diff)[keep]
    add(cand[keep], "outside_boundary", detail, geo)


def _crosses(geoms: NDArray[np.object_], poly_idx: NDArray[np.int64], ids: NDArray[np.object_],
             communities: gpd.GeoDataFrame, max_share: float, add: Any) -> None:
    comm_geoms = communities.geometry.to_numpy()
    ok = ~shapely.is_missing(comm_geoms) & ~shapely.is_empty(comm_geoms)
    comm_geoms = shapely.make_valid(comm_geoms[ok])
    codes = (communities["community_code"].astype("str").to_numpy()[ok]
             if "community_code" in communities.columns else np.arange(ok.sum()).astype(str))
    polys = geoms[poly_idx]
    tree = shapely.STRtree(comm_geoms)
    nested, _ = tree.query(polys, predicate="within")  # most grids of a good layer: no overlay needed
    cand = np.setdiff1d(np.arange(polys.size), nested)
    gi, ci = tree.query(polys[cand], predicate="intersects")
    gi = cand[gi]
    if gi.size == 0:
        return
    area = shapely.area(shapely.intersection(polys[gi], comm_geoms[ci]))
    total = shapely.area(polys)
    frame = pd.DataFrame({"g": gi, "c": ci, "a": area})
    frame = frame[(frame["a"] > 0) & (total[frame["g"].to_numpy()] > 0)]
    frame["share"] = frame["a"].to_numpy() / total[frame["g"].to_numpy()]
    main_share = frame.groupby("g")["share"].max()
    crossing = main_share.index[(1.0 - main_share) > max_share].to_numpy()
    if crossing.size == 0:
        return
    sub = frame[frame["g"].isin(crossing) & (frame["share"] >= 0.005)].sort_values(
        ["g", "share"], ascending=[True, False]
    )
    desc: dict[int, str] = {}
    for g, c, share in zip(sub["g"].to_numpy(), sub["c"].to_numpy(), sub["share"].to_numpy(), strict=True):
        text = f"{codes[c]} {share:.0%}"
        desc[g] = f"{desc[g]}, {text}" if g in desc else text
    detail = np.array([f"spans communities {desc.get(g, '')}" for g in crossing], dtype=object)
    add(poly_idx[crossing], "crosses_community", detail, geoms[poly_idx[crossing]])


def validate_layers(
    layers: Mapping[str, gpd.GeoDataFrame],
    *,
    boundary: Any = None,
    communities: gpd.GeoDataFrame | None = None,
    options: QAOptions | None = None,
    catalog: Catalog | None = None,
) -> tuple[dict[str, gpd.GeoDataFrame], gpd.GeoDataFrame]:
    """Validate every layer of a mapping (as returned by :func:`gridplan.layers.read_layers`).

    Parameters
    ----------
    layers
        Canonical layer name → GeoDataFrame (projected CRS).
    boundary
        City polygon; default: the repaired ``city`` layer when present.
    communities
        Community polygons for ``crosses_community``; default: the repaired ``communities`` layer.
    options
        Thresholds and skipped checks (:class:`QAOptions`), as in :func:`validate_layer`.
    catalog
        Catalog (default :func:`gridplan.layers.load_catalog`).

    Returns
    -------
    tuple
        ``(repaired layers, QA table of all layers)``.

    """
    t0 = time.perf_counter()
    cat = catalog or load_catalog()
    repaired: dict[str, gpd.GeoDataFrame] = {}
    qas: list[gpd.GeoDataFrame] = []
    order = sorted(layers, key=lambda k: (k != "city", k != "communities", k))
    for name in order:
        kind = cat.kind_for(name)
        fixed, qa = validate_layer(
            layers[name],
            kind,
            layer_name=name,
            boundary=boundary if boundary is not None else repaired.get("city"),
            communities=communities if communities is not None else repaired.get("communities"),
            options=options,
            catalog=cat,
        )
        repaired[name] = fixed
        qas.append(qa)
    out_crs = next((g.crs for g in layers.values()), crs.COMPUTE_EPSG)
    qa_all = pd.concat(qas, ignore_index=True) if qas else empty_qa(out_crs)
    qa_all = gpd.GeoDataFrame(qa_all, geometry="geometry", crs=out_crs)
    repaired = {name: repaired[name] for name in layers}
    logger.info(
        "validated %d layers: %d QA issues in %.2f s", len(layers), len(qa_all), time.perf_counter() - t0
    )
    return repaired, qa_all


def qa_summary(qa: pd.DataFrame) -> pd.DataFrame:
    """Count QA rows per layer and issue (a wide table: one row per layer, one column per issue).

    Examples
    --------
    >>> qa = pd.DataFrame({"layer": ["a", "a", "b"], "issue": ["gap", "gap", "overlap"]})
    >>> qa_summary(qa).to_dict("index")
    {'a': {'overlap': 0, 'gap': 2}, 'b': {'overlap': 1, 'gap': 0}}

    """
    if qa.empty:
        return pd.DataFrame()
    table = pd.crosstab(qa["layer"], qa["issue"])
    cols = [c for c in QA_ISSUES if c in table.columns]
    table = table[cols]
    table.index.name = None
    table.columns.name = None
    return table.astype(int)


__all__ = [
    "QA_COLUMNS",
    "QA_ISSUES",
    "QAOptions",
    "empty_qa",
    "gap_qa",
    "qa_summary",
    "validate_layer",
    "validate_layers",
]
