"""Point → base grid: the label raster (exact, vectorised) and the H3 path.

See :mod:`gridplan.hexindex` for why a label raster, and not H3, answers queries.

Why the raster path is hand-written numpy
-----------------------------------------
Measured on the merged ``city`` sample (3,179 grids, 404 k vertices, 11 m cells → 6,470 × 4,414
cells; 10 M uniform points, 345 k of them in mixed cells; CPU seconds, min of ≥ 3 runs):

* **Build** (:class:`_LabelRaster`, 0.27 s): ``rasterio.features.rasterize`` takes 0.36 s to burn
  the polygons and 0.24 s more to burn their outlines ``all_touched`` — and still misses 29 % of
  the cells our exactness argument needs refined (those within the rounding margin of a
  boundary), while burning overlaps last-wins instead of by the edge rule.  The previous build
  (``scipy.ndimage.label`` components, one representative each) spent 0.35 s on the component
  pass and 0.2 s importing scipy; the scanline even-odd fill of :meth:`_LabelRaster._fill` gets
  every clean cell's grid from one sort of the 0.7 M (segment, row-centre-line) crossings and one
  running sum per row.
* **Lookup** (0.14–0.16 s): ``labels.take(flat_index)`` gathers 10 M int16 labels in 0.09–0.10 s, where
  ``labels[iy, ix]`` (two index arrays) takes 0.27 s; the flat index is computed in place in
  64 k-point chunks (:meth:`_LabelRaster._cells`), so no temporary leaves the L2 cache.
* **Refinement** (0.15 s): ``STRtree.query`` needs a shapely Point per point — ~0.55 µs each,
  0.20 s for 364 k — and returns 2.25 bounding-box candidates per point, all tested.  A tile
  index of grid bounding boxes (:meth:`_LabelRaster._tiles`) gives the same candidates from the
  raster index the lookup already computed, and testing them in rank order, one round per
  candidate, stops at the first (= smallest-code) hit.  The test itself stays GEOS's:
  ``intersects_xy`` on the prepared polygon, ~0.13 µs a test; a numpy crossing-number test would
  need robust orientation predicates to keep points exactly on edges right, for little gain.
* **Codes** (0.05–0.07 s): ``codes.take(rank)`` with a trailing ``None`` at index -1 (no copy, no mask).

The H3 path keeps the plain chunked loop with :func:`~gridplan.hexindex.cells._exact_rank`.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import geopandas as gpd
import h3
import h3.api.basic_int as h3i
import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike, NDArray

from gridplan.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from gridplan.plans import Plan
from gridplan.hexindex.cells import (
    _CHUNK,
    _MAX_RASTER_BYTES,
    H3_COLUMNS,
    _as_xy,
    _cells_at,
    _exact_rank,
    _grid_arrays,
    _xy_to_lonlat,
    build_h3_index,
)

logger = logging.getLogger(__name__)

__all__ = ["GridLookup"]


# --------------------------------------------------------------------------------------------
# point → grid lookup
# --------------------------------------------------------------------------------------------


#: Points are looked up in chunks of this many: every temporary of :meth:`_LabelRaster.lookup`
#: (≤ 512 KiB each) stays in the core's 2 MiB L2 cache and is allocated once per call.
_LOOKUP_CHUNK = 1 << 16
#: Candidate grids for refinement are listed per tile of ``2**_TILE_SHIFT`` raster cells a side.
_TILE_SHIFT = 4
#: Half-width (raster cells) of the box each boundary sample marks: samples are ≤ 0.25 cell apart
#: from any boundary point, so cells within 0.01 cell of a boundary are mixed.
_BOX_HALF = 0.26


class _Segments(NamedTuple):
    """Ring segments (a → b) in raster units, and the rank of the grid each belongs to."""

    ua: NDArray[np.float64]
    va: NDArray[np.float64]
    ub: NDArray[np.float64]
    vb: NDArray[np.float64]
    grid: NDArray[np.intp]


class _LabelRaster:
    """Regular raster in the compute CRS: the grid of each raster cell no grid boundary touches.

    Encoding of ``labels``: rank ≥ 0 (every point of the cell is covered by that grid first under
    the edge rule), -1 (inside no grid), -2 (*refine*: a grid boundary passes through or within
    ``0.01 * cell_m`` of the cell — a *mixed* cell — or two grids overlap at its centre; points
    there are answered exactly by :meth:`refine`).

    Built without GDAL or scipy, in vectorised steps that are exact by construction:

    1. mixed cells (:meth:`_touched`): every boundary segment is sampled every ``cell_m / 2`` and
       each sample marks the cells under the four corners of a box of half-width ``0.26 * cell_m``
       around it (less than a cell wide, so the corners reach every cell the box touches).  Every
       boundary point lies within ``0.25 * cell_m`` of a sample, so every cell within ``0.01 *
       cell_m`` of a boundary is marked.  Corners are computed in raster units (``(x - x0) /
       cell_m ± 0.26``), not through :meth:`_cells`; the two differ by float rounding (~1e-12 of a
       cell), far inside that margin.
    2. cell centres (:meth:`_fill`): a scanline even-odd fill along the row centre lines gives,
       for every cell centre, how many grids cover it and which.  A clean cell's centre is at
       least 0.51 cell from every boundary, so no rounding can move a crossing past it, and the
       even-odd rule is the one GEOS's prepared point-in-polygon applies (also to invalid
       polygons); as no boundary enters a clean cell, its centre's grid is that of all its points.

    Refinement (:meth:`refine`) takes its candidate grids from a tile index instead of an STRtree
    query, which needs a shapely Point per query point: each grid is listed in every tile of
    ``2**_TILE_SHIFT`` raster cells a side that its bounding box reaches, the box mapped through
    :meth:`_cells` itself, so by monotonicity a point inside the box always lands in a tile that
    lists the grid.  Candidates are bounding-box hits, so overlaps and holes need no special case.
    """

    def __init__(self, geoms: NDArray[np.object_], *, cell_m: float | None) -> None:
        n = len(geoms)
        dtype = np.int16 if n < np.iinfo(np.int16).max else np.int32
        max_cells = _MAX_RASTER_BYTES // np.dtype(dtype).itemsize
        minx, miny, maxx, maxy = shapely.total_bounds(geoms)
        if cell_m is None:
            # ≤ 64 MiB of labels, and no finer than 1/100 of a typical grid's side
            area = max((maxx - minx) * (maxy - miny), 1.0)
            typical = float(np.sqrt(np.median(shapely.area(geoms)))) / 100.0
            cell_m = max(1.0, float(np.ceil(max(np.sqrt(area / max_cells), typical))))
        if not cell_m > 0:
            raise InputError(f"cell_m must be > 0, got {cell_m}", field="cell_m")
        pad = 2 * cell_m
        self.geoms = geoms
        self.cell_m = float(cell_m)
        self.x0 = float(np.floor((minx - pad) / cell_m) * cell_m)
        self.y1 = float(np.ceil((maxy + pad) / cell_m) * cell_m)
        self.width = int(np.ceil((maxx + pad - self.x0) / cell_m))
        self.height = int(np.ceil((self.y1 - (miny - pad)) / cell_m))
        self._inv = 1.0 / self.cell_m
        seg = self._segments(geoms)
        mixed = self._touched(seg)
        self.labels = self._fill(seg, n, dtype)
        self.labels[mixed.reshape(self.height, self.width)] = -2
        del mixed, seg
        self._flat = self.labels.ravel()
        self.mixed_share = float(np.count_nonzero(self._flat == -2)) / self._flat.size
        self._tiles(geoms)

    def _cells(
        self,
        x: NDArray[np.float64],
        y: NDArray[np.float64],
        scratch: tuple[NDArray[np.float64], NDArray[np.intp], NDArray[np.intp]] | None = None,
    ) -> NDArray[np.intp]:
        """Return the flat raster index of points: the one mapping for grid boxes and queries.

        Points outside the raster are clamped to its border cells, which lie in the two-cell pad
        around the grids and are therefore clean and outside every grid (label -1); ``fmax`` and
        ``fmin`` send NaN to 0, so a NaN coordinate lands in a border cell as well.  The expressions
        are monotonic in x and y.  *scratch* (a float and two index buffers at least ``len(x)``
        long) lets :meth:`lookup` run every step in place; the result is its second buffer.
        """
        m = len(x)
        if scratch is None:
            scratch = (np.empty(m), np.empty(m, dtype=np.intp), np.empty(m, dtype=np.intp))
        f, idx, ix = scratch[0][:m], scratch[1][:m], scratch[2][:m]
        np.subtract(self.y1, y, out=f)
        f *= self._inv
        np.fmax(f, 0.0, out=f)
        np.fmin(f, self.height - 1, out=f)
        np.copyto(idx, f, casting="unsafe")  # truncation = floor, f ≥ 0
        idx *= self.width
        np.subtract(x, self.x0, out=f)
        f *= self._inv
        np.fmax(f, 0.0, out=f)
        np.fmin(f, self.width - 1, out=f)
        np.copyto(ix, f, casting="unsafe")
        idx += ix
        return idx

    def _segments(self, geoms: NDArray[np.object_]) -> _Segments:
        """Every ring segment of every grid in raster units (column, row as floats), with its grid."""
        lines, line_grid = shapely.get_parts(shapely.boundary(geoms), return_index=True)
        coords, idx = shapely.get_coordinates(lines, return_index=True)
        u = np.subtract(coords[:, 0], self.x0)
        u *= self._inv
        v = np.subtract(self.y1, coords[:, 1])
        v *= self._inv
        same = np.flatnonzero(idx[1:] == idx[:-1])
        return _Segments(u[same], v[same], u[same + 1], v[same + 1], line_grid[idx[same]])

    def _touched(self, seg: _Segments) -> NDArray[np.bool_]:
        """Flat mask of the mixed cells (step 1 of the class docstring)."""
        mask = np.zeros(self.height * self.width, dtype=bool)
        step = 1 << 15  # segments per block: ~200 k samples, temporaries of ≤ 2 MiB stay in cache
        for s0 in range(0, len(seg.ua), step):
            ua, va = seg.ua[s0 : s0 + step], seg.va[s0 : s0 + step]
            du, dv = seg.ub[s0 : s0 + step] - ua, seg.vb[s0 : s0 + step] - va
            # samples every half cell incl. both ends: every point of a segment is ≤ 0.25 cell from one
            n_s = np.ceil(2.0 * np.hypot(du, dv)).astype(np.intp)
            n_s += 1
            k = np.repeat(np.arange(len(ua)), n_s)
            t = np.arange(len(k), dtype=np.float64)
            t -= np.repeat(np.cumsum(n_s) - n_s, n_s)
            t /= np.repeat(np.maximum(n_s - 1, 1), n_s)
            cols = np.take(du, k) * t
            cols += np.take(ua, k)
            rows = np.take(dv, k) * t
            rows += np.take(va, k)
            # the box corners (the raster is padded by two cells, so they fall inside it)
            c_lo, c_hi = (cols - _BOX_HALF).astype(np.intp), (cols + _BOX_HALF).astype(np.intp)
            r_lo, r_hi = (rows - _BOX_HALF).astype(np.intp), (rows + _BOX_HALF).astype(np.intp)
            r_lo *= self.width
            r_hi *= self.width
            for r in (r_lo, r_hi):
                for c in (c_lo, c_hi):
                    mask[r + c] = True
        return mask

    def _fill(
        self, seg: _Segments, n: int, dtype: type[np.signedinteger[Any]]
    ) -> NDArray[np.signedinteger[Any]]:
        """Label of every cell centre by a scanline even-odd fill (step 2 of the class docstring).

        Every segment crosses the row centre lines ``v = r + 0.5`` with ``min(va, vb) ≤ r + 0.5 <
        max(va, vb)`` (half-open: a vertex on the line counts once, so each ring crosses each line
        an even number of times).  Sorted by x within (grid, row), a grid's crossings alternately
        enter and leave it; each adds ``±(K + rank + 1)`` (``K = n + 1``) from the first cell centre
        right of it, so a running sum along the row is ``count * K + Σ (rank + 1)`` over the grids
        whose even-odd interior holds the centre: 0 → -1, ``K + rank + 1`` → *rank*, and two or
        more covering grids (an overlap) → -2, refined point by point.
        """
        h, w = self.height, self.width
        vmin, vmax = np.minimum(seg.va, seg.vb), np.maximum(seg.va, seg.vb)
        r_lo = np.ceil(vmin - 0.5).astype(np.intp)
        cnt = np.ceil(vmax - 0.5).astype(np.intp) - r_lo
        k = np.repeat(np.arange(len(cnt)), cnt)
        row = np.arange(len(k)) - np.repeat(np.cumsum(cnt) - cnt - r_lo, cnt)
        ua, va = seg.ua[k], seg.va[k]
        u = ua + (row + 0.5 - va) * ((seg.ub[k] - ua) / (seg.vb[k] - va))
        col = np.floor(u - 0.5).astype(np.intp) + 1  # first cell whose centre is right of u
        grid = seg.grid[k]
        key = grid * h + row
        order = np.lexsort((u, key))
        key, col, row, grid = key[order], col[order], row[order], grid[order]
        starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
        pos = np.arange(len(key)) - np.repeat(starts, np.diff(np.append(starts, len(key))))
        big = n + 1
        wide = np.int32 if n * (2 * n + 1) < np.iinfo(np.int32).max else np.int64
        val = (grid + (big + 1)).astype(wide)
        val[pos % 2 == 1] *= -1
        diff = np.zeros(h * w, dtype=wide)
        np.add.at(diff, row * w + col, val)
        acc = diff.reshape(h, w)
        cap = 2 * n + 2
        lut = np.full(cap + 1, -2, dtype=dtype)
        lut[0] = -1
        lut[big + 1 : big + 1 + n] = np.arange(n)
        labels = np.empty((h, w), dtype=dtype)
        for r0 in range(0, h, 64):  # block of rows: the running sums stay in cache
            blk = acc[r0 : r0 + 64]
            np.cumsum(blk, axis=1, out=blk)
            np.minimum(blk, cap, out=blk)
            np.take(lut, blk.astype(np.intp, copy=False), out=labels[r0 : r0 + 64])
        return labels

    def _tiles(self, geoms: NDArray[np.object_]) -> None:
        """Tile → grids whose bounding box reaches the tile (CSR, grids in rank order per tile)."""
        bounds = shapely.bounds(geoms)
        self._bounds = np.ascontiguousarray(bounds.T)  # minx, miny, maxx, maxy rows
        k = _TILE_SHIFT
        lo = self._cells(bounds[:, 0], bounds[:, 3])  # top-left cell
        hi = self._cells(bounds[:, 2], bounds[:, 1])  # bottom-right cell
        r0, c0 = np.divmod(lo, self.width)
        r1, c1 = np.divmod(hi, self.width)
        r0, c0, r1, c1 = r0 >> k, c0 >> k, r1 >> k, c1 >> k
        self._tiles_w = (self.width >> k) + 1
        nx, ny = c1 - c0 + 1, r1 - r0 + 1
        cnt = nx * ny
        g = np.repeat(np.arange(len(geoms)), cnt)
        j = np.arange(len(g)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        jy, jx = np.divmod(j, np.repeat(nx, cnt))
        tile = (r0[g] + jy) * self._tiles_w + c0[g] + jx
        order = np.argsort(tile, kind="stable")  # stable: grids stay in rank order within a tile
        self._tile_grid = g[order]
        n_tiles = self._tiles_w * ((self.height >> k) + 1)
        self._tile_start = np.zeros(n_tiles + 1, dtype=np.intp)
        np.cumsum(np.bincount(tile, minlength=n_tiles), out=self._tile_start[1:])

    def lookup(self, x: NDArray[np.float64], y: NDArray[np.float64], out: NDArray[np.integer[Any]]
               ) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        """Write the label of every point into *out*; return the positions and cells of mixed ones."""
        m = min(len(x), _LOOKUP_CHUNK)
        scratch = (np.empty(m), np.empty(m, dtype=np.intp), np.empty(m, dtype=np.intp))
        is_mixed = np.empty(m, dtype=bool)
        pos: list[NDArray[np.intp]] = []
        cells: list[NDArray[np.intp]] = []
        for s in range(0, len(x), _LOOKUP_CHUNK):
            idx = self._cells(x[s : s + _LOOKUP_CHUNK], y[s : s + _LOOKUP_CHUNK], scratch)
            o = out[s : s + len(idx)]
            np.take(self._flat, idx, out=o)
            mix = np.flatnonzero(np.equal(o, -2, out=is_mixed[: len(o)]))
            if len(mix):
                cells.append(idx[mix])
                mix += s
                pos.append(mix)
        if not pos:
            return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
        return np.concatenate(pos), np.concatenate(cells)

    def refine(
        self, x: NDArray[np.float64], y: NDArray[np.float64], cells: NDArray[np.intp]
    ) -> NDArray[np.int64]:
        """Exact rank of points in *cells* labelled -2 (raster index): the edge rule, as :func:`_exact_rank`.

        Candidates are the grids listed in the point's tile whose bounding box holds the point, in
        rank order; round ``j`` tests the ``j``-th candidate of every point not yet answered with
        ``intersects_xy`` on the prepared polygon (= ``covers``), so the first hit is the smallest
        covering rank and most points need one test.  Points go tile by tile, so neighbouring
        tests hit the same prepared polygon while it is in cache.
        """
        if len(x) == 0:
            return np.empty(0, dtype=np.int64)
        k = _TILE_SHIFT
        row, col = np.divmod(cells, self.width)
        tile = (row >> k) * self._tiles_w + (col >> k)
        order = np.argsort(tile, kind="stable")
        tile, xs, ys = tile[order], x[order], y[order]
        start = self._tile_start[tile]
        cnt = self._tile_start[tile + 1] - start
        pt = np.repeat(np.arange(len(xs)), cnt)
        g = self._tile_grid[np.arange(len(pt)) - np.repeat(np.cumsum(cnt) - cnt - start, cnt)]
        px, py = xs[pt], ys[pt]
        b = self._bounds
        keep = (b[0][g] <= px) & (px <= b[2][g]) & (b[1][g] <= py) & (py <= b[3][g])
        pt, g = pt[keep], g[keep]
        n_cand = np.bincount(pt, minlength=len(xs))
        first = np.cumsum(n_cand) - n_cand
        rank = np.full(len(xs), -1, dtype=np.int64)
        todo = np.flatnonzero(n_cand)
        j = 0
        while len(todo):
            gi = g[first[todo] + j]
            hit = shapely.intersects_xy(self.geoms[gi], xs[todo], ys[todo])
            rank[todo[hit]] = gi[hit]
            j += 1
            todo = todo[~hit & (n_cand[todo] > j)]
        out = np.empty(len(x), dtype=np.int64)
        out[order] = rank
        return out


class _H3Table:
    """Sorted base-resolution cells → (rank, refine flag) from an ``h3_cells`` table."""

    def __init__(self, h3_cells: pd.DataFrame, rank_of: dict[str, int], res: int) -> None:
        keys: list[int] = []
        vals: list[int] = []
        refine: list[bool] = []
        seen_fine: set[int] = set()
        for cell, code, r, e in h3_cells[list(H3_COLUMNS)].itertuples(index=False, name=None):
            ci = h3.str_to_int(cell)
            rank = rank_of[str(code)]
            r = int(r)
            if r < res:
                ch = h3i.cell_to_children(ci, res)
                keys.extend(ch)
                vals.extend([rank] * len(ch))
                refine.extend([bool(e)] * len(ch))
            elif r == res:
                keys.append(ci)
                vals.append(rank)
                refine.append(bool(e))
            else:
                parent = h3i.cell_to_parent(ci, res)
                if parent not in seen_fine:
                    seen_fine.add(parent)
                    keys.append(parent)
                    vals.append(-1)
                    refine.append(True)
        k = np.asarray(keys, dtype=np.uint64)
        order = np.argsort(k, kind="stable")
        self.keys = k[order]
        self.ranks = np.asarray(vals, dtype=np.int64)[order]
        self.refine = np.asarray(refine, dtype=bool)[order]
        if len(self.keys) > 1 and (np.diff(self.keys) == 0).any():
            raise InputError("h3_cells is not a partition: a cell is listed twice", layer="h3_cells")
        self.res = res

    def lookup(self, cells: NDArray[np.uint64]) -> NDArray[np.int64]:
        """Rank per cell; -2 where the point must be refined (edge cell or cell not in the table)."""
        out = np.full(len(cells), -2, dtype=np.int64)
        if len(self.keys) == 0:
            return out
        pos = np.searchsorted(self.keys, cells)
        pos = np.minimum(pos, len(self.keys) - 1)
        found = self.keys[pos] == cells
        good = found & ~self.refine[pos]
        out[good] = self.ranks[pos[good]]
        return out


_PLAN_CACHE: dict[str, GridLookup] = {}
_PLAN_CACHE_SIZE = 4


class GridLookup:
    """Exact point → base grid assignment for one base grid (fast path: label raster or H3).

    Parameters
    ----------
    base_grids
        Polygons with a unique ``grid_code`` in a projected CRS (the plan's ``base_grids``).
    h3_cells
        The plan's ``h3_cells`` table (built with :func:`build_h3_index` on first H3 use if ``None``).
    res
        Resolution of *h3_cells* (the plan's ``meta.h3_res``).
    cell_m
        Label-raster cell size in metres (default: the smallest whole metre keeping the raster at
        ≤ 64 MiB, and ≥ 1/100 of a typical grid's side).

    Notes
    -----
    Edge rule: a point covered by several grids (exactly on a shared edge or vertex, or in an
    overlap) is assigned to the grid with the smallest ``grid_code`` that covers it (``covers``
    includes the boundary); a point covered by no grid, or with a non-finite coordinate, gets
    ``None``.  Coordinates are in the CRS of *base_grids*.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> grids = gpd.GeoDataFrame({"grid_code": ["B", "A"]},
    ...     geometry=[box(441000, 2540000, 442000, 2541000), box(440000, 2540000, 441000, 2541000)],
    ...     crs=4547)
    >>> lookup = GridLookup(grids)
    >>> lookup.assign_xy([440500, 441000, 441500, 0], [2540500, 2540500, 2540500, 0]).tolist()
    ['A', 'A', 'B', None]

    """

    def __init__(
        self,
        base_grids: gpd.GeoDataFrame,
        h3_cells: pd.DataFrame | None = None,
        *,
        res: int = 10,
        cell_m: float | None = None,
    ) -> None:
        self.codes, self.geoms, self.crs = _grid_arrays(base_grids)
        self.res = int(res)
        self._h3_cells = h3_cells
        self._cell_m = cell_m
        self._tree = shapely.STRtree(self.geoms)
        shapely.prepare(self.geoms)
        self._code_or_none = np.concatenate([self.codes, np.array([None], dtype=object)])
        self._raster: _LabelRaster | None = None
        self._h3: _H3Table | None = None

    @classmethod
    def from_plan(cls, plan: Plan) -> GridLookup:
        """Lookup for a plan's base grids, cached in memory by ``plan.meta.plan_id``."""
        key = plan.meta.plan_id
        hit = _PLAN_CACHE.get(key)
        if hit is not None:
            return hit
        lookup = cls(plan.base_grids, plan.h3_cells if len(plan.h3_cells) else None, res=plan.meta.h3_res)
        if len(_PLAN_CACHE) >= _PLAN_CACHE_SIZE:
            _PLAN_CACHE.pop(next(iter(_PLAN_CACHE)))
        _PLAN_CACHE[key] = lookup
        return lookup

    @property
    def h3_cells(self) -> pd.DataFrame:
        """The H3 table this lookup uses (built from the grids if none was given)."""
        if self._h3_cells is None:
            self._h3_cells = build_h3_index(
                gpd.GeoDataFrame({"grid_code": self.codes}, geometry=self.geoms, crs=self.crs), res=self.res
            )
        return self._h3_cells

    def _codes(self, rank: NDArray[np.integer[Any]]) -> NDArray[np.object_]:
        """Code objects of ranks ≥ -1: ``-1`` takes the trailing ``None`` (no copy, no mask)."""
        return self._code_or_none.take(rank)

    def assign_exact(self, x: ArrayLike, y: ArrayLike) -> NDArray[np.object_]:
        """Assign by STRtree point-in-polygon with the edge rule: the reference (slower, same result).

        Parameters
        ----------
        x, y
            Coordinates in the CRS of the base grids (metres).

        Returns
        -------
        numpy.ndarray
            Object array of grid codes, ``None`` outside every grid.

        """
        xa, ya = _as_xy(x, y)
        return self._codes(_exact_rank(self._tree, xa, ya))

    def assign_xy(
        self, x: ArrayLike, y: ArrayLike, *, method: Literal["raster", "h3"] = "raster"
    ) -> NDArray[np.object_]:
        """Grid code of every point, exactly equal to :meth:`assign_exact`.

        Parameters
        ----------
        x, y
            Coordinates in the CRS of the base grids (metres); NaN gives ``None``.
        method
            ``"raster"`` (default, fastest): label raster + STRtree refinement near boundaries;
            ``"h3"``: the plan's H3 table (``latlng_to_cell`` per point) + refinement of edge cells.

        Returns
        -------
        numpy.ndarray
            Object array of grid codes (str), ``None`` where no grid covers the point.

        Raises
        ------
        InputError
            *x*, *y* of different lengths or an unknown *method*.

        """
        t0 = time.perf_counter()
        xa, ya = _as_xy(x, y)
        if method not in ("raster", "h3"):
            raise InputError(f"unknown method {method!r}; use 'raster' or 'h3'", field="method")
        n = len(xa)
        if len(self.codes) == 0:
            return np.full(n, None, dtype=object)
        if method == "raster":
            if self._raster is None:
                self._raster = _LabelRaster(self.geoms, cell_m=self._cell_m)
            rank: NDArray[np.integer[Any]] = np.empty(n, dtype=self._raster.labels.dtype)
            pos, cells = self._raster.lookup(xa, ya, rank)
            rank[pos] = self._raster.refine(xa[pos], ya[pos], cells)
            n_refined = len(pos)
        else:
            rank = np.empty(n, dtype=np.int64)
            n_refined = 0
            for s in range(0, n, _CHUNK):
                cx, cy = xa[s : s + _CHUNK], ya[s : s + _CHUNK]
                r = self._h3_ranks(cx, cy)
                ref = np.flatnonzero(r == -2)
                if len(ref):
                    r[ref] = _exact_rank(self._tree, cx[ref], cy[ref])
                n_refined += len(ref)
                rank[s : s + _CHUNK] = r
        out = self._codes(rank)
        if logger.isEnabledFor(logging.INFO):  # the count is a pass over every point
            logger.info(
                "assigned %d points to %d grids (%s, %d refined exactly, %d outside) in %.2f s",
                n,
                len(self.codes),
                method,
                n_refined,
                np.count_nonzero(rank < 0),
                time.perf_counter() - t0,
            )
        return out

    def _h3_ranks(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.int64]:
        if self._h3 is None:
            rank_of = {c: i for i, c in enumerate(self.codes.tolist())}
            unknown = set(self.h3_cells["grid_code"].astype(str)) - set(rank_of)
            if unknown:
                raise InputError(
                    f"h3_cells names grid codes that are not in base_grids: {sorted(unknown)[:3]}",
                    layer="h3_cells",
                    field="grid_code",
                )
            self._h3 = _H3Table(self.h3_cells, rank_of, self.res)
        lon, lat = _xy_to_lonlat(self.crs, x, y)
        cells = _cells_at(lat, lon, self.res)
        r = self._h3.lookup(cells)
        r[~(np.isfinite(x) & np.isfinite(y))] = -1
        return r
