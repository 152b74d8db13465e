"""A vertex move on the working units (private helper of :mod:`gridplan.balance.edit`).

Owns :class:`~gridplan.balance.edit.MoveVertex`'s work: the working units of a session
(:class:`Units`: the parent's, reshaped, the pieces cut off appended) and :class:`VertexMove`,
which finds the vertex of a grid's outline the planner pointed at, moves it (refused when the
outline would cross itself), cuts every unit the moved edges sweep by exact overlay, divides a cut
unit's counts between its parts (:func:`divide_counts`: by buildings and addresses inside each,
else by area; largest remainder, so integer counts stay integers and totals are conserved), and
patches the rook adjacency around the cut units only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from scipy import sparse

from gridplan.balance.graph import unit_adjacency
from gridplan.errors import InputError
from gridplan.plans import UNIT_STATS, numeric_column, text_column

__all__ = [
    "Frame",
    "Points",
    "Step",
    "Units",
    "VertexMove",
    "divide_counts",
    "locate",
    "moved_outline",
    "nearest_vertex",
    "points_of",
    "polygon_parts",
]

#: Statistics a building carries (the merge sums them into units); ``addresses`` counts points.
BUILDING_STATS = ("households", "residents", "floating_residents", "rental_rooms")

#: Pieces of a cut smaller than this (m²) are noise of the overlay, not land: they stay put.
MIN_PIECE_M2 = 0.01


@dataclass(frozen=True)
class Units:
    """The working units: the parent's, reshaped by vertex moves, the pieces cut off appended.

    ``root`` is the parent-plan unit whose land a unit lies in (itself for the parent's units), so
    community, lineage and the parent grid (``parent_grid``) of a piece are its root's.
    """

    ids: np.ndarray
    geoms: np.ndarray
    stats: np.ndarray  # (n, len(UNIT_STATS))
    root: np.ndarray
    parent_grid: np.ndarray
    adj: sparse.csr_matrix
    new_pos: Mapping[str, int]
    reshaped: frozenset[int]  # parent units whose shape changed
    point_unit: Mapping[str, np.ndarray]  # "buildings"/"addresses": unit holding each point (-1 none)


@dataclass(frozen=True)
class Step:
    """One state of the history: the units and the grid of each."""

    units: Units
    assignment: np.ndarray


@dataclass(frozen=True)
class Points:
    """Buildings or standard addresses as points: ids, representative points, figures."""

    ids: np.ndarray
    pts: np.ndarray
    values: np.ndarray  # (n, len(BUILDING_STATS)); empty columns for addresses


def points_of(gdf: gpd.GeoDataFrame | None, id_col: str, crs: Any, with_values: bool) -> Points | None:
    if gdf is None:
        return None
    if crs is not None and gdf.crs is not None and not gdf.crs.equals(crs):
        gdf = gdf.to_crs(crs)
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    ids = (text_column(gdf, id_col) if id_col in gdf.columns
           else np.asarray(gdf.index.astype(str), dtype=object))
    values = np.zeros((int(ok.sum()), len(BUILDING_STATS) if with_values else 0))
    if with_values:
        for j, c in enumerate(BUILDING_STATS):
            values[:, j] = numeric_column(gdf, c)[ok]
    return Points(ids[ok], shapely.point_on_surface(geoms[ok]), values)


def locate(pts: np.ndarray, geoms: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Index (into *idx*) of the polygon of ``geoms[idx]`` holding each point; -1 outside all."""
    out = np.full(len(pts), -1, np.int64)
    if len(pts) and len(idx):
        p, g = shapely.STRtree(pts).query(geoms[idx], predicate="intersects")[::-1]
        o = np.lexsort((g, p))
        p, g = p[o], g[o]
        first = np.r_[True, p[1:] != p[:-1]] if len(p) else np.zeros(0, bool)
        out[p[first]] = g[first]
    return out




def nearest_vertex(
    geom: shapely.Geometry | np.ndarray, xy: tuple[float, float], tolerance_m: float
) -> np.ndarray | None:
    """Return the vertex of *geom* (geometries) nearest to *xy* if within *tolerance_m*, else ``None``."""
    coords = shapely.get_coordinates(geom)
    if not len(coords):
        return None
    d = np.hypot(coords[:, 0] - xy[0], coords[:, 1] - xy[1])
    k = int(np.argmin(d))
    return coords[k] if d[k] <= tolerance_m else None


def polygon_parts(geom: shapely.Geometry, min_area_m2: float) -> list[shapely.Polygon]:
    """Return the polygons of *geom* larger than *min_area_m2*, largest first."""
    parts = [p for p in shapely.get_parts(geom) if shapely.get_type_id(p) == 3 and p.area > min_area_m2]
    return sorted(parts, key=lambda p: -p.area)


def moved_outline(
    outline: shapely.Geometry, vertex: np.ndarray, to_xy: np.ndarray, *, grid: str
) -> tuple[shapely.Polygon, shapely.Polygon]:
    """Return the polygon of *outline* holding *vertex*, before and after the vertex moves to *to_xy*.

    Every occurrence of the vertex in that polygon's rings moves (a ring's closing point too).

    Raises
    ------
    InputError
        The moved outline crosses itself or collapses (named by *grid*).

    """
    for poly in shapely.get_parts(outline):
        if shapely.get_type_id(poly) != 3:
            continue
        rings = [np.asarray(poly.exterior.coords), *(np.asarray(r.coords) for r in poly.interiors)]
        hit = [np.all(r == vertex, axis=1) for r in rings]
        if not any(h.any() for h in hit):
            continue
        moved = []
        for r, h in zip(rings, hit, strict=True):
            r = r.copy()
            r[h] = to_xy
            moved.append(r)
        new = shapely.Polygon(moved[0], moved[1:])
        if not new.is_valid or new.area <= 0:
            raise InputError(
                f"moving the vertex to ({to_xy[0]:.1f}, {to_xy[1]:.1f}) makes grid {grid}'s outline "
                "cross itself: move it less far, or in two steps",
                field="to",
            )
        return poly, new
    raise InputError(f"the vertex is not on grid {grid}'s outline", field="from")  # pragma: no cover


def divide_counts(total: np.ndarray, weights: np.ndarray, areas: np.ndarray) -> np.ndarray:
    """Divide a unit's counts between its parts: by *weights* where they hold any, else by area.

    Parameters
    ----------
    total
        The unit's counts, one per statistic (shape ``(s,)``).
    weights
        What each part holds of each statistic (buildings' households, addresses …), shape ``(k, s)``.
    areas
        Area of each part (m²), shape ``(k,)``.

    Returns
    -------
    numpy.ndarray
        Shape ``(k, s)``; each column sums to *total*; integral totals give integral parts
        (largest remainder).

    Examples
    --------
    >>> divide_counts(np.array([100.0, 7.0]), np.zeros((2, 2)), np.array([1.0, 4.0])).tolist()
    [[20.0, 1.0], [80.0, 6.0]]

    """
    k, s = weights.shape
    out = np.zeros((k, s))
    for j in range(s):
        w = weights[:, j] if weights[:, j].sum() > 0 else areas
        share = w / w.sum() if w.sum() > 0 else np.full(k, 1.0 / k)
        exact = total[j] * share
        if float(total[j]).is_integer():
            base = np.floor(exact)
            rest = round(float(total[j] - base.sum()))
            order = np.argsort(-(exact - base), kind="stable")
            base[order[:rest]] += 1
            out[:, j] = base
        else:
            out[:, j] = exact
    return out


@dataclass(frozen=True)
class Frame:
    """What a session holds fixed for its vertex moves: the parent's units' tree and count, points, snap."""

    tree: shapely.STRtree
    n0: int
    points: Mapping[str, Points]
    snap_m: float


class VertexMove:
    """One vertex move on the working units *units* (grids *now*); :meth:`run` returns the next step.

    *new_id* gives a fresh unit id for a piece cut from the parent-plan unit it is passed.
    """

    def __init__(self, frame: Frame, units: Units, now: np.ndarray, new_id: Callable[[str], str]) -> None:
        self.frame, self.units, self.now, self.new_id = frame, units, now, new_id

    def run(self, code: str, mine: np.ndarray, src: np.ndarray, dst: np.ndarray) -> Step:
        """Move the vertex of grid *code* (units *mine*) nearest *src* to *dst* (plan CRS)."""
        u, now, snap_m = self.units, self.now, self.frame.snap_m
        outline = shapely.union_all(u.geoms[mine])
        vertex = nearest_vertex(outline, (src[0], src[1]), snap_m)
        if vertex is None:
            raise InputError(
                f"no vertex of grid {code}'s outline within {snap_m:g} m of "
                f"({src[0]:.1f}, {src[1]:.1f}): pick one of its corners",
                field="from",
            )
        dst = self.snap(dst)
        if np.hypot(*(dst - vertex)) <= snap_m:
            raise InputError(f"the vertex does not move (less than {snap_m:g} m)", field="to")
        old, new = moved_outline(outline, vertex, dst, grid=code)
        gain = shapely.difference(new, outline)
        loss = shapely.difference(old, new)
        grid = now.copy()
        cuts: dict[int, list[tuple[shapely.Polygon, str]]] = {}
        # land gained: the covered part of each other grid's unit goes to the grid
        for i in self.near(gain) if not gain.is_empty else []:
            if now[i] != code:
                self.cut(i, gain, code, grid, cuts)
        # land lost: each piece goes to the other grid it shares most edge with ("" if none)
        for i in self.near(loss) if not loss.is_empty else []:
            if now[i] == code:
                self.cut(i, loss, None, grid, cuts)
        if not cuts and (grid == now).all():
            raise InputError(f"moving that vertex changes no unit of the plan near grid {code}", field="to")
        return self.apply_cuts(cuts, grid)

    def near(self, geom: shapely.Geometry) -> np.ndarray:
        """Units now intersecting *geom* (the parent's tree, plus the pieces cut from what it finds)."""
        u = self.units
        cand = self.frame.tree.query(geom)
        if len(u.ids) > self.frame.n0:
            cand = np.r_[cand, self.frame.n0 + np.flatnonzero(np.isin(u.root[self.frame.n0:], cand))]
        cand = np.unique(cand)
        return cand[shapely.intersects(u.geoms[cand], geom)]

    def snap(self, xy: np.ndarray) -> np.ndarray:
        """*xy*, or the nearest unit vertex within ``snap_m`` of it."""
        near = self.near(shapely.buffer(shapely.Point(xy), self.frame.snap_m))
        v = nearest_vertex(self.units.geoms[near], (xy[0], xy[1]), self.frame.snap_m)
        return xy if v is None else v

    def cut(self, i: int, region: shapely.Geometry, to: str | None, grid: np.ndarray,
             cuts: dict[int, list[tuple[shapely.Polygon, str]]]) -> None:
        """Record the cut of unit *i* by *region* (pieces inside go to *to*, or to a neighbour)."""
        geom = self.units.geoms[i]
        inside = polygon_parts(shapely.intersection(geom, region), MIN_PIECE_M2)
        if not inside:
            return
        rest = polygon_parts(shapely.difference(geom, region), MIN_PIECE_M2)
        owner = [to if to is not None else self.neighbour_grid(p, str(grid[i]), grid) for p in inside]
        if not rest and len(inside) == 1:
            grid[i] = owner[0]  # the whole unit changes hands: no new unit
            return
        keep = rest[0] if rest else inside.pop(0)
        keep_grid = str(grid[i]) if rest else owner.pop(0)
        grid[i] = keep_grid
        cuts[i] = [(keep, keep_grid), *((p, str(grid[i])) for p in rest[1:]),
                   *zip(inside, owner, strict=True)]

    def neighbour_grid(self, piece: shapely.Polygon, own: str, now: np.ndarray) -> str:
        """Grid (in *now*) other than *own* whose units share most edge with *piece* (``""``: none)."""
        u = self.units
        near = self.near(piece)
        near = near[now[near] != own]
        if not len(near):
            return ""
        edge = shapely.boundary(piece)
        shared = shapely.length(shapely.intersection(shapely.boundary(u.geoms[near]), edge))
        k = int(np.argmax(shared))
        return str(now[near[k]]) if shared[k] > 0 else ""

    def apply_cuts(self, cuts: dict[int, list[tuple[shapely.Polygon, str]]], grid: np.ndarray) -> Step:
        """Return the next step: cut units reshaped, their other parts appended as new units."""
        u = self.units
        geoms, stats = u.geoms.copy(), u.stats.copy()
        point_unit = {k: v.copy() for k, v in u.point_unit.items()}
        new_ids: list[str] = []
        new_geoms: list[shapely.Polygon] = []
        new_stats: list[np.ndarray] = []
        new_src: list[int] = []
        new_grid: list[str] = []
        n = len(u.ids)
        for i, parts in cuts.items():
            polys = np.array([p for p, _ in parts], dtype=object)
            area = shapely.area(polys)
            if abs(area.sum() - shapely.area(u.geoms[i])) > 1e-6 * max(1.0, area.sum()) + MIN_PIECE_M2:
                raise InputError(f"unit {u.ids[i]} cannot be cut exactly there; move the vertex a little",
                                 field="to")
            held = {k: np.flatnonzero(v == i) for k, v in point_unit.items()}
            where = {k: locate(self.frame.points[k].pts[m], polys, np.arange(len(polys)))
                     for k, m in held.items()}
            weights = np.zeros((len(polys), len(UNIT_STATS)))
            if "buildings" in where:
                w = where["buildings"]
                vals = self.frame.points["buildings"].values[held["buildings"]][w >= 0]
                for j in range(len(BUILDING_STATS)):
                    weights[:, j] = np.bincount(w[w >= 0], vals[:, j], len(polys))
            if "addresses" in where:
                w = where["addresses"]
                weights[:, UNIT_STATS.index("addresses")] = np.bincount(w[w >= 0], minlength=len(polys))
            shares = divide_counts(u.stats[i], weights, area)
            geoms[i], stats[i], grid[i] = polys[0], shares[0], parts[0][1]
            index = [i]
            for k in range(1, len(parts)):
                index.append(n + len(new_ids))
                new_ids.append(self.new_id(str(u.ids[u.root[i]])))
                new_geoms.append(polys[k])
                new_stats.append(shares[k])
                new_src.append(i)
                new_grid.append(parts[k][1])
            for kind, w in where.items():
                point_unit[kind][held[kind][w >= 0]] = np.asarray(index)[w[w >= 0]]
        src = np.asarray(new_src, dtype=np.int64)
        ids = np.r_[u.ids, np.asarray(new_ids, dtype=object)]
        all_geoms = np.r_[geoms, np.asarray(new_geoms, dtype=object)] if new_ids else geoms
        all_stats = np.vstack([stats, *new_stats]) if new_ids else stats
        root = np.r_[u.root, u.root[src]]
        touched = np.r_[np.fromiter(cuts, dtype=np.int64, count=len(cuts)), np.arange(n, n + len(new_ids))]
        units = Units(
            ids=ids,
            geoms=all_geoms,
            stats=all_stats,
            root=root,
            parent_grid=np.r_[u.parent_grid, u.parent_grid[src]],
            adj=self.patched_adjacency(all_geoms, root, touched),
            new_pos={**u.new_pos, **{x: n + k for k, x in enumerate(new_ids)}},
            reshaped=u.reshaped | {int(i) for i in cuts if i < self.frame.n0},
            point_unit=point_unit,
        )
        return Step(units, np.r_[grid, np.asarray(new_grid, dtype=object)].astype(object))

    def patched_adjacency(
        self, geoms: np.ndarray, root: np.ndarray, touched: np.ndarray
    ) -> sparse.csr_matrix:
        """Return the adjacency with the rows of the *touched* units recomputed among their neighbours."""
        old = self.units.adj.tocoo()
        n = len(geoms)
        region = shapely.union_all(geoms[touched])
        cand = self.frame.tree.query(region)
        cand = np.r_[cand, self.frame.n0 + np.flatnonzero(np.isin(root[self.frame.n0:], cand))]
        sub = np.unique(np.r_[cand, touched])
        local = unit_adjacency(geoms[sub], np.zeros(len(sub), dtype=np.int64)).matrix().tocoo()
        r, c = sub[local.row], sub[local.col]
        hit = np.isin(r, touched) | np.isin(c, touched)
        keep = ~(np.isin(old.row, touched) | np.isin(old.col, touched))
        rows, cols = np.r_[old.row[keep], r[hit]], np.r_[old.col[keep], c[hit]]
        m = sparse.csr_matrix((np.r_[old.data[keep], local.data[hit]], (rows, cols)), shape=(n, n))
        m.sort_indices()
        return m
