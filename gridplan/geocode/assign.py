"""Coordinates and grid assignment (steps 4–5 of geocoding).

This module owns what happens to positions: converting declared GCJ-02/BD-09/WGS-84 lon/lat to
CGCS2000 and EPSG:4547 metres (through :mod:`gridplan.crs`), flagging coordinates that are swapped,
outside China or outside the city (they are never placed in a grid), choosing between an address
match and coordinates when a row has both (reporting ``located_by`` and disagreements over
:data:`DISAGREE_M`), and giving every located point its base grid (the plan's
:class:`~gridplan.hexindex.GridLookup`, exact at edges) with the grid's community and town — or,
outside every grid, the community polygon's codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridplan import crs
from gridplan.geocode._frames import obj_frame

#: The reason given to rows without address text.
NO_ADDRESS = "no address"
#: Address and coordinates further apart than this (metres) are flagged in ``reason``.
DISAGREE_M = 500.0


@dataclass(frozen=True)
class CoordCheck:
    """Coordinates of a batch of rows after conversion and checks (arrays aligned with the rows).

    Attributes
    ----------
    lon, lat
        CGCS2000 degrees (NaN where missing or unusable).
    x, y
        Compute-CRS metres (NaN where missing or unusable).
    given
        The row carries lon and lat.
    ok
        Usable: given, not swapped, inside the city.
    reason
        Why given coordinates are unusable ('' otherwise).

    """

    lon: np.ndarray
    lat: np.ndarray
    x: np.ndarray
    y: np.ndarray
    given: np.ndarray
    ok: np.ndarray
    reason: np.ndarray


def check_coordinates(
    lon: np.ndarray,
    lat: np.ndarray,
    coord_sys: np.ndarray,
    *,
    city: shapely.Geometry | None,
    bbox_lonlat: tuple[float, float, float, float] | None,
    to_crs: int = crs.COMPUTE_EPSG,
) -> CoordCheck:
    """Convert declared lon/lat to CGCS2000 and EPSG:4547, flagging swapped/outside points.

    Parameters
    ----------
    lon, lat
        Degrees as given (NaN where the row has none).
    coord_sys
        Declared system per row (``cgcs2000``, ``wgs84``, ``gcj02``, ``bd09``; empty = cgcs2000).
    city
        City polygon in *to_crs* (``None``: no outside check).
    bbox_lonlat
        The city's extent in degrees for the swapped check (``None``: China's extent).
    to_crs
        Compute CRS of *city* and of the returned ``x``, ``y``.

    Returns
    -------
    CoordCheck

    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    n = len(lon)
    given = np.isfinite(lon) & np.isfinite(lat)
    reason = np.full(n, "", dtype=object)
    # coord_sys: normalise the distinct values only (an unknown one raises InputError)
    codes, uniq = pd.factorize(np.asarray(coord_sys, dtype=object).reshape(n), use_na_sentinel=False)
    canon = np.array([crs.normalize_coord_sys(u if isinstance(u, str) else None) for u in uniq], dtype=object)
    systems = canon[codes] if n else np.empty(0, dtype=object)
    swapped = np.zeros(n, dtype=bool)
    swapped[given] = crs.is_swapped_lonlat(lon[given], lat[given], bbox_lonlat=bbox_lonlat or crs.CHINA_BBOX)
    out_cn = np.zeros(n, dtype=bool)
    out_cn[given] = crs.is_out_of_china(lon[given], lat[given])
    out_cn &= ~swapped
    reason[swapped] = "lon/lat look swapped; not placed"
    reason[out_cn] = "coordinates outside China; not placed"
    lon_c = np.full(n, np.nan)
    lat_c = np.full(n, np.nan)
    x = np.full(n, np.nan)
    y = np.full(n, np.nan)
    conv = given & ~swapped & ~out_cn
    if conv.any():
        for system in np.unique(canon):
            sel = conv & (systems == system)
            if sel.any():
                lon_c[sel], lat_c[sel] = crs.to_wgs84(lon[sel], lat[sel], str(system))
        x[conv], y[conv] = crs.lonlat_to_xy(lon_c[conv], lat_c[conv], to_crs=to_crs)
    outside = np.zeros(n, dtype=bool)
    if city is not None and conv.any():
        outside[conv] = crs.is_outside(x[conv], y[conv], city)
        reason[outside] = "coordinates outside the city; not placed"
    ok = conv & ~outside
    for arr in (lon_c, lat_c, x, y):
        arr[~ok] = np.nan
    return CoordCheck(lon_c, lat_c, x, y, given, ok, reason)


@dataclass(frozen=True)
class AreaCodes:
    """Lookups from positions and names to grid, community and town codes."""

    grid_lookup: object | None
    grid_community: dict[str, str]
    grid_town: dict[str, str]
    communities: gpd.GeoDataFrame | None
    community_code_of: dict[str, str]
    town_code_of: dict[str, str]

    def codes_at(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(grid_code, community_code, town_code) of points; '' where none (NaN points give '')."""
        n = len(x)
        grid = np.full(n, "", dtype=object)
        comm = np.full(n, "", dtype=object)
        town = np.full(n, "", dtype=object)
        fin = np.isfinite(x) & np.isfinite(y)
        if not fin.any():
            return grid, comm, town
        if self.grid_lookup is not None:
            g = self.grid_lookup.assign_xy(x[fin], y[fin])  # type: ignore[attr-defined]
            g = np.array(["" if v is None else str(v) for v in g], dtype=object)
            grid[fin] = g
            comm[fin] = [self.grid_community.get(v, "") for v in g]
            town[fin] = [self.grid_town.get(v, "") for v in g]
        miss = fin & (comm == "")
        if miss.any() and self.communities is not None and len(self.communities):
            pts = shapely.points(x[miss], y[miss])
            pi, ci = self.communities.sindex.query(pts, predicate="intersects")
            first = pd.Series(ci, index=pi).groupby(level=0).min()
            cc = self.communities["community_code"].astype(str).to_numpy(dtype=object)
            tc = self.communities["town_code"].astype(str).to_numpy(dtype=object)
            idx = np.flatnonzero(miss)[first.index.to_numpy()]
            comm[idx] = cc[first.to_numpy()]
            town[idx] = tc[first.to_numpy()]
        return grid, comm, town


def choose_position(
    addr: pd.DataFrame, coords: CoordCheck, *, disagree_m: float = DISAGREE_M
) -> pd.DataFrame:
    """Combine the address match and the coordinates of each row.

    Rules: a house-level address match locates the row (``located_by`` ``both`` when usable
    coordinates agree within *disagree_m*, else ``address`` and the distance is flagged in
    ``reason``); otherwise usable coordinates locate it (``match_level`` ``coordinate``); otherwise
    the address match at whatever level it reached.  Unusable coordinates are never placed.

    Parameters
    ----------
    addr
        Per-row address results (columns of :data:`gridplan.geocode.match.RESULT_COLUMNS`).
    coords
        :func:`check_coordinates` for the same rows.
    disagree_m
        Distance (metres) over which address and coordinates are flagged as disagreeing.

    Returns
    -------
    pandas.DataFrame
        *addr* updated, plus ``located_by`` (``address``, ``coordinates``, ``both`` or '').

    """
    out = addr
    n = len(out)
    status = out["status"].to_numpy(dtype=object).copy()
    level = out["match_level"].to_numpy(dtype=object).copy()
    score = out["score"].to_numpy(dtype=float).copy()
    reason = out["reason"].to_numpy(dtype=object).copy()
    x = out["x"].to_numpy(dtype=float).copy()
    y = out["y"].to_numpy(dtype=float).copy()
    aid = out["address_id"].to_numpy(dtype=object).copy()
    matched = out["matched_address"].to_numpy(dtype=object).copy()
    comm_key = out["community_key"].to_numpy(dtype=object).copy()
    town = out["town"].to_numpy(dtype=object).copy()
    located = np.full(n, "", dtype=object)
    house = (status == "M") & (level == "house")
    addr_point = (status == "M") & np.isfinite(x)
    dist = np.hypot(x - coords.x, y - coords.y)
    both = house & coords.ok
    agree = both & (dist <= disagree_m)
    located[house] = "address"
    located[agree] = "both"
    far = both & ~agree
    reason[far] = [
        _join(r, f"address and coordinates disagree by {d:,.0f} m; address used")
        for r, d in zip(reason[far], dist[far], strict=True)
    ]
    use_coord = ~house & coords.ok
    prior = [
        ""
        if r == NO_ADDRESS
        else _join(f"address: {s} {lv}".strip() if s == "M" else "address not matched", r)
        for s, lv, r in zip(status[use_coord], level[use_coord], reason[use_coord], strict=True)
    ]
    reason[use_coord] = prior
    status[use_coord] = "M"
    level[use_coord] = "coordinate"
    score[use_coord] = 100.0
    x[use_coord], y[use_coord] = coords.x[use_coord], coords.y[use_coord]
    aid[use_coord] = ""
    matched[use_coord] = ""
    comm_key[use_coord] = ""
    town[use_coord] = ""
    located[use_coord] = "coordinates"
    rest = ~house & ~coords.ok & (status == "M")
    located[rest] = "address"
    located[rest & ~addr_point & ~np.isfinite(x)] = "address"
    bad = coords.reason != ""
    reason[bad] = [_join(r, c) for r, c in zip(reason[bad], coords.reason[bad], strict=True)]
    cols = {c: out[c].to_numpy() for c in out.columns}
    cols.update(
        {
            "status": status,
            "match_level": level,
            "score": score,
            "reason": reason,
            "x": x,
            "y": y,
            "address_id": aid,
            "matched_address": matched,
            "community_key": comm_key,
            "town": town,
            "located_by": located,
        }
    )
    return obj_frame(cols, index=out.index)


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a and b else (a or b)


__all__ = ["DISAGREE_M", "AreaCodes", "CoordCheck", "check_coordinates", "choose_position"]
