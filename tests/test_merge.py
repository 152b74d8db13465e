"""Tests of gridplan.merge: tiny hand-made layers with known answers, invariants, the merge CLI."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely import box

from gridplan.errors import CRSError, InputError
from gridplan.merge import merge_layers

CRS = 4547
X0, Y0 = 420_000.0, 2_540_000.0  # somewhere in Dongguan, EPSG:4547 metres
C1, C2, C3 = "441900119001", "441900119002", "441900119003"


def b(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    """A box in local metres (offset into the EPSG:4547 extent of Dongguan)."""
    return box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def pt(x: float, y: float) -> shapely.Point:
    return shapely.Point(X0 + x, Y0 + y)


def make_layers(
    communities: Sequence[tuple[str, shapely.Geometry]],
    depts: dict[str, Sequence[tuple[str, shapely.Geometry]]],
    buildings: Sequence[tuple[float, float, int]] = (),
    city: shapely.Geometry | None = None,
) -> dict[str, gpd.GeoDataFrame]:
    """Layers dict as read_layers returns it; buildings are 2 m squares at (x, y) with households."""
    comm = gpd.GeoDataFrame(
        {"community_code": [c for c, _ in communities],
         "community_name": [f"社区{c[-3:]}" for c, _ in communities],
         "town_code": [c[:9] for c, _ in communities]},
        geometry=[g for _, g in communities], crs=CRS)
    if city is None:
        city = shapely.union_all(comm.geometry.to_numpy())
    out = {
        "city": gpd.GeoDataFrame({"name": ["东莞市"], "county_code": ["441900"]}, geometry=[city], crs=CRS),
        "communities": comm,
        "towns": gpd.GeoDataFrame({"town_code": ["441900119"], "town_name": ["长安镇"]},
                                  geometry=[city], crs=CRS),
    }
    for name, grids in depts.items():
        out[f"dept_{name}"] = gpd.GeoDataFrame(
            {"dept_grid_id": [i for i, _ in grids], "dept_grid_name": [f"{name}{i}" for i, _ in grids]},
            geometry=[g for _, g in grids], crs=CRS)
    out["buildings"] = gpd.GeoDataFrame(
        {"building_id": [f"B{i}" for i in range(len(buildings))],
         "address_id": [f"A{i}" for i in range(len(buildings))],
         "households": [h for _, _, h in buildings], "residents": [3 * h for _, _, h in buildings],
         "floating_residents": [h // 2 for _, _, h in buildings], "rental_rooms": [1 for _ in buildings],
         "use": ["住宅" for _ in buildings]},
        geometry=[b(x - 1, y - 1, x + 1, y + 1) for x, y, _ in buildings], crs=CRS)
    out["std_addresses"] = gpd.GeoDataFrame(
        {"address_id": [f"A{i}" for i in range(len(buildings))]},
        geometry=[pt(x, y) for x, y, _ in buildings], crs=CRS)
    return out


def unit_at(plan, x: float, y: float) -> pd.Series:
    units = plan.atomic_units
    hit = units[units.contains(pt(x, y))]
    assert len(hit) == 1, f"{len(hit)} units at {x},{y}"
    return hit.iloc[0]


def grid_at(plan, x: float, y: float) -> pd.Series:
    grids = plan.base_grids
    hit = grids[grids.contains(pt(x, y))]
    assert len(hit) == 1, f"{len(hit)} grids at {x},{y}"
    return hit.iloc[0]


# ---- hand-made cases with known answers ------------------------------------------------------


def test_two_squares_split_differently_give_four_units_with_lineage() -> None:
    layers = make_layers(
        [(C1, b(0, 0, 100, 100)), (C2, b(100, 0, 200, 100))],
        {"police": [("P1", b(0, 0, 100, 100)), ("P2", b(100, 0, 200, 100))],
         "fire": [("F1", b(0, 0, 200, 50)), ("F2", b(0, 50, 200, 100))]},
        [(10, 10, 200), (10, 60, 150), (110, 10, 200), (110, 60, 210)],
    )
    plan = merge_layers(layers)
    u = plan.atomic_units
    assert len(u) == 4
    got = {(r.community_code, r.police_grid_id, r.fire_grid_id) for r in u.itertuples()}
    assert got == {(C1, "P1", "F1"), (C1, "P1", "F2"), (C2, "P2", "F1"), (C2, "P2", "F2")}
    assert np.allclose(u["area_m2"], 5000.0)
    assert unit_at(plan, 10, 60)["households"] == 150
    assert unit_at(plan, 10, 60)["residents"] == 450
    assert unit_at(plan, 10, 60)["addresses"] == 1
    # two communities of 350 and 410 households: one grid each, in band, coded by community
    g = plan.base_grids.set_index("community_code")
    assert sorted(plan.base_grids["grid_code"]) == [C1 + "001", C2 + "001"]
    assert g.loc[C1, "households"] == 350
    assert g.loc[C2, "households"] == 410
    assert set(plan.base_grids["band_status"]) == {"ok"}
    assert g.loc[C1, "town_name"] == "长安镇"
    assert g.loc[C1, "units"] == 2
    # crosswalk: F1 is half in each base grid; police grids map 1:1
    cw = plan.crosswalk.set_index(["department", "dept_grid_id", "grid_code"])
    assert cw.loc[("fire", "F1", C1 + "001"), "area_share"] == pytest.approx(0.5)
    assert cw.loc[("fire", "F1", C1 + "001"), "household_share"] == pytest.approx(200 / 400)
    assert cw.loc[("police", "P2", C2 + "001"), "area_share"] == pytest.approx(1.0)
    fit = plan.dept_fit.set_index(["department", "dept_grid_id"])
    assert fit.loc[("police", "*"), "area_kept"] == pytest.approx(1.0)
    assert fit.loc[("fire", "*"), "area_kept"] == pytest.approx(0.5)
    assert fit.loc[("fire", "F2"), "households_kept"] == pytest.approx(210 / 360)
    assert fit.loc[("fire", "F2"), "best_grid_code"] == C2 + "001"
    assert plan.meta.county_code == "441900"
    assert plan.meta.departments == ("fire", "police")
    assert len(plan.h3_cells) > 0


def test_sliver_cluster_in_a_row_resolves_in_one_call() -> None:
    # four departments draw the same line at x = 50, 50.3, 50.6, 50.9: three 30 m² strips in a row
    xs = [50.0, 50.3, 50.6, 50.9]
    depts = {name: [(f"{name[0].upper()}1", b(0, 0, x, 100)), (f"{name[0].upper()}2", b(x, 0, 100, 100))]
             for name, x in zip(["police", "fire", "urban", "civil"], xs, strict=True)}
    layers = make_layers([(C1, b(0, 0, 100, 100))], depts, [(20, 50, 200), (80, 50, 200)])
    plan = merge_layers(layers)
    s = plan.meta.params["summary"]
    assert s["faces"] == 5
    assert s["slivers_removed"] == 3
    assert s["slivers_kept"] == 0
    assert len(plan.atomic_units) == 2
    assert plan.atomic_units["area_m2"].min() > 49 * 100
    assert plan.atomic_units["area_m2"].sum() == pytest.approx(10_000.0, rel=1e-12)
    assert not (plan.qa_issues["issue"] == "sliver").any()


def test_sliver_never_joins_another_community() -> None:
    # a 0.5 m strip of community C2 along C1: its only same-community neighbour is the rest of C2
    layers = make_layers(
        [(C1, b(0, 0, 50, 100)), (C2, b(50, 0, 100, 100))],
        {"police": [("P1", b(0, 0, 50.5, 100)), ("P2", b(50.5, 0, 100, 100))]},
        [(20, 50, 350), (80, 50, 350)],
    )
    plan = merge_layers(layers)
    u = plan.atomic_units.set_index("community_code")
    assert plan.meta.params["summary"]["slivers_removed"] == 1
    assert u.loc[C1, "area_m2"] == pytest.approx(5000.0)
    assert u.loc[C2, "area_m2"] == pytest.approx(5000.0)
    assert u.loc[C2, "police_grid_id"] == "P2"


def test_sliver_alone_in_its_community_is_kept_and_reported() -> None:
    layers = make_layers(
        [(C1, b(0, 0, 100, 100)), (C2, b(100, 0, 100.2, 100))],
        {"police": [("P1", b(0, 0, 100.2, 100))]}, [(20, 50, 350)],
    )
    plan = merge_layers(layers)
    assert plan.meta.params["summary"]["slivers_kept"] == 1
    qa = plan.qa_issues[plan.qa_issues["issue"] == "sliver"]
    assert len(qa) == 1
    assert C2 in qa.iloc[0]["detail"]
    assert set(plan.atomic_units["community_code"]) == {C1, C2}


def test_crumb_cut_off_from_its_community_joins_the_neighbour_and_is_reported() -> None:
    # C1 has a body and a detached 0.01 m² speck inside C2 (a digitising crumb of the community layer)
    speck = b(150, 50, 150.1, 50.1)
    layers = make_layers(
        [(C1, shapely.union(b(0, 0, 100, 100), speck)), (C2, b(100, 0, 200, 100).difference(speck))],
        {"police": [("P1", b(0, 0, 200, 100))]}, [(20, 50, 350), (120, 50, 400)],
    )
    plan = merge_layers(layers)
    s = plan.meta.params["summary"]
    assert s["slivers_kept"] == 0
    assert s["crumbs_joined_other_community"] == 1
    u = plan.atomic_units.set_index("community_code")
    assert len(plan.atomic_units) == 2
    assert u.loc[C1, "area_m2"] == pytest.approx(10_000.0)
    assert u.loc[C2, "area_m2"] == pytest.approx(10_000.0)  # the speck is in C2's unit now
    assert plan.base_grids.geometry.area.min() > 9_999
    qa = plan.qa_issues[plan.qa_issues["issue"] == "sliver"]
    assert len(qa) == 1
    assert C1 in qa.iloc[0]["detail"]
    assert C2 in qa.iloc[0]["detail"]


def test_speck_touching_the_city_at_a_vertex_is_left_out_and_reported() -> None:
    # the city outline has a 0.005 m² triangle hanging off the corner (100, 100) by one vertex
    speck = shapely.Polygon([(X0 + 100, Y0 + 100), (X0 + 100.1, Y0 + 100.05), (X0 + 100.05, Y0 + 100.1)])
    layers = make_layers([(C1, b(0, 0, 100, 100))], {"police": [("P1", b(0, 0, 100, 100))]}, [(20, 50, 350)],
                         city=shapely.union(b(0, 0, 100, 100), speck))
    plan = merge_layers(layers)
    assert len(plan.base_grids) == 1
    assert plan.atomic_units["area_m2"].sum() == pytest.approx(10_000.0, rel=1e-12)
    qa = plan.qa_issues[plan.qa_issues["detail"].str.contains("speck", na=False)]
    assert len(qa) == 1
    assert qa.geometry.area.iloc[0] == pytest.approx(speck.area, rel=1e-3)


def test_enclave_unit_joins_the_grid_around_it() -> None:
    # community of 800 households split in two grids; an enclave police grid sits in the west half
    layers = make_layers(
        [(C1, b(0, 0, 200, 100))],
        {"police": [("P1", b(0, 0, 200, 100).difference(b(30, 40, 50, 60))), ("P2", b(30, 40, 50, 60))],
         "fire": [("F1", b(0, 0, 100, 100)), ("F2", b(100, 0, 200, 100))]},
        [(10, 10, 300), (40, 50, 100), (150, 50, 400)],
    )
    plan = merge_layers(layers)
    assert len(plan.atomic_units) == 3
    enclave = unit_at(plan, 40, 50)
    assert enclave["police_grid_id"] == "P2"
    assert enclave["base_grid_code"] == unit_at(plan, 10, 10)["base_grid_code"]
    assert len(plan.base_grids) == 2
    assert sorted(plan.base_grids["households"]) == [400, 400]
    # west grid is numbered first (same row, west → east)
    assert grid_at(plan, 10, 10)["grid_code"] == C1 + "001"
    assert grid_at(plan, 150, 50)["grid_code"] == C1 + "002"


def test_gap_gives_empty_dept_id_and_a_qa_row() -> None:
    layers = make_layers(
        [(C1, b(0, 0, 100, 100))],
        {"police": [("P1", b(0, 0, 60, 100))], "fire": [("F1", b(0, 0, 100, 100))]},
        [(10, 10, 350)],
    )
    plan = merge_layers(layers)
    gap_unit = unit_at(plan, 80, 50)
    assert gap_unit["police_grid_id"] == ""
    assert gap_unit["fire_grid_id"] == "F1"
    assert gap_unit["area_m2"] == pytest.approx(4000.0)
    qa = plan.qa_issues
    rows = qa[(qa["issue"] == "gap") & (qa["layer"] == "dept_police") & qa["detail"].str.startswith("merge")]
    assert len(rows) == 1
    assert rows.iloc[0].geometry.area == pytest.approx(4000.0)
    # the input check's gap row, built from the overlay's uncovered faces (no union_all of the layer)
    found = qa[(qa["issue"] == "gap") & (qa["layer"] == "dept_police")
               & qa["detail"].str.endswith("not covered")]
    assert found["detail"].tolist() == ["4000.0 m² of the city not covered"]
    assert found.iloc[0].geometry.area == pytest.approx(4000.0)
    assert not ((qa["issue"] == "gap") & (qa["layer"] == "dept_fire")).any()


def test_overlap_goes_to_the_grid_covering_more_of_the_community() -> None:
    layers = make_layers(
        [(C1, b(0, 0, 100, 100))],
        {"police": [("P1", b(0, 0, 55, 100)), ("P2", b(40, 0, 100, 100))]},
        [(10, 10, 350)],
    )
    plan = merge_layers(layers)
    assert unit_at(plan, 20, 50)["police_grid_id"] == "P1"
    assert unit_at(plan, 50, 50)["police_grid_id"] == "P2"
    assert unit_at(plan, 50, 50)["area_m2"] == pytest.approx(6000.0)  # overlap merged into P2's unit
    qa = plan.qa_issues
    rows = qa[(qa["issue"] == "overlap") & qa["detail"].str.startswith("merge")]
    assert len(rows) == 1
    assert rows.iloc[0]["feature_id"] == "P1,P2"
    assert "assigned to P2" in rows.iloc[0]["detail"]
    # the crosswalk keeps the true extent of both grids
    cw = plan.crosswalk[plan.crosswalk["department"] == "police"].set_index("dept_grid_id")
    assert cw["area_share"].tolist() == [1.0, 1.0]


def test_dept_grid_crossing_a_community_line_is_split_and_grids_stay_in_one_community() -> None:
    layers = make_layers(
        [(C1, b(0, 0, 100, 100)), (C2, b(100, 0, 200, 100))],
        {"police": [("P1", b(0, 0, 150, 100)), ("P2", b(150, 0, 200, 100))]},
        [(10, 10, 200), (120, 10, 200), (170, 10, 200)],
    )
    plan = merge_layers(layers)
    p1 = plan.atomic_units[plan.atomic_units["police_grid_id"] == "P1"]
    assert sorted(p1["community_code"]) == [C1, C2]
    for g in plan.base_grids.itertuples():
        units = plan.atomic_units
        comms = set(units.loc[units["base_grid_code"] == g.grid_code, "community_code"])
        assert comms == {g.community_code}
    g1 = plan.base_grids.set_index("community_code").loc[C1]
    assert g1["band_status"] == "below"
    assert g1["band_reason"] == "community_smaller_than_band: community has only 200 households"
    band = plan.qa_issues[plan.qa_issues["issue"] == "band"]
    assert set(band["feature_id"]) == {C1 + "001"}


def test_huge_single_unit_is_kept_above_with_reason() -> None:
    layers = make_layers(
        [(C1, b(0, 0, 100, 100))],
        {"police": [("P1", b(0, 0, 50, 100)), ("P2", b(50, 0, 100, 100))]},
        [(20, 50, 900), (70, 50, 350)],
    )
    plan = merge_layers(layers)
    g = plan.base_grids.set_index("households")
    assert g.loc[900, "band_status"] == "above"
    assert g.loc[900, "band_reason"].startswith("single_building_over_max: ")
    assert g.loc[350, "band_status"] == "ok"


def test_codes_follow_reading_order_north_to_south_west_to_east() -> None:
    quads = [("Q1", b(0, 100, 100, 200)), ("Q2", b(100, 100, 200, 200)),
             ("Q3", b(0, 0, 100, 100)), ("Q4", b(100, 0, 200, 100))]
    layers = make_layers([(C1, b(0, 0, 200, 200))], {"police": quads},
                         [(50, 150, 400), (150, 150, 400), (50, 50, 400), (150, 50, 400)])
    plan = merge_layers(layers)
    assert len(plan.base_grids) == 4
    assert grid_at(plan, 50, 150)["grid_code"] == C1 + "001"  # north-west
    assert grid_at(plan, 150, 150)["grid_code"] == C1 + "002"  # north-east
    assert grid_at(plan, 50, 50)["grid_code"] == C1 + "003"  # south-west
    assert grid_at(plan, 150, 50)["grid_code"] == C1 + "004"  # south-east


def test_merge_is_deterministic_and_does_not_mutate_inputs() -> None:
    layers = make_layers(
        [(C1, b(0, 0, 200, 200))],
        {"police": [("P1", b(0, 0, 120, 200)), ("P2", b(120, 0, 200, 200))],
         "fire": [("F1", b(0, 0, 200, 90)), ("F2", b(0, 90, 200, 200))]},
        [(x, y, 70) for x in range(10, 200, 40) for y in range(10, 200, 40)],
    )
    before = {k: v.copy() for k, v in layers.items()}
    p1 = merge_layers(layers)
    p2 = merge_layers(layers)
    for k, v in layers.items():
        pd.testing.assert_frame_equal(v, before[k])
    assert_geodataframe_equal(p1.atomic_units, p2.atomic_units)
    assert_geodataframe_equal(p1.base_grids, p2.base_grids)
    pd.testing.assert_frame_equal(p1.crosswalk, p2.crosswalk)
    assert p1.meta.inputs == p2.meta.inputs
    assert p1.base_grids["households"].sum() == 25 * 70


def test_departments_option_selects_layers() -> None:
    layers = make_layers(
        [(C1, b(0, 0, 100, 100))],
        {"police": [("P1", b(0, 0, 50, 100)), ("P2", b(50, 0, 100, 100))],
         "fire": [("F1", b(0, 0, 100, 100))]},
        [(20, 50, 350)],
    )
    plan = merge_layers(layers, departments=["fire"])
    assert plan.meta.departments == ("fire",)
    assert "police_grid_id" not in plan.atomic_units.columns
    assert len(plan.atomic_units) == 1


# ---- errors -----------------------------------------------------------------------------------


def _simple() -> dict[str, gpd.GeoDataFrame]:
    return make_layers([(C1, b(0, 0, 100, 100))], {"police": [("P1", b(0, 0, 100, 100))]}, [(20, 50, 350)])


def test_missing_layer_is_an_input_error() -> None:
    layers = _simple()
    del layers["communities"]
    with pytest.raises(InputError, match="layer communities: required layer is missing"):
        merge_layers(layers)


def test_unknown_department_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"unknown department.*nosuch; available: police"):
        merge_layers(_simple(), departments=["nosuch"])


def test_no_department_layers_is_an_input_error() -> None:
    layers = _simple()
    del layers["dept_police"]
    with pytest.raises(InputError, match="no departmental layers"):
        merge_layers(layers)


def test_malformed_community_code_is_an_input_error() -> None:
    layers = _simple()
    layers["communities"] = layers["communities"].assign(community_code="4419")
    with pytest.raises(InputError, match="row 0: field community_code: must be 12 digits"):
        merge_layers(layers)


def test_missing_field_is_an_input_error() -> None:
    layers = _simple()
    layers["dept_police"] = layers["dept_police"].drop(columns="dept_grid_id")
    with pytest.raises(InputError, match="dept_police: field dept_grid_id: missing required field"):
        merge_layers(layers)


def test_geographic_crs_is_a_crs_error() -> None:
    layers = _simple()
    layers["dept_police"] = layers["dept_police"].to_crs(4490)
    with pytest.raises(CRSError, match="dept_police has the geographic CRS EPSG:4490"):
        merge_layers(layers)


def test_mixed_crs_is_a_crs_error() -> None:
    layers = _simple()
    layers["dept_police"] = layers["dept_police"].to_crs(32649)
    with pytest.raises(CRSError, match="reproject every layer to one CRS"):
        merge_layers(layers)


def test_inverted_band_is_an_input_error() -> None:
    with pytest.raises(InputError, match="households_min"):
        merge_layers(_simple(), households_min=600, households_max=500)


# ---- invariants on random partitions ---------------------------------------------------------


def _voronoi(rng: np.random.Generator, n: int, frame: shapely.Geometry) -> list[shapely.Geometry]:
    x0, y0, x1, y1 = frame.bounds
    pts = shapely.multipoints(np.column_stack([rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)]))
    cells = shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=frame))
    cells = shapely.intersection(cells, frame)
    return [c for c in cells if not c.is_empty and c.area > 0]


def _overlap_area(geoms: np.ndarray) -> float:
    tree = shapely.STRtree(geoms)
    i, j = tree.query(geoms, predicate="intersects")
    m = i < j
    return float(shapely.area(shapely.intersection(geoms[i[m]], geoms[j[m]])).sum())


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n_comm=st.integers(1, 4), n_dept=st.integers(1, 3))
def test_invariants_on_random_voronoi_layers(seed: int, n_comm: int, n_dept: int) -> None:
    rng = np.random.default_rng(seed)
    city = b(0, 0, 1000, 1000)
    comm_geoms = _voronoi(rng, n_comm, city) if n_comm > 1 else [city]
    comms = [(f"441900119{i + 1:03d}", g) for i, g in enumerate(comm_geoms)]
    depts = {f"d{k}": [(f"G{k}_{i}", g) for i, g in enumerate(_voronoi(rng, int(rng.integers(3, 25)), city))]
             for k in range(n_dept)}
    bxy = rng.uniform(5, 995, (300, 2))
    layers = make_layers(comms, depts, [(x, y, int(h)) for (x, y), h in
                                        zip(bxy, rng.integers(0, 30, 300), strict=True)], city=city)
    plan = merge_layers(layers, min_area_m2=50.0)
    units, grids = plan.atomic_units, plan.base_grids
    # area conserved through overlay, slivers and grouping
    assert abs(units["area_m2"].sum() - 1e6) / 1e6 < 1e-9
    assert abs(shapely.area(units.geometry.to_numpy()).sum() - 1e6) / 1e6 < 1e-9
    assert abs(grids["area_m2"].sum() - 1e6) / 1e6 < 1e-9
    assert abs(shapely.area(grids.geometry.to_numpy()).sum() - 1e6) / 1e6 < 1e-9
    # no overlaps
    assert _overlap_area(units.geometry.to_numpy()) < 1e-6
    assert _overlap_area(grids.geometry.to_numpy()) < 1e-6
    # each base grid in one community, contiguous (one polygon)
    comm_geom = dict(comms)
    for g in grids.itertuples():
        assert set(units.loc[units["base_grid_code"] == g.grid_code, "community_code"]) == {g.community_code}
        # (boundaries are snap-rounded to 1 cm: allow perimeter x 1 cm)
        c = comm_geom[g.community_code]
        assert g.geometry.difference(c).area <= c.length * 0.01
        assert g.geometry.geom_type == "Polygon"
    # codes: unique, 15 digits, prefixed by community code
    codes = grids["grid_code"]
    assert codes.is_unique
    assert codes.str.fullmatch(r"\d{15}").all()
    assert (codes.str[:12] == grids["community_code"]).all()
    assert set(units["base_grid_code"]) == set(codes)
    assert units["unit_id"].is_unique
    # households: every building counted once
    assert grids["households"].sum() == layers["buildings"]["households"].sum()
    assert (grids.set_index("grid_code")["households"]
            == units.groupby("base_grid_code")["households"].sum()).all()
    # crosswalk shares sum to one per departmental grid
    sums = plan.crosswalk.groupby(["department", "dept_grid_id"])["area_share"].sum()
    assert np.allclose(sums, 1.0)


# ---- the small sample city and the CLI ---------------------------------------------------------

PLAN_LAYERS = {"atomic_units", "base_grids", "dept_crosswalk", "dept_fit", "h3_cells", "qa_issues",
               "plan_meta"}


def test_cli_merge_writes_a_gdal_readable_plan(small_city: Path, tmp_path: Path) -> None:
    import pyogrio
    from typer.testing import CliRunner

    from gridplan.cli import app

    out = tmp_path / "plan.gpkg"
    res = CliRunner().invoke(app, ["merge", str(small_city / "layers.gpkg"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "atomic units" in res.output
    assert "base grids" in res.output
    names = {n for n, _ in pyogrio.list_layers(out)}
    assert names >= PLAN_LAYERS
    from gridplan.plans import read_plan

    plan = read_plan(out)
    for layer, n in [("atomic_units", len(plan.atomic_units)), ("base_grids", len(plan.base_grids))]:
        info = pyogrio.read_info(out, layer=layer)
        assert info["crs"] == "EPSG:4547"
        assert info["features"] == n > 0
    ogrinfo = shutil.which("ogrinfo")
    if ogrinfo:
        txt = subprocess.run([ogrinfo, "-so", str(out), "base_grids"], capture_output=True, text=True,
                             check=True).stdout
        assert f"Feature Count: {len(plan.base_grids)}" in txt


def test_cli_merge_bad_department_exits_2(small_city: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from gridplan.cli import app

    res = CliRunner().invoke(app, ["merge", str(small_city / "layers.gpkg"),
                                   "--out", str(tmp_path / "p.gpkg"), "--departments", "police,nosuch"])
    assert res.exit_code == 2
    assert "nosuch" in res.output
    assert not (tmp_path / "p.gpkg").exists()


def test_small_plan_figures(small_plan: Path) -> None:
    from gridplan.plans import read_plan

    plan = read_plan(small_plan)
    units, grids = plan.atomic_units, plan.base_grids
    assert grids["grid_code"].is_unique
    assert (grids["grid_code"].str[:12] == grids["community_code"]).all()
    for code, grp in units.groupby("base_grid_code"):
        assert grp["community_code"].nunique() == 1, code
    assert abs(units["area_m2"].sum() - grids["area_m2"].sum()) / grids["area_m2"].sum() < 1e-9
    in_band = (grids["band_status"] == "ok").mean()
    assert in_band >= 0.6, f"only {in_band:.0%} of small-sample grids in band"
    assert set(plan.dept_fit["department"]) == set(plan.meta.departments)


def test_cli_merge_missing_file_exits_2(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from gridplan.cli import app

    res = CliRunner().invoke(app, ["merge", str(tmp_path / "nope.gpkg"), "--out", str(tmp_path / "p.gpkg")])
    assert res.exit_code == 2
    assert "nope.gpkg" in res.output
    assert not (tmp_path / "p.gpkg").exists()
