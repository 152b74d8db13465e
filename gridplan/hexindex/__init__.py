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
by ``benchmarks/bench_assign.py`` on the merged ``city`` sample (3,179 base grids, 10 M uniform points
+ 808,297 points on grid edges/vertices; CPU seconds, min of 3 runs where stated, because the 2 cores
are shared; every method gave identical answers):

====================================================  ============================  ===========
method                                                10 M points (CPU)             peak memory
====================================================  ============================  ===========
``geopandas.sjoin(predicate="within")``               27.8 s (min of 3)             +3.4 GiB
exact STRtree point-in-polygon (``assign_exact``)     9.3 s
H3 path (``method="h3"``)                             ~17 s (0.60 M points/s)
label raster, cold (built from the plan, then query)  0.95 s (min of 3; 27.5x)      +0.3 GiB
label raster, warm (cached per plan)                  0.36 s (min of 3; 77x)
====================================================  ============================  ===========

The label raster is a regular grid in the compute CRS (default cell: the smallest whole metre that
keeps it ≤ 64 MiB with int16 labels, 11 m for the city sample) giving, for every raster cell that no
grid boundary touches, the grid of all its points; only points in *mixed* cells (3.4 % of the city
sample's cells) are refined by exact point-in-polygon.  Interior points are answered by pure numpy
indexing — no projection, no H3.  How it is built, and why it is exact, is in :class:`_LabelRaster`;
it needs only ``base_grids``, takes ~0.3 s for the city sample, and is cached per ``plan_id`` by
:meth:`GridLookup.from_plan`.  The H3 path (``assign_xy(..., method="h3")``) is kept and tested: it is
the index PRODUCT asks for (used by H3 aggregations), and it returns the same answers.  ``h3ronpy``
is therefore not a dependency.

Geometries are in a projected CRS (EPSG:4547 by default); H3 needs lon/lat, obtained through
:func:`gridplan.crs.get_transformer` (CGCS2000 ≈ WGS-84, the sub-metre datum difference is far below a
res-10 cell and ownership is decided in the compute CRS anyway).
"""

from __future__ import annotations

from gridplan.hexindex.cells import H3_COLUMNS, build_h3_index, h3_cells_at_res
from gridplan.hexindex.lookup import GridLookup

__all__ = ["H3_COLUMNS", "GridLookup", "build_h3_index", "h3_cells_at_res"]
