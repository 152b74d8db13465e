"""Point → base grid: the label raster (exact, vectorised) and the H3 path.

See :mod:`gridplan.hexindex` for why a label raster, and not H3, answers queries.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Literal

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
