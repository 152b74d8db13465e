"""Tests for gridplan.hexindex: the H3 partition and exact point → grid assignment."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely import Point, Polygon, box

from gridplan.errors import CRSError, InputError
from gridplan.hexindex import GridLookup, build_h3_index, h3_cells_at_res

X0, Y0 = 440_000.0, 2_540_000.0  # inside Dongguan, EPSG:4547


def grids_of(codes: list[str], geoms: list[object]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"grid_code": codes}, geometry=list(geoms), crs=4547)


def reference(grids: gpd.GeoDataFrame, x: np.ndarray, y: np.ndarray) -> list[str | None]:
    """Independent brute force: the smallest code among grids that cover the point."""
    pairs = sorted(zip(grids["grid_code"], grids.geometry, strict=True))
    out: list[str | None] = []
    for xi, yi in zip(x.tolist(), y.tolist(), strict=True):
        p = Point(xi, yi)
        out.append(next((c for c, g in pairs if g.covers(p)), None))
    return out


def boundary_points(grids: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Every boundary vertex plus midpoints of every boundary segment."""
    coords = shapely.get_coordinates(shapely.boundary(grids.geometry.values))
    mids = (coords[:-1] + coords[1:]) / 2
    allc = np.vstack([coords, mids])
    return allc[:, 0], allc[:, 1]


def assert_partition(cells: pd.DataFrame, grids: gpd.GeoDataFrame, res: int) -> None:
    """No cell twice, no cell together with one of its ancestors, every grid owns a cell."""
    assert list(cells.columns) == ["h3", "grid_code", "res", "edge"]
    assert not cells["h3"].duplicated().any()
    present = set(cells["h3"])
    for cell, r in zip(cells["h3"], cells["res"], strict=True):
        assert h3.get_resolution(cell) == r
        for pr in range(int(cells["res"].min()), r):
            assert h3.cell_to_parent(cell, pr) not in present
    assert set(cells["grid_code"]) == set(grids["grid_code"])
    # finer-than-res rows are always edge rows; coarser (compacted) rows never are
    assert cells.loc[cells["res"] > res, "edge"].all()
    assert not cells.loc[cells["res"] < res, "edge"].any()


def expected_base_cells(grids: gpd.GeoDataFrame, res: int) -> dict[str, str]:
    """res cells whose centre is covered by a grid → smallest covering code (independent polyfill)."""
    from gridplan.crs import get_transformer

    to_ll = get_transformer(4547, 4490)
    minx, miny, maxx, maxy = grids.total_bounds
    lon0, lat0 = to_ll.transform(minx - 300, miny - 300)
    lon1, lat1 = to_ll.transform(maxx + 300, maxy + 300)
    cand = h3.geo_to_cells(box(lon0, lat0, lon1, lat1), res)
    ll = np.array([h3.cell_to_latlng(c) for c in cand])
    x, y = get_transformer(4490, 4547).transform(ll[:, 1], ll[:, 0])
    ref = reference(grids, np.asarray(x), np.asarray(y))
    return {c: g for c, g in zip(cand, ref, strict=True) if g is not None}


def check_h3_cover(cells: pd.DataFrame, grids: gpd.GeoDataFrame, res: int) -> None:
    """The table covers exactly the cells whose centres are in a grid, with the right owner."""
    want = expected_base_cells(grids, res)
    base = h3_cells_at_res(cells[cells["res"] <= res], res)
    got = dict(zip(base["h3"], base["grid_code"], strict=True))
    split = {h3.cell_to_parent(c, res) for c in cells.loc[cells["res"] > res, "h3"]}
    assert not (set(got) & split)
    assert set(got) | split >= set(want)
    for c, code in got.items():
        assert want.get(c) == code
    assert set(got) <= set(want)


def check_lookup(
    grids: gpd.GeoDataFrame, x: np.ndarray, y: np.ndarray, *, res: int = 10, cell_m: float | None = None
) -> None:
    cells = build_h3_index(grids, res=res)
    lookup = GridLookup(grids, cells, res=res, cell_m=cell_m)
    ref = reference(grids, x, y)
    assert lookup.assign_exact(x, y).tolist() == ref
    assert lookup.assign_xy(x, y).tolist() == ref
    assert lookup.assign_xy(x, y, method="h3").tolist() == ref


# ---------------------------------------------------------------------------------------------
# hand-made grids
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def two_squares() -> gpd.GeoDataFrame:
    return grids_of(
        ["441900119001002", "441900119001001"],
        [box(X0 + 1000, Y0, X0 + 2000, Y0 + 1000), box(X0, Y0, X0 + 1000, Y0 + 1000)],
    )


def test_two_squares_shared_edge_goes_to_smallest_code(two_squares: gpd.GeoDataFrame) -> None:
    lookup = GridLookup(two_squares)
    x = np.array([X0 + 1000, X0 + 1000, X0 + 1000, X0 + 500, X0 + 1500, X0 + 2000, X0 - 1, X0 + 2000.001])
    y = np.array([Y0 + 500, Y0, Y0 + 1000, Y0 + 500, Y0 + 500, Y0 + 1000, Y0, Y0 + 500])
    want = ["441900119001001"] * 4 + ["441900119001002"] * 2 + [None, None]
    for method in ("raster", "h3"):
        assert lookup.assign_xy(x, y, method=method).tolist() == want
    assert lookup.assign_exact(x, y).tolist() == want


def test_two_squares_index_is_partition(two_squares: gpd.GeoDataFrame) -> None:
    cells = build_h3_index(two_squares, res=10)
    assert_partition(cells, two_squares, 10)
    check_h3_cover(cells, two_squares, 10)
    assert cells["edge"].any()
    assert (~cells["edge"]).any()
    # compaction happened: fewer rows than res-10 cells
    assert len(cells) < len(h3_cells_at_res(cells, 10))


def test_edge_flag_matches_hexagon_geometry(two_squares: gpd.GeoDataFrame) -> None:
    """A non-edge cell's hexagon lies inside its grid; every edge cell is near a boundary."""
    from gridplan.crs import get_transformer

    cells = h3_cells_at_res(build_h3_index(two_squares, res=10), 10)
    to_xy = get_transformer(4490, 4547)
    geom = dict(zip(two_squares["grid_code"], two_squares.geometry, strict=True))
    bounds = shapely.union_all(shapely.boundary(two_squares.geometry.values))
    for cell, code, edge in zip(cells["h3"], cells["grid_code"], cells["edge"], strict=True):
        ring = [to_xy.transform(lon, lat) for lat, lon in h3.cell_to_boundary(cell)]
        hexagon = Polygon(ring)
        if edge:
            assert hexagon.distance(bounds) < 1.0
        else:
            assert geom[code].contains(hexagon)


def test_tiny_grid_keeps_a_cell() -> None:
    """A 4 m × 4 m grid (far below a res-10 cell) still owns a (finer) cell; the table stays a partition."""
    tiny = box(X0 + 500, Y0 + 500, X0 + 504, Y0 + 504)
    big = box(X0, Y0, X0 + 1000, Y0 + 1000).difference(tiny)
    grids = grids_of(["441900119001001", "441900119001002"], [big, tiny])
    cells = build_h3_index(grids, res=10)
    assert_partition(cells, grids, 10)
    assert (cells["grid_code"] == "441900119001002").sum() >= 1
    assert (cells.loc[cells["grid_code"] == "441900119001002", "res"] > 10).all()
    x = np.array([X0 + 502, X0 + 500, X0 + 504, X0 + 499.9, X0 + 504.1, X0 + 502])
    y = np.array([Y0 + 502, Y0 + 500, Y0 + 502, Y0 + 502, Y0 + 502, Y0 + 504])
    check_lookup(grids, x, y)
    lookup = GridLookup(grids, cells)
    # on the tiny grid's outline both grids cover the point: the smaller code (the big grid) wins
    assert lookup.assign_xy(x, y, method="h3").tolist() == ["441900119001002"] + ["441900119001001"] * 5


def test_tiny_grids_at_coarse_res_never_vanish() -> None:
    """Many grids smaller than a res-8 cell: every one keeps a cell (47 vanished at res 9 in the issue)."""
    rng = np.random.default_rng(3)
    pts = shapely.multipoints(np.column_stack([X0 + rng.random(40) * 2000, Y0 + rng.random(40) * 2000]))
    env = box(X0, Y0, X0 + 2000, Y0 + 2000)
    vor = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=env)), env)
    grids = grids_of([f"4419001190010{i:02d}" for i in range(len(vor))], list(vor))
    cells = build_h3_index(grids, res=8)
    assert_partition(cells, grids, 8)
    x, y = boundary_points(grids)
    check_lookup(
        grids,
        np.concatenate([x, X0 + rng.random(2000) * 2000]),
        np.concatenate([y, Y0 + rng.random(2000) * 2000]),
        res=8,
    )


def test_hole_enclave_and_gap() -> None:
    """Grid A has an enclave E inside it and an unfilled hole (gap): gap points → None."""
    outer = box(X0, Y0, X0 + 1200, Y0 + 1200)
    enclave = box(X0 + 200, Y0 + 200, X0 + 500, Y0 + 500)
    gap = box(X0 + 700, Y0 + 700, X0 + 900, Y0 + 900)
    a = outer.difference(enclave).difference(gap)
    grids = grids_of(["441900119001003", "441900119001001"], [a, enclave])
    cells = build_h3_index(grids, res=10)
    assert_partition(cells, grids, 10)
    check_h3_cover(cells, grids, 10)
    lookup = GridLookup(grids, cells)
    x = np.array([X0 + 350, X0 + 800, X0 + 1000, X0 + 200, X0 + 700, X0 + 800])
    y = np.array([Y0 + 350, Y0 + 800, Y0 + 1000, Y0 + 350, Y0 + 800, Y0 + 700])
    want = [
        "441900119001001",
        None,
        "441900119001003",
        "441900119001001",
        "441900119001003",
        "441900119001003",
    ]
    for method in ("raster", "h3"):
        assert lookup.assign_xy(x, y, method=method).tolist() == want
    bx, by = boundary_points(grids)
    check_lookup(grids, bx, by)


def test_overlap_goes_to_smallest_code() -> None:
    """Overlapping grids (a bad edit): inside the overlap the smallest code wins, as in the reference."""
    a = box(X0, Y0, X0 + 1000, Y0 + 1000)
    b = box(X0 + 600, Y0, X0 + 1600, Y0 + 1000)
    grids = grids_of(["441900119001002", "441900119001001"], [a, b])
    rng = np.random.default_rng(1)
    x = X0 - 50 + rng.random(3000) * 1700
    y = Y0 - 50 + rng.random(3000) * 1100
    check_lookup(grids, x, y)
    assert GridLookup(grids).assign_xy([X0 + 800], [Y0 + 500]).tolist() == ["441900119001001"]


def test_nan_and_empty_points(two_squares: gpd.GeoDataFrame) -> None:
    lookup = GridLookup(two_squares)
    for method in ("raster", "h3"):
        out = lookup.assign_xy(np.array([np.nan, X0 + 10]), np.array([Y0 + 10, np.inf]), method=method)
        assert out.tolist() == [None, None]
        assert lookup.assign_xy(np.array([]), np.array([]), method=method).tolist() == []


def test_no_grids() -> None:
    empty = grids_of([], [])
    assert len(build_h3_index(empty)) == 0
    assert GridLookup(empty).assign_xy([X0], [Y0]).tolist() == [None]


def test_errors(two_squares: gpd.GeoDataFrame) -> None:
    with pytest.raises(InputError, match="resolution must be an integer"):
        build_h3_index(two_squares, res=16)
    with pytest.raises(InputError, match="no grid_code column"):
        build_h3_index(two_squares.rename(columns={"grid_code": "code"}))
    with pytest.raises(InputError, match="duplicate grid_code"):
        build_h3_index(grids_of(["A", "A"], list(two_squares.geometry)))
    with pytest.raises(InputError, match="empty grid_code"):
        GridLookup(grids_of(["A", ""], list(two_squares.geometry)))
    with pytest.raises(InputError, match="not a polygon"):
        GridLookup(grids_of(["A", "B"], [Point(X0, Y0), two_squares.geometry.iloc[0]]))
    with pytest.raises(CRSError, match="geographic CRS"):
        GridLookup(two_squares.to_crs(4490))
    lookup = GridLookup(two_squares)
    with pytest.raises(InputError, match="differ in length"):
        lookup.assign_xy([1.0, 2.0], [1.0])
    with pytest.raises(InputError, match="unknown method"):
        lookup.assign_xy([1.0], [1.0], method="bogus")  # type: ignore[arg-type]
    bad = build_h3_index(two_squares).assign(grid_code="999")
    with pytest.raises(InputError, match="not in base_grids"):
        GridLookup(two_squares, bad).assign_xy([X0], [Y0], method="h3")


# ---------------------------------------------------------------------------------------------
# hypothesis: random Voronoi partitions
# ---------------------------------------------------------------------------------------------


@st.composite
def voronoi_case(draw: st.DrawFn) -> tuple[gpd.GeoDataFrame, np.ndarray, np.ndarray, float | None]:
    n = draw(st.integers(2, 25))
    seed = draw(st.integers(0, 2**31 - 1))
    size = draw(st.sampled_from([800.0, 2500.0]))
    rng = np.random.default_rng(seed)
    seeds = np.column_stack([X0 + rng.random(n) * size, Y0 + rng.random(n) * size])
    env = box(X0, Y0, X0 + size, Y0 + size)
    vor = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=env))
    vor = shapely.intersection(vor, env)
    vor = vor[~shapely.is_empty(vor)]
    codes = [f"441900119001{i:03d}" for i in rng.permutation(len(vor))]
    grids = grids_of(codes, list(vor))
    bx, by = boundary_points(grids)
    m = 400
    x = np.concatenate([bx, X0 - 20 + rng.random(m) * (size + 40)])
    y = np.concatenate([by, Y0 - 20 + rng.random(m) * (size + 40)])
    cell_m = draw(st.sampled_from([None, 2.5, 10.0, 40.0]))  # label-raster cell sizes to stress
    return grids, x, y, cell_m


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(voronoi_case())
def test_voronoi_lookup_equals_point_in_polygon(
    case: tuple[gpd.GeoDataFrame, np.ndarray, np.ndarray, float | None],
) -> None:
    grids, x, y, cell_m = case
    cells = build_h3_index(grids, res=10)
    assert_partition(cells, grids, 10)
    check_h3_cover(cells, grids, 10)
    lookup = GridLookup(grids, cells, res=10, cell_m=cell_m)
    ref = reference(grids, x, y)
    assert lookup.assign_xy(x, y).tolist() == ref
    assert lookup.assign_xy(x, y, method="h3").tolist() == ref


# ---------------------------------------------------------------------------------------------
# the small sample plan
# ---------------------------------------------------------------------------------------------


def test_small_plan_assignment_is_exact(small_plan: Path) -> None:
    from gridplan.plans import read_plan

    plan = read_plan(small_plan)
    grids = plan.base_grids
    assert_partition(plan.h3_cells, grids, plan.meta.h3_res)
    lookup = GridLookup.from_plan(plan)
    assert GridLookup.from_plan(plan) is lookup
    rng = np.random.default_rng(0)
    minx, miny, maxx, maxy = grids.total_bounds
    bx, by = boundary_points(grids)
    x = np.concatenate([minx + rng.random(100_000) * (maxx - minx), bx])
    y = np.concatenate([miny + rng.random(100_000) * (maxy - miny), by])
    exact = lookup.assign_exact(x, y)
    assert (lookup.assign_xy(x, y) == exact).all()
    assert (lookup.assign_xy(x, y, method="h3") == exact).all()
    # the exact answer itself agrees with the independent reference on a subsample
    sub = rng.choice(len(x), 300, replace=False)
    assert exact[sub].tolist() == reference(grids, x[sub], y[sub])
