"""Projections: cached ``always_xy`` transformers, lon/lat ↔ metres, and the CRS and coordinate checks.

Every pyproj ``Transformer`` is built with ``always_xy=True`` and cached: EPSG:4547 and EPSG:4490
are *northing/latitude first* in their EPSG definitions, and a transformer built without
``always_xy`` silently swaps axes.  The checks are used by readers and the geocoder: swapped
lon/lat, points outside a boundary, and :func:`require_projected`, the CRS check at every public door.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, TypeAlias

import numpy as np
import pyproj
import shapely
from numpy.typing import ArrayLike

from gridplan.crs.offsets import CHINA_BBOX, _as_float_array, _restore, to_wgs84
from gridplan.errors import CRSError

logger = logging.getLogger(__name__)

#: Anything :meth:`pyproj.CRS.from_user_input` accepts: an EPSG code, ``"EPSG:4547"``, WKT, a CRS.
CRSLike: TypeAlias = int | str | pyproj.CRS

#: Default projected CRS for all metric work (CGCS2000 / 3-degree GK CM 114E).
COMPUTE_EPSG = 4547
#: Default geographic CRS for exchange (CGCS2000).
EXCHANGE_EPSG = 4490


def _crs_key(crs: CRSLike) -> Any:
    """Return a hashable cache key for anything pyproj accepts as a CRS."""
    if isinstance(crs, (int, str)):
        return crs
    return pyproj.CRS.from_user_input(crs).to_wkt()


@lru_cache(maxsize=64)
def _cached_transformer(from_key: Any, to_key: Any) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(
        pyproj.CRS.from_user_input(from_key), pyproj.CRS.from_user_input(to_key), always_xy=True
    )


def get_transformer(from_crs: CRSLike, to_crs: CRSLike) -> pyproj.Transformer:
    """Return a cached pyproj transformer built with ``always_xy=True``.

    Parameters
    ----------
    from_crs, to_crs
        Anything :meth:`pyproj.CRS.from_user_input` accepts (EPSG int, ``"EPSG:4547"``, a CRS).

    Returns
    -------
    pyproj.Transformer
        Takes and returns (x, y) = (easting, northing) or (lon, lat), whatever the EPSG axis order.

    Examples
    --------
    >>> t = get_transformer(4490, 4547)
    >>> x, y = t.transform(113.75, 23.02)
    >>> 400_000 < x < 500_000 and 2_500_000 < y < 2_600_000
    True
    >>> get_transformer(4490, 4547) is t
    True

    """
    return _cached_transformer(_crs_key(from_crs), _crs_key(to_crs))


def lonlat_to_xy(
    lon: ArrayLike,
    lat: ArrayLike,
    *,
    to_crs: CRSLike = COMPUTE_EPSG,
    from_crs: CRSLike = EXCHANGE_EPSG,
    coord_sys: str | ArrayLike = "cgcs2000",
) -> tuple[Any, Any]:
    """Project geographic lon/lat (degrees) to x/y in metres of *to_crs*.

    Parameters
    ----------
    lon, lat
        Degrees east / north; scalars or arrays of equal length.
    to_crs
        Projected target CRS (default EPSG:4547).
    from_crs
        Geographic source datum (default EPSG:4490, CGCS2000).
    coord_sys
        ``cgcs2000``, ``wgs84``, ``gcj02`` or ``bd09`` (scalar or one per row); GCJ-02/BD-09 are
        converted to WGS-84 first (see :func:`to_wgs84`).

    Returns
    -------
    tuple
        ``(x, y)`` easting and northing in metres (floats for scalar input, else arrays).

    Examples
    --------
    >>> x, y = lonlat_to_xy(114.0, 23.0)
    >>> round(x), 2_540_000 < y < 2_550_000
    (500000, True)

    """
    lon_a, lat_a = to_wgs84(_as_float_array(lon), _as_float_array(lat), coord_sys)
    x, y = get_transformer(from_crs, to_crs).transform(lon_a, lat_a)
    return _restore(np.asarray(x, dtype=np.float64), lon), _restore(np.asarray(y, dtype=np.float64), lat)


def xy_to_lonlat(
    x: ArrayLike, y: ArrayLike, *, from_crs: CRSLike = COMPUTE_EPSG, to_crs: CRSLike = EXCHANGE_EPSG
) -> tuple[Any, Any]:
    """Unproject x/y metres of *from_crs* to lon/lat degrees of *to_crs* (default CGCS2000).

    Examples
    --------
    >>> lon, lat = xy_to_lonlat(*lonlat_to_xy(113.75, 23.02))
    >>> round(lon, 9), round(lat, 9)
    (113.75, 23.02)

    """
    xa, ya = _as_float_array(x), _as_float_array(y)
    lon, lat = get_transformer(from_crs, to_crs).transform(xa, ya)
    return _restore(np.asarray(lon, dtype=np.float64), x), _restore(np.asarray(lat, dtype=np.float64), y)


def require_projected(gdf: Any, *, what: str = "layer", expected_crs: CRSLike | None = None) -> None:
    """Raise :class:`~gridplan.errors.CRSError` unless *gdf* has a projected CRS (in metres).

    Parameters
    ----------
    gdf
        GeoDataFrame or GeoSeries.
    what
        How to name the data in the message (e.g. ``"layer dept_police"``).
    expected_crs
        If given, the CRS must also equal this one.

    Raises
    ------
    CRSError
        No CRS, a geographic CRS, or a CRS other than *expected_crs*; the message names the CRS
        and the fix.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point
    >>> require_projected(gpd.GeoSeries([Point(0, 0)], crs=4547))
    >>> require_projected(gpd.GeoSeries([Point(0, 0)], crs=4490), what="towns")
    Traceback (most recent call last):
    ...
    gridplan.errors.CRSError: towns has the geographic CRS EPSG:4490 (degrees); reproject it ...

    """
    crs = getattr(gdf, "crs", None)
    target = COMPUTE_EPSG if expected_crs is None else expected_crs
    if crs is None:
        raise CRSError(
            f"{what} has no CRS; set the CRS it was drawn in (e.g. gdf.set_crs(4490)) "
            f"and reproject with gdf.to_crs({target})"
        )
    name = _crs_name(crs)
    if not crs.is_projected:
        raise CRSError(
            f"{what} has the geographic CRS {name} (degrees); reproject it first, e.g. gdf.to_crs({target})"
        )
    if expected_crs is not None and not crs.equals(pyproj.CRS.from_user_input(expected_crs)):
        want = _crs_name(pyproj.CRS.from_user_input(expected_crs))
        raise CRSError(f"{what} is in {name} but {want} is expected; reproject with gdf.to_crs({target})")


def _crs_name(crs: pyproj.CRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg is not None else crs.name


def is_swapped_lonlat(
    lon: ArrayLike, lat: ArrayLike, *, bbox_lonlat: Iterable[float] = CHINA_BBOX
) -> Any:
    """Flag rows whose (lon, lat) is outside *bbox_lonlat* while (lat, lon) is inside it.

    Parameters
    ----------
    lon, lat
        The values as given in the ``lon`` and ``lat`` columns (degrees).
    bbox_lonlat
        ``(lon_min, lat_min, lon_max, lat_max)`` of the area the points should be in (e.g. the
        city's extent in CGCS2000, a little buffered).

    Examples
    --------
    >>> dongguan = (113.5, 22.6, 114.3, 23.2)
    >>> is_swapped_lonlat([113.75, 23.02], [23.02, 113.75], bbox_lonlat=dongguan).tolist()
    [False, True]

    """
    x0, y0, x1, y1 = (float(v) for v in bbox_lonlat)
    lon_a, lat_a = _as_float_array(lon), _as_float_array(lat)
    with np.errstate(invalid="ignore"):
        as_given = (lon_a >= x0) & (lon_a <= x1) & (lat_a >= y0) & (lat_a <= y1)
        swapped = (lat_a >= x0) & (lat_a <= x1) & (lon_a >= y0) & (lon_a <= y1)
    out = swapped & ~as_given
    return bool(out) if np.ndim(out) == 0 else out


def is_outside(x: ArrayLike, y: ArrayLike, boundary: Any) -> Any:
    """Flag points (x, y) outside *boundary* (points on the boundary count as inside).

    Parameters
    ----------
    x, y
        Coordinates in the boundary's CRS (e.g. EPSG:4547 metres).
    boundary
        A shapely geometry, or a GeoSeries/GeoDataFrame whose geometries are unioned.

    Returns
    -------
    bool or numpy.ndarray
        NaN coordinates give False (an unlocated point is not "outside").

    Examples
    --------
    >>> from shapely import box
    >>> is_outside([0.5, 2.0, 1.0], [0.5, 2.0, 0.5], box(0, 0, 1, 1)).tolist()
    [False, True, False]

    """
    geom = boundary
    if hasattr(boundary, "geometry") or hasattr(boundary, "union_all"):
        geom = boundary.union_all() if hasattr(boundary, "union_all") else boundary.geometry.union_all()
    geom = shapely.make_valid(geom)
    shapely.prepare(geom)
    xa, ya = _as_float_array(x), _as_float_array(y)
    finite = np.isfinite(xa) & np.isfinite(ya)
    out = ~shapely.intersects_xy(geom, xa, ya) & finite
    return bool(out) if np.ndim(out) == 0 else out
