"""Tests for gridplan.validate: tiny layers with known answers, invariants, the sample's planted defects."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely import GeometryCollection, LineString, Point, Polygon, box
from typer.testing import CliRunner

from gridplan.errors import CRSError
from gridplan.layers import read_layers
from gridplan.validate import QA_ISSUES, QAOptions, empty_qa, qa_summary, validate_layer, validate_layers

CITY = box(0, 0, 20, 10)


def dept(geoms, ids=None, names=None) -> gpd.GeoDataFrame:
    n = len(geoms)
    return gpd.GeoDataFrame(
        {"dept_grid_id": ids or [f"G{i}" for i in range(n)],
         "dept_grid_name": names or [f"g{i}" for i in range(n)]},
        geometry=list(geoms),
        crs=4547,
    )


def issues(qa: gpd.GeoDataFrame, issue: str) -> gpd.GeoDataFrame:
    return qa[qa["issue"] == issue]


def test_qa_table_contract():
    _, qa = validate_layer(dept([box(0, 0, 10, 10), box(5, 0, 15, 10)]), "dept", layer_name="dept_x")
    assert list(qa.columns) == ["layer", "feature_id", "issue", "detail", "geometry"]
    assert qa.crs.to_epsg() == 4547
    assert set(qa["issue"]) <= set(QA_ISSUES)
    assert list(empty_qa().columns) == list(qa.columns)


def test_two_overlapping_squares_one_overlap_of_known_area():
    _, qa = validate_layer(dept([box(0, 0, 10, 10), box(5, 0, 15, 10), box(15, 0, 20, 10)]), "dept",
                           layer_name="dept_x")
    ov = issues(qa, "overlap")
    assert len(ov) == 1
    assert ov.geometry.iloc[0].area == pytest.approx(50.0)
    assert ov["feature_id"].iloc[0] == "G0"
    assert "G0 overlaps G1 by 50.0 m²" in ov["detail"].iloc[0]
    # touching squares (G1/G2 share an edge) are not an overlap


def test_overlap_threshold():
    tiny = dept([box(0, 0, 10, 10), box(9.95, 0, 20, 10)])  # 0.5 m² overlap
    _, qa = validate_layer(tiny, "dept", layer_name="d")
    assert issues(qa, "overlap").empty
    _, qa = validate_layer(tiny, "dept", layer_name="d", options=QAOptions(min_overlap_m2=0.1))
    assert len(issues(qa, "overlap")) == 1


def test_hole_is_a_gap_of_known_area():
    layer = dept([box(0, 0, 10, 10), box(12, 0, 20, 10)])
    _, qa = validate_layer(layer, "dept", layer_name="d", boundary=CITY)
    gaps = issues(qa, "gap")
    assert len(gaps) == 1
    assert gaps.geometry.iloc[0].area == pytest.approx(20.0)
    assert gaps["feature_id"].iloc[0] == ""
    # an inner hole too
    ring = dept([Polygon(CITY.exterior.coords, [box(2, 2, 4, 4).exterior.coords])])
    _, qa = validate_layer(ring, "dept", layer_name="d", boundary=CITY)
    assert issues(qa, "gap").geometry.area.tolist() == pytest.approx([4.0])
    # no boundary → no gap check; buildings are not a coverage layer
    _, qa = validate_layer(layer, "dept", layer_name="d")
    assert issues(qa, "gap").empty


def test_bowtie_is_repaired_and_counted_never_dropped():
    bowtie = Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])
    layer = dept([bowtie, box(10, 0, 20, 10)])
    repaired, qa = validate_layer(layer, "dept", layer_name="d")
    bad = issues(qa, "invalid_geometry")
    assert len(bad) == 1
    assert bad["feature_id"].iloc[0] == "G0"
    assert "Self-intersection" in bad["detail"].iloc[0]
    assert len(repaired) == 2
    assert repaired.is_valid.all()
    assert repaired.geometry.iloc[0].geom_type == "MultiPolygon"
    assert repaired.geometry.iloc[0].area == pytest.approx(50.0)  # two triangles of 25 m²
    assert not layer.geometry.iloc[0].is_valid  # input not mutated


def test_make_valid_collection_keeps_polygonal_part():
    # a polygon with a dangling spike: make_valid gives Polygon + LineString in a GeometryCollection
    spiky = Polygon([(0, 0), (10, 0), (10, 10), (0, 10), (0, 0), (-5, -5), (0, 0)])
    repaired, qa = validate_layer(dept([spiky]), "dept", layer_name="d")
    assert repaired.geometry.iloc[0].geom_type in ("Polygon", "MultiPolygon")
    assert repaired.geometry.iloc[0].area == pytest.approx(100.0)
    assert len(issues(qa, "invalid_geometry")) == 1


def test_null_empty_wrong_type_duplicates_missing_values():
    layer = dept(
        [box(0, 0, 5, 5), None, Polygon(), LineString([(0, 0), (1, 1)]),
         GeometryCollection([box(6, 0, 8, 2), Point(9, 9)]), box(10, 0, 12, 2)],
        ids=["A", "B", "C", "D", "E", "A"],
        names=["a", "b", "c", "d", "  ", None],
    )
    repaired, qa = validate_layer(layer, "dept", layer_name="d")
    assert issues(qa, "null_geometry")["feature_id"].tolist() == ["B"]
    assert issues(qa, "empty_geometry")["feature_id"].tolist() == ["C"]
    wrong = issues(qa, "wrong_geometry_type")
    assert sorted(wrong["feature_id"]) == ["D", "E"]
    assert repaired.geometry.iloc[4].area == pytest.approx(4.0)  # polygonal part of the collection kept
    assert issues(qa, "duplicate_id")["feature_id"].tolist() == ["A", "A"]
    missing = issues(qa, "missing_value")
    assert missing["feature_id"].tolist() == ["E", "A"]
    assert set(missing["detail"]) == {"dept_grid_name is NULL"}
    assert len(repaired) == len(layer)


def test_nullable_field_is_not_missing():
    addr = gpd.GeoDataFrame(
        {"address_id": ["1", "2"], "town_name": ["长安镇"] * 2, "community_name": ["乌沙社区"] * 2,
         "road_name": ["兴发路"] * 2, "house_number": ["1号", None], "building_no": [None, ""],
         "full_address": ["x", "y"]},
        geometry=[Point(1, 1), Point(2, 2)], crs=4547,
    )
    _, qa = validate_layer(addr, "std_addresses", layer_name="std_addresses")
    assert issues(qa, "missing_value")["detail"].tolist() == ["house_number is NULL"]


def test_outside_boundary_polygons_points_lines():
    layer = dept([box(15, 0, 25, 5), box(0, 0, 10, 10.1), box(2, 2, 3, 3)])  # 25 m² out / 1 m² out / in
    only_big = QAOptions(min_outside_m2=1.5)
    _, qa = validate_layer(layer, "dept", layer_name="d", boundary=CITY, options=only_big)
    out = issues(qa, "outside_boundary")
    assert out["feature_id"].tolist() == ["G0"]
    assert out.geometry.iloc[0].area == pytest.approx(25.0)
    pts = gpd.GeoDataFrame({"facility_id": ["P1", "P2", "P3"], "kind": ["消防栓"] * 3},
                           geometry=[Point(1, 1), Point(30, 1), Point(20, 5)], crs=4547)
    _, qa = validate_layer(pts, "facilities", layer_name="facilities", boundary=CITY)
    assert issues(qa, "outside_boundary")["feature_id"].tolist() == ["P2"]  # on the edge counts as in
    roads = gpd.GeoDataFrame({"road_name": ["A"], "road_class": ["支路"]},
                             geometry=[LineString([(10, 5), (50, 5)])], crs=4547)
    _, qa = validate_layer(roads, "roads", layer_name="roads", boundary=CITY)
    assert "30.0 m outside" in issues(qa, "outside_boundary")["detail"].iloc[0]


def test_crosses_community():
    comms = gpd.GeoDataFrame({"community_code": ["441900119001", "441900119002"]},
                             geometry=[box(0, 0, 10, 10), box(10, 0, 20, 10)], crs=4547)
    layer = dept([box(0, 0, 9, 10), box(9, 0, 20, 10), box(2, 2, 10.2, 3)])  # in / 9 %+91 % / 2.4 % out
    _, qa = validate_layer(layer, "dept", layer_name="d", communities=comms)
    cross = issues(qa, "crosses_community")
    assert cross["feature_id"].tolist() == ["G1"]
    assert cross["detail"].iloc[0] == "spans communities 441900119002 91%, 441900119001 9%"


def test_geographic_crs_refused():
    layer = dept([box(0, 0, 1, 1)]).set_crs(4490, allow_override=True)
    with pytest.raises(CRSError, match="layer d has the geographic CRS EPSG:4490"):
        validate_layer(layer, "dept", layer_name="d")


@settings(max_examples=25, deadline=None)
@given(st.sets(st.tuples(st.integers(0, 5), st.integers(0, 3)), max_size=10))
def test_partition_with_removed_cells(removed):
    """A 6×4 grid of 10 m cells minus some: gaps sum to the removed area, never an overlap."""
    cells = [(i, j) for i in range(6) for j in range(4) if (i, j) not in removed]
    if not cells:
        return
    layer = dept([box(10 * i, 10 * j, 10 * i + 10, 10 * j + 10) for i, j in cells])
    _, qa = validate_layer(layer, "dept", layer_name="d", boundary=box(0, 0, 60, 40))
    assert issues(qa, "overlap").empty
    assert issues(qa, "gap").geometry.area.sum() == pytest.approx(100.0 * len(removed))


def test_validate_layers_uses_city_and_communities():
    layers = {
        "city": gpd.GeoDataFrame({"name": ["东莞市"], "county_code": ["441900"]}, geometry=[CITY], crs=4547),
        "communities": gpd.GeoDataFrame(
            {"community_code": ["441900119001", "441900119002"], "community_name": ["a", "b"],
             "town_code": ["441900119"] * 2},
            geometry=[box(0, 0, 10, 10), box(10, 0, 20, 10)], crs=4547),
        "dept_police": dept([box(0, 0, 15, 10)]),
    }
    repaired, qa = validate_layers(layers)
    assert list(repaired) == list(layers)
    assert sorted(issues(qa, "gap").geometry.area) == pytest.approx([50.0])
    assert issues(qa, "crosses_community")["feature_id"].tolist() == ["G0"]
    assert qa_summary(qa).loc["dept_police", "gap"] == 1


# --------------------------------------------------------------------------------------------
# end to end on the sample city
# --------------------------------------------------------------------------------------------


def test_qa_finds_every_planted_defect(small_city):
    layers = read_layers(small_city / "layers.gpkg")
    repaired, qa = validate_layers(layers)
    manifest = json.loads((small_city / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["defects"], "the sample should plant defects"
    missed = []
    for d in manifest["defects"]:
        sub = qa[(qa["layer"] == d["layer"]) & (qa["issue"] == d["issue"])]
        if d["issue"] in ("gap", "overlap"):
            found = bool(np.any(shapely.dwithin(sub.geometry.to_numpy(), Point(d["x"], d["y"]), 1.0)))
        else:
            found = bool((sub["feature_id"] == str(d["feature_id"])).any())
        if not found:
            missed.append(d)
    assert missed == []
    # repaired layers keep every feature and are valid where they have geometry
    for name, gdf in layers.items():
        assert len(repaired[name]) == len(gdf)
        geoms = repaired[name].geometry.to_numpy()
        assert shapely.is_valid(geoms[~shapely.is_missing(geoms)]).all(), name


def test_cli_validate_on_sample(small_city, tmp_path):
    from gridplan.cli import app

    out = tmp_path / "qa.csv"
    result = CliRunner().invoke(app, ["-q", "validate", str(small_city / "layers.gpkg"), "--out", str(out),
                                      "--layers", "dept_police,buildings"])
    assert result.exit_code == 0, result.output
    assert "dept_police" in result.output
    assert "buildings" in result.output
    qa = pd.read_csv(out, dtype=str)
    assert list(qa.columns) == ["layer", "feature_id", "issue", "detail", "geometry"]
    assert set(qa["layer"]) == {"dept_police", "buildings"}
    gpkg = tmp_path / "qa.gpkg"
    result = CliRunner().invoke(app, ["-q", "validate", str(small_city / "layers.gpkg"), "--out", str(gpkg)])
    assert result.exit_code == 0, result.output
    assert len(gpd.read_file(gpkg, layer="qa_issues")) > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--layers", "dept_nope"], "no layer dept_nope; available layers: city"),
        (["--out", "qa.txt"], "--out must end in .csv or .gpkg"),
    ],
)
def test_cli_validate_bad_options_exit_2(small_city, args, message):
    from gridplan.cli import app

    result = CliRunner().invoke(app, ["-q", "validate", str(small_city / "layers.gpkg"), *args])
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1
    assert message in lines[0]


def test_skip_checks():
    layer = dept([box(0, 0, 10, 10), box(5, 0, 15, 10)])
    skip_two = QAOptions(skip=("gap", "overlap"))
    _, qa = validate_layer(layer, "dept", layer_name="d", boundary=CITY, options=skip_two)
    assert qa.empty
    _, qa = validate_layer(layer, "dept", layer_name="d", boundary=CITY)
    assert set(qa["issue"]) == {"gap", "overlap"}
