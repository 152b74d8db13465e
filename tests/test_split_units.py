"""Issue 12: oversized units divided between buildings, undersized grids merged, reasons, seams.

Hand-made layers with known answers (an oversized block of six buildings, a block cut by a road,
a small grid beside a full one) and hypothesis invariants of the partition with boundaries placed
on overlay tile seams and on the snap grid.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely import box
from test_merge import C1, C2, C3, CRS, X0, Y0, b, make_layers

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
    # attributed only where the faces changed, with the same membership as attributing them all
    assert again.members.keys() == full.members.keys()
    for name in full.members:
        assert np.array_equal(again.members[name], full.members[name]), name
    assert np.array_equal(again.points, full.points)
    assert again.refined is not None
    prev = again.refined.previous_index
    assert 0 < (prev < 0).sum() < len(prev) / 4
    assert shapely.equals_exact(again.geoms[prev >= 0], first.geoms[prev[prev >= 0]], tolerance=0).all()
    assert not shapely.equals_exact(first.geoms[again.refined.now_of_previous() < 0][:, None],
                                    again.geoms[prev < 0][None, :], tolerance=0).any()


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


# ---- the second stage refines the first: the same result as attributing every face again ----------


def _full_attribution(previous, raw, origin, tiles, city, layers, *, workers):  # type: ignore[no-untyped-def]
    """Stand-in for ``overlay._refine``: the re-noded faces attributed from scratch (no reuse)."""
    from gridplan.merge import overlay

    return overlay._attribute(raw, origin, tiles, city, layers, workers=workers)


def _merge_stages(layers: dict[str, gpd.GeoDataFrame], *, refine: bool, tile_coords: int):  # type: ignore[no-untyped-def]
    """Merge on several overlay tiles (one worker); the plan and the stages it computed."""
    import functools

    from gridplan.merge import build, overlay

    stages = []
    real_stage = build._stage

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        stages.append(real_stage(*args, **kwargs))
        return stages[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(build, "overlay_faces",
                   functools.partial(overlay.overlay_faces, tile_coords=tile_coords, workers=1))
        mp.setattr(build, "_stage", spy)
        if not refine:
            mp.setattr(overlay, "_refine", _full_attribution)
        plan = merge_layers(layers)
    return plan, stages


def _assert_same_arrays(a: object, b: object, fields: list[str]) -> None:
    for f in fields:
        x, y = getattr(a, f), getattr(b, f)
        if isinstance(x, pd.DataFrame):
            pd.testing.assert_frame_equal(x, y, check_exact=True, obj=f)
        elif isinstance(x, np.ndarray) and x.dtype == object:
            assert shapely.equals_exact(x, y, tolerance=0).all(), f
        else:
            assert np.array_equal(x, y), f


def assert_same_refinement(layers: dict[str, gpd.GeoDataFrame], *, tile_coords: int = 300) -> int:
    """The refined second stage equals attributing, locating and dissolving every face again.

    Returns how many faces the refinement had to attribute again (new faces).
    """
    plan, st = _merge_stages(layers, refine=True, tile_coords=tile_coords)
    ref_plan, ref = _merge_stages(layers, refine=False, tile_coords=tile_coords)
    assert len(st) == len(ref)
    if len(st) == 2:  # a unit was split: compare the second stages face by face, unit by unit
        got, want = st[1], ref[1]
        assert got.faces.refined is not None
        assert want.faces.refined is None
        _assert_same_arrays(got.faces, want.faces, ["geoms", "points", "origin"])
        assert got.faces.members.keys() == want.faces.members.keys()
        for name in want.faces.members:
            assert np.array_equal(got.faces.members[name], want.faces.members[name]), name
        _assert_same_arrays(got.fl, want.fl, ["farea", "fperim", "fadj", "fcomm", "fdept", "fpiece"])
        assert got.fl.qa_rows == want.fl.qa_rows or all(
            {k: v for k, v in r.items() if k != "geometry"} == {k: v for k, v in q.items() if k != "geometry"}
            and shapely.equals_exact(r["geometry"], q["geometry"], tolerance=0)
            for r, q in zip(got.fl.qa_rows, want.fl.qa_rows, strict=True))
        _assert_same_arrays(got.units, want.units, [
            "unit", "lineage", "kept_sliver", "fstats", "stats", "geom", "area", "x", "y", "adj", "outer",
            "b_unit", "b_face", "a_face"])
    for name in ("atomic_units", "base_grids", "crosswalk", "dept_fit", "h3_cells", "qa_issues"):
        x, y = getattr(plan, name), getattr(ref_plan, name)
        if isinstance(x, gpd.GeoDataFrame):
            assert shapely.equals_exact(np.asarray(x.geometry.array), np.asarray(y.geometry.array),
                                        tolerance=0).all(), name
            x = pd.DataFrame(x.drop(columns=x.geometry.name))
            y = pd.DataFrame(y.drop(columns=y.geometry.name))
        pd.testing.assert_frame_equal(x, y, check_exact=True, obj=name)
    assert plan.meta.params == ref_plan.meta.params
    if len(st) < 2 or st[1].faces.refined is None:
        return 0
    return int((st[1].faces.refined.previous_index < 0).sum())


def _refine_layers(dx: float, hh: list[int], road: bool) -> dict[str, gpd.GeoDataFrame]:
    """Three communities, police with an overlap and a gap, fire off by millimetres, one big block.

    The block (0-240 x 0-100 in community C1) holds buildings of *hh* households, enough to be
    split; *dx* moves the police boundary between the block and the rest.  Community C3
    (400-800 m, police grids of 20 m) is far from the block: its overlay tiles are not noded again.
    """
    seg = 8.0
    police = [("P1", b(0, 0, 240 + dx, 100)), ("P2", b(240 + dx - 3, 0, 400, 100)),
              ("P3", b(0, 100, 300, 200))]  # P1/P2 overlap by 3 m; 300-400 x 100-200 is a police gap
    police += [(f"Q{i}-{j}", b(400 + 20 * i, 20 * j, 420 + 20 * i, 20 * j + 20))
               for i in range(20) for j in range(10)]
    fire = [("F1", b(0, 0, 200.004, 200)), ("F2", b(200.004, 0, 600, 200)), ("F3", b(600, 0, 800, 200))]
    depts = {"police": [(i, shapely.segmentize(g, seg)) for i, g in police],
             "fire": [(i, shapely.segmentize(g, seg)) for i, g in fire]}
    blds = [(12 + 20 * i, 30 + 40 * (i % 2), h) for i, h in enumerate(hh) if 12 + 20 * i < 236]
    blds += [(260 + 30 * i, 150, 120) for i in range(4)]
    blds += [(430 + 50 * i, 60 + 80 * (i % 2), 90) for i in range(7)]
    layers = make_layers([(C1, b(0, 0, 300, 200)), (C2, b(300, 0, 400, 200)), (C3, b(400, 0, 800, 200))],
                         depts, blds)
    if road:
        line = shapely.LineString([(X0 + 121, Y0 - 5), (X0 + 119, Y0 + 105)])
        layers["roads"] = gpd.GeoDataFrame({"road_name": ["中路"], "road_class": ["支路"]},
                                           geometry=[line], crs=CRS)
    return layers


def test_refined_second_stage_equals_full_recomputation() -> None:
    # 12 buildings of 100 households in one block: split into pieces; several overlay tiles, so the
    # refinement keeps the faces of the tiles the pieces miss and re-attributes the others
    layers = _refine_layers(0.004, [100] * 12, road=True)
    n_new = assert_same_refinement(layers)
    assert n_new > 0
    plan = merge_layers(layers)
    assert (plan.atomic_units["parent_unit_id"] != "").sum() >= 2
    check_partition(plan)


def test_refinement_with_a_speck_left_out_equals_full_recomputation() -> None:
    # a 0.005 m² triangle hangs off the city's corner (800, 200) by one vertex: both stages leave it
    # out (merge.overlay.drop_isolated_specks), and the refined second stage still equals the full one
    layers = _refine_layers(0.004, [100] * 12, road=False)
    speck = shapely.Polygon([(X0 + 800, Y0 + 200), (X0 + 800.1, Y0 + 200.05), (X0 + 800.05, Y0 + 200.1)])
    layers["city"] = layers["city"].set_geometry([shapely.union(layers["city"].geometry.iloc[0], speck)])
    assert assert_same_refinement(layers) > 0
    plan = merge_layers(layers)
    assert plan.qa_issues["detail"].str.contains("speck", na=False).sum() == 1
    assert plan.atomic_units["area_m2"].sum() == pytest.approx(800 * 200, rel=1e-9)
    check_partition(plan)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dx=st.sampled_from([0.0, 0.004, -0.006, 1.5]),
       hh=st.lists(st.integers(20, 160), min_size=8, max_size=12),
       road=st.booleans(), tile_coords=st.sampled_from([100, 300, 10**6]))
def test_refinement_equals_full_recomputation_on_any_block(dx: float, hh: list[int], road: bool,
                                                           tile_coords: int) -> None:
    assert_same_refinement(_refine_layers(dx, hh, road), tile_coords=tile_coords)


def test_refinement_relocates_edge_points_and_keeps_only_unchanged_units() -> None:
    # before: K (east) and R (west) share the edge x = 1; R is then cut into N1 (north), N2 (south)
    # and the order becomes N1, K, N2.  A point on the K|R edge belonged to K (the lower index);
    # now it meets N1 and K and goes to N1, like locating it from scratch.
    from types import SimpleNamespace

    from gridplan.merge.overlay import Refinement
    from gridplan.merge.units import _assign_points, _reassign_points

    k, r = box(1, 0, 2, 1), box(0, 0, 1, 1)
    n1, n2 = box(0, 0.5, 1, 1), box(0, 0, 1, 0.5)
    before, after = np.array([k, r]), np.array([n1, k, n2])
    pts = shapely.points([(1, 0.75), (1.5, 0.5), (0.5, 0.25), (1, 0.25), (5, 5)])
    where = _assign_points(pts, before)
    assert where.tolist() == [0, 0, 1, 0, -1]
    refined = Refinement(previous_index=np.array([-1, 0, -1]), near=np.array([1]), n_previous=2)
    got = _reassign_points(pts, where, after, refined)
    assert got.tolist() == _assign_points(pts, after).tolist() == [0, 1, 2, 1, -1]
    # a unit keeps its previous geometry only when it is made of exactly that unit's faces: A and B
    # were one unit, now each is its own (all faces kept, all from unit 0) and both are dissolved anew
    from gridplan.merge.units import _previous_units

    prev = SimpleNamespace(unit=np.array([0, 0, 1]), n=2)
    same = Refinement(previous_index=np.array([0, 1, 2]), near=np.array([], np.int64), n_previous=3)
    assert _previous_units(np.array([0, 1, 2]), 3, same, prev).tolist() == [-1, -1, 1]  # type: ignore[arg-type]
    assert _previous_units(np.array([0, 0, 1]), 2, same, prev).tolist() == [0, 1]  # type: ignore[arg-type]
    moved = Refinement(previous_index=np.array([0, -1, 2]), near=np.array([], np.int64), n_previous=3)
    assert _previous_units(np.array([0, 0, 1]), 2, moved, prev).tolist() == [-1, 1]  # type: ignore[arg-type]
