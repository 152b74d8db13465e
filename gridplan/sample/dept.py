"""Departmental grid layers of the sample city, with planted defects (private to :mod:`gridplan.sample`).

Each department draws its own partition of the city (Voronoi cells of population-weighted seeds,
relaxed; the civil-affairs layer subdivides communities instead), then the cells are digitised "by
hand": every vertex is moved 0.5–5 m independently per polygon (so shared edges disagree, leaving
slivers, small gaps and overlaps), vertices on the city outline only by millimetres.  Finally a few
bigger defects are planted and recorded — gaps, overlaps, bowtie rings, duplicate ids, a NULL name,
grids sticking out of the city, civil grids crossing community lines — each with a point inside it.
"""

from __future__ import annotations

import re
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from gridplan.sample import names
from gridplan.sample.geo import _voronoi_cells, relaxed_partition

#: department → (id prefix, name label)
DEPARTMENTS: dict[str, tuple[str, str]] = {
    "police": ("GA", "警务网格"),
    "fire": ("XF", "消防网格"),
    "urban": ("CG", "城管网格"),
    "civil": ("MZ", "民政网格"),
    "safety": ("AJ", "安监网格"),
}

#: planted defects per department at scale "small" (city: ×3)
DEFECT_PLAN: dict[str, dict[str, int]] = {
    "police": {"gap": 2, "overlap": 2, "invalid_geometry": 1, "duplicate_id": 1},
    "fire": {"gap": 1, "overlap": 1, "invalid_geometry": 1, "outside_boundary": 1},
    "urban": {"overlap": 1, "duplicate_id": 1, "missing_value": 1, "gap": 1},
    "civil": {"crosses_community": 2, "invalid_geometry": 1, "gap": 1},
    "safety": {"gap": 1, "overlap": 1, "duplicate_id": 1, "invalid_geometry": 1, "outside_boundary": 1},
}

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(h: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """splitmix64 finaliser (array-wise, wrapping arithmetic)."""
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def _hash_uniform(xy: NDArray[np.float64], part: NDArray[np.int64], salt: int) -> tuple[NDArray, NDArray]:
    """Two uniforms in [0, 1) per (coordinate, polygon), stable for repeated (closing) vertices."""
    xi = np.round(xy[:, 0] * 1000).astype(np.int64).view(np.uint64)
    yi = np.round(xy[:, 1] * 1000).astype(np.int64).view(np.uint64)
    p = part.astype(np.int64).view(np.uint64) + np.uint64(salt & 0xFFFFFFFF) * np.uint64(0x100000001)
    h1 = _mix(_mix(xi + np.uint64(0x9E3779B97F4A7C15)) ^ yi ^ _mix(p))
    h2 = _mix(h1 ^ np.uint64(0x632BE59BD9B4E019))
    scale = float(2**53)
    return (h1 >> np.uint64(11)).astype(np.float64) / scale, (h2 >> np.uint64(11)).astype(np.float64) / scale


def perturb(
    geoms: NDArray[np.object_], city: shapely.Geometry, *, salt: int, segment_m: float = 80.0
) -> NDArray[np.object_]:
    """Move every vertex 0.5–5 m (city-outline vertices 1–5 mm), independently per polygon."""
    dense = shapely.segmentize(geoms, segment_m)
    xy, part = shapely.get_coordinates(dense, return_index=True)
    r1, r2 = _hash_uniform(xy, part, salt)
    inner = shapely.buffer(city, -0.01)
    shapely.prepare(inner)
    on_outline = ~shapely.contains_xy(inner, xy[:, 0], xy[:, 1])
    mag = np.where(on_outline, 0.001 + 0.004 * r1, 0.5 + 4.5 * r1)
    ang = 2 * np.pi * r2
    moved = np.round(xy + np.c_[mag * np.cos(ang), mag * np.sin(ang)], 4)
    out = shapely.transform(dense, lambda _c: moved)
    bad = ~shapely.is_valid(out)
    out[bad] = dense[bad]
    return out


def _civil_cells(communities: gpd.GeoDataFrame, households: NDArray, n: int, rng: np.random.Generator):
    share = households / max(households.sum(), 1)
    k = np.maximum(1, np.round(share * n)).astype(int)
    cells, comm = [], []
    for i, geom in enumerate(communities.geometry.to_numpy()):
        c, _ = relaxed_partition(geom, int(k[i]), rng, iterations=2)
        cells.append(c)
        comm.append(np.full(len(c), i))
    return np.concatenate(cells), np.concatenate(comm)


def _seed_cells(city: shapely.Geometry, pts: NDArray, weights: NDArray, n: int, rng: np.random.Generator):
    n_pop = int(n * 0.6)
    pick = rng.choice(len(pts), size=n_pop, replace=False, p=weights / weights.sum())
    seeds = pts[pick] + rng.normal(0, 30.0, (n_pop, 2))
    x0, y0, x1, y1 = shapely.bounds(city)
    uni = np.c_[rng.uniform(x0, x1, 4 * n), rng.uniform(y0, y1, 4 * n)]
    uni = uni[shapely.contains_xy(city, uni[:, 0], uni[:, 1])][: n - n_pop]
    seeds = np.r_[seeds, uni]
    seeds = seeds[shapely.contains_xy(city, seeds[:, 0], seeds[:, 1])]
    for _ in range(2):
        cells = _voronoi_cells(seeds, city)
        seeds = shapely.get_coordinates(shapely.point_on_surface(cells))
    return _voronoi_cells(seeds, city)


def single_parts(cells: NDArray[np.object_]) -> NDArray[np.object_]:
    """Make multi-part cells single: stray parts join the neighbour sharing the longest edge with them."""
    parts, idx = shapely.get_parts(cells, return_index=True)
    if len(parts) == len(cells):
        return cells
    area = shapely.area(parts)
    order = np.lexsort((-area, idx))
    is_first = np.r_[True, idx[order][1:] != idx[order][:-1]]
    main = np.zeros(len(parts), dtype=bool)
    main[order[is_first]] = True
    out = np.empty(len(cells), dtype=object)
    out[idx[main]] = parts[main]
    tree = shapely.STRtree(out)
    for k in np.flatnonzero(~main):
        nb = tree.query(shapely.buffer(parts[k], 0.01), predicate="intersects")
        nb = nb[nb != idx[k]]
        shared = shapely.length(shapely.intersection(shapely.boundary(out[nb]),
                                                     shapely.buffer(shapely.boundary(parts[k]), 0.01)))
        target = int(nb[np.argmax(shared)]) if len(nb) and shared.max() > 0 else int(idx[k])
        merged = shapely.union(out[target], parts[k])
        if shapely.get_num_geometries(merged) > 1:
            merged = shapely.union(out[target], parts[k], grid_size=0.001)
        out[target] = merged
    return out


def _pt(geom: shapely.Geometry) -> tuple[float, float]:
    """Return a point inside *geom* (its largest part), rounded to mm."""
    parts = shapely.get_parts(shapely.make_valid(geom))
    parts = parts[shapely.area(parts) > 0] if (shapely.area(parts) > 0).any() else parts
    p = shapely.point_on_surface(parts[np.argmax(shapely.area(parts))])
    return round(float(shapely.get_x(p)), 3), round(float(shapely.get_y(p)), 3)


def dept_layer(
    dept: str,
    *,
    city: shapely.Geometry,
    towns: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame,
    community_households: NDArray,
    pop_xy: NDArray,
    pop_w: NDArray,
    n: int,
    rng: np.random.Generator,
    salt: int,
    defect_factor: int,
) -> tuple[gpd.GeoDataFrame, list[dict[str, Any]]]:
    """One departmental layer (`dept_grid_id`, `dept_grid_name`) and the defects planted in it."""
    prefix, label = DEPARTMENTS[dept]
    if dept == "civil":
        clean, comm_of = _civil_cells(communities, community_households, n, rng)
    else:
        clean = _seed_cells(city, pop_xy, pop_w, n, rng)
        comm_of = None
    ok = ~shapely.is_empty(clean) & (shapely.area(clean) > 1.0)
    clean = single_parts(clean[ok])
    if comm_of is not None:
        comm_of = comm_of[ok]
    geoms = perturb(clean, city, salt=salt)
    m = len(geoms)
    ids = np.array([f"{prefix}{i + 1:06d}" for i in range(m)], dtype=object)
    # names: town of the grid + label + sequence within the town
    rep = shapely.point_on_surface(clean)
    tree = shapely.STRtree(towns.geometry.to_numpy())
    pi, ti = tree.query(rep, predicate="within")
    town_idx = np.zeros(m, dtype=int)
    town_idx[pi] = ti
    short = np.array([names.short_town_name(t) for t in towns["town_name"]], dtype=object)
    seq = pd.Series(town_idx).groupby(town_idx).cumcount().to_numpy() + 1
    grid_names = short[town_idx] + label + pd.Series(seq).map("{:03d}".format).to_numpy().astype(object)
    planted: list[dict[str, Any]] = []
    plan = {k: v * defect_factor for k, v in DEFECT_PLAN[dept].items()}
    geoms, ids, grid_names, keep = _plant(
        dept, geoms, clean, ids, grid_names, city, communities, comm_of, plan, rng, planted
    )
    gdf = gpd.GeoDataFrame(
        {"dept_grid_id": ids[keep], "dept_grid_name": grid_names[keep]}, geometry=geoms[keep], crs="EPSG:4547"
    )
    return gdf, planted


def _plant(dept, geoms, clean, ids, grid_names, city, communities, comm_of, plan, rng, planted):
    """Plant the defects of *plan*; return new arrays and a keep mask."""
    layer = f"dept_{dept}"
    m = len(geoms)
    geoms = geoms.copy()
    keep = np.ones(m, dtype=bool)
    tree = shapely.STRtree(clean)
    left, right = tree.query(clean, predicate="intersects")
    sel = left < right
    left, right = left[sel], right[sel]
    shared = shapely.intersection(shapely.boundary(clean[left]), shapely.boundary(clean[right]))
    length = shapely.length(shared)
    good = length > 120.0
    pairs = np.c_[left[good], right[good]]
    shared = shared[good]
    outline = shapely.boundary(city)
    on_outline = shapely.dwithin(clean, outline, 1.0)
    order = rng.permutation(len(pairs))
    used: set[int] = set()
    used_pts: list[tuple[float, float]] = []

    def far(p: shapely.Point) -> bool:
        return all((p.x - x) ** 2 + (p.y - y) ** 2 > 600.0**2 for x, y in used_pts)

    def next_pair(cond=None):
        for k in order:
            a, b = (int(v) for v in pairs[k])
            if a in used or b in used or on_outline[a] or on_outline[b]:
                continue
            if cond is not None and not cond(a, b):
                continue
            mid = shapely.line_interpolate_point(shapely.line_merge(shared[k]), 0.5, normalized=True)
            if mid.geom_type != "Point" or shapely.is_empty(mid) or not far(mid):
                continue
            used.update((a, b))
            used_pts.append((mid.x, mid.y))
            return a, b, mid
        return None

    def next_single(cond=None):
        for a in rng.permutation(m):
            a = int(a)
            if a in used or (cond is not None and not cond(a)):
                continue
            p = shapely.point_on_surface(clean[a])
            if not far(p):
                continue
            used.add(a)
            used_pts.append((p.x, p.y))
            return a
        return None

    for _ in range(plan.get("gap", 0)):
        got = next_pair()
        if got is None:
            break
        a, b, mid = got
        disc = shapely.buffer(mid, float(rng.uniform(35, 55)))
        hit = shapely.STRtree(geoms).query(disc, predicate="intersects")
        geoms[hit] = shapely.difference(geoms[hit], disc)
        planted.append({"layer": layer, "feature_id": "", "issue": "gap",
                        "x": round(mid.x, 3), "y": round(mid.y, 3),
                        "detail": f"disc of {shapely.area(disc):.0f} m² removed between "
                                  f"{ids[a]} and {ids[b]}"})
    for _ in range(plan.get("overlap", 0)):
        got = next_pair()
        if got is None:
            break
        a, b, mid = got
        disc = shapely.buffer(mid, float(rng.uniform(35, 55)))
        # the disc cut to the clean pair reaches across the hand-drawn sliver gap, so A stays one polygon
        geoms[a] = shapely.union(geoms[a], shapely.intersection(disc, shapely.union(clean[a], clean[b])))
        x, y = _pt(shapely.intersection(geoms[a], geoms[b]))
        planted.append({"layer": layer, "feature_id": ids[a], "issue": "overlap", "x": x, "y": y,
                        "detail": f"{ids[a]} overlaps {ids[b]}"})
    for _ in range(plan.get("crosses_community", 0)):
        if comm_of is None:
            break
        got = next_pair(lambda a, b: comm_of[a] != comm_of[b])
        if got is None:
            break
        a, b, _mid = got
        geoms[a] = shapely.union(geoms[a], geoms[b])
        keep[b] = False
        x, y = _pt(clean[b])
        planted.append({"layer": layer, "feature_id": ids[a], "issue": "crosses_community", "x": x, "y": y,
                        "detail": f"{ids[a]} absorbed {ids[b]} across a community line"})
    for _ in range(plan.get("outside_boundary", 0)):
        a = next_single(lambda a: bool(on_outline[a]) and shapely.length(
            shapely.intersection(shapely.boundary(clean[a]), shapely.buffer(outline, 0.01))) > 200.0)
        if a is None:
            break
        edge = shapely.intersection(shapely.boundary(clean[a]), shapely.buffer(outline, 0.01))
        parts = shapely.get_parts(shapely.line_merge(edge))
        longest = parts[np.argmax(shapely.length(parts))]
        p = shapely.line_interpolate_point(longest, 0.5, normalized=True)
        disc = shapely.buffer(p, 80.0)
        geoms[a] = shapely.union(geoms[a], disc)
        x, y = _pt(shapely.difference(disc, city))
        planted.append({"layer": layer, "feature_id": ids[a], "issue": "outside_boundary", "x": x, "y": y})
    for _ in range(plan.get("invalid_geometry", 0)):
        a = next_single(lambda a: geoms[a].geom_type == "Polygon")
        if a is None:
            break
        ring = shapely.get_coordinates(shapely.get_exterior_ring(geoms[a]))
        bowtie = None
        for k in range(1, len(ring) - 3):
            r = ring.copy()
            r[[k, k + 1]] = r[[k + 1, k]]
            cand = shapely.Polygon(r)
            if not shapely.is_valid(cand) and "Self-intersection" in shapely.is_valid_reason(cand):
                bowtie = cand
                break
        if bowtie is None:
            continue
        reason = shapely.is_valid_reason(bowtie)
        x, y = _pt(shapely.make_valid(bowtie))
        mobj = re.search(r"\[([-\d.e]+) ([-\d.e]+)\]", reason)
        geoms[a] = bowtie
        planted.append({"layer": layer, "feature_id": ids[a], "issue": "invalid_geometry", "x": x, "y": y,
                        "detail": reason if mobj else "self-intersection"})
    for _ in range(plan.get("duplicate_id", 0)):
        a = next_single()
        b = next_single()
        if a is None or b is None:
            break
        ids[b] = ids[a]
        x, y = _pt(geoms[b])
        planted.append({"layer": layer, "feature_id": ids[a], "issue": "duplicate_id", "x": x, "y": y})
    for _ in range(plan.get("missing_value", 0)):
        a = next_single()
        if a is None:
            break
        grid_names[a] = None
        x, y = _pt(geoms[a])
        planted.append({"layer": layer, "feature_id": ids[a], "issue": "missing_value", "x": x, "y": y,
                        "detail": "dept_grid_name is NULL"})
    return geoms, ids, grid_names, keep
