"""Issue 12: oversized units divided between buildings, undersized grids merged, reasons, seams.

Hand-made layers with known answers (an oversized block of six buildings, a block cut by a road,
a small grid beside a full one) and hypothesis invariants of the partition with boundaries placed
on overlay tile seams and on the snap grid.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_merge import C1, C2, CRS, X0, Y0, b, make_layers

from gridplan.merge import merge_layers
from gridplan.merge.basegrids import REASONS
from gridplan.merge.overlay import face_adjacency, overlay_faces


def code(reason: str) -> str:
    return reason.split(":")[0]


def check_partition(plan) -> None:  # type: ignore[no-untyped-def]
    """Every figure issue 12 asks of a plan, on any input."""
    bg, au = plan.base_grids, plan.atomic_units
    g = np.asarray(bg.geometry.array)
    u = np.asarray(au.geometry.array)
    assert shapely.is_valid(g).all()
    assert shapely.is_valid(u).all()
    assert (shapely.get_type_id(g) == 3).all(), "every base grid one Polygon"
    assert abs(shapely.area(g).sum() - shapely.area(u).sum()) <= 1e-6 * shapely.area(u).sum()
    for grid in bg.itertuples():
        mine = u[au["base_grid_code"].to_numpy() == grid.grid_code]
        sym = shapely.area(shapely.symmetric_difference(shapely.union_all(mine), grid.geometry))
        assert sym <= 1e-6 * shapely.area(grid.geometry)
    assert bg["households"].sum() == au["households"].sum()
    off = bg[bg["band_status"] != "ok"]
    assert all(code(r) in REASONS for r in off["band_reason"]), off["band_reason"].tolist()
    qa_band = set(plan.qa_issues.loc[plan.qa_issues["issue"] == "band", "feature_id"])
    assert set(off["grid_code"]) == qa_band


def block_of_six(hh: int = 200) -> dict[str, gpd.GeoDataFrame]:
    """One community, one department grid: a 300 x 100 m block with six buildings in a row."""
    return make_layers([(C1, b(0, 0, 300, 100))], {"police": [("P1", b(0, 0, 300, 100))]},
                       [(25 + 50 * i, 50, hh) for i in range(6)])


def test_oversized_block_of_six_buildings_splits_into_pieces_in_band() -> None:
    # 1,200 households: pieces of half the band (150-250), here one building of 200 each, and base
    # grids of two pieces (400 households each)
    plan = merge_layers(block_of_six(200))
    au, bg = plan.atomic_units, plan.base_grids
    assert sorted(au["households"]) == [200] * 6
    assert set(au["parent_unit_id"]) == {"U000001"}
    assert sorted(au["unit_id"]) == [f"U000001-{k}" for k in range(1, 7)]
    assert (bg["band_status"] == "ok").all()
    assert sorted(bg["households"]) == [400, 400, 400]
    assert sorted(bg["units"]) == [2, 2, 2]
    assert plan.meta.params["summary"]["units_split"] == 1
    # whole buildings: no building outline crosses a piece boundary
    buildings = [b(24 + 50 * i, 49, 26 + 50 * i, 51) for i in range(6)]
    for piece in au.geometry:
        assert all(piece.contains(x) or not piece.intersects(x.buffer(-0.1)) for x in buildings)
    # the crosswalk stays exact: P1 is the three grids, shares summing to 1
    cw = plan.crosswalk
    assert len(cw) == 3
    assert abs(cw["area_share"].sum() - 1) < 1e-9
    check_partition(plan)


def test_no_split_units_keeps_the_block_whole_and_says_why() -> None:
    plan = merge_layers(block_of_six(200), split_units=False)
    bg = plan.base_grids
    assert len(bg) == 1
    assert len(plan.atomic_units) == 1
    assert code(bg.iloc[0]["band_reason"]) == "unit_over_max_not_split"
    assert plan.atomic_units.iloc[0]["parent_unit_id"] == ""
    check_partition(plan)


def test_road_inside_the_unit_is_the_first_cut() -> None:
    layers = block_of_six(130)  # 780 households: two pieces
    # the road runs at x = 160, not at the household midpoint between buildings 3 and 4 (x = 150)
    layers["roads"] = gpd.GeoDataFrame({"name": ["路"]}, geometry=[shapely.LineString(
        [(X0 + 160, Y0 - 5), (X0 + 160, Y0 + 105)])], crs=CRS)
    plan = merge_layers(layers)
    au = plan.atomic_units.sort_values("households")
    assert sorted(au["households"]) == [390, 390]
    left = au.geometry.iloc[0] if au.geometry.iloc[0].centroid.x < X0 + 150 else au.geometry.iloc[1]
    assert abs(left.bounds[2] - (X0 + 160)) < 0.01, "the cut follows the road"
    check_partition(plan)


def test_single_building_above_the_maximum_is_its_own_grid_and_reported() -> None:
    layers = make_layers([(C1, b(0, 0, 300, 100))], {"police": [("P1", b(0, 0, 300, 100))]},
                         [(25, 50, 900), (125, 50, 200), (175, 50, 200), (275, 50, 10)])
    plan = merge_layers(layers)
    bg = plan.base_grids
    big = bg[bg["households"] >= 900]
    assert len(big) == 1
    assert code(big.iloc[0]["band_reason"]) == "single_building_over_max"
    assert (bg.loc[bg["households"] < 900, "band_status"] == "ok").all()
    check_partition(plan)


def test_undersized_grid_merges_into_its_community_neighbour() -> None:
    # P1 holds 490 households, P2 30: no in-band merge exists; 520 is closer to the band than 30
    layers = make_layers([(C1, b(0, 0, 200, 100))],
                         {"police": [("P1", b(0, 0, 100, 100)), ("P2", b(100, 0, 200, 100))]},
                         [(50, 50, 490), (150, 50, 30)])
    plan = merge_layers(layers)
    bg = plan.base_grids
    assert len(bg) == 1
    assert bg.iloc[0]["households"] == 520
    assert code(bg.iloc[0]["band_reason"]) == "too_few_households_for_two_grids"
    check_partition(plan)


def test_reasons_small_community_and_no_neighbour() -> None:
    # C2 holds 100 households; C1's south-east island is detached from the rest of C1
    c1 = shapely.union(b(0, 0, 100, 100), b(150, 0, 200, 40))
    layers = make_layers([(C1, c1), (C2, b(100, 40, 200, 100))],
                         {"police": [("P1", b(0, 0, 200, 100))]},
                         [(20, 50, 200), (80, 50, 200), (175, 20, 50), (150, 70, 100)])
    plan = merge_layers(layers)
    bg = plan.base_grids.set_index("households")
    assert code(bg.loc[100, "band_reason"]) == "community_smaller_than_band"
    assert code(bg.loc[50, "band_reason"]) == "no_neighbour_in_community"
    assert bg.loc[400, "band_status"] == "ok"
    check_partition(plan)


def _seam_layers(offsets: list[float], hh: list[int]) -> dict[str, gpd.GeoDataFrame]:
    """Departmental boundaries near x = 100, 200 … (snap-grid multiples and sub-grid offsets)."""
    xs = [0.0] + [100.0 * (i + 1) + o for i, o in enumerate(offsets)] + [100.0 * (len(offsets) + 1)]
    grids = [(f"P{i}", b(xs[i], 0, xs[i + 1], 100)) for i in range(len(xs) - 1)]
    x1 = xs[-1]
    blds = [(10 + 20 * i, 50 + (i % 3) * 10, h) for i, h in enumerate(hh) if 10 + 20 * i < x1 - 5]
    return make_layers([(C1, b(0, 0, x1, 100))], {"police": grids,
                                                   "fire": [("F1", b(0, 0, x1 / 2 + 0.004, 100)),
                                                            ("F2", b(x1 / 2 + 0.004, 0, x1, 100))]}, blds)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(offsets=st.lists(st.sampled_from([0.0, 0.004, -0.004, 0.006, 0.01, -0.01]), min_size=1, max_size=3),
       hh=st.lists(st.integers(0, 260), min_size=4, max_size=20))
def test_partition_invariants_with_boundaries_on_the_snap_grid(offsets: list[float], hh: list[int]) -> None:
    check_partition(merge_layers(_seam_layers(offsets, hh)))


@settings(max_examples=25, deadline=None)
@given(eps=st.lists(st.sampled_from([0.0, 0.001, 0.004, 0.005, 0.006, -0.004, -0.005]),
                    min_size=4, max_size=4),
       ys=st.lists(st.floats(1, 99), min_size=2, max_size=2, unique=True))
def test_faces_are_noded_alike_on_both_sides_of_a_tile_seam(eps: list[float], ys: list[float]) -> None:
    # tile seams of this input fall at x = 33 and x = 67 (see _faces_by_tiles): vertices within
    # half a grid cell of a seam are snapped onto it in one tile only
    y0, y1 = sorted(ys)
    a = shapely.Polygon([(0, 0), (33 + eps[0], 0), (33 + eps[1], y0), (33 + eps[2], y1),
                         (33 + eps[3], 100), (0, 100)])
    rest = shapely.difference(shapely.box(0, 0, 100, 100), a)
    c = shapely.box(20, y0 / 2, 70 + eps[0], 50 + y1 / 2)
    layers = {"a": shapely.segmentize(np.array([a, rest]), 1.0), "c": np.array([c])}
    city = shapely.box(0, 0, 100, 100)
    faces = overlay_faces(city, layers, tile_coords=150, workers=1)
    fg = faces.geoms
    assert shapely.is_valid(fg).all()
    union = shapely.coverage_union_all(fg)  # raises on incorrectly noded faces
    assert abs(shapely.area(union) - 10_000) < 1e-6
    adj = face_adjacency(fg)
    # exact noding: every edge is shared by two faces or lies on the city's outline
    outline = shapely.length(city)
    assert abs(shapely.length(fg).sum() - 2 * adj["length"].sum() - outline) < 1e-6


def test_second_overlay_renodes_only_the_tiles_the_pieces_touch(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from gridplan.merge import overlay

    calls: list[tuple[float, ...]] = []
    real = overlay._tile_faces

    def counting(lines, rect, grid):  # type: ignore[no-untyped-def]
        calls.append(rect)
        return real(lines, rect, grid)

    monkeypatch.setattr(overlay, "_tile_faces", counting)
    rng = np.random.default_rng(3)
    city = shapely.box(0, 0, 400, 400)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(rng.uniform(0, 400, (60, 2))),
                                                       extend_to=city))
    layers = {"a": shapely.segmentize(shapely.intersection(cells, city), 2.0)}
    first = overlay_faces(city, layers, tile_coords=400, workers=1)
    assert first.tiles is not None
    assert len(first.tiles.xs) > 3
    pieces = np.array([shapely.box(10, 10, 60.005, 50), shapely.box(60.005, 10, 90, 50)])
    n_first = len(calls)
    again = overlay_faces(city, {**layers, "_pieces": pieces}, tile_coords=400, workers=1, previous=first)
    assert 0 < len(calls) - n_first < n_first / 2, "only the tiles under the pieces are noded again"
    full = overlay_faces(city, {**layers, "_pieces": pieces}, tile_coords=400, workers=1)
    assert full.tiles is not None
    assert np.array_equal(full.tiles.xs, first.tiles.xs)  # the same tile grid: comparable
    assert len(again.tiles.faces) == len(full.tiles.faces)
    # the same faces as noding every tile again
    assert len(again.geoms) == len(full.geoms)
    assert shapely.equals_exact(again.geoms, full.geoms, tolerance=0).all()
    assert abs(shapely.area(again.geoms).sum() - shapely.area(full.geoms).sum()) < 1e-6
    assert (again.members["_pieces"][1] >= 0).all()
    assert len(np.unique(again.members["_pieces"][1])) == 2


def test_cli_split_units_flag_and_summary(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from gridplan.cli import app
    from gridplan.layers import write_layers

    src = tmp_path / "layers.gpkg"
    write_layers({k: v for k, v in block_of_six(200).items() if k != "std_addresses"}, src)
    cases = (("--split-units", "1", None), ("--no-split-units", "0", "unit_over_max_not_split"))
    for flag, split, reason in cases:
        out = tmp_path / f"plan{flag}.gpkg"
        res = CliRunner().invoke(app, ["merge", str(src), "--out", str(out), flag], env={"COLUMNS": "200"})
        assert res.exit_code == 0, res.output
        line = next(x for x in res.output.splitlines() if "units split" in x)
        assert line.rstrip(" │|").split()[-1] == split
        if reason:
            assert f"outside: {reason}" in res.output
        else:
            assert "3 (100.0 %)" in res.output
