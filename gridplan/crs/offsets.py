"""GCJ-02 and BD-09, the offset coordinate systems of Chinese map apps, and ``coord_sys`` values.

GCJ-02 (the "Mars" datum of Amap, Tencent and most Chinese phone apps) and BD-09 (Baidu) are not
in PROJ/EPSG, so they are written here from the public formula (Krasovsky ellipsoid constants
``a = 6378245``, ``ee = 0.00669342162296594323``; BD-09 with ``x_pi = pi * 3000 / 180``) as numpy
array operations.  Public PyPI packages are scalar, or invert GCJ-02 with a single step (metres of
error around Dongguan); the inverses here iterate to < 1e-9 degrees.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gridplan.errors import InputError

#: Geographic coordinate systems a record or layer may declare (``coord_sys`` column).
COORD_SYS: tuple[str, ...] = ("cgcs2000", "wgs84", "gcj02", "bd09")

#: Rough bounding box of China used by every GCJ-02 implementation: lon_min, lat_min, lon_max, lat_max.
CHINA_BBOX: tuple[float, float, float, float] = (72.004, 0.8293, 137.8347, 55.8271)

# GCJ-02 constants (Krasovsky 1940 ellipsoid) and BD-09's x_pi.
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0

#: Iterated inverses stop when the forward image is within this many degrees of the target.
_INVERSE_TOL_DEG = 1e-9
_INVERSE_MAX_ITER = 40

_Pair = tuple[NDArray[np.float64], NDArray[np.float64]]

# Accepted spellings of coord_sys values (after lower-casing and removing "-", "_", " ").
_COORD_SYS_ALIASES: dict[str, str] = {
    "cgcs2000": "cgcs2000",
    "epsg:4490": "cgcs2000",
    "4490": "cgcs2000",
    "wgs84": "wgs84",
    "epsg:4326": "wgs84",
    "4326": "wgs84",
    "gps": "wgs84",
    "gcj02": "gcj02",
    "gcj": "gcj02",
    "amap": "gcj02",
    "bd09": "bd09",
    "bd09ll": "bd09",
    "baidu": "bd09",
}



def _as_float_array(values: ArrayLike) -> NDArray[np.float64]:
    return np.asarray(values, dtype=np.float64)


def _restore(arr: NDArray[np.float64], like: Any) -> Any:
    """Return a Python float when the caller passed scalars, else the array."""
    if np.ndim(like) == 0:
        return float(arr)
    return arr


def is_out_of_china(lon: ArrayLike, lat: ArrayLike) -> Any:
    """Flag points outside the bounding box in which GCJ-02 applies (True = outside).

    Uses the box every public implementation uses (72.004–137.8347 E, 0.8293–55.8271 N); NaN
    coordinates give False.  Returns a bool for scalar input, else a bool array.

    Examples
    --------
    >>> is_out_of_china([113.75, 2.35, 150.0], [23.02, 48.85, 30.0]).tolist()
    [False, True, True]

    """
    lon_a, lat_a = _as_float_array(lon), _as_float_array(lat)
    x0, y0, x1, y1 = CHINA_BBOX
    with np.errstate(invalid="ignore"):
        out = (lon_a < x0) | (lon_a > x1) | (lat_a < y0) | (lat_a > y1)
    return bool(out) if np.ndim(out) == 0 else out


def _gcj_offset(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> _Pair:
    """GCJ-02 offset (dlon, dlat) in degrees to add to WGS-84 lon/lat (public formula)."""
    x = lon - 105.0
    y = lat - 35.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = (
        -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x
        + common
        + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    )
    dlon = (
        300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x
        + common
        + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    )
    radlat = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(radlat) * np.pi)
    return dlon, dlat


def _wgs_to_gcj_raw(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> _Pair:
    dlon, dlat = _gcj_offset(lon, lat)
    return lon + dlon, lat + dlat


def _gcj_to_bd_raw(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> _Pair:
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _bd_to_gcj_approx(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> _Pair:
    """Apply the published one-step BD-09 → GCJ-02 (start value for the iteration)."""
    x = lon - 0.0065
    y = lat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def _invert(
    forward: Any,
    lon: NDArray[np.float64],
    lat: NDArray[np.float64],
    start: tuple[NDArray[np.float64], NDArray[np.float64]],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Solve ``forward(p) == (lon, lat)`` by fixed-point iteration ``p -= forward(p) - target``.

    The offsets vary slowly (their Jacobian is within ~1e-4 of the identity), so each step gains
    about four decimal digits; three or four steps reach 1e-9 degrees.  Only rows that have not
    converged are recomputed.
    """
    plon, plat = start[0].copy(), start[1].copy()
    todo = np.flatnonzero(np.isfinite(lon) & np.isfinite(lat))
    for _ in range(_INVERSE_MAX_ITER):
        if todo.size == 0:
            break
        flon, flat = forward(plon[todo], plat[todo])
        elon = flon - lon[todo]
        elat = flat - lat[todo]
        plon[todo] -= elon
        plat[todo] -= elat
        todo = todo[(np.abs(elon) >= _INVERSE_TOL_DEG) | (np.abs(elat) >= _INVERSE_TOL_DEG)]
    return plon, plat


def _convert(
    lon: ArrayLike, lat: ArrayLike, func: Any
) -> tuple[Any, Any]:
    """Apply *func* inside China, pass other points through unchanged; keep scalar-ness."""
    lon_a, lat_a = np.atleast_1d(_as_float_array(lon)), np.atleast_1d(_as_float_array(lat))
    if lon_a.shape != lat_a.shape:
        raise InputError(f"lon and lat differ in shape: {lon_a.shape} vs {lat_a.shape}")
    out_lon, out_lat = lon_a.copy(), lat_a.copy()
    inside = ~np.asarray(is_out_of_china(lon_a, lat_a)) & np.isfinite(lon_a) & np.isfinite(lat_a)
    if inside.any():
        out_lon[inside], out_lat[inside] = func(lon_a[inside], lat_a[inside])
    if np.ndim(lon) == 0:
        return float(out_lon[0]), float(out_lat[0])
    return out_lon, out_lat


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[Any, Any]:
    """WGS-84 → GCJ-02 (degrees).  Points outside China are returned unchanged.

    Examples
    --------
    >>> wgs84_to_gcj02(116.404, 39.915)  # wandergis/coordtransform test/app.js
    (116.41024449916938, 39.91640428150164)

    """
    return _convert(lon, lat, _wgs_to_gcj_raw)


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[Any, Any]:
    """GCJ-02 → WGS-84 (degrees), iterated to < 1e-9°; points outside China unchanged.

    Examples
    --------
    >>> lon, lat = gcj02_to_wgs84(*wgs84_to_gcj02(113.75, 23.02))
    >>> abs(lon - 113.75) < 1e-9 and abs(lat - 23.02) < 1e-9
    True

    """
    return _convert(lon, lat, lambda x, y: _invert(_wgs_to_gcj_raw, x, y, (x, y)))


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[Any, Any]:
    """GCJ-02 → BD-09 (degrees); points outside China unchanged.

    Examples
    --------
    >>> gcj02_to_bd09(116.404, 39.915)  # wandergis/coordtransform test/app.js
    (116.41036949371029, 39.92133699351021)

    """
    return _convert(lon, lat, _gcj_to_bd_raw)


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[Any, Any]:
    """BD-09 → GCJ-02 (degrees), iterated to < 1e-9°; points outside China unchanged."""
    return _convert(lon, lat, lambda x, y: _invert(_gcj_to_bd_raw, x, y, _bd_to_gcj_approx(x, y)))


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[Any, Any]:
    """WGS-84 → BD-09 (degrees), through GCJ-02; points outside China unchanged."""
    return _convert(lon, lat, lambda x, y: _gcj_to_bd_raw(*_wgs_to_gcj_raw(x, y)))


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[Any, Any]:
    """BD-09 → WGS-84 (degrees), both steps iterated; points outside China unchanged.

    Examples
    --------
    >>> lon, lat = bd09_to_wgs84(*wgs84_to_bd09(113.75, 23.02))
    >>> abs(lon - 113.75) < 1e-9 and abs(lat - 23.02) < 1e-9
    True

    """

    def inverse(x: NDArray[np.float64], y: NDArray[np.float64]) -> _Pair:
        gx, gy = _invert(_gcj_to_bd_raw, x, y, _bd_to_gcj_approx(x, y))
        return _invert(_wgs_to_gcj_raw, gx, gy, (gx, gy))

    return _convert(lon, lat, inverse)


def normalize_coord_sys(coord_sys: str | ArrayLike | None, *, default: str = "cgcs2000") -> Any:
    """Canonical ``coord_sys`` value(s): lower-cased, aliases resolved, empty → *default*.

    Raises
    ------
    InputError
        For an unknown value; the message names it and lists the allowed ones.

    Examples
    --------
    >>> normalize_coord_sys("GCJ-02")
    'gcj02'
    >>> normalize_coord_sys(["WGS84", None, "bd09"]).tolist()
    ['wgs84', 'cgcs2000', 'bd09']
    >>> normalize_coord_sys("mars")
    Traceback (most recent call last):
    ...
    gridplan.errors.InputError: field coord_sys: unknown coordinate system 'mars'; use one of ...

    """
    if coord_sys is None or isinstance(coord_sys, str):
        return _normalize_one(coord_sys, default)
    values = np.asarray(coord_sys, dtype=object)
    if values.ndim == 0:
        return _normalize_one(values.item(), default)
    as_text = np.array(["" if _is_missing(v) else str(v) for v in values.ravel()], dtype=object)
    uniques, inverse = np.unique(as_text, return_inverse=True)
    canon = np.array([_normalize_one(u, default) for u in uniques], dtype=object)
    return canon[inverse].reshape(values.shape)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _normalize_one(value: Any, default: str) -> str:
    if _is_missing(value):
        return default
    key = str(value).strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    if key == "":
        return default
    try:
        return _COORD_SYS_ALIASES[key]
    except KeyError:
        raise InputError(
            f"unknown coordinate system {str(value)!r}; use one of {', '.join(COORD_SYS)}",
            field="coord_sys",
        ) from None


_TO_WGS84 = {"gcj02": gcj02_to_wgs84, "bd09": bd09_to_wgs84}
_FROM_WGS84 = {"gcj02": wgs84_to_gcj02, "bd09": wgs84_to_bd09}


def _by_system(
    lon: ArrayLike, lat: ArrayLike, coord_sys: str | ArrayLike | None, table: dict[str, Any]
) -> tuple[Any, Any]:
    systems = normalize_coord_sys(coord_sys)
    if isinstance(systems, str):
        if systems in table:
            return table[systems](lon, lat)
        if np.ndim(lon) == 0:
            return float(lon), float(lat)  # type: ignore[arg-type]
        return _as_float_array(lon).copy(), _as_float_array(lat).copy()
    lon_a, lat_a = np.atleast_1d(_as_float_array(lon)), np.atleast_1d(_as_float_array(lat))
    if systems.shape != lon_a.shape:
        raise InputError(f"coord_sys has {systems.size} values but there are {lon_a.size} points")
    out_lon, out_lat = lon_a.copy(), lat_a.copy()
    for name, func in table.items():
        mask = systems == name
        if mask.any():
            out_lon[mask], out_lat[mask] = func(lon_a[mask], lat_a[mask])
    return out_lon, out_lat


def to_wgs84(lon: ArrayLike, lat: ArrayLike, coord_sys: str | ArrayLike | None) -> tuple[Any, Any]:
    """Convert lon/lat declared in *coord_sys* to WGS-84 (= CGCS2000 at sub-metre level).

    Parameters
    ----------
    lon, lat
        Degrees; scalars or arrays.
    coord_sys
        One of :data:`COORD_SYS` (case-insensitive; ``GCJ-02`` etc. accepted; empty/None means
        ``cgcs2000``), either one value for all points or one per point.

    Raises
    ------
    InputError
        An unknown coordinate-system name (named in the message).

    Examples
    --------
    >>> to_wgs84(116.41024449916938, 39.91640428150164, "GCJ02")  # doctest: +ELLIPSIS
    (116.40400000..., 39.91500000...)
    >>> lon, lat = to_wgs84([113.7, 113.7], [23.0, 23.0], ["wgs84", "gcj02"])
    >>> bool(lon[0] == 113.7), bool(lon[1] < 113.7)
    (True, True)

    """
    return _by_system(lon, lat, coord_sys, _TO_WGS84)


def from_wgs84(lon: ArrayLike, lat: ArrayLike, coord_sys: str | ArrayLike | None) -> tuple[Any, Any]:
    """Convert WGS-84 lon/lat to *coord_sys* (the inverse of :func:`to_wgs84`).

    Examples
    --------
    >>> from_wgs84(116.404, 39.915, "gcj02")
    (116.41024449916938, 39.91640428150164)

    """
    return _by_system(lon, lat, coord_sys, _FROM_WGS84)
