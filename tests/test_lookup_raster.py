"""The label raster of :class:`gridplan.hexindex.GridLookup`: scanline fill, mixed cells, tile refinement.

Each path is checked against the plain definition (the smallest code among grids that ``covers``
the point) on hand-made grids whose vertices, edges and query points sit exactly on the raster's
cell borders and row centre lines — the degenerate cases of a scanline fill.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from shapely import MultiPolygon, Polygon, box

from gridplan.hexindex import GridLookup
from gridplan.hexindex import lookup as lookup_mod
from gridplan.hexindex.cells import _exact_rank

X0, Y0 = 440_000.0, 2_540_000.0  # inside Dongguan, EPSG:4547


def grids_of(geoms: list[object], codes: list[str] | None = None) -> gpd.GeoDataFrame:
    codes = codes or [f"441900119001{i:03d}" for i in range(len(geoms))]
    return gpd.GeoDataFrame({"grid_code": codes}, geometry=list(geoms), crs=4547)


def reference(grids: gpd.GeoDataFrame, x: np.ndarray, y: np.ndarray) -> list[str | None]:
    """Brute force: the smallest code among grids that cover the point."""
    pairs = sorted(zip(grids["grid_code"], grids.geometry, strict=True))
    return [
        next((c for c, g in pairs if g.covers(shapely.Point(xi, yi))), None)
        for xi, yi in zip(x.tolist(), y.tolist(), strict=True)
    ]


def lattice_points(lookup: GridLookup, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Points on cell corners, cell borders and cell centres of the lookup's raster, plus random ones."""
    ras = lookup._raster
    assert ras is not None
    c = rng.integers(0, ras.width, n).astype(float)
    r = rng.integers(0, ras.height, n).astype(float)
    frac = rng.choice([0.0, 0.5, 1.0, 0.25], size=(2, n))
    x = ras.x0 + (c + frac[0]) * ras.cell_m
    y = ras.y1 - (r + frac[1]) * ras.cell_m
    rx = ras.x0 + rng.random(n) * ras.width * ras.cell_m
    ry = ras.y1 - rng.random(n) * ras.height * ras.cell_m
    return np.concatenate([x, rx]), np.concatenate([y, ry])


def check_raster(
    grids: gpd.GeoDataFrame, *, cell_m: float | None = None, n: int = 2000, seed: int = 0
) -> GridLookup:
    """Every labelled cell centre agrees with exact point-in-polygon; assign_xy equals the reference."""
    lookup = GridLookup(grids, cell_m=cell_m)
    lookup.assign_xy([X0], [Y0])
    ras = lookup._raster
    assert ras is not None
    rows, cols = np.divmod(np.arange(ras.width * ras.height), ras.width)
    cx = ras.x0 + (cols + 0.5) * ras.cell_m
    cy = ras.y1 - (rows + 0.5) * ras.cell_m
    lab = ras.labels.ravel().astype(np.int64)
    clean = lab != -2
    np.testing.assert_array_equal(lab[clean], _exact_rank(lookup._tree, cx[clean], cy[clean]))
    # the raster's border is clean and outside every grid (clamped and NaN points land there)
    for side in (ras.labels[0], ras.labels[-1], ras.labels[:, 0], ras.labels[:, -1]):
        assert (side == -1).all()
    rng = np.random.default_rng(seed)
    x, y = lattice_points(lookup, rng, n)
    bx, by = boundary_points(grids)
    x, y = np.concatenate([x, bx]), np.concatenate([y, by])
    assert lookup.assign_xy(x, y).tolist() == reference(grids, x, y)
    return lookup


def boundary_points(grids: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    coords = shapely.get_coordinates(shapely.boundary(grids.geometry.values))
    both = np.vstack([coords, (coords[:-1] + coords[1:]) / 2])
    return both[:, 0], both[:, 1]


# ---------------------------------------------------------------------------------------------
# hand-made grids with known answers
# ---------------------------------------------------------------------------------------------


def test_edges_on_cell_borders_and_row_centre_lines() -> None:
    """Squares whose edges lie on cell borders (x) and on row centre lines (y): the scanline's ties."""
    cell = 10.0
    # the raster origin is floor((minx - 2 cell) / cell) * cell: vertices on multiples of 10 m are on
    # cell borders, y = 5 mod 10 is on a row centre line
    a = box(X0, Y0 + 5, X0 + 100, Y0 + 105)
    b = box(X0 + 100, Y0 + 5, X0 + 200, Y0 + 105)
    c = box(X0, Y0 + 105, X0 + 200, Y0 + 155)
    grids = grids_of([a, b, c], ["441900119001003", "441900119001002", "441900119001001"])
    lookup = check_raster(grids, cell_m=cell)
    x = np.array([X0 + 100, X0 + 100, X0 + 50, X0 + 150, X0 + 100, X0 + 200, X0 - 0.001, X0 + 50])
    y = np.array([Y0 + 50, Y0 + 105, Y0 + 105, Y0 + 50, Y0 + 5, Y0 + 155, Y0 + 50, Y0 + 4.999])
    want = ["441900119001002", "441900119001001", "441900119001001", "441900119001002",
            "441900119001002", "441900119001001", None, None]
    assert lookup.assign_xy(x, y).tolist() == want


def test_hole_enclave_and_multipolygon() -> None:
    """A grid with a hole holding another grid, a gap, and a two-part grid."""
    outer = box(X0, Y0, X0 + 1200, Y0 + 1200)
    enclave = box(X0 + 200, Y0 + 200, X0 + 500, Y0 + 500)
    gap = box(X0 + 700, Y0 + 700, X0 + 900, Y0 + 900)
    ring = outer.difference(enclave).difference(gap)
    two = MultiPolygon([box(X0 + 1300, Y0, X0 + 1400, Y0 + 100), box(X0 + 1500, Y0, X0 + 1600, Y0 + 100)])
    grids = grids_of([ring, enclave, two])
    lookup = check_raster(grids, cell_m=7.0)
    x = np.array([X0 + 350, X0 + 800, X0 + 1000, X0 + 1450, X0 + 1550, X0 + 200])
    y = np.array([Y0 + 350, Y0 + 800, Y0 + 1000, Y0 + 50, Y0 + 50, Y0 + 350])
    want = ["441900119001001", None, "441900119001000", None, "441900119001002", "441900119001000"]
    assert lookup.assign_xy(x, y).tolist() == want


def test_overlap_cells_are_refined_to_the_smallest_code() -> None:
    """Where two grids cover a cell centre the cell is refined (-2), and the smallest code wins."""
    a = box(X0, Y0, X0 + 400, Y0 + 400)
    b = box(X0 + 200, Y0 + 200, X0 + 600, Y0 + 600)
    grids = grids_of([b, a], ["441900119001002", "441900119001001"])
    lookup = check_raster(grids, cell_m=10.0)
    ras = lookup._raster
    assert ras is not None
    cell = ras._cells(np.array([X0 + 300.0]), np.array([Y0 + 300.0]))
    assert ras.labels.ravel()[cell[0]] == -2  # inside the overlap, far from any boundary
    assert lookup.assign_xy([X0 + 300, X0 + 500, X0 + 100], [Y0 + 300, Y0 + 500, Y0 + 100]).tolist() == [
        "441900119001001", "441900119001002", "441900119001001"]


def test_many_nested_grids_need_many_refinement_rounds() -> None:
    """Ten nested squares: a point near the centre has ten candidates, tested round after round."""
    squares = [box(X0 + i * 10, Y0 + i * 10, X0 + 200 - i * 10, Y0 + 200 - i * 10) for i in range(10)]
    codes = [f"441900119001{9 - i:03d}" for i in range(10)]  # the innermost square has the smallest code
    grids = grids_of(squares, codes)
    lookup = check_raster(grids, cell_m=3.0)
    assert lookup.assign_xy([X0 + 100, X0 + 5, X0 + 95], [Y0 + 100, Y0 + 5, Y0 + 100]).tolist() == [
        "441900119001000", "441900119001009", "441900119001000"]


def test_invalid_polygons_follow_the_even_odd_rule_of_prepared_geos() -> None:
    """Self-intersecting and overlapping-part grids: the raster agrees with the exact path (GEOS)."""
    bowtie = Polygon([(X0, Y0), (X0 + 300, Y0 + 300), (X0 + 300, Y0), (X0, Y0 + 300)])
    parts = MultiPolygon([box(X0 + 400, Y0, X0 + 700, Y0 + 300), box(X0 + 550, Y0, X0 + 850, Y0 + 300)])
    assert not shapely.is_valid(bowtie)
    assert not shapely.is_valid(parts)
    grids = grids_of([bowtie, parts])
    lookup = GridLookup(grids, cell_m=9.0)
    rng = np.random.default_rng(5)
    x = X0 - 20 + rng.random(20_000) * 900
    y = Y0 - 20 + rng.random(20_000) * 340
    np.testing.assert_array_equal(lookup.assign_xy(x, y), lookup.assign_exact(x, y))


def test_refine_equals_the_strtree_path_on_mixed_cells() -> None:
    """The tile-candidate refinement gives the STRtree ranks, for points and cells in any order."""
    rng = np.random.default_rng(2)
    seeds = shapely.multipoints(np.column_stack([X0 + rng.random(80) * 3000, Y0 + rng.random(80) * 2000]))
    env = box(X0, Y0, X0 + 3000, Y0 + 2000)
    vor = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=env)), env)
    lookup = GridLookup(grids_of(list(vor)), cell_m=5.0)
    lookup.assign_xy([X0], [Y0])
    ras = lookup._raster
    assert ras is not None
    x = X0 - 50 + rng.random(50_000) * 3100
    y = Y0 - 50 + rng.random(50_000) * 2100
    cells = ras._cells(x, y)
    ranks = ras.refine(x, y, cells)  # valid for any cell, not only mixed ones
    np.testing.assert_array_equal(ranks, _exact_rank(lookup._tree, x, y))
    assert ras.refine(x[:0], y[:0], cells[:0]).tolist() == []


@pytest.mark.parametrize("cell_m", [3.0, 7.5, 20.0])
def test_every_cell_a_boundary_reaches_is_refined(cell_m: float) -> None:
    """The mixed-cell marking's guarantee, checked with shapely: a cell that a grid boundary enters
    (or passes within 0.005 cell of) is never labelled — its points are refined exactly."""
    rng = np.random.default_rng(int(cell_m))
    seeds = shapely.multipoints(np.column_stack([X0 + rng.random(30) * 600, Y0 + rng.random(30) * 400]))
    env = box(X0, Y0, X0 + 600, Y0 + 400)
    vor = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=env)), env)
    lookup = GridLookup(grids_of(list(vor)), cell_m=cell_m)
    lookup.assign_xy([X0], [Y0])
    ras = lookup._raster
    assert ras is not None
    rows, cols = np.divmod(np.arange(ras.width * ras.height), ras.width)
    eps = 0.005 * cell_m
    cells = shapely.box(ras.x0 + cols * cell_m - eps, ras.y1 - (rows + 1) * cell_m - eps,
                        ras.x0 + (cols + 1) * cell_m + eps, ras.y1 - rows * cell_m + eps)
    lines = shapely.boundary(np.asarray(vor, dtype=object))
    hit, _ = shapely.STRtree(lines).query(cells, predicate="intersects")
    assert (ras.labels.ravel()[np.unique(hit)] == -2).all()


def test_lookup_reports_the_refined_points() -> None:
    grids = grids_of([box(X0, Y0, X0 + 100, Y0 + 100)])
    lookup = GridLookup(grids, cell_m=10.0)
    lookup.assign_xy([X0], [Y0])
    ras = lookup._raster
    assert ras is not None
    x = np.array([X0 + 50, X0 + 0.5, X0 - 500, np.nan, X0 + 100])
    y = np.array([Y0 + 50, Y0 + 50, Y0, Y0, np.inf])
    out = np.empty(len(x), dtype=ras.labels.dtype)
    pos, cells = ras.lookup(x, y, out)
    assert pos.tolist() == [1]
    assert out.tolist() == [0, -2, -1, -1, -1]
    assert cells.tolist() == ras._cells(x[1:2], y[1:2]).tolist()


@pytest.mark.parametrize("chunk", [1, 3, 1 << 16])
def test_chunking_does_not_change_answers(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(lookup_mod, "_LOOKUP_CHUNK", chunk)
    grids = grids_of([box(X0, Y0, X0 + 100, Y0 + 100), box(X0 + 100, Y0, X0 + 200, Y0 + 100)])
    lookup = GridLookup(grids, cell_m=10.0)
    rng = np.random.default_rng(1)
    x = X0 - 10 + rng.random(257) * 220
    y = Y0 - 10 + rng.random(257) * 120
    assert lookup.assign_xy(x, y).tolist() == reference(grids, x, y)


# ---------------------------------------------------------------------------------------------
# hypothesis: overlapping boxes and holes snapped to the raster lattice
# ---------------------------------------------------------------------------------------------


@st.composite
def lattice_case(draw: st.DrawFn) -> tuple[gpd.GeoDataFrame, float]:
    """Boxes (some with a box hole) whose corners are multiples of half a cell: edges on cell borders
    and row centre lines, overlaps allowed."""
    cell = draw(st.sampled_from([4.0, 10.0, 25.0]))
    n = draw(st.integers(1, 6))
    geoms = []
    for _ in range(n):
        i0, j0 = draw(st.integers(0, 40)), draw(st.integers(0, 40))
        w, h = draw(st.integers(1, 30)), draw(st.integers(1, 30))
        g = box(X0 + i0 * cell / 2, Y0 + j0 * cell / 2, X0 + (i0 + w) * cell / 2, Y0 + (j0 + h) * cell / 2)
        if w > 4 and h > 4 and draw(st.booleans()):
            g = g.difference(box(X0 + (i0 + 2) * cell / 2, Y0 + (j0 + 2) * cell / 2,
                                 X0 + (i0 + w - 2) * cell / 2, Y0 + (j0 + h - 2) * cell / 2))
        geoms.append(g)
    codes = [f"441900119001{i:03d}" for i in draw(st.permutations(range(n)))]
    return grids_of(geoms, codes), cell


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lattice_case(), st.integers(0, 2**16))
@example((grids_of([box(X0, Y0, X0 + 10, Y0 + 10), box(X0 + 5, Y0 + 5, X0 + 15, Y0 + 15)]), 10.0), 0)
def test_lattice_grids_equal_point_in_polygon(case: tuple[gpd.GeoDataFrame, float], seed: int) -> None:
    grids, cell = case
    check_raster(grids, cell_m=cell, n=300, seed=seed)
