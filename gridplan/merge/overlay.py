"""N-way overlay of polygon layers into faces with lineage (private helper of :mod:`gridplan.merge`).

Owns the "common refinement" step of the merge: every departmental layer, the communities and the
city outline are cut against each other in **one** pass, not in a chain of pairwise
``geopandas.overlay`` calls:

1. all polygon boundaries are collected as lines and noded together with snap rounding
   (``shapely.union_all(lines, grid_size=...)``).  Hand-drawn departmental outlines of the same road
   differ by millimetres; plain noding (``shapely.node``) throws ``TopologyException`` on such
   near-coincident lines, snap rounding to a grid of ``grid_size_m`` (default 1 cm) does not;
2. the noded lines are polygonized (``shapely.polygonize``) into faces; faces outside the city are
   dropped;
3. every face is attributed by its representative point (``shapely.point_on_surface``) through a
   vectorised ``STRtree.query(points, predicate="within")`` against each layer, giving a *membership*
   table (face, feature) per layer: none = gap, several = overlap.

The adjacency of faces (shared edge length) is computed exactly from their rings: polygonize makes
neighbouring faces share identical edge vertices, so a shared edge is a segment that occurs in two
faces.  This is hand-written because libpysal's rook weights give no edge lengths and are much slower.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from shapely import Geometry

__all__ = ["Faces", "Refinement", "Tiles", "conform_seams", "face_adjacency", "overlay_faces",
           "refined_adjacency"]


@dataclass(frozen=True)
class Tiles:
    """The tile grid of an overlay and the faces noded in each tile (before seams are conformed)."""

    xs: np.ndarray
    ys: np.ndarray
    faces: dict[int, np.ndarray]  # tile index (row-major) -> faces
    noded: frozenset[int] = frozenset()  # tiles noded by this overlay (the others were reused)


@dataclass(frozen=True)
class Refinement:
    """How the faces of an overlay refined from a previous one relate to its faces.

    Attributes
    ----------
    previous_index
        Per face, the index of the identical face (same WKB) in the previous overlay; -1 for a
        face that is new (cut by the added layers, or re-noded into different coordinates).
    near
        Faces that are not new but whose bounding box meets a new face or a previous face that is
        gone: the only kept faces whose neighbours or points can differ from the previous overlay.

    """

    previous_index: np.ndarray
    near: np.ndarray
    n_previous: int

    def now_of_previous(self) -> np.ndarray:
        """Per face of the previous overlay, its index now (-1: gone)."""
        out = np.full(self.n_previous, -1, np.int64)
        kept = self.previous_index >= 0
        out[self.previous_index[kept]] = np.flatnonzero(kept)
        return out


@dataclass(frozen=True)
class Faces:
    """The faces of an n-way overlay.

    Attributes
    ----------
    geoms
        Face polygons (ndarray of shapely geometries), all inside the city.
    points
        A representative point strictly inside each face.
    members
        Per layer name, a 2 x n int array ``[face_index, feature_index]`` of every (face, feature)
        pair where the face lies in the feature.  A face missing from it is a gap of that layer;
        a face listed twice lies in an overlap.
    tiles
        The tile grid and each tile's faces, for a later refinement (``previous``).
    origin
        Per face, ``tile << 32 | position`` in ``tiles.faces[tile]`` when it is that very object
        (-1: changed by conforming the seams, or a single tile), to recognise it in a refinement.
    refined
        Set when the overlay was refined from a previous one (``previous`` of
        :func:`overlay_faces`): which faces it shares with it.

    """

    geoms: np.ndarray
    points: np.ndarray
    members: dict[str, np.ndarray]
    tiles: Tiles | None = None
    origin: np.ndarray | None = None
    refined: Refinement | None = None

    @property
    def area(self) -> np.ndarray:
        """Area of each face (CRS units squared)."""
        return shapely.area(self.geoms)


def _boundaries(geoms: np.ndarray) -> np.ndarray:
    rings = shapely.get_rings(shapely.get_parts(geoms[~shapely.is_empty(geoms)]))
    return rings[~shapely.is_empty(rings)]


def overlay_faces(
    city: Geometry,
    layers: dict[str, np.ndarray],
    *,
    grid_size_m: float = 0.01,
    tile_coords: int = 20_000,
    workers: int = 2,
    previous: Faces | None = None,
) -> Faces:
    """Cut *city* by every polygon of every layer in one pass and attribute the faces.

    Parameters
    ----------
    city
        The city outline (polygon or multipolygon) in a projected CRS.
    layers
        Layer name → array of polygon geometries (same CRS).
    grid_size_m
        Snap-rounding grid (metres) of the noding; coordinates of the faces lie on this grid.
    tile_coords
        Noding cost grows faster than linearly with the number of vertices, so the lines are
        cut into rectangular tiles of about this many vertices, each noded and polygonized on its
        own (faces cut by a tile edge are rejoined later: they keep the same lineage).
    workers
        Processes noding tiles at once (see :func:`_tiles_in_processes`).
    previous
        An overlay of the same layers without the layers added since (the split pieces): only the
        tiles those new lines cross are noded again, the others keep their faces, and only the
        faces that differ from those of *previous* are attributed again (see :func:`_refine`; the
        result is the same as without *previous* on the same tiles, with ``refined`` set).

    Returns
    -------
    Faces
        Faces inside the city with their per-layer membership.

    Examples
    --------
    >>> from shapely import box
    >>> f = overlay_faces(box(0, 0, 2, 1), {"a": np.array([box(0, 0, 1, 1), box(1, 0, 2, 1)]),
    ...                                     "b": np.array([box(0, 0, 2, 1)])})
    >>> len(f.geoms), sorted(f.members["a"][1].tolist()), f.members["b"][1].tolist()
    (2, [0, 1], [0, 0])

    """
    city_snapped = shapely.set_precision(city, grid_size_m)
    parts = [_boundaries(np.asarray([city_snapped], dtype=object))]
    for geoms in layers.values():
        parts.append(_boundaries(np.asarray(geoms, dtype=object)))
    lines = np.concatenate(parts)
    reuse = None
    if previous is not None and previous.tiles is not None:
        added = [_boundaries(np.asarray(g, dtype=object)) for n, g in layers.items()
                 if n not in previous.members]
        reuse = (previous.tiles, np.concatenate(added) if added else np.empty(0, dtype=object))
    raw, tiles, origin = _faces_by_tiles(lines, grid_size_m=grid_size_m, tile_coords=tile_coords,
                                         workers=workers, reuse=reuse)
    if previous is not None:
        return _refine(previous, raw, origin, tiles, city_snapped, layers, workers=workers)
    return _attribute(raw, origin, tiles, city_snapped, layers, workers=workers)


def _attribute(raw: np.ndarray, origin: np.ndarray, tiles: Tiles, city_snapped: Geometry,
               layers: dict[str, np.ndarray], *, workers: int) -> Faces:
    """Keep the faces of *raw* inside the city, in reading order, with their membership of every layer."""
    keep, points = _inside(raw, city_snapped)
    faces, origin = raw[keep], origin[keep]
    order = _reading_order(faces, points)
    faces, points, origin = faces[order], points[order], origin[order]
    ptree = shapely.STRtree(points)
    names = list(layers)
    found = _map_layers(lambda n: _membership(ptree, layers[n]), names, workers)
    members = dict(zip(names, found, strict=True))
    return Faces(geoms=faces, points=points, members=members, tiles=tiles, origin=origin)


def _inside(faces: np.ndarray, city_snapped: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """Find the faces of positive area inside the city (indices) and their representative points."""
    pos = np.flatnonzero(shapely.area(faces) > 0)
    points = shapely.point_on_surface(faces[pos])
    # polygons as the query side: GEOS prepares each query polygon once for all its points
    inside = shapely.STRtree(points).query(shapely.get_parts(city_snapped), predicate="contains")
    keep = np.unique(inside[1])
    return pos[keep], points[keep]


def _reading_order(faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Deterministic order of faces: north to south, then west to east, then by area."""
    return np.lexsort((shapely.area(faces), shapely.get_x(points), -shapely.get_y(points)))


def _membership(ptree: shapely.STRtree, geoms: np.ndarray) -> np.ndarray:
    """``[point, feature]`` pairs (sorted) of the points of *ptree* that lie in a feature of *geoms*."""
    arr = np.asarray(geoms, dtype=object).copy()
    arr[shapely.is_missing(arr) | shapely.is_empty(arr)] = None
    pairs = ptree.query(arr, predicate="contains")[::-1]
    if pairs.shape[1]:
        pairs = pairs[:, np.lexsort((pairs[1], pairs[0]))]
    return pairs.astype(np.int64)


def _map_layers(fn: Callable[[str], np.ndarray], names: list[str], workers: int) -> list[np.ndarray]:
    if workers > 1 and len(names) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as ex:
            return list(ex.map(fn, names))
    return [fn(n) for n in names]


def _refine(previous: Faces, raw: np.ndarray, origin: np.ndarray, tiles: Tiles, city_snapped: Geometry,
            layers: dict[str, np.ndarray], *, workers: int) -> Faces:
    """Attribute the faces of *raw*, reusing what *previous* knows of the faces it shares.

    A face identical to a face of *previous* has the same representative point, reading-order
    keys and membership in every layer *previous* was cut by, so only the other faces (those of the
    re-noded tiles that came out different, and the new ones) are tested against the city and the
    layers; the layers added since are attributed for every face.  The result equals a full
    attribution of *raw*: the same faces in the same order with the same ``members`` (the
    reading-order keys of a face are a function of its coordinates, and a membership pair is a
    point-in-polygon test).

    Identical faces are found by *origin* first: a face of a tile that was not noded again, which
    conforming the seams left alone in both overlays, is the very object of *previous*.  The few
    others (re-noded tiles, faces along the seams) are compared by WKB.
    """
    match = np.full(len(raw), -1, np.int64)
    if previous.origin is not None and len(raw):
        tile_of = origin >> 32
        reused = (origin >= 0) & ~np.isin(tile_of, np.fromiter(tiles.noded, np.int64, len(tiles.noded)))
        srt = np.argsort(previous.origin, kind="stable")
        known = previous.origin[srt]
        pos = np.minimum(np.searchsorted(known, origin), max(len(known) - 1, 0))
        ok = reused & (known[pos] == origin) if len(known) else np.zeros(len(raw), bool)
        match[ok] = srt[pos[ok]]
    rest = np.flatnonzero(match < 0)
    taken = np.zeros(len(previous.geoms), bool)
    taken[match[match >= 0]] = True
    untaken = np.flatnonzero(~taken)
    if len(rest) and len(untaken):
        prev_wkb = pd.Index(shapely.to_wkb(previous.geoms[untaken]))
        if not prev_wkb.is_unique:  # pragma: no cover - faces of one overlay never repeat
            raise ValueError("previous overlay has duplicate faces")
        found = prev_wkb.get_indexer(shapely.to_wkb(raw[rest]))
        match[rest[found >= 0]] = untaken[found[found >= 0]]
    same = match >= 0
    keep, new_points = _inside(raw[~same], city_snapped)
    new_geoms = raw[~same][keep]
    faces = np.concatenate([raw[same], new_geoms])
    points = np.concatenate([previous.points[match[same]], new_points])
    face_origin = np.concatenate([origin[same], origin[~same][keep]])
    prev = np.concatenate([match[same], np.full(len(new_geoms), -1, np.int64)])
    order = _reading_order(faces, points)
    faces, points, prev, face_origin = faces[order], points[order], prev[order], face_origin[order]
    is_new = prev < 0
    now_of_prev = np.full(len(previous.geoms), -1, np.int64)
    now_of_prev[prev[~is_new]] = np.flatnonzero(~is_new)
    gone = np.flatnonzero(now_of_prev < 0)
    new_idx = np.flatnonzero(is_new)
    new_tree = shapely.STRtree(points[new_idx])
    names = list(layers)
    all_tree = shapely.STRtree(points) if any(n not in previous.members for n in names) else None

    def membership(name: str) -> np.ndarray:
        if name not in previous.members:  # a layer added since: every face
            assert all_tree is not None
            return _membership(all_tree, layers[name])
        old = previous.members[name]
        face = now_of_prev[old[0]]
        kept = old[:, face >= 0]
        kept = np.vstack([face[face >= 0], kept[1]])
        fresh = _membership(new_tree, layers[name])
        fresh[0] = new_idx[fresh[0]]
        pairs = np.concatenate([kept, fresh], axis=1)
        return pairs[:, np.lexsort((pairs[1], pairs[0]))].astype(np.int64)

    found = _map_layers(membership, names, workers)
    refined = Refinement(previous_index=prev, near=_near(faces, is_new, previous.geoms[gone]),
                         n_previous=len(previous.geoms))
    return Faces(geoms=faces, points=points, members=dict(zip(names, found, strict=True)), tiles=tiles,
                 origin=face_origin, refined=refined)


def _near(faces: np.ndarray, is_new: np.ndarray, gone: np.ndarray) -> np.ndarray:
    """Kept faces (indices) whose bounding box meets that of a new face or of a face now gone."""
    probe = np.concatenate([faces[is_new], gone])
    if len(probe) == 0:
        return np.empty(0, np.int64)
    hit = np.unique(shapely.STRtree(faces).query(probe)[1])
    return hit[~is_new[hit]].astype(np.int64)


def drop_isolated_specks(faces: Faces, adj: pd.DataFrame, max_area_m2: float,
                         points: Sequence[np.ndarray] = ()) -> tuple[Faces, pd.DataFrame, np.ndarray]:
    """Remove faces that share no edge with any other face, are below *max_area_m2* and hold no point.

    Such a face touches the rest of the city at a vertex only: a speck of the city outline or of a
    layer's digitising (a triangle of a few square centimetres where two lines almost meet).  Kept,
    it would become an atomic unit, and a base grid, of its own, since sliver elimination needs a
    shared edge to join it to anything.  Faces holding a building or address point (*points*) stay.

    Returns the kept faces (members renumbered), the adjacency renumbered, and the removed polygons.
    """
    n = len(faces.geoms)
    touched = np.zeros(n, bool)
    touched[adj["a"].to_numpy()] = True
    touched[adj["b"].to_numpy()] = True
    drop = ~touched & (shapely.area(faces.geoms) < max_area_m2)
    if n <= 1 or not drop.any():
        return faces, adj, np.empty(0, dtype=object)
    for pts in points:
        if len(pts) and drop.any():
            hit = shapely.STRtree(pts).query(faces.geoms[drop], predicate="intersects")[0]
            drop[np.flatnonzero(drop)[np.unique(hit)]] = False
    if not drop.any():
        return faces, adj, np.empty(0, dtype=object)
    keep = ~drop
    pos = np.cumsum(keep) - 1
    members = {}
    for name, pairs in faces.members.items():
        m = keep[pairs[0]]
        members[name] = np.vstack([pos[pairs[0][m]], pairs[1][m]]).astype(np.int64)
    adj2 = adj.assign(a=pos[adj["a"].to_numpy()], b=pos[adj["b"].to_numpy()])
    refined = faces.refined
    if refined is not None:
        near = refined.near[keep[refined.near]]
        refined = Refinement(previous_index=refined.previous_index[keep], near=pos[near],
                             n_previous=refined.n_previous)
    kept = Faces(geoms=faces.geoms[keep], points=faces.points[keep], members=members, tiles=faces.tiles,
                 origin=None if faces.origin is None else faces.origin[keep], refined=refined)
    return kept, adj2, faces.geoms[drop]


def _tile_faces(lines: np.ndarray, rect: tuple[float, float, float, float], grid_size_m: float) -> np.ndarray:
    clipped = shapely.get_parts(shapely.clip_by_rect(lines, *rect))
    clipped = clipped[np.isin(shapely.get_type_id(clipped), (1, 2))]  # lines and rings, not points
    border = shapely.get_exterior_ring(shapely.box(*rect))
    noded = shapely.union_all(np.concatenate([clipped, [border]]), grid_size=grid_size_m)
    return shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))


def _faces_by_tiles(lines: np.ndarray, *, grid_size_m: float, tile_coords: int, workers: int,
                    reuse: tuple[Tiles, np.ndarray] | None = None) -> tuple[np.ndarray, Tiles, np.ndarray]:
    """Node and polygonize *lines*, tile by tile (tile edges on whole metres, so on the grid).

    With *reuse* (the tiles of an earlier overlay, the lines added since), only the tiles the added
    lines touch are noded again.  Also returns the *origin* of each face: ``tile << 32 | position``
    in that tile's faces, -1 when the seams were conformed into it (then it is a new object) or
    there is a single tile.
    """
    if reuse is not None:
        xs, ys = reuse[0].xs, reuse[0].ys
    else:
        n_coords = int(shapely.get_num_coordinates(lines).sum())
        x0, y0, x1, y1 = shapely.total_bounds(lines)
        x0, y0, x1, y1 = np.floor(x0) - 1, np.floor(y0) - 1, np.ceil(x1) + 1, np.ceil(y1) + 1
        n = max(1, int(np.ceil(np.sqrt(n_coords / max(tile_coords, 1)))))
        xs = np.unique(np.round(np.linspace(x0, x1, n + 1)))
        ys = np.unique(np.round(np.linspace(y0, y1, n + 1)))
    rects = [(float(xs[i]), float(ys[j]), float(xs[i + 1]), float(ys[j + 1]))
             for j in range(len(ys) - 1) for i in range(len(xs) - 1)]
    if len(rects) == 1:
        noded = shapely.union_all(lines, grid_size=grid_size_m)
        faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
        return faces, Tiles(xs=xs, ys=ys, faces={}), np.full(len(faces), -1, np.int64)
    done: dict[int, np.ndarray] = {}
    todo: list[int] = list(range(len(rects)))
    if reuse is not None:
        added = reuse[1]
        hit = set(shapely.STRtree(added).query(shapely.box(*np.array(rects).T), predicate="intersects")[0]
                  .tolist()) if len(added) else set()
        done = {t: f for t, f in reuse[0].faces.items() if t not in hit}
        todo = sorted(hit)
    tree = shapely.STRtree(lines)
    jobs, job_tile = [], []
    for t in todo:
        idx = tree.query(shapely.box(*rects[t]))
        if len(idx):
            jobs.append((lines[np.sort(idx)], rects[t]))
            job_tile.append(t)
    if workers > 1 and len(jobs) > 1:
        out = _tiles_in_processes(jobs, grid_size_m=grid_size_m, workers=workers)
    else:
        out = [_tile_faces(ln, rect, grid_size_m) for ln, rect in jobs]
    done.update(zip(job_tile, out, strict=True))
    parts = [done[t] for t in sorted(done)]
    faces = np.concatenate(parts) if parts else np.empty(0, dtype=object)
    origin = np.concatenate([(np.int64(t) << 32) | np.arange(len(done[t]), dtype=np.int64)
                             for t in sorted(done)] or [np.empty(0, np.int64)])
    faces, changed = _conform_seams(faces, xs[1:-1], ys[1:-1])
    origin[changed] = -1
    return faces, Tiles(xs=xs, ys=ys, faces=done, noded=frozenset(job_tile)), origin


def conform_seams(faces: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Give faces on both sides of a tile seam the same vertices along it.

    Each tile is noded on its own, so a vertex that snap-rounding puts *on* a seam (a boundary
    within half a grid cell of it, on one side) is a node in that tile only; the face across the
    seam runs straight past it.  The two faces then share an edge but not its vertices: coverage
    union reports incorrectly noded input (or, in older GEOS, returns a self-intersecting grid)
    and the shared edge is missed by :func:`face_adjacency`.  The seam vertices of every face are
    inserted into the faces on the other side (``shapely.snap`` to those points, tolerance far
    below the grid: the lines do not move, they only gain vertices).

    Examples
    --------
    >>> from shapely import Polygon, box
    >>> a, b = box(0, 0, 1, 2), Polygon([(1, 0), (2, 0), (2, 2), (1, 2), (1, 1)])
    >>> [len(shapely.get_coordinates(f)) for f in conform_seams(np.array([a, b]), np.array([1.0]),
    ...                                                            np.array([]))]
    [6, 6]

    """
    return _conform_seams(faces, xs, ys)[0]


def _conform_seams(faces: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`conform_seams` and the indices of the faces it changed."""
    none = np.empty(0, np.int64)
    if len(faces) == 0 or (len(xs) == 0 and len(ys) == 0):
        return faces, none
    coords, idx = shapely.get_coordinates(faces, return_index=True)
    on = np.zeros(len(coords), bool)
    for vals, col in ((np.asarray(xs, float), 0), (np.asarray(ys, float), 1)):
        if len(vals):
            pos = np.clip(np.searchsorted(vals, coords[:, col]), 1, len(vals)) - 1
            near = np.minimum(np.abs(coords[:, col] - vals[pos]),
                              np.abs(coords[:, col] - vals[np.minimum(pos + 1, len(vals) - 1)]))
            on |= near < 1e-9
    if not on.any():
        return faces, none
    touched = np.unique(idx[on])
    pts = shapely.points(np.unique(coords[on], axis=0))
    fi, pi = shapely.STRtree(pts).query(faces[touched], predicate="intersects")
    if not len(fi):
        return faces, none
    order = np.argsort(fi, kind="stable")
    fi, pi = fi[order], pi[order]
    groups = np.unique(fi)
    refs = shapely.multipoints(pts[pi], indices=np.searchsorted(groups, fi))
    out = faces.copy()
    out[touched[groups]] = shapely.snap(faces[touched[groups]], refs, 1e-7)
    return out, touched[groups].astype(np.int64)


def _tile_faces_wkb(
    lines_wkb: np.ndarray, rect: tuple[float, float, float, float], grid_size_m: float
) -> np.ndarray:
    return shapely.to_wkb(_tile_faces(shapely.from_wkb(lines_wkb), rect, grid_size_m))


def _tiles_in_processes(
    jobs: list[tuple[np.ndarray, tuple[float, float, float, float]]], *, grid_size_m: float, workers: int
) -> list[np.ndarray]:
    """Node and polygonize tiles in worker processes (spawned: safe beside threads).

    GEOS's snap-rounding union and polygonize hold the GIL for much of their run, so threads gave
    only 1.36x on two cores; processes give ~1.9x (city sample: 13.9 s -> 7.5 s).  Geometries cross
    the process boundary as WKB.  Falls back to threads where processes cannot be started.
    """
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
    from multiprocessing import get_context

    payload = [(shapely.to_wkb(ln), rect, grid_size_m) for ln, rect in jobs]
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as ex:
            out_wkb = list(ex.map(_tile_faces_wkb, *zip(*payload, strict=True)))
        return [shapely.from_wkb(w) for w in out_wkb]
    except (OSError, RuntimeError):  # no process support (sandbox, frozen app): threads still work
        with ThreadPoolExecutor(max_workers=workers) as tex:
            return list(tex.map(lambda job: _tile_faces(job[0], job[1], grid_size_m), jobs))


def _segment_keys(seg: np.ndarray) -> np.ndarray:
    """Hash each segment's four coordinates to 64 bits (their float bits, ``-0.0`` as ``0.0``)."""
    bits = np.ascontiguousarray(seg + 0.0).view(np.uint64)
    key = bits[:, 0].copy()
    for k in range(1, 4):  # boost::hash_combine
        key ^= bits[:, k] + np.uint64(0x9E3779B97F4A7C15) + (key << np.uint64(6)) + (key >> np.uint64(2))
    return key


def face_adjacency(geoms: np.ndarray) -> pd.DataFrame:
    """Shared edge length between faces whose edges were noded together.

    Parameters
    ----------
    geoms
        Polygons that share identical vertices along common edges (e.g. polygonize output).

    Returns
    -------
    DataFrame
        Columns ``a``, ``b`` (face indices, ``a < b``) and ``length`` (shared edge length), one row
        per adjacent pair, sorted by ``a, b``.

    Examples
    --------
    >>> from shapely import box
    >>> face_adjacency(np.array([box(0, 0, 1, 1), box(1, 0, 2, 1), box(0, 1, 1, 2)])).values.tolist()
    [[0.0, 1.0, 1.0], [0.0, 2.0, 1.0]]

    """
    rings, ring_face = shapely.get_rings(geoms, return_index=True)
    coords, ring_idx = shapely.get_coordinates(rings, return_index=True)
    same = ring_idx[1:] == ring_idx[:-1]
    p, q = coords[:-1][same], coords[1:][same]
    face = ring_face[ring_idx[:-1][same]]
    swap = (p[:, 0] > q[:, 0]) | ((p[:, 0] == q[:, 0]) & (p[:, 1] > q[:, 1]))
    lo = np.where(swap[:, None], q, p)
    hi = np.where(swap[:, None], p, q)
    seg = np.column_stack([lo, hi])
    nonzero = np.any(lo != hi, axis=1)
    seg, face = seg[nonzero], face[nonzero]
    if len(seg) == 0:
        return pd.DataFrame({"a": np.array([], np.int64), "b": np.array([], np.int64),
                             "length": np.array([], float)})
    # one 64-bit key per segment and one argsort, instead of a five-key lexsort (40 % of the
    # function on city faces); equal segments have equal keys, so they end up next to each other
    # unless two different segments share a key — then the exact lexsort decides
    key = _segment_keys(seg)
    order = np.argsort(key, kind="stable")
    key, seg, face = key[order], seg[order], face[order]
    same = np.all(seg[1:] == seg[:-1], axis=1)
    if (key[1:] == key[:-1])[~same].any():  # a key collision: sort exactly
        exact = np.lexsort((face, seg[:, 3], seg[:, 2], seg[:, 1], seg[:, 0]))
        seg, face = seg[exact], face[exact]
        same = np.all(seg[1:] == seg[:-1], axis=1)
    eq = same & (face[1:] != face[:-1])
    i = np.flatnonzero(eq)
    a, b = face[i], face[i + 1]
    length = np.hypot(seg[i, 2] - seg[i, 0], seg[i, 3] - seg[i, 1])
    df = pd.DataFrame({"a": np.minimum(a, b), "b": np.maximum(a, b), "length": length})
    out = df.groupby(["a", "b"], sort=True, as_index=False)["length"].sum()
    return out


def refined_adjacency(faces: Faces, previous_adj: pd.DataFrame) -> pd.DataFrame:
    """:func:`face_adjacency` of a refined overlay, from the adjacency of the previous one.

    Two faces both kept from the previous overlay share exactly the edges they shared before (same
    coordinates), so their row is the previous one renumbered; the rows of new faces come from
    :func:`face_adjacency` of the new faces and the kept faces near them (``refined.near``: a face
    sharing an edge with a new face has a bounding box that meets it).  The lengths are the same
    sums of the same segments in the same order, so the result equals ``face_adjacency`` of all
    faces.
    """
    if faces.refined is None:
        return face_adjacency(faces.geoms)
    is_new = faces.refined.previous_index < 0
    now_of_prev = faces.refined.now_of_previous()
    a = now_of_prev[previous_adj["a"].to_numpy()]
    b = now_of_prev[previous_adj["b"].to_numpy()]
    ok = (a >= 0) & (b >= 0)
    old = pd.DataFrame({"a": np.minimum(a, b)[ok], "b": np.maximum(a, b)[ok],
                        "length": previous_adj["length"].to_numpy()[ok]})
    sub = np.union1d(np.flatnonzero(is_new), faces.refined.near)
    local = face_adjacency(faces.geoms[sub])
    la, lb = sub[local["a"].to_numpy()], sub[local["b"].to_numpy()]
    fresh = is_new[la] | is_new[lb]
    new = pd.DataFrame({"a": la[fresh], "b": lb[fresh], "length": local["length"].to_numpy()[fresh]})
    out = pd.concat([old, new], ignore_index=True)
    return out.sort_values(["a", "b"], kind="stable", ignore_index=True)
