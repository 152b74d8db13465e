"""Oversized atomic units divided between buildings (private helper of :mod:`gridplan.merge.build`).

Owns the split of an atomic unit holding more households than the band's maximum (a block between
roads that no departmental line crosses, a big compound, a village).  As DB11/T 2157 asks, a base
grid follows roads and the outlines of buildings and a building is never cut.  Pieces are sized to
**half the band** (300–500 → 150–250 households): two of them always make a grid in the band, and
the districting — and later a rebalancing, which moves whole atomic units — can move half a grid
instead of a whole one (a piece as big as a grid locks that grid: a staffing proposal can only give
it one worker or two).  The steps:

1. **linear features first**: the unit is cut by the road (and river) centrelines inside it
   (``shapely.polygonize`` of the unit outline and the clipped lines); a cell without households
   joins the neighbouring cell it shares the longest edge with;
2. **then between buildings**: a cell still above the maximum is cut into *building cells* — per
   building, the union of the Voronoi cells (``shapely.voronoi_polygons``) of its outline vertices
   and representative point, clipped to the cell, so a cut runs between buildings, never through
   one — and the building cells are grouped into contiguous pieces in the band by the same
   districting as base grids (:func:`gridplan.merge.basegrids.partition_units`: recursive
   bisection along the principal axis with repair).  A road cell that cannot land in the band
   (too few households for two pieces) makes the whole unit be divided between its buildings
   instead, when the whole unit can; if neither can, the band's minimum is lowered for the
   division (528 households: two pieces of 264 that the districting merges with neighbours,
   rather than one piece above the band).  A piece in two parts hands its smaller parts to the
   piece they share most edge with.

The pieces are returned as polygons; the merge adds their outlines to the overlay, so the faces,
the crosswalk and the H3 index stay exact, and each piece becomes an atomic unit whose
``parent_unit_id`` names the unit it came from.  A unit with one building (or none) above the
maximum cannot be divided: it is reported as ``single_building_over_max``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from gridplan.merge.basegrids import choose_k

__all__ = ["Buildings", "SplitPlan", "plan_splits"]

#: Outline vertices of a building are taken every this many metres (Voronoi sites).
_SITE_SPACING_M = 4.0
#: Pieces are sized to this share of the household band (see the module docstring).
PIECE_SHARE = 0.5


@dataclass(frozen=True)
class Buildings:
    """Buildings: unit holding each (-1 none), outline, representative point, households."""

    unit: np.ndarray
    geoms: np.ndarray
    points: np.ndarray
    households: np.ndarray


@dataclass(frozen=True)
class SplitPlan:
    """Pieces of the oversized units: polygons, parent unit per piece, indivisible units."""

    pieces: np.ndarray
    parent: np.ndarray
    indivisible: np.ndarray  # unit indices above the maximum that cannot be split

    @property
    def n_split(self) -> int:
        """Number of units divided into pieces."""
        return len(np.unique(self.parent))


def _polygons(geom: shapely.Geometry) -> list[shapely.Geometry]:
    parts = shapely.get_parts(geom)
    return [p for p in parts if shapely.get_type_id(p) == 3 and shapely.area(p) > 0]


def _short(h: float, lo: int, hi: int) -> bool:
    """Whether *h* households above *hi* cannot be divided into pieces that all land in the band."""
    return h > hi and h / choose_k(h, lo, hi) > hi


def _relaxed_min(h: float, lo: int, hi: int) -> int:
    """Band minimum for dividing *h*: lowered when ``ceil(h / hi)`` pieces cannot all reach it.

    Pieces below the band are better than one piece above it: the districting merges them with
    their neighbours (528 households: two pieces of 264, not one of 528).
    """
    k = int(np.ceil(h / hi))
    return int(min(lo, np.floor(h / k)))


def _merge_parts(pieces: list[shapely.Geometry]) -> list[shapely.Geometry]:
    """Each piece a single polygon: stray parts join the piece they share the longest edge with."""
    main = []
    strays = []
    for p in pieces:
        parts = sorted(_polygons(p), key=lambda q: -shapely.area(q))
        if parts:
            main.append(parts[0])
            strays.extend(parts[1:])
    for s in sorted(strays, key=lambda q: -shapely.area(q)):
        edge = shapely.boundary(s)
        shared = [shapely.length(shapely.intersection(edge, shapely.boundary(m))) for m in main]
        j = int(np.argmax(shared)) if shared else -1
        if j >= 0 and shared[j] > 0:
            merged = _polygons(shapely.union(main[j], s))
            if len(merged) == 1:
                main[j] = merged[0]
                continue
        main.append(s)
    return main


def _building_cells(cell: shapely.Geometry, geoms: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Per building, the part of *cell* nearer to it than to any other building (one polygon each)."""
    xy = shapely.get_coordinates(pts)
    rings = shapely.segmentize(shapely.boundary(geoms), _SITE_SPACING_M)
    coords, owner = shapely.get_coordinates(rings, return_index=True)
    coords = np.vstack([xy, coords])
    site_owner = np.concatenate([np.arange(len(pts)), owner])
    # duplicates (shared walls) keep their first owner; representative points come first
    coords, first = np.unique(np.round(coords, 3), axis=0, return_index=True)
    site_owner = site_owner[first]
    sites = shapely.points(coords)
    vor = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(sites), extend_to=cell))
    si, ci = shapely.STRtree(vor).query(sites, predicate="within")
    cell_owner = np.full(len(vor), -1, np.int64)
    cell_owner[ci] = site_owner[si]
    out = np.empty(len(pts), dtype=object)
    for b in range(len(pts)):
        mine = vor[cell_owner == b]
        out[b] = (shapely.intersection(cell, shapely.coverage_union_all(mine)) if len(mine)
                  else shapely.Polygon())
    # a building's cell in two parts (a notch of the cell): keep the part with its point
    for b in range(len(pts)):
        parts = _polygons(out[b])
        if len(parts) > 1:
            out[b] = next((q for q in parts if shapely.intersects(q, pts[b])), parts[0])
    return out


def _voronoi_pieces(cell: shapely.Geometry, geoms: np.ndarray, pts: np.ndarray,
                    hh: np.ndarray, lo: int, hi: int) -> list[shapely.Geometry]:
    """*cell* divided into groups of whole buildings in the band (districting of building cells)."""
    from gridplan.merge.basegrids import partition_units

    bc = _building_cells(cell, geoms, pts)
    ok = ~shapely.is_empty(bc)
    bc, pts, hh = bc[ok], pts[ok], hh[ok]
    n = len(bc)
    tree = shapely.STRtree(bc)
    a, b = tree.query(bc, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    shared = shapely.length(shapely.intersection(shapely.boundary(bc[a]), shapely.boundary(bc[b])))
    adj = pd.DataFrame({"a": a, "b": b, "length": shared, "cost": shared})
    adj = adj[adj["length"] > 0]
    perim = shapely.length(bc)
    inner = np.bincount(adj["a"], adj["length"], n) + np.bincount(adj["b"], adj["length"], n)
    xy = shapely.get_coordinates(pts)
    # a building above the maximum is a piece of its own: its own key, which grids never mix
    key = np.zeros(n, np.int64)
    big = np.flatnonzero(hh > hi)
    key[big] = np.arange(1, len(big) + 1)
    label, _ = partition_units(key, hh, hh, xy[:, 0], xy[:, 1], adj,
                               np.maximum(perim - inner, 0.0), households_min=lo, households_max=hi)
    pieces = [shapely.union_all(bc[label == g]) for g in range(int(label.max()) + 1)]
    covered = shapely.union_all(bc)
    rest = _polygons(shapely.difference(cell, covered))  # cells of dropped sites, numerical crumbs
    return _merge_parts([*pieces, *rest])


def _road_cells(unit: shapely.Geometry, lines: np.ndarray, tree: shapely.STRtree | None,
                pts: np.ndarray, hh: np.ndarray) -> list[shapely.Geometry]:
    """Cut the unit by the linear features inside it; cells without households rejoin a neighbour."""
    if tree is None:
        return [unit]
    near = lines[tree.query(unit, predicate="intersects")]
    if not len(near):
        return [unit]
    inner = shapely.intersection(near, unit)
    noded = shapely.union_all(np.concatenate([[shapely.boundary(unit)], inner]))
    cells = [c for c in _polygons(shapely.polygonize(shapely.get_parts(noded)))
             if shapely.contains(unit, shapely.point_on_surface(c))]
    if len(cells) <= 1:
        return [unit]
    held = np.zeros(len(cells))
    ctree = shapely.STRtree(np.asarray(cells, dtype=object))
    ci, pi = ctree.query(pts, predicate="within")[::-1] if len(pts) else (np.empty(0, int), np.empty(0, int))
    np.add.at(held, ci, hh[pi])
    full = [c for c, h in zip(cells, held, strict=True) if h > 0]
    empty = [c for c, h in zip(cells, held, strict=True) if h <= 0]
    if len(full) <= 1:
        return [unit]
    return _merge_parts([*full, *empty])


def plan_splits(ugeom: np.ndarray, uhh: np.ndarray, buildings: Buildings, lines: np.ndarray, *,
                lo: int, hi: int) -> SplitPlan:
    """Pieces of every unit above *hi* households, sized to ``PIECE_SHARE`` of the band *lo*–*hi*.

    Examples
    --------
    A block of six buildings of 100 households each (600, above the band 300–500) becomes three
    pieces of two buildings, 200 households each (a piece is sized to half the band, 150–250):

    >>> from shapely import box
    >>> b = np.array([box(10 + 30 * i, 10, 25 + 30 * i, 40) for i in range(6)])
    >>> bl = Buildings(np.zeros(6, int), b, shapely.point_on_surface(b), np.full(6, 100.0))
    >>> sp = plan_splits(np.array([box(0, 0, 180, 50)]), np.array([600.0]), bl, np.empty(0, object),
    ...                  lo=300, hi=500)
    >>> [int(shapely.contains(p, shapely.point_on_surface(b)).sum()) for p in sp.pieces], sp.parent.tolist()
    ([2, 2, 2], [0, 0, 0])

    """
    b_unit, b_geoms, b_pts, b_hh = buildings.unit, buildings.geoms, buildings.points, buildings.households
    tree = shapely.STRtree(lines) if len(lines) else None
    pieces: list[shapely.Geometry] = []
    parent: list[int] = []
    indivisible: list[int] = []
    order = np.argsort(b_unit, kind="stable")
    bounds = np.searchsorted(b_unit[order], np.arange(len(ugeom) + 1))
    over = np.flatnonzero(uhh > hi)
    lo, hi = int(lo * PIECE_SHARE), int(hi * PIECE_SHARE)  # the band of a piece
    for u in over:
        idx = order[bounds[u]:bounds[u + 1]]
        idx = idx[b_hh[idx] > 0]
        if len(idx) < 2:
            indivisible.append(int(u))
            continue
        out: list[shapely.Geometry] = []
        every = order[bounds[u]:bounds[u + 1]]  # also the buildings without households: never cut
        cells = _road_cells(ugeom[u], lines, tree, b_pts[idx], b_hh[idx])
        held = [float(b_hh[idx[shapely.contains(c, b_pts[idx])]].sum()) for c in cells]
        if any(_short(h, lo, hi) for h in held) and not _short(float(uhh[u]), lo, hi):
            cells = [ugeom[u]]  # a road cell that cannot land in the band: divide the whole unit
        for cell in cells:
            inside = every[shapely.contains(cell, b_pts[every])]
            h = float(b_hh[inside].sum())
            if h > hi and (b_hh[inside] > 0).sum() >= 2:
                out.extend(_voronoi_pieces(cell, b_geoms[inside], b_pts[inside], b_hh[inside],
                                           _relaxed_min(h, lo, hi), hi))
            else:
                out.append(cell)
        if len(out) < 2:
            indivisible.append(int(u))
            continue
        pieces.extend(out)
        parent.extend([int(u)] * len(out))
    return SplitPlan(pieces=np.asarray(pieces, dtype=object), parent=np.asarray(parent, np.int64),
                     indivisible=np.asarray(indivisible, np.int64))
