"""Coordinate reference systems: projections, GCJ-02/BD-09, and coordinate sanity checks.

Ground floor: imports nothing of ours except :mod:`gridplan.errors`.

What this room owns
-------------------
* :mod:`gridplan.crs.project` — the compute CRS (default EPSG:4547, CGCS2000 / 3-degree
  Gauss-Kruger CM 114E, metres, x = easting) and the exchange CRS (EPSG:4490, CGCS2000
  geographic); cached ``always_xy`` transformers; lon/lat ↔ metres; :func:`require_projected`,
  the CRS check at every public door; swapped lon/lat and points outside a boundary.
* :mod:`gridplan.crs.offsets` — GCJ-02 (Amap, Tencent, most phone apps) and BD-09 (Baidu), from
  the public formula as numpy array operations with inverses iterated to < 1e-9 degrees, and the
  ``coord_sys`` values a record may declare.

WGS-84 and CGCS2000 differ by well under a metre in Dongguan and are treated as the same datum.
"""

from __future__ import annotations

from gridplan.crs.offsets import (
    CHINA_BBOX,
    COORD_SYS,
    bd09_to_gcj02,
    bd09_to_wgs84,
    from_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    is_out_of_china,
    normalize_coord_sys,
    to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from gridplan.crs.project import (
    COMPUTE_EPSG,
    EXCHANGE_EPSG,
    CRSLike,
    get_transformer,
    is_outside,
    is_swapped_lonlat,
    lonlat_to_xy,
    require_projected,
    xy_to_lonlat,
)

__all__ = [
    "CHINA_BBOX",
    "COMPUTE_EPSG",
    "COORD_SYS",
    "EXCHANGE_EPSG",
    "CRSLike",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "from_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "get_transformer",
    "is_out_of_china",
    "is_outside",
    "is_swapped_lonlat",
    "lonlat_to_xy",
    "normalize_coord_sys",
    "require_projected",
    "to_wgs84",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
    "xy_to_lonlat",
]
