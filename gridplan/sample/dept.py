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
from collections.abc import Callable
from dataclasses import dataclass, field
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


def _hash_uniform(xy: NDArray[np.float64], part: NDArray[np.int64], salt: int) -> tuple[NDArray[Any], ...]:
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


def _civil_cells(
    communities: gpd.GeoDataFrame, households: NDArray[Any], n: int, rng: np.random.Generator
) -> tuple[NDArray[np.object_], NDArray[np.int64]]:
    share = households / max(households.sum(), 1)
    k = np.maximum(1, np.round(share * n)).astype(int)
    cells, comm = [], []
    for i, geom in enumerate(communities.geometry.to_numpy()):
        c, _ = relaxed_partition(geom, int(k[i]), rng, iterations=2)
        cells.append(c)
        comm.append(np.full(len(c), i))
    return np.concatenate(cells), np.concatenate(comm)


def _seed_cells(
    city: shapely.Geometry, pts: NDArray[Any], weights: NDArray[Any], n: int, rng: np.random.Generator
) -> NDArray[np.object_]:
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


@dataclass(frozen=True)
class DeptInputs:
    """What every departmental layer is drawn from: the city, its towns and communities, the people.

    ``keep_whole`` are polygons (big compounds) that no departmental line may cross: each goes
    wholly to the cell holding most of it.
    """

    city: shapely.Geometry
    towns: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame
    community_households: NDArray[Any]
    pop_xy: NDArray[Any]
    pop_w: NDArray[Any]
    keep_whole: NDArray[np.object_] = field(default_factory=lambda: np.empty(0, dtype=object))


def dept_layer(
    dept: str, inputs: DeptInputs, *, n: int, rng: np.random.Generator, salt: int, defect_factor: int,
) -> tuple[gpd.GeoDataFrame, list[dict[str, Any]]]:
    """One departmental layer (`dept_grid_id`, `dept_grid_name`) and the defects planted in it."""
    prefix, label = DEPARTMENTS[dept]
    city, towns = inputs.city, inputs.towns
    if dept == "civil":
        clean, comm_of = _civil_cells(inputs.communities, inputs.community_households, n, rng)
    else:
        clean = _seed_cells(city, inputs.pop_xy, inputs.pop_w, n, rng)
        comm_of = None
    if len(inputs.keep_whole):
        clean = _keep_whole(clean, inputs.keep_whole)
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
    planter = _Planter(_Cells(f"dept_{dept}", geoms, clean, ids, grid_names, city, comm_of), rng, planted)
    for kind in ("gap", "overlap", "crosses_community", "outside_boundary", "invalid_geometry",
                 "duplicate_id", "missing_value"):
        step = getattr(planter, kind)
        for _ in range(plan.get(kind, 0)):
            if step() is False:
                break
    keep = planter.keep
    gdf = gpd.GeoDataFrame(
        {"dept_grid_id": planter.ids[keep], "dept_grid_name": planter.grid_names[keep]},
        geometry=planter.geoms[keep], crs="EPSG:4547",
    )
    return gdf, planted


def _keep_whole(cells: NDArray[np.object_], whole: NDArray[np.object_]) -> NDArray[np.object_]:
    """Give each polygon of *whole* to the cell holding most of it and cut it out of the others."""
    cells = cells.copy()
    tree = shapely.STRtree(cells)
    for g in whole:
        hit = tree.query(g, predicate="intersects")
        if len(hit) < 2:
            continue
        owner = hit[np.argmax(shapely.area(shapely.intersection(cells[hit], g)))]
        others = hit[hit != owner]
        cells[others] = shapely.difference(cells[others], g, grid_size=0.001)
        cells[owner] = shapely.union(cells[owner], g, grid_size=0.001)
    return cells


@dataclass
class _Cells:
    """One department's cells while defects are planted: drawn (geoms) and clean, ids and names."""

    layer: str
    geoms: NDArray[np.object_]
    clean: NDArray[np.object_]
    ids: NDArray[np.object_]
    grid_names: NDArray[np.object_]
    city: shapely.Geometry
    comm_of: NDArray[Any] | None


class _Planter:
    """Plants one department's defects, far apart and away from the city outline.

    Each defect kind is one method; a method returns ``False`` when no place is left for it (the
    remaining defects of that kind are skipped) and ``None`` otherwise.  :func:`dept_layer` calls
    them in a fixed order, so one seed plants the same defects.
    """

    def __init__(self, cells: _Cells, rng: np.random.Generator, planted: list[dict[str, Any]]) -> None:
        clean, city = cells.clean, cells.city
        self.layer, self.clean, self.ids, self.grid_names = cells.layer, clean, cells.ids, cells.grid_names
        self.city, self.comm_of, self.rng, self.planted = city, cells.comm_of, rng, planted
        self.m = len(cells.geoms)
        self.geoms = cells.geoms.copy()
        self.keep = np.ones(self.m, dtype=bool)
        tree = shapely.STRtree(clean)
        left, right = tree.query(clean, predicate="intersects")
        sel = left < right
        left, right = left[sel], right[sel]
        shared = shapely.intersection(shapely.boundary(clean[left]), shapely.boundary(clean[right]))
        good = shapely.length(shared) > 120.0
        self.pairs = np.c_[left[good], right[good]]
        self.shared = shared[good]
        self.outline = shapely.boundary(city)
        self.on_outline = shapely.dwithin(clean, self.outline, 1.0)
        self.order = rng.permutation(len(self.pairs))
        self.used: set[int] = set()
        self.used_pts: list[tuple[float, float]] = []

    def _far(self, p: shapely.Point) -> bool:
        return all((p.x - x) ** 2 + (p.y - y) ** 2 > 600.0**2 for x, y in self.used_pts)

    def _next_pair(self, cond: Callable[[int, int], bool] | None = None) -> tuple[int, int, Any] | None:
        for k in self.order:
            a, b = (int(v) for v in self.pairs[k])
            if a in self.used or b in self.used or self.on_outline[a] or self.on_outline[b]:
                continue
            if cond is not None and not cond(a, b):
                continue
            mid = shapely.line_interpolate_point(shapely.line_merge(self.shared[k]), 0.5, normalized=True)
            if mid.geom_type != "Point" or shapely.is_empty(mid) or not self._far(mid):
                continue
            self.used.update((a, b))
            self.used_pts.append((mid.x, mid.y))
            return a, b, mid
        return None

    def _next_single(self, cond: Callable[[int], bool] | None = None) -> int | None:
        for a in self.rng.permutation(self.m):
            a = int(a)
            if a in self.used or (cond is not None and not cond(a)):
                continue
            p = shapely.point_on_surface(self.clean[a])
            if not self._far(p):
                continue
            self.used.add(a)
            self.used_pts.append((p.x, p.y))
            return a
        return None

    def _record(self, feature_id: str, issue: str, xy: tuple[float, float],
                detail: str | None = None) -> None:
        d = {"layer": self.layer, "feature_id": feature_id, "issue": issue, "x": xy[0], "y": xy[1]}
        if detail is not None:
            d["detail"] = detail
        self.planted.append(d)

    def gap(self) -> bool | None:
        got = self._next_pair()
        if got is None:
            return False
        a, b, mid = got
        disc = shapely.buffer(mid, float(self.rng.uniform(35, 55)))
        hit = shapely.STRtree(self.geoms).query(disc, predicate="intersects")
        self.geoms[hit] = shapely.difference(self.geoms[hit], disc)
        self._record("", "gap", (round(mid.x, 3), round(mid.y, 3)),
                     f"disc of {shapely.area(disc):.0f} m² removed between {self.ids[a]} and {self.ids[b]}")
        return None

    def overlap(self) -> bool | None:
        got = self._next_pair()
        if got is None:
            return False
        a, b, mid = got
        geoms, clean = self.geoms, self.clean
        disc = shapely.buffer(mid, float(self.rng.uniform(35, 55)))
        # the disc cut to the clean pair reaches across the hand-drawn sliver gap, so A stays one polygon
        geoms[a] = shapely.union(geoms[a], shapely.intersection(disc, shapely.union(clean[a], clean[b])))
        self._record(self.ids[a], "overlap", _pt(shapely.intersection(geoms[a], geoms[b])),
                     f"{self.ids[a]} overlaps {self.ids[b]}")
        return None

    def crosses_community(self) -> bool | None:
        comm_of = self.comm_of
        if comm_of is None:
            return False
        got = self._next_pair(lambda a, b: comm_of[a] != comm_of[b])
        if got is None:
            return False
        a, b, _mid = got
        self.geoms[a] = shapely.union(self.geoms[a], self.geoms[b])
        self.keep[b] = False
        self._record(self.ids[a], "crosses_community", _pt(self.clean[b]),
                     f"{self.ids[a]} absorbed {self.ids[b]} across a community line")
        return None

    def _outline_edge(self, a: int) -> shapely.Geometry:
        return shapely.intersection(shapely.boundary(self.clean[a]), shapely.buffer(self.outline, 0.01))

    def outside_boundary(self) -> bool | None:
        a = self._next_single(
            lambda a: bool(self.on_outline[a]) and shapely.length(self._outline_edge(a)) > 200.0)
        if a is None:
            return False
        parts = shapely.get_parts(shapely.line_merge(self._outline_edge(a)))
        longest = parts[np.argmax(shapely.length(parts))]
        p = shapely.line_interpolate_point(longest, 0.5, normalized=True)
        disc = shapely.buffer(p, 80.0)
        self.geoms[a] = shapely.union(self.geoms[a], disc)
        self._record(self.ids[a], "outside_boundary", _pt(shapely.difference(disc, self.city)))
        return None

    def invalid_geometry(self) -> bool | None:
        a = self._next_single(lambda a: bool(shapely.get_type_id(self.geoms[a]) == 3))
        if a is None:
            return False
        bowtie = _bowtie(self.geoms[a])
        if bowtie is None:
            return None
        reason = shapely.is_valid_reason(bowtie)
        xy = _pt(shapely.make_valid(bowtie))
        mobj = re.search(r"\[([-\d.e]+) ([-\d.e]+)\]", reason)
        self.geoms[a] = bowtie
        self._record(self.ids[a], "invalid_geometry", xy, reason if mobj else "self-intersection")
        return None

    def duplicate_id(self) -> bool | None:
        a = self._next_single()
        b = self._next_single()
        if a is None or b is None:
            return False
        self.ids[b] = self.ids[a]
        self._record(self.ids[a], "duplicate_id", _pt(self.geoms[b]))
        return None

    def missing_value(self) -> bool | None:
        a = self._next_single()
        if a is None:
            return False
        self.grid_names[a] = None
        self._record(self.ids[a], "missing_value", _pt(self.geoms[a]), "dept_grid_name is NULL")
        return None


def _bowtie(geom: shapely.Polygon) -> shapely.Polygon | None:
    """*geom* with two neighbouring vertices swapped so its ring crosses itself (None if no swap does)."""
    ring = shapely.get_coordinates(shapely.get_exterior_ring(geom))
    for k in range(1, len(ring) - 3):
        r = ring.copy()
        r[[k, k + 1]] = r[[k + 1, k]]
        cand = shapely.Polygon(r)
        if not shapely.is_valid(cand) and "Self-intersection" in shapely.is_valid_reason(cand):
            return cand
    return None
