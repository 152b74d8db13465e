"""Reverse geocoding: points → nearest standard address within a radius, plus grid/community/town.

One ``STRtree.query_nearest`` call over the library's points (``max_distance`` = the radius) answers
every point at once; ties at equal distance resolve to the smallest ``address_id`` so the answer
does not depend on the order of the library.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import shapely

from gridplan import crs
from gridplan.errors import InputError
from gridplan.geocode._frames import obj_frame

if TYPE_CHECKING:
    from gridplan.geocode.geocoder import Geocoder

logger = logging.getLogger(__name__)

REVERSE_COLUMNS = (
    "address_id",
    "matched_address",
    "distance_m",
    "lon",
    "lat",
    "coord_sys",
    "grid_code",
    "community_code",
    "town_code",
    "status",
    "reason",
)


def reverse_geocode_xy(
    x: np.ndarray, y: np.ndarray, geocoder: Geocoder, *, radius_m: float = 50.0
) -> pd.DataFrame:
    """Nearest std address (within *radius_m*) and grid/community/town of points in the compute CRS.

    Parameters
    ----------
    x, y
        Easting/northing in metres of the geocoder's compute CRS (NaN: unlocated).
    geocoder
        A built :class:`~gridplan.geocode.geocoder.Geocoder`.
    radius_m
        Largest distance to a std address, metres (> 0).

    Returns
    -------
    pandas.DataFrame
        One row per point: ``address_id`` and ``matched_address`` ('' when none within the
        radius), ``distance_m`` (NaN then), ``lon``/``lat`` (CGCS2000 of the point),
        ``coord_sys`` ``cgcs2000``, ``grid_code``, ``community_code``, ``town_code``, ``status``
        (``M`` an address within the radius, ``U`` none) and ``reason``.

    Raises
    ------
    InputError
        *radius_m* not positive or *x*/*y* of different lengths.

    """
    t0 = time.perf_counter()
    if not radius_m > 0:
        raise InputError(f"radius must be positive, got {radius_m}", field="radius_m")
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise InputError("x and y have different lengths", field="x")
    n = len(x)
    lib = geocoder.index.lib
    tree = _tree(geocoder)
    aid = np.full(n, "", dtype=object)
    full = np.full(n, "", dtype=object)
    dist = np.full(n, np.nan)
    fin = np.isfinite(x) & np.isfinite(y)
    if fin.any():
        pts = shapely.points(x[fin], y[fin])
        (pi, li), dd = tree.query_nearest(pts, max_distance=radius_m, return_distance=True, all_matches=True)
        if len(pi):
            ids = lib["address_id"].to_numpy(dtype=object)[li]
            hit = pd.DataFrame({"p": pi, "l": li, "d": dd, "id": ids}).sort_values(["p", "d", "id"])
            hit = hit.drop_duplicates("p")
            rows = np.flatnonzero(fin)[hit["p"].to_numpy()]
            aid[rows] = hit["id"].to_numpy(dtype=object)
            full[rows] = lib["full_address"].to_numpy(dtype=object)[hit["l"].to_numpy()]
            dist[rows] = np.round(hit["d"].to_numpy(), 2)
    grid, comm, town = geocoder.areas.codes_at(x, y)
    lon, lat = np.full(n, np.nan), np.full(n, np.nan)
    if fin.any():
        lon[fin], lat[fin] = crs.xy_to_lonlat(x[fin], y[fin], from_crs=geocoder.to_crs)
    found = aid != ""
    reason = np.where(
        found, "", np.where(fin, f"no standard address within {radius_m:g} m", "no coordinates")
    )
    out = obj_frame(
        {
            "address_id": aid,
            "matched_address": full,
            "distance_m": dist,
            "lon": np.round(lon, 8),
            "lat": np.round(lat, 8),
            "coord_sys": "cgcs2000",
            "grid_code": grid,
            "community_code": comm,
            "town_code": town,
            "status": np.where(found, "M", "U").astype(object),
            "reason": reason.astype(object),
        }
    )
    logger.info(
        "reverse geocoded %d points: %d within %g m of a std address in %.2f s",
        n,
        int(found.sum()),
        radius_m,
        time.perf_counter() - t0,
    )
    return out


def reverse_geocode(table: pd.DataFrame, geocoder: Geocoder, *, radius_m: float = 50.0) -> pd.DataFrame:
    """Reverse geocode a table with ``lon``, ``lat`` (+ optional ``coord_sys``) columns.

    Coordinates are converted to CGCS2000 (GCJ-02/BD-09 declared per row); swapped or outside
    points are not placed (``status`` ``U`` with the reason).  Input ``lon``/``lat``/``coord_sys``
    are kept as ``in_lon``/``in_lat``/``in_coord_sys``.

    Raises
    ------
    InputError
        No ``lon``/``lat`` columns, or an unknown ``coord_sys``.

    """
    from gridplan.geocode.assign import check_coordinates

    if "lon" not in table.columns or "lat" not in table.columns:
        raise InputError("needs 'lon' and 'lat' columns", field="lon")
    lon = pd.to_numeric(table["lon"], errors="coerce").to_numpy(dtype=float)
    lat = pd.to_numeric(table["lat"], errors="coerce").to_numpy(dtype=float)
    cs = (
        table["coord_sys"].to_numpy(dtype=object) if "coord_sys" in table.columns else np.full(len(table), "")
    )
    chk = check_coordinates(
        lon, lat, cs, city=geocoder.city, bbox_lonlat=geocoder.bbox_lonlat, to_crs=geocoder.to_crs
    )
    res = reverse_geocode_xy(chk.x, chk.y, geocoder, radius_m=radius_m)
    bad = chk.reason != ""
    res.loc[bad, "reason"] = chk.reason[bad]
    res.loc[chk.ok, "lon"] = np.round(chk.lon[chk.ok], 8)
    res.loc[chk.ok, "lat"] = np.round(chk.lat[chk.ok], 8)
    out = table.rename(
        columns={c: f"in_{c}" for c in ("lon", "lat", "coord_sys") if c in table.columns}
    ).copy()
    out = out.drop(columns=[c for c in REVERSE_COLUMNS if c in out.columns])
    for c in REVERSE_COLUMNS:
        out[c] = res[c].to_numpy()
    return out


def _tree(geocoder: Geocoder) -> shapely.STRtree:
    """Return the library's point tree, built on first use and kept on the geocoder."""
    tree = geocoder.stats.get("_strtree")
    if tree is None:
        lib = geocoder.index.lib
        tree = shapely.STRtree(shapely.points(lib["x"].to_numpy(), lib["y"].to_numpy()))
        geocoder.stats["_strtree"] = tree
    return tree


__all__ = ["REVERSE_COLUMNS", "reverse_geocode", "reverse_geocode_xy"]
