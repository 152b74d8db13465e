"""Reference geometry of the sample city (private to :mod:`gridplan.sample`).

Owns the city outline over Dongguan's real extent, the clean town and community partitions
(Voronoi cells of real town centres / relaxed random seeds, clipped), and the street grid with
buildings, house numbers and standard addresses.  Everything is vectorised per town (32 loops at
most); the per-building work is numpy and shapely 2 array functions.

Buildings sit on a lattice of 25 m lots inside 200 m street blocks of a per-town rotated grid, so
each building has exactly one nearest street, lots never overlap, and house numbers (odd on one
side, even on the other) increase along every street.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import shapely
import shapely.affinity
from numpy.typing import NDArray

from gridplan.crs import get_transformer
from gridplan.sample import names

CELL_M = 25.0
BLOCK_M = 200.0
BUILDING_HALF_M = 8.0
#: share of building draws spread uniformly over a town (the rest cluster around centres)
UNIFORM_SHARE = 0.2

# Rough outline of Dongguan (lon, lat, CGCS2000), clockwise from the north-west.
_OUTLINE_LONLAT = (
    (113.53, 23.08), (113.57, 23.11), (113.63, 23.13), (113.70, 23.14), (113.78, 23.145),
    (113.86, 23.14), (113.92, 23.12), (113.98, 23.11), (114.05, 23.09), (114.12, 23.05),
    (114.20, 23.01), (114.25, 22.97), (114.24, 22.90), (114.22, 22.83), (114.20, 22.77),
    (114.16, 22.70), (114.10, 22.69), (114.04, 22.74), (113.96, 22.78), (113.88, 22.76),
    (113.82, 22.74), (113.75, 22.76), (113.70, 22.77), (113.64, 22.80), (113.59, 22.84),
    (113.55, 22.88), (113.53, 22.94), (113.55, 22.99), (113.53, 23.03),
)
CITY_AREA_M2 = 2_460e6


def lonlat_to_xy(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> tuple[NDArray[Any], ...]:
    """CGCS2000 lon/lat → EPSG:4547 x/y (metres)."""
    x, y = get_transformer(4490, 4547).transform(np.asarray(lon, float), np.asarray(lat, float))
    return np.asarray(x), np.asarray(y)


def xy_to_lonlat(x: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[NDArray[Any], ...]:
    """EPSG:4547 x/y → CGCS2000 lon/lat."""
    lon, lat = get_transformer(4547, 4490).transform(np.asarray(x, float), np.asarray(y, float))
    return np.asarray(lon), np.asarray(lat)


def city_outline() -> shapely.Polygon:
    """Dongguan-like outline in EPSG:4547: a wavy version of the real extent, 2,460 km²."""
    lon, lat = np.array(_OUTLINE_LONLAT).T
    x, y = lonlat_to_xy(lon, lat)
    ring = shapely.segmentize(shapely.Polygon(np.c_[x, y]), 400.0)
    xy = shapely.get_coordinates(ring)[:-1]
    cx, cy = xy.mean(axis=0)
    ang = np.arctan2(xy[:, 1] - cy, xy[:, 0] - cx)
    wobble = 1.0 + 0.012 * np.sin(7 * ang) + 0.008 * np.sin(17 * ang + 1.3) + 0.004 * np.sin(41 * ang)
    xy = np.c_[cx + (xy[:, 0] - cx) * wobble, cy + (xy[:, 1] - cy) * wobble]
    poly = shapely.Polygon(np.r_[xy, xy[:1]])
    k = np.sqrt(CITY_AREA_M2 / poly.area)
    xy = np.c_[cx + (xy[:, 0] - cx) * k, cy + (xy[:, 1] - cy) * k]
    xy = np.round(xy, 3)
    return shapely.Polygon(np.r_[xy, xy[:1]])


def _voronoi_cells(seeds: NDArray[np.float64], clip: shapely.Geometry) -> NDArray[np.object_]:
    """Voronoi cells of *seeds* (in seed order) clipped to *clip*."""
    vor = shapely.voronoi_polygons(
        shapely.multipoints(seeds), extend_to=shapely.buffer(shapely.envelope(clip), 5000.0), ordered=True
    )
    return shapely.intersection(shapely.get_parts(vor), clip)


def _power_cells(sites: NDArray[np.float64], w: NDArray[np.float64], clip: shapely.Geometry) -> NDArray[Any]:
    """Cells of the power diagram of *sites* with weights *w* (m²), clipped; computed cell by cell."""
    n = len(sites)
    big = 1e6
    cells = np.empty(n, dtype=object)
    sq = (sites**2).sum(axis=1)
    d2 = ((sites[:, None, :] - sites[None, :, :]) ** 2).sum(axis=2)
    for t in range(n):
        s = np.argsort(d2[t], kind="stable")[1:13]  # a cell's neighbours are among its 12 nearest sites
        nvec = sites[s] - sites[t]
        norm = np.hypot(nvec[:, 0], nvec[:, 1])
        nhat = nvec / norm[:, None]
        h = (sq[s] - sq[t] - w[s] + w[t]) / 2.0  # the cell is {p : p·nvec <= h}
        p0 = nhat * (h / norm)[:, None]
        u = np.c_[-nhat[:, 1], nhat[:, 0]]
        far = big * nhat
        quad = np.stack([p0 + big * u, p0 - big * u, p0 - big * u - far, p0 + big * u - far], axis=1)
        cells[t] = shapely.intersection(shapely.intersection_all(shapely.polygons(quad)), clip)
    return cells


def power_partition(
    sites: NDArray[np.float64], target_m2: NDArray[np.float64], clip: shapely.Geometry, *,
    iterations: int = 80,
) -> NDArray[np.object_]:
    """Partition *clip* into cells around *sites* whose areas approach *target_m2* (power diagram).

    Weights are adjusted iteratively (a cell's area grows by about perimeter × Δw / (2 d) when its
    weight grows by Δw); the final cells are rebuilt from one noded linework (polygonize), so
    neighbouring cells share exactly the same edges — a clean coverage.
    """
    origin = sites.mean(axis=0)
    local = sites - origin
    clip_l = shapely.affinity.translate(clip, -origin[0], -origin[1])
    target = target_m2 / target_m2.sum() * clip_l.area
    w = np.zeros(len(sites))
    spacing = np.sqrt(clip_l.area / len(sites))
    for _ in range(iterations):
        cells = _power_cells(local, w, clip_l)
        err = target - shapely.area(cells)
        if np.max(np.abs(err) / target) < 0.02:
            break
        w += 0.8 * 2 * spacing * err / np.maximum(shapely.length(cells), 1.0)
    cells = _power_cells(local, w, clip_l)
    lines = shapely.union_all(np.r_[shapely.boundary(cells), [shapely.boundary(clip_l)]])
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(lines)))
    rep = shapely.get_coordinates(shapely.point_on_surface(faces))
    power = ((rep[:, None, :] - local[None, :, :]) ** 2).sum(axis=2) - w[None, :]
    owner = np.argmin(power, axis=1)
    out = np.array([shapely.union_all(faces[owner == t]) for t in range(len(sites))], dtype=object)
    return np.array([shapely.affinity.translate(g, origin[0], origin[1]) for g in out], dtype=object)


@cache
def town_cells() -> tuple[shapely.Polygon, NDArray[np.object_], NDArray[np.float64]]:
    """Return the city outline, its 32 towns (areas ≈ the real ones) and the town centres (x, y).

    Seed-independent, so computed once per process.
    """
    table = names.town_table()
    cx, cy = lonlat_to_xy(table["lon"].to_numpy(), table["lat"].to_numpy())
    city = city_outline()
    centres = np.c_[cx, cy]
    cells = power_partition(centres, table["area_km2"].to_numpy(float) * 1e6, city)
    return city, cells, centres


def _random_in(geom: shapely.Geometry, n: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """*n* uniform random points inside *geom* (rejection sampling from its bounds)."""
    x0, y0, x1, y1 = shapely.bounds(geom)
    shapely.prepare(geom)
    out = np.empty((0, 2))
    while len(out) < n:
        m = max(4 * n, 64)
        cand = np.c_[rng.uniform(x0, x1, m), rng.uniform(y0, y1, m)]
        out = np.r_[out, cand[shapely.contains_xy(geom, cand[:, 0], cand[:, 1])]]
    return out[:n]


def relaxed_partition(
    geom: shapely.Geometry, n: int, rng: np.random.Generator, *, iterations: int = 3
) -> tuple[NDArray[np.object_], NDArray[np.float64]]:
    """Split *geom* into *n* compact cells (Lloyd-relaxed Voronoi); return (cells, seeds)."""
    seeds = _random_in(geom, n, rng)
    if n == 1:
        return np.array([geom], dtype=object), seeds
    for _ in range(iterations):
        cells = _voronoi_cells(seeds, geom)
        cent = shapely.get_coordinates(shapely.centroid(cells))
        if len(cent) == n:
            seeds = cent
    return _voronoi_cells(seeds, geom), seeds


@dataclass(frozen=True)
class TownFrame:
    """The rotated street grid of one town: origin, rotation and road names."""

    origin: tuple[float, float]
    theta: float


def _rotate(x: NDArray[Any], y: NDArray[Any], frame: TownFrame) -> tuple[NDArray[Any], ...]:
    ox, oy = frame.origin
    c, s = np.cos(frame.theta), np.sin(frame.theta)
    dx, dy = x - ox, y - oy
    return dx * c + dy * s, -dx * s + dy * c


def _unrotate(u: NDArray[Any], v: NDArray[Any], frame: TownFrame) -> tuple[NDArray[Any], ...]:
    ox, oy = frame.origin
    c, s = np.cos(frame.theta), np.sin(frame.theta)
    return ox + u * c - v * s, oy + u * s + v * c


def town_roads(
    town: shapely.Geometry, frame: TownFrame, rng: np.random.Generator, cores: list[str]
) -> pd.DataFrame:
    """Street grid lines of one town clipped to it: orient (0 = along u, 1 = along v), index, name."""
    tx, ty = shapely.get_coordinates(town).T
    u, v = _rotate(tx, ty, frame)
    rows = []
    for orient, (lo, hi, alo, ahi) in enumerate(((v.min(), v.max(), u.min(), u.max()),
                                                 (u.min(), u.max(), v.min(), v.max()))):
        idx = np.arange(np.ceil(lo / BLOCK_M), np.floor(hi / BLOCK_M) + 1).astype(int)
        a = np.full(len(idx), alo - 10.0)
        b = np.full(len(idx), ahi + 10.0)
        off = idx * BLOCK_M
        if orient == 0:
            x0, y0 = _unrotate(a, off, frame)
            x1, y1 = _unrotate(b, off, frame)
        else:
            x0, y0 = _unrotate(off, a, frame)
            x1, y1 = _unrotate(off, b, frame)
        lines = shapely.linestrings(np.stack([np.c_[x0, y0], np.c_[x1, y1]], axis=1))
        rows.append(pd.DataFrame({"orient": orient, "index": idx, "geometry": lines}))
    df = pd.concat(rows, ignore_index=True)
    df["geometry"] = shapely.intersection(df["geometry"].to_numpy(), town)
    df = df[~shapely.is_empty(df["geometry"].to_numpy())].reset_index(drop=True)
    n = len(df)
    picked = rng.choice(len(cores), size=n, replace=False)
    numeral = [i for i, c in enumerate(cores) if c in names.NUMERAL_CORES]
    if n > 1 and numeral and not np.isin(picked, numeral).any():  # one name with numerals (三元路) per town
        picked[int(rng.integers(0, n))] = numeral[int(rng.integers(0, len(numeral)))]
    kind = np.where(df["index"].to_numpy() % 6 == 0, 0, np.where(df["index"].to_numpy() % 6 == 3, 2,
                    np.where(df["index"].to_numpy() % 6 == 5, 3, 1)))
    suffix = np.array([s for _, s in names.ROAD_KINDS], dtype=object)[kind]
    klass = np.array([c for c, _ in names.ROAD_KINDS], dtype=object)[kind]
    direction = names.road_direction(rng, n)
    direction[kind == 3] = ""
    core = np.asarray(cores, dtype=object)[picked]
    df["road_name"] = direction + core + suffix
    df["road_class"] = klass
    return df


def town_buildings(
    town: shapely.Geometry,
    frame: TownFrame,
    centres: NDArray[np.float64],
    n_target: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Place the buildings of one town on the lot lattice, clustered around *centres* (first: town centre).

    Returns a frame with x, y (lot centre), orient/index (street), side, along (lot index along the
    street) and depth (lot ring away from the street).
    """
    if n_target <= 0:
        return pd.DataFrame(columns=["x", "y", "orient", "index", "side", "along", "depth"])
    inner = shapely.buffer(town, -(BUILDING_HALF_M * 1.5 + 2))
    shapely.prepare(inner)
    shapely.prepare(town)
    k = len(centres)
    weights = rng.lognormal(0.0, 0.8, k)
    weights[0] = weights[1:].sum() * 0.35 if k > 1 else 1.0
    weights /= weights.sum()
    sigma = rng.uniform(250.0, 700.0, k)
    sigma[0] = 1000.0
    x0, y0, x1, y1 = shapely.bounds(town)
    got: list[pd.DataFrame] = []
    seen: set[int] = set()
    have = 0
    for _ in range(6):
        m = int(n_target * 1.8) + 64
        n_uni = int(m * UNIFORM_SHARE)
        comp = rng.choice(k, size=m - n_uni, p=weights)
        px = np.r_[centres[comp, 0] + rng.normal(0, 1, m - n_uni) * sigma[comp], rng.uniform(x0, x1, n_uni)]
        py = np.r_[centres[comp, 1] + rng.normal(0, 1, m - n_uni) * sigma[comp], rng.uniform(y0, y1, n_uni)]
        u, v = _rotate(px, py, frame)
        i = np.floor(u / CELL_M).astype(np.int64)
        j = np.floor(v / CELL_M).astype(np.int64)
        key = (i + 2**20) * 2**21 + (j + 2**20)
        _, first = np.unique(key, return_index=True)
        first = np.sort(first)
        i, j, key = i[first], j[first], key[first]
        if seen:
            fresh = ~np.isin(key, np.fromiter(seen, np.int64, len(seen)))
            i, j, key = i[fresh], j[fresh], key[fresh]
        df, ok = _lots(i, j, frame, inner, town)
        df = df[ok]
        seen.update(key[ok].tolist())
        got.append(df)
        have += len(df)
        if have >= n_target:
            break
    out = pd.concat(got, ignore_index=True).iloc[:n_target]
    return out.reset_index(drop=True)


def _lots(
    i: NDArray[np.int64], j: NDArray[np.int64], frame: TownFrame, inner: shapely.Geometry,
    town: shapely.Geometry,
) -> tuple[pd.DataFrame, NDArray[np.bool_]]:
    """Lots (i, j) of the lattice as rows x, y, orient, index, side, along, depth; and which are usable.

    A lot is usable when its centre is inside the town (less a margin) and its street's foot is too.
    """
    uc, vc = (i + 0.5) * CELL_M, (j + 0.5) * CELL_M
    x, y = _unrotate(uc, vc, frame)
    a = np.mod(uc, BLOCK_M)
    b = np.mod(vc, BLOCK_M)
    du, dv = np.minimum(a, BLOCK_M - a), np.minimum(b, BLOCK_M - b)
    orient = np.where(dv <= du, 0, 1)  # 0: street along u (constant v)
    road_v = np.round(vc / BLOCK_M) * BLOCK_M
    road_u = np.round(uc / BLOCK_M) * BLOCK_M
    fu = np.where(orient == 0, uc, road_u)
    fv = np.where(orient == 0, road_v, vc)
    fx, fy = _unrotate(fu, fv, frame)
    ok = shapely.contains_xy(inner, x, y) & shapely.contains_xy(town, fx, fy)
    df = pd.DataFrame({
        "x": x, "y": y, "orient": orient,
        "index": np.where(orient == 0, np.round(vc / BLOCK_M), np.round(uc / BLOCK_M)).astype(np.int64),
        "side": np.where(orient == 0, vc > road_v, uc > road_u).astype(np.int64),
        "along": np.where(orient == 0, i, j),
        "depth": np.floor(np.where(orient == 0, dv, du) / CELL_M).astype(np.int64),
    })
    return df, ok


def block_lots(town: shapely.Geometry, frame: TownFrame, bu: int, bv: int) -> pd.DataFrame:
    """Every usable lot of the street block (bu, bv) of the town's grid (64 when inside the town)."""
    per = int(BLOCK_M / CELL_M)
    i, j = np.meshgrid(np.arange(per) + bu * per, np.arange(per) + bv * per, indexing="ij")
    inner = shapely.buffer(town, -(BUILDING_HALF_M * 1.5 + 2))
    df, ok = _lots(i.ravel().astype(np.int64), j.ravel().astype(np.int64), frame, inner, town)
    return df[ok].reset_index(drop=True)


def block_polygon(frame: TownFrame, bu: int, bv: int) -> shapely.Polygon:
    """Return the square of street block (bu, bv) between its four street centrelines."""
    u = np.array([0, 1, 1, 0, 0]) * BLOCK_M + bu * BLOCK_M
    v = np.array([0, 0, 1, 1, 0]) * BLOCK_M + bv * BLOCK_M
    x, y = _unrotate(u.astype(float), v.astype(float), frame)
    return shapely.Polygon(np.round(np.c_[x, y], 3))


def block_of(
    x: NDArray[Any], y: NDArray[Any], frame: TownFrame
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Return the street block (bu, bv) holding each point."""
    u, v = _rotate(np.asarray(x, float), np.asarray(y, float), frame)
    return np.floor(u / BLOCK_M).astype(np.int64), np.floor(v / BLOCK_M).astype(np.int64)


def building_polygons(
    x: NDArray[Any], y: NDArray[Any], theta: NDArray[Any], half: NDArray[Any] | None = None
) -> NDArray[np.object_]:
    """Rotated squares centred on (x, y): 16 m (half side BUILDING_HALF_M) unless *half* says."""
    unit = np.array([(-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1)], dtype=float)
    h = np.full(len(x), BUILDING_HALF_M) if half is None else np.asarray(half, float)
    cu, cv = unit[None, :, 0] * h[:, None], unit[None, :, 1] * h[:, None]
    c, s = np.cos(theta)[:, None], np.sin(theta)[:, None]
    px = x[:, None] + cu * c - cv * s
    py = y[:, None] + cu * s + cv * c
    return shapely.polygons(np.round(np.stack([px, py], axis=-1), 3))


def house_numbers(b: pd.DataFrame) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """House number (odd/even by side, increasing along the street), building ordinal and lot size.

    *b* needs columns town, orient, index, side, along, depth.
    """
    street_key = (((b["town"].to_numpy().astype(np.int64) * 2 + b["orient"].to_numpy()) * 2**20
                   + b["index"].to_numpy() + 2**19) * 2 + b["side"].to_numpy())
    lot_key = street_key * 2**24 + b["along"].to_numpy() + 2**23
    _, lot_id, lot_size = np.unique(lot_key, return_inverse=True, return_counts=True)
    # rank lots along each street side
    lots = pd.DataFrame({"lot": lot_id, "town": b["town"].to_numpy(), "orient": b["orient"].to_numpy(),
                         "index": b["index"].to_numpy(), "side": b["side"].to_numpy(),
                         "along": b["along"].to_numpy()}).drop_duplicates("lot")
    lots = lots.sort_values(["town", "orient", "index", "side", "along"])
    lots["rank"] = lots.groupby(["town", "orient", "index", "side"]).cumcount()
    rank = np.empty(lot_size.shape[0], dtype=np.int64)
    rank[lots["lot"].to_numpy()] = lots["rank"].to_numpy()
    number = 2 * rank[lot_id] + 1 + b["side"].to_numpy()
    # building ordinal within the lot by depth
    order = pd.DataFrame({"lot": lot_id, "depth": b["depth"].to_numpy()})
    ranked = order.sort_values(["lot", "depth"]).groupby("lot").cumcount()
    ordinal = ranked.reindex(order.index).to_numpy() + 1
    return number, ordinal, lot_size[lot_id]
