"""H3 index of a base grid and exact point → grid assignment (PRODUCT §3.3 "H3 index", §3.4).

What this module owns
---------------------
* :func:`build_h3_index` — the plan's ``h3_cells`` table: a **partition** of the H3 cells (default
  res 10) whose centres lie in the base grid, each cell owned by exactly one grid, compacted for
  storage, with ``edge=True`` on every cell that a grid boundary cuts.  Ownership is decided by exact
  point-in-polygon of the cell centre *in the compute CRS* (the polygon-fill in lon/lat only proposes
  candidates), so the table agrees with the grid geometry to the last bit.  A grid too small to hold
  a cell centre never vanishes: the cell under its representative point is split into its children
  (res + 1, … up to 15) until the grid owns one, so the table stays a partition with mixed
  resolutions (the ``res`` column) and no cell is listed twice or together with one of its ancestors.
* :class:`GridLookup` — ``assign_xy(x, y)`` returns the grid code of each point, exactly equal to the
  point-in-polygon answer under the **edge rule**: a point covered by several grids (on a shared
  edge or vertex, or inside an overlap) goes to the grid with the *smallest* ``grid_code`` among the
  grids that ``shapely.covers`` it; a point covered by no grid gets ``None``.
  :meth:`GridLookup.assign_exact` is that rule evaluated directly with an STRtree (the reference).

Why a label raster, and not H3, answers queries
-----------------------------------------------
h3-py 4 has no vectorised ``latlng_to_cell``; every H3 lookup needs a projection to lon/lat, one
Python call per point (~2 M points/s here; ``h3ronpy``'s vectorised call measured 1.7x faster, same
cells) and then point-in-polygon for the ~40 % of res-10 cells that a grid boundary cuts.  Measured
by ``benchmarks/bench_assign.py`` on the merged ``city`` sample (3,186 base grids, 10 M uniform points
+ 809,721 points on grid edges/vertices; CPU seconds, because the 2 cores were shared with 7 other
jobs; every method gave identical answers):

====================================================  ============================  ===========
method                                                10 M points (CPU)             peak memory
====================================================  ============================  ===========
``geopandas.sjoin(predicate="within")``               29.4 s                        +2.2 GiB
exact STRtree point-in-polygon (``assign_exact``)     21.5 s
H3 path (``method="h3"``)                             ~18 s (0.56 M points/s)
label raster, cold (built from the plan, then query)  3.4 s (8.6x; 12x when quiet)  +0.3 GiB
label raster, warm (cached per plan)                  2.1 s (14x; 19x when quiet)   +0.2 GiB
====================================================  ============================  ===========

The label raster is a regular grid in the compute CRS (default cell: the smallest whole metre that
keeps it ≤ 64 MiB with int16 labels, 11 m for the city sample) giving, for every raster cell that no
grid boundary touches, the grid of all its points; only points in *mixed* cells (3.7 % of the city
sample's area) are refined by exact point-in-polygon.  Interior points are answered by pure numpy
indexing — no projection, no H3.  How it is built, and why it is exact, is in :class:`_LabelRaster`;
it needs only ``base_grids``, takes ~2 s for the city sample, and is cached per ``plan_id`` by
:meth:`GridLookup.from_plan`.  The H3 path (``assign_xy(..., method="h3")``) is kept and tested: it is
the index PRODUCT asks for (used by H3 aggregations), and it returns the same answers.  ``h3ronpy``
is therefore not a dependency.

Geometries are in a projected CRS (EPSG:4547 by default); H3 needs lon/lat, obtained through
:func:`gridplan.crs.get_transformer` (CGCS2000 ≈ WGS-84, the sub-metre datum difference is far below a
res-10 cell and ownership is decided in the compute CRS anyway).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import geopandas as gpd
import h3
import h3.api.basic_int as h3i
import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike, NDArray

from gridplan.crs import EXCHANGE_EPSG, get_transformer, require_projected
from gridplan.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from gridplan.plans import Plan

logger = logging.getLogger(__name__)

__all__ = ["H3_COLUMNS", "GridLookup", "build_h3_index", "h3_cells_at_res"]

#: Columns of the ``h3_cells`` table.
H3_COLUMNS: tuple[str, ...] = ("h3", "grid_code", "res", "edge")

#: Safety margin (metres) by which cell hexagons are enlarged before the ``edge`` test.  H3 cell
#: edges are great-circle arcs and deviate from straight lines in EPSG:4547 by ~0.1 mm at res 10.
_EDGE_MARGIN_M = 0.5
#: Candidate cells come from a polygon-fill of each grid grown by this many metres.
_FILL_MARGIN_M = 1.0
_MAX_RES = 15
#: Default upper bound on the size of the label raster (int16 labels → 32 M cells).
_MAX_RASTER_BYTES = 64 * 2**20
#: Points are assigned in chunks of this size to bound peak memory.
_CHUNK = 2_000_000


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _grid_arrays(base_grids: gpd.GeoDataFrame) -> tuple[NDArray[np.object_], NDArray[np.object_], Any]:
    """Return (codes, geometries) sorted by grid code, and the CRS; validate the input."""
    if not isinstance(base_grids, gpd.GeoDataFrame):
        raise InputError("base grids must be a GeoDataFrame with grid_code and polygon geometry")
    if "grid_code" not in base_grids.columns:
        raise InputError("base grids have no grid_code column", layer="base_grids", field="grid_code")
    require_projected(base_grids, what="layer base_grids")
    codes = base_grids["grid_code"].astype(object).to_numpy()
    missing = pd.isna(codes) | (base_grids["grid_code"].astype(str).str.strip() == "").to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise InputError(
            "empty grid_code; every base grid needs a code", layer="base_grids", row=row, field="grid_code"
        )
    codes = np.array([str(c) for c in codes], dtype=object)
    if len(set(codes)) != len(codes):
        dup = pd.Series(codes).loc[pd.Series(codes).duplicated()].iloc[0]
        raise InputError(f"duplicate grid_code {dup}", layer="base_grids", field="grid_code")
    geoms = np.asarray(base_grids.geometry.values, dtype=object)
    bad = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError("base grid without geometry", layer="base_grids", row=row)
    kinds = shapely.get_type_id(geoms)
    if not np.isin(kinds, (3, 6)).all():  # Polygon, MultiPolygon
        row = int(np.flatnonzero(~np.isin(kinds, (3, 6)))[0])
        raise InputError("base grid geometry is not a polygon", layer="base_grids", row=row)
    order = np.argsort(codes, kind="stable")
    return codes[order], geoms[order], base_grids.crs


def _xy_to_lonlat(
    crs: Any, x: NDArray[np.float64], y: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    lon, lat = get_transformer(crs, EXCHANGE_EPSG).transform(x, y)
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def _lonlat_to_xy(
    crs: Any, lon: NDArray[np.float64], lat: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    x, y = get_transformer(EXCHANGE_EPSG, crs).transform(lon, lat)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def _geoms_to_lonlat(crs: Any, geoms: NDArray[np.object_]) -> NDArray[np.object_]:
    def fn(coords: NDArray[np.float64]) -> NDArray[np.float64]:
        lon, lat = _xy_to_lonlat(crs, coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    return np.asarray(shapely.transform(geoms, fn), dtype=object)


def _exact_rank(tree: shapely.STRtree, x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.int64]:
    """Rank (index into the code-sorted grids) of the smallest-code grid covering each point; -1 if none.

    ``tree`` must be built on the code-sorted geometries, so the smallest tree index is the smallest
    code.  Candidates come from the tree's bounding boxes; the test is ``intersects_xy`` on the
    *prepared* grid polygon (= ``covers``, boundary included) — several times faster than the tree's
    own predicate query, which prepares the point instead of the polygon.
    """
    out = np.full(len(x), -1, dtype=np.int64)
    if len(x) == 0:
        return out
    geoms = tree.geometries
    shapely.prepare(geoms)
    pi, gi = tree.query(shapely.points(x, y))
    hit = shapely.intersects_xy(geoms[gi], x[pi], y[pi])
    pi, gi = pi[hit], gi[hit]
    if len(pi):
        best = np.full(len(x), np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(best, pi, gi.astype(np.int64))
        hit = best != np.iinfo(np.int64).max
        out[hit] = best[hit]
    return out


def _as_xy(x: ArrayLike, y: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    xa = np.asarray(x, dtype=np.float64).ravel()
    ya = np.asarray(y, dtype=np.float64).ravel()
    if xa.shape != ya.shape:
        raise InputError(f"x and y differ in length ({len(xa)} vs {len(ya)})")
    return xa, ya


def _cells_at(lat: NDArray[np.float64], lon: NDArray[np.float64], res: int) -> NDArray[np.uint64]:
    """H3 cells (integer form) of points given in degrees; 0 where the coordinate is not finite."""
    n = len(lat)
    ok = np.isfinite(lat) & np.isfinite(lon)
    out = np.zeros(n, dtype=np.uint64)
    if ok.all():
        out[:] = np.fromiter(
            map(h3i.latlng_to_cell, lat.tolist(), lon.tolist(), [res] * n), dtype=np.uint64, count=n
        )
    elif ok.any():
        la, lo = lat[ok], lon[ok]
        m = len(la)
        out[ok] = np.fromiter(
            map(h3i.latlng_to_cell, la.tolist(), lo.tolist(), [res] * m), dtype=np.uint64, count=m
        )
    return out


def _cell_centres_xy(crs: Any, cells: Sequence[int]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    if len(cells) == 0:
        return np.empty(0), np.empty(0)
    ll = np.array([h3i.cell_to_latlng(c) for c in cells], dtype=np.float64)
    return _lonlat_to_xy(crs, ll[:, 1], ll[:, 0])


# --------------------------------------------------------------------------------------------
# the H3 index
# --------------------------------------------------------------------------------------------


def build_h3_index(base_grids: gpd.GeoDataFrame, *, res: int = 10) -> pd.DataFrame:
    """Index a base grid to H3: a compacted cell → grid table that is a partition.

    Parameters
    ----------
    base_grids
        Polygons with a unique ``grid_code``, in a projected CRS (EPSG:4547).
    res
        H3 resolution of the index, 0–15 (default 10, cells of ~15,000 m²).

    Returns
    -------
    pandas.DataFrame
        Columns ``h3`` (str), ``grid_code`` (str), ``res`` (int), ``edge`` (bool), sorted by
        ``grid_code`` then ``h3``.  Every cell whose centre lies in a grid (exact point-in-polygon in
        the grids' CRS; edge rule: smallest covering ``grid_code``) appears once, owned by that grid;
        interior cells are compacted (``res`` ≤ *res*); a cell that a grid boundary cuts keeps
        ``res`` and has ``edge=True``; cells finer than *res* (``res`` > *res*, ``edge=True``) only
        appear where a grid too small to hold a cell centre claimed part of a cell.  Every grid owns
        at least one cell.

    Raises
    ------
    InputError
        Bad *res*, missing/duplicate/empty ``grid_code``, non-polygon geometry.
    CRSError
        *base_grids* not in a projected CRS.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> grids = gpd.GeoDataFrame({"grid_code": ["A", "B"]},
    ...     geometry=[box(440000, 2540000, 441000, 2541000), box(441000, 2540000, 442000, 2541000)],
    ...     crs=4547)
    >>> cells = build_h3_index(grids, res=9)
    >>> sorted(cells["grid_code"].unique()), bool(cells["edge"].any())
    (['A', 'B'], True)

    """
    t0 = time.perf_counter()
    if not isinstance(res, (int, np.integer)) or not 0 <= int(res) <= _MAX_RES:
        raise InputError(f"H3 resolution must be an integer 0..15, got {res!r}", field="res")
    res = int(res)
    codes, geoms, crs = _grid_arrays(base_grids)
    n_grids = len(codes)
    if n_grids == 0:
        return pd.DataFrame(
            {
                "h3": pd.Series(dtype=object),
                "grid_code": pd.Series(dtype=object),
                "res": pd.Series(dtype=np.int64),
                "edge": pd.Series(dtype=bool),
            }
        )
    tree = shapely.STRtree(geoms)
    shapely.prepare(geoms)

    # 1. candidate cells: centre-fill of every grid grown by a metre (in lon/lat) ...
    grown = _geoms_to_lonlat(
        crs, np.asarray(shapely.buffer(geoms, _FILL_MARGIN_M, quad_segs=2), dtype=object)
    )
    cand: set[int] = set()
    for g in grown:
        cand.update(h3i.geo_to_cells(g, res))
    cand_arr = np.fromiter(cand, dtype=np.uint64, count=len(cand))
    cand_arr.sort()
    # ... 2. owned by the grid covering the centre, decided exactly in the compute CRS
    cx, cy = _cell_centres_xy(crs, cand_arr.tolist())
    owner = _exact_rank(tree, cx, cy)
    keep = owner >= 0
    owned: dict[int, int] = dict(zip(cand_arr[keep].tolist(), owner[keep].tolist(), strict=True))
    forced_edge: set[int] = set()
    split: set[int] = set()

    # 3. no grid may vanish: split the cell under its representative point until it owns a piece
    for _ in range(3):
        counts = np.bincount(np.fromiter(owned.values(), dtype=np.int64, count=len(owned)), minlength=n_grids)
        vanished = np.flatnonzero(counts == 0)
        if len(vanished) == 0:
            break
        reps = shapely.point_on_surface(geoms[vanished])
        rlon, rlat = _xy_to_lonlat(crs, shapely.get_x(reps), shapely.get_y(reps))
        for rank, lon, lat in zip(vanished.tolist(), rlon.tolist(), rlat.tolist(), strict=True):
            _claim(owned, split, forced_edge, tree, crs, rank, lat, lon, res)
    else:  # pragma: no cover - needs several grids inside one 1 m² res-15 cell
        logger.warning("some grids own no H3 cell even at res 15 (grids smaller than 1 m²)")

    # 4. edge flags of the base-resolution cells; finer cells are always edge cells
    cells = np.fromiter(owned.keys(), dtype=np.uint64, count=len(owned))
    ranks = np.fromiter(owned.values(), dtype=np.int64, count=len(owned))
    cres = np.fromiter((h3i.get_resolution(c) for c in cells.tolist()), dtype=np.int64, count=len(cells))
    edge = np.ones(len(cells), dtype=bool)
    base = cres == res
    edge[base] = _cut_by_boundary(tree, geoms, crs, cells[base], ranks[base])
    if forced_edge:
        edge[np.isin(cells, np.fromiter(forced_edge, dtype=np.uint64))] = True

    # 5. compact the interior cells of every grid
    out_cells: list[NDArray[np.uint64]] = [cells[edge]]
    out_ranks: list[NDArray[np.int64]] = [ranks[edge]]
    out_edge: list[NDArray[np.bool_]] = [np.ones(int(edge.sum()), dtype=bool)]
    inner = ~edge
    ic, ir = cells[inner], ranks[inner]
    order = np.argsort(ir, kind="stable")
    ic, ir = ic[order], ir[order]
    bounds = np.flatnonzero(np.diff(ir)) + 1
    for part_c, part_r in zip(np.split(ic, bounds), np.split(ir, bounds), strict=True):
        if len(part_c) == 0:
            continue
        comp = np.asarray(h3i.compact_cells(part_c.tolist()), dtype=np.uint64)
        out_cells.append(comp)
        out_ranks.append(np.full(len(comp), part_r[0], dtype=np.int64))
        out_edge.append(np.zeros(len(comp), dtype=bool))
    all_c = np.concatenate(out_cells)
    all_r = np.concatenate(out_ranks)
    table = pd.DataFrame(
        {
            "h3": [h3.int_to_str(c) for c in all_c.tolist()],
            "grid_code": codes[all_r],
            "res": np.fromiter(
                (h3i.get_resolution(c) for c in all_c.tolist()), dtype=np.int64, count=len(all_c)
            ),
            "edge": np.concatenate(out_edge),
        }
    )
    table = table.sort_values(["grid_code", "h3"], kind="stable").reset_index(drop=True)
    logger.info(
        "indexed %d base grids to %d H3 rows (res %d, %d edge cells, %d cells at finer res) in %.1f s",
        n_grids,
        len(table),
        res,
        int(table["edge"].sum()),
        int((table["res"] > res).sum()),
        time.perf_counter() - t0,
    )
    return table


def _claim(
    owned: dict[int, int],
    split: set[int],
    forced_edge: set[int],
    tree: shapely.STRtree,
    crs: Any,
    rank: int,
    lat: float,
    lon: float,
    res: int,
) -> None:
    """Give grid *rank* (which owns no cell) a piece of the cell under its point (lat, lon).

    The cell under the point is replaced by its children (each owned by the grid covering its
    centre, or by nobody), descending the H3 hierarchy one resolution at a time until *rank* owns
    a child; at res 15 the grid takes the cell it reached outright.  H3 children do not tile their
    parent exactly, so the descent follows the logical hierarchy (the child under the point when it
    is a child of the current cell, else the child whose centre is nearest), which keeps the table
    a partition: no cell is ever listed together with one of its ancestors.
    """
    c = h3i.latlng_to_cell(lat, lon, res)
    for r in range(res, _MAX_RES):
        children = h3i.cell_to_children(c, r + 1)
        if c not in split:
            owned.pop(c, None)
            split.add(c)
            cx, cy = _cell_centres_xy(crs, children)
            child_owner = _exact_rank(tree, cx, cy)
            for ch, o in zip(children, child_owner.tolist(), strict=True):
                if o >= 0:
                    owned[ch] = o
                    forced_edge.add(ch)
            if rank in child_owner:
                return
        nxt = h3i.latlng_to_cell(lat, lon, r + 1)
        if nxt not in children:
            d = [h3.great_circle_distance((lat, lon), h3i.cell_to_latlng(ch)) for ch in children]
            nxt = children[int(np.argmin(d))]
        c = nxt
    owned[c] = rank
    forced_edge.add(c)


def _cut_by_boundary(
    tree: shapely.STRtree,
    geoms: NDArray[np.object_],
    crs: Any,
    cells: NDArray[np.uint64],
    ranks: NDArray[np.int64],
) -> NDArray[np.bool_]:
    """Flag cells not entirely inside their owner, or touched by another grid (True = edge)."""
    n = len(cells)
    edge = np.ones(n, dtype=bool)
    if n == 0:
        return edge
    bnds = [h3i.cell_to_boundary(c) for c in cells.tolist()]
    hexa = np.array([len(b) == 6 for b in bnds])  # pentagons (none in China) stay edge cells
    idx = np.flatnonzero(hexa)
    if len(idx) == 0:
        return edge
    ll = np.array([bnds[i] for i in idx.tolist()], dtype=np.float64)  # (m, 6, 2) lat, lon
    m = len(idx)
    vx, vy = _lonlat_to_xy(crs, ll[:, :, 1].ravel(), ll[:, :, 0].ravel())
    vx, vy = vx.reshape(m, 6), vy.reshape(m, 6)
    cx, cy = vx.mean(axis=1, keepdims=True), vy.mean(axis=1, keepdims=True)
    rmin = np.sqrt((vx - cx) ** 2 + (vy - cy) ** 2).min(axis=1, keepdims=True)
    scale = 1.0 + _EDGE_MARGIN_M / (0.8 * rmin)  # grows the hexagon by ≥ the margin on every side
    hexes = shapely.polygons(np.stack([cx + (vx - cx) * scale, cy + (vy - cy) * scale], axis=-1))
    # interior = the owner contains the grown hexagon and no other grid touches it; bounding-box
    # candidates from the tree, predicates on the prepared grid polygons (fast path of GEOS)
    own = ranks[idx]
    inside = shapely.contains(geoms[own], hexes)
    hi, gi = tree.query(hexes)
    other = (gi != own[hi]) & inside[hi]
    touched = np.zeros(m, dtype=bool)
    if other.any():
        hit = shapely.intersects(geoms[gi[other]], hexes[hi[other]])
        touched[hi[other][hit]] = True
    edge[idx] = ~(inside & ~touched)
    return edge


def h3_cells_at_res(h3_cells: pd.DataFrame, res: int) -> pd.DataFrame:
    """Uncompact an ``h3_cells`` table to resolution *res* (cells finer than *res* are kept as is).

    Parameters
    ----------
    h3_cells
        Table from :func:`build_h3_index`.
    res
        Target resolution (≥ every compacted row's ``res`` you want expanded).

    Returns
    -------
    pandas.DataFrame
        Same columns, one row per cell at *res* (plus the finer rows).

    Examples
    --------
    >>> t = pd.DataFrame({"h3": [h3.latlng_to_cell(23.0, 113.7, 8)], "grid_code": ["A"], "res": [8],
    ...                   "edge": [False]})
    >>> len(h3_cells_at_res(t, 9))
    7

    """
    rows = []
    for cell, code, r, e in h3_cells[list(H3_COLUMNS)].itertuples(index=False, name=None):
        if r >= res:
            rows.append((cell, code, int(r), bool(e)))
        else:
            rows.extend((ch, code, res, bool(e)) for ch in h3.cell_to_children(cell, res))
    return pd.DataFrame(rows, columns=list(H3_COLUMNS))


# --------------------------------------------------------------------------------------------
# point → grid lookup
# --------------------------------------------------------------------------------------------


class _LabelRaster:
    """Regular raster in the compute CRS: the grid of each raster cell no grid boundary touches.

    Encoding of ``labels``: rank ≥ 0 (every point of the cell is covered by that grid first under
    the edge rule), -1 (inside no grid), -2 (*mixed*: a grid boundary passes through or within
    ``0.05 * cell_m`` of the cell; points there are refined exactly).

    Built without GDAL, in two vectorised steps that are exact by construction:

    1. mixed cells: every boundary segment is sampled every ``cell_m / 2`` metres and each sample
       marks the cells under the four corners of a box of half-width ``0.3 * cell_m`` around it
       (less than a cell wide, so the corners reach every cell the box touches).  Every boundary
       point lies within ``0.25 * cell_m`` of a sample, so every cell within ``0.05 * cell_m`` of a
       boundary is marked — far beyond float rounding.  Query points and samples go through the
       same (monotonic) float expression, :meth:`_cells`.
    2. clean cells: the 4-connected components of clean cells (``scipy.ndimage.label``) contain no
       boundary point, so the set of grids covering a point is constant on each component; one
       exact point-in-polygon test of a representative cell centre labels the whole component.
    """

    def __init__(self, geoms: NDArray[np.object_], tree: shapely.STRtree, *, cell_m: float | None) -> None:
        from scipy import ndimage

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
        self.cell_m = float(cell_m)
        self.x0 = float(np.floor((minx - pad) / cell_m) * cell_m)
        self.y1 = float(np.ceil((maxy + pad) / cell_m) * cell_m)
        self.width = int(np.ceil((maxx + pad - self.x0) / cell_m))
        self.height = int(np.ceil((self.y1 - (miny - pad)) / cell_m))
        self._inv = 1.0 / self.cell_m
        mixed = self._touched(geoms)
        comp, n_comp = ndimage.label(~mixed)  # 4-connectivity
        flat = comp.ravel()
        rep = np.zeros(n_comp + 1, dtype=np.int64)
        for s0 in range(0, flat.size, 1 << 22):  # any cell of each component (chunked: memory)
            rep[flat[s0 : s0 + (1 << 22)]] = np.arange(s0, min(s0 + (1 << 22), flat.size))
        rr, cc = np.divmod(rep[1:], self.width)
        lut = np.empty(n_comp + 1, dtype=dtype)
        lut[0] = -2
        lut[1:] = _exact_rank(tree, self.x0 + (cc + 0.5) * self.cell_m, self.y1 - (rr + 0.5) * self.cell_m)
        self.labels = lut[comp]
        self.mixed_share = float(mixed.mean())

    def _cells(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.intp]:
        """Return the flat raster index of points: the one mapping for boundary samples and queries.

        Points outside the raster are clamped to its border cells, which lie in the two-cell pad
        around the grids and are therefore clean and outside every grid (label -1); NaN gives -1.
        The float expressions are monotonic in x and y, so samples and queries agree.
        """
        col = np.subtract(x, self.x0)
        col *= self._inv
        np.clip(col, 0.0, self.width - 1, out=col)
        row = np.subtract(self.y1, y)
        row *= self._inv
        np.clip(row, 0.0, self.height - 1, out=row)
        bad = np.isnan(col) | np.isnan(row)
        if bad.any():
            col[bad] = 0.0
            row[bad] = 0.0
            idx = row.astype(np.intp) * self.width + col.astype(np.intp)
            idx[bad] = -1
            return idx
        return row.astype(np.intp) * self.width + col.astype(np.intp)

    def _touched(self, geoms: NDArray[np.object_]) -> NDArray[np.bool_]:
        mask = np.zeros(self.height * self.width, dtype=bool)
        lines = shapely.get_parts(shapely.boundary(geoms))
        coords, idx = shapely.get_coordinates(lines, return_index=True)
        same = idx[1:] == idx[:-1]
        a, b = coords[:-1][same], coords[1:][same]
        step = self.cell_m / 2.0  # every point of a segment is within step / 2 of a sample
        half = 0.3 * self.cell_m
        for s0 in range(0, len(a), 500_000):
            pa, pb = a[s0 : s0 + 500_000], b[s0 : s0 + 500_000]
            d = pb - pa
            n_s = np.ceil(np.hypot(d[:, 0], d[:, 1]) / step).astype(np.int64) + 1  # samples incl. ends
            seg = np.repeat(np.arange(len(pa)), n_s)
            t = (np.arange(len(seg)) - np.repeat(np.cumsum(n_s) - n_s, n_s)) / np.maximum(n_s - 1, 1)[seg]
            px = pa[seg, 0] + t * d[seg, 0]
            py = pa[seg, 1] + t * d[seg, 1]
            # the four box corners (the raster is padded by two cells, so they fall inside it)
            for dx, dy in ((-half, half), (half, half), (-half, -half), (half, -half)):
                mask[self._cells(px + dx, py + dy)] = True
        return mask.reshape(self.height, self.width)

    def lookup(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.int64]:
        idx = self._cells(x, y)
        out = self.labels.ravel()[idx].astype(np.int64)
        out[idx < 0] = -1
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
        r = rank.copy()
        r[r < 0] = len(self.codes)
        return self._code_or_none[r]

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
        rank = np.empty(n, dtype=np.int64)
        n_refined = 0
        for s in range(0, n, _CHUNK):
            cx, cy = xa[s : s + _CHUNK], ya[s : s + _CHUNK]
            if method == "raster":
                if self._raster is None:
                    self._raster = _LabelRaster(self.geoms, self._tree, cell_m=self._cell_m)
                r = self._raster.lookup(cx, cy)
            else:
                r = self._h3_ranks(cx, cy)
            ref = np.flatnonzero(r == -2)
            if len(ref):
                r[ref] = _exact_rank(self._tree, cx[ref], cy[ref])
            n_refined += len(ref)
            rank[s : s + _CHUNK] = r
        out = self._codes(rank)
        logger.info(
            "assigned %d points to %d grids (%s, %d refined exactly, %d outside) in %.2f s",
            n,
            len(self.codes),
            method,
            n_refined,
            int((rank < 0).sum()),
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
