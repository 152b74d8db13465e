"""Display geometry: topology-preserving simplification, EPSG:4326 (or GCJ-02), rounded coordinates.

What this module owns
---------------------
:func:`display_geometry` turns a layer in the compute CRS into what Leaflet draws:

1. simplified in metres *before* reprojection.  A polygonal coverage (base grids, communities,
   towns: no overlaps, shared edges) goes through :func:`shapely.coverage_simplify` (GEOS ≥ 3.12),
   which simplifies each shared edge once, so neighbours keep exactly the same boundary and no
   slivers or gaps open between them.  A layer that is not a valid coverage (departmental grids
   with planted overlaps) falls back to per-feature ``simplify(preserve_topology=True)``;
   lines use the same; points are kept.
2. reprojected to geographic CGCS2000 (≈ WGS-84 within a metre), optionally shifted to GCJ-02 with
   :func:`gridplan.crs.wgs84_to_gcj02` (vectorised over every vertex) so overlays line up with a
   GCJ-02 basemap (Amap, Tencent).
3. coordinates rounded to ``decimals`` (5 ≈ 1.1 m, the default; 6 ≈ 0.11 m), which with the
   simplification keeps a city-scale map small.  Rounding is deterministic, so vertices shared by
   neighbours stay shared.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import shapely

from gridplan.crs import wgs84_to_gcj02
from gridplan.errors import CRSError, InputError

logger = logging.getLogger(__name__)

__all__ = ["display_geometry", "is_coverage"]

_POLY = ("Polygon", "MultiPolygon")
_LINE = ("LineString", "MultiLineString", "LinearRing")


def is_coverage(geoms: np.ndarray) -> bool:
    """Tell whether polygonal *geoms* form a valid coverage (no overlaps, matching shared edges).

    Examples
    --------
    >>> from shapely import box
    >>> is_coverage(np.array([box(0, 0, 1, 1), box(1, 0, 2, 1)]))
    True
    >>> is_coverage(np.array([box(0, 0, 1, 1), box(0.5, 0, 2, 1)]))
    False

    """
    if len(geoms) == 0:
        return True
    return bool(shapely.coverage_is_valid(geoms))


def display_geometry(
    gdf: gpd.GeoDataFrame,
    *,
    tolerance_m: float = 3.0,
    decimals: int = 5,
    gcj02: bool = False,
) -> gpd.GeoDataFrame:
    """Simplify, reproject to EPSG:4326 and round *gdf* for display on a Leaflet map.

    Parameters
    ----------
    gdf
        Layer in a projected (metric) CRS; rows with a missing or empty geometry are dropped.
    tolerance_m
        Simplification tolerance in metres (0 disables simplification).  For coverages it is the
        Visvalingam–Whyatt tolerance of :func:`shapely.coverage_simplify` (square root of the
        smallest triangle area kept); for other polygons and lines the Douglas–Peucker distance.
    decimals
        Decimal places of degrees kept (5 ≈ 1.1 m, 6 ≈ 0.11 m); 1–8.
    gcj02
        Shift the result from WGS-84 to GCJ-02 (for a GCJ-02 basemap).

    Returns
    -------
    GeoDataFrame
        A copy in EPSG:4326 (GCJ-02 coordinates when ``gcj02``; the CRS label stays 4326 because
        GCJ-02 has no EPSG code), index preserved for the kept rows.

    Examples
    --------
    >>> from shapely import box
    >>> g = gpd.GeoDataFrame(geometry=[box(500000, 2500000, 500100, 2500100)], crs=4547)
    >>> out = display_geometry(g)
    >>> out.crs.to_epsg(), round(out.geometry.iloc[0].bounds[0], 5)
    (4326, 114.0)

    """
    if gdf.crs is None:
        raise CRSError("layer has no CRS; set one (e.g. EPSG:4547) before publishing a map")
    if not gdf.crs.is_projected:
        raise CRSError(
            f"layer is in {gdf.crs.to_string()}; display_geometry expects a projected (metric) CRS"
        )
    if not 1 <= decimals <= 8:
        raise InputError(f"decimals must be 1..8, got {decimals}")
    if tolerance_m < 0:
        raise InputError(f"tolerance_m must be >= 0, got {tolerance_m}")
    geoms = gdf.geometry.values
    keep = ~(shapely.is_missing(np.asarray(geoms)) | shapely.is_empty(np.asarray(geoms)))
    out = gdf.loc[keep].copy()
    arr = np.asarray(out.geometry.values, dtype=object)
    if tolerance_m > 0 and len(arr):
        types = shapely.get_type_id(arr)
        poly = np.isin(types, (3, 6))
        line = np.isin(types, (1, 2, 5))
        method = "none"
        if poly.any():
            polys = arr[poly]
            if poly.all() and is_coverage(polys):
                arr[poly] = shapely.coverage_simplify(polys, tolerance_m)
                method = "coverage"
            else:
                arr[poly] = shapely.simplify(polys, tolerance_m, preserve_topology=True)
                method = "per-feature"
        if line.any():
            arr[line] = shapely.simplify(arr[line], tolerance_m, preserve_topology=True)
        logger.debug("simplified %d features (%s, %.1f m)", len(arr), method, tolerance_m)
    out = out.set_geometry(gpd.GeoSeries(arr, index=out.index, crs=gdf.crs))
    out = out.to_crs(4490).set_crs(4326, allow_override=True)
    arr = np.asarray(out.geometry.values, dtype=object)

    def _move(xy: np.ndarray) -> np.ndarray:
        if gcj02 and len(xy):
            lon, lat = wgs84_to_gcj02(xy[:, 0], xy[:, 1])
            xy = np.column_stack([lon, lat])
        return np.round(xy, decimals)

    arr = shapely.transform(arr, _move)
    return out.set_geometry(gpd.GeoSeries(arr, index=out.index, crs=4326))
