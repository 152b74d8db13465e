"""Tests for gridplan.layers: catalog, readers (every format + encodings), bad input, writers, events."""

from __future__ import annotations

import codecs
import hashlib
import os
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from shapely import Point, box
from typer.testing import CliRunner

from gridplan import crs
from gridplan.errors import CRSError, InputError
from gridplan.layers import (
    coerce_fields,
    fingerprint,
    list_layers,
    load_catalog,
    map_fields,
    read_events,
    read_layer,
    read_layers,
    write_layers,
    write_table_csv,
)

ROOT = Path(__file__).resolve().parents[1]
X0, Y0 = 470_000.0, 2_545_000.0  # inside Dongguan, EPSG:4547

PINYIN = {"网格编码": "WGBM", "网格名称": "WGMC"}  # dBASE field names: 10 bytes, too short for UTF-8 Chinese
PRODUCT_LAYERS = {
    "city": ("polygon", {"name", "county_code"}),
    "towns": ("polygon", {"town_code", "town_name"}),
    "communities": ("polygon", {"community_code", "community_name", "town_code"}),
    "roads": ("line", {"road_name", "road_class"}),
    "buildings": ("polygon", {"building_id", "address_id", "households", "residents", "floating_residents",
                              "rental_rooms", "use"}),
    "units": ("point", {"unit_id", "unit_name", "category", "employees", "address_id"}),
    "facilities": ("point", {"facility_id", "kind"}),
    "std_addresses": ("point", {"address_id", "town_name", "community_name", "road_name", "house_number",
                                "building_no", "full_address"}),
    "dept": ("polygon", {"dept_grid_id", "dept_grid_name"}),
    "cases": ("none", {"case_id", "category", "reported_at", "address"}),
    "hazards": ("none", {"hazard_id", "category", "reported_at", "address"}),
}


def dept_gdf(n: int = 3, *, crs_: object = 4547) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"网格编码": [f"GA{i:03d}" for i in range(n)],
         "网格名称": [f"长安警务网格{i:03d}" for i in range(n)]},
        geometry=[box(X0 + 100 * i, Y0, X0 + 100 * (i + 1), Y0 + 100) for i in range(n)],
        crs=crs_,
    )


# --------------------------------------------------------------------------------------------
# catalog
# --------------------------------------------------------------------------------------------


def test_catalog_has_every_product_layer():
    cat = load_catalog()
    for name, (geometry, required) in PRODUCT_LAYERS.items():
        spec = cat.layers[name]
        assert spec.geometry == geometry, name
        assert set(spec.required) == required, name
        for f in (*spec.required, *spec.optional, *spec.nullable):
            assert f in cat.fields, f"{name}.{f} is not described under fields:"
        if spec.id_field:
            assert spec.id_field in spec.required
        for alias_target in spec.rename.values():
            assert alias_target in cat.fields


def test_catalog_aliases_are_unambiguous():
    cat = load_catalog()
    seen: dict[str, str] = {}
    for spec in cat.fields.values():
        for alias in (spec.name, *spec.aliases):
            key = alias.strip().casefold()
            assert seen.setdefault(key, spec.name) == spec.name, f"{alias} → {seen[key]} and {spec.name}"


@pytest.mark.parametrize(
    ("column", "kind", "field"),
    [
        ("网格编码", "dept", "dept_grid_id"), ("网格代码", "dept", "dept_grid_id"),
        ("GRID_ID", "dept", "dept_grid_id"),
        ("网格名称", "dept", "dept_grid_name"), ("名称", "dept", "dept_grid_name"),
        ("社区编码", None, "community_code"), ("村社区代码", None, "community_code"),
        ("户数", None, "households"), ("人口", None, "residents"), ("常住人口", None, "residents"),
        ("流动人口", None, "floating_residents"), ("出租屋间数", None, "rental_rooms"),
        ("门牌号", None, "house_number"), ("楼栋号", None, "building_no"), ("标准地址", None, "full_address"),
        ("经度", None, "lon"), ("纬度", None, "lat"), ("坐标系", None, "coord_sys"),
        ("案件编号", None, "case_id"), ("隐患编号", None, "hazard_id"), ("类别", None, "category"),
        ("上报时间", None, "reported_at"), ("地址", None, "address"),
        ("floating_r", None, "floating_residents"),
        (" grid_id ", "dept", "dept_grid_id"), ("名称", "towns", "town_name"), ("名称", "city", "name"),
    ],
)
def test_catalog_aliases(column, kind, field):
    assert load_catalog().field_for(column, kind) == field


@pytest.mark.parametrize(
    ("layer", "kind"),
    [("dept_police", "dept"), ("dept_fire", "dept"), ("communities", "communities"), ("社区", "communities"),
     ("std_addresses", "std_addresses"), ("警务网格", "dept"), ("atomic_units", None), ("whatever", None)],
)
def test_kind_for(layer, kind):
    assert load_catalog().kind_for(layer) == kind


def test_readme_explains_every_layer_and_field():
    text = (ROOT / "layers" / "README.md").read_text(encoding="utf-8")
    cat = load_catalog()
    for name, spec in cat.layers.items():
        assert f"`{name}`" in text, name
        assert spec.zh in text, spec.zh
    for name, spec in cat.fields.items():
        assert f"`{name}`" in text, name
        assert spec.zh in text, spec.zh


# --------------------------------------------------------------------------------------------
# coercion of codes
# --------------------------------------------------------------------------------------------


def test_codes_stay_text_and_zero_padded():
    df = pd.DataFrame({
        "county_code": [441900, 441900],
        "community_code": [441900119001.0, np.nan],
        "town_code": ["441900119.0", " 41900119 "],
        "dept_grid_id": [17.0, 18.0],
        "building_id": ["4.41900119001E+11", "B-1"],
        "households": ["12", "x"],
        "residents": [3, 4],
    })
    out = coerce_fields(df)
    assert out["county_code"].tolist() == ["441900", "441900"]
    assert out["community_code"].iloc[0] == "441900119001"
    assert pd.isna(out["community_code"].iloc[1])
    assert out["town_code"].tolist() == ["441900119", "041900119"]
    assert out["dept_grid_id"].tolist() == ["17", "18"]
    assert out["building_id"].tolist() == ["441900119001", "B-1"]
    assert out["households"].dtype == "float64"
    assert np.isnan(out["households"].iloc[1])
    assert out["residents"].dtype == "int64"
    assert df["county_code"].dtype == "int64"  # input not mutated


def test_map_fields_keeps_existing_canonical_column():
    df = pd.DataFrame({"dept_grid_id": ["A"], "网格编码": ["B"]})
    out = map_fields(df, "dept")
    assert list(out.columns) == ["dept_grid_id", "网格编码"]


# --------------------------------------------------------------------------------------------
# readers: formats
# --------------------------------------------------------------------------------------------


def test_read_gpkg_maps_aliases_codes_and_reprojects(tmp_path):
    g = dept_gdf().to_crs(4490)
    g["社区编码"] = [441900119001, 441900119002, 441900119003]  # int64 in the file
    g["城市"] = ["东莞"] * 3
    path = tmp_path / "in.gpkg"
    pyogrio.write_dataframe(g, path, layer="dept_police")
    out = read_layer(path)
    assert out.crs.to_epsg() == 4547
    assert {"dept_grid_id", "dept_grid_name", "community_code", "城市"} <= set(out.columns)
    assert out["community_code"].tolist() == ["441900119001", "441900119002", "441900119003"]
    assert out["dept_grid_name"].iloc[0] == "长安警务网格000"
    np.testing.assert_allclose(out.geometry.iloc[0].bounds, (X0, Y0, X0 + 100, Y0 + 100), atol=1e-3)
    assert out.attrs["kind"] == "dept"
    assert list_layers(path) == ["dept_police"]


def test_read_gpkg_layer_choice(tmp_path):
    path = tmp_path / "two.gpkg"
    pyogrio.write_dataframe(dept_gdf(), path, layer="dept_police")
    pyogrio.write_dataframe(dept_gdf(2), path, layer="dept_fire")
    assert len(read_layer(path, "DEPT_FIRE")) == 2  # case-insensitive
    with pytest.raises(InputError, match="holds 2 layers; name the one to read: dept_police, dept_fire"):
        read_layer(path)


def test_read_shapefile_gbk_without_cpg(tmp_path):
    path = tmp_path / "grids.shp"
    pyogrio.write_dataframe(dept_gdf(), path, encoding="GBK")
    (tmp_path / "grids.cpg").unlink()
    # GDAL alone would read this as ISO-8859-1 mojibake
    raw = pyogrio.read_dataframe(path)
    assert "网格名称" not in raw.columns
    out = read_layer(path, kind="dept")
    assert out["dept_grid_name"].tolist() == ["长安警务网格000", "长安警务网格001", "长安警务网格002"]
    assert out["dept_grid_id"].iloc[0] == "GA000"


@pytest.mark.parametrize("encoding", ["UTF-8", "GBK"])
def test_read_shapefile_with_cpg_and_utf8_without(tmp_path, encoding):
    path = tmp_path / "grids.shp"
    # dBASE field names are 10 bytes: 4 Chinese characters fit in GBK, not in UTF-8 (use pinyin there)
    g = dept_gdf() if encoding == "GBK" else dept_gdf().rename(columns=PINYIN)
    pyogrio.write_dataframe(g, path, encoding=encoding)
    assert (tmp_path / "grids.cpg").exists()
    assert read_layer(path, kind="dept")["dept_grid_name"].iloc[1] == "长安警务网格001"
    (tmp_path / "grids.cpg").unlink()
    assert read_layer(path, kind="dept")["dept_grid_name"].iloc[2] == "长安警务网格002"


def test_read_geojson_and_geoparquet(tmp_path):
    g = dept_gdf().to_crs(4326)
    gj = tmp_path / "grids.geojson"
    g.to_file(gj, driver="GeoJSON")
    out = read_layer(gj, kind="dept")
    assert out.crs.to_epsg() == 4547
    assert out["dept_grid_name"].iloc[0] == "长安警务网格000"
    pq = tmp_path / "dept_urban.parquet"
    dept_gdf().to_parquet(pq)
    out = read_layer(pq)
    assert out.attrs["kind"] == "dept"
    assert out["dept_grid_id"].tolist() == ["GA000", "GA001", "GA002"]


def test_read_csv_lonlat_with_coord_sys(tmp_path):
    lon, lat = crs.xy_to_lonlat(np.array([X0, X0 + 50]), np.array([Y0, Y0 + 50]))
    glon, glat = crs.wgs84_to_gcj02(lon, lat)
    df = pd.DataFrame({"设施编码": ["F1", "F2"], "设施类型": ["消防栓", "监控"],
                       "经度": [lon[0], glon[1]], "纬度": [lat[0], glat[1]],
                       "坐标系": ["CGCS2000", "GCJ-02"]})
    path = tmp_path / "facilities.csv"
    df.to_csv(path, index=False, encoding="gbk")
    out = read_layer(path)
    assert out["kind"].tolist() == ["消防栓", "监控"]
    np.testing.assert_allclose(out.geometry.x, [X0, X0 + 50], atol=1e-3)
    np.testing.assert_allclose(out.geometry.y, [Y0, Y0 + 50], atol=1e-3)


def test_read_csv_swapped_lonlat(tmp_path, caplog):
    lon, lat = crs.xy_to_lonlat(np.full(3, X0), np.full(3, Y0))
    path = tmp_path / "facilities.csv"
    pd.DataFrame({"facility_id": ["F1", "F2", "F3"], "kind": ["监控"] * 3,
                  "lon": [lon[0], lat[1], lon[2]], "lat": [lat[0], lon[1], lat[2]]}).to_csv(path, index=False)
    out = read_layer(path)
    assert out.geometry.isna().tolist() == [False, True, False]  # not silently placed
    assert "1 rows have swapped or impossible lon/lat (first: row 2)" in caplog.text
    pd.DataFrame({"facility_id": ["F1", "F2"], "kind": ["监控"] * 2,
                  "lon": [lat[0], lat[1]], "lat": [lon[0], lon[1]]}).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"field lon: lon and lat look swapped \(row 1"):
        read_layer(path)


def test_read_gcj02_geojson_layer(tmp_path):
    """A layer digitised on Amap (GCJ-02 lon/lat) lands ~600 m away unless declared."""
    g = dept_gdf().to_crs(4326)
    g["geometry"] = shapely.transform(
        g.geometry.to_numpy(), lambda c: np.column_stack(crs.wgs84_to_gcj02(c[:, 0], c[:, 1]))
    )
    path = tmp_path / "dept_amap.geojson"
    g.to_file(path, driver="GeoJSON")
    naive = read_layer(path)
    fixed = read_layer(path, coord_sys="GCJ-02")
    assert naive.geometry.iloc[0].distance(Point(X0 + 50, Y0 + 50)) > 400
    np.testing.assert_allclose(fixed.geometry.iloc[0].bounds, (X0, Y0, X0 + 100, Y0 + 100), atol=1e-3)
    gpkg = tmp_path / "projected.gpkg"
    pyogrio.write_dataframe(dept_gdf(), gpkg, layer="dept_police")
    with pytest.raises(CRSError, match="coord_sys gcj02 applies to lon/lat data"):
        read_layer(gpkg, coord_sys="gcj02")


def test_read_csv_wkt(tmp_path):
    path = tmp_path / "dept_civil.csv"
    pd.DataFrame({"dept_grid_id": [7], "dept_grid_name": ["民政网格"],
                  "wkt": [box(X0, Y0, X0 + 10, Y0 + 10).wkt]}).to_csv(path, index=False)
    out = read_layer(path, crs_if_missing=4547)
    assert out.geometry.iloc[0].area == pytest.approx(100)
    assert out["dept_grid_id"].iloc[0] == "7"
    with pytest.raises(CRSError, match="WKT coordinates are not degrees"):
        read_layer(path)


def test_read_layers_returns_recognised_layers(tmp_path):
    path = tmp_path / "layers.gpkg"
    pyogrio.write_dataframe(dept_gdf(), path, layer="dept_police")
    pyogrio.write_dataframe(dept_gdf(2), path, layer="dept_fire")
    pyogrio.write_dataframe(dept_gdf(1), path, layer="atomic_units")
    got = read_layers(path)
    assert sorted(got) == ["dept_fire", "dept_police"]
    assert all(g.crs.to_epsg() == 4547 for g in got.values())
    other = tmp_path / "other.gpkg"
    pyogrio.write_dataframe(dept_gdf(1), other, layer="atomic_units")
    with pytest.raises(InputError, match="holds no layer the catalog knows"):
        read_layers(other)


# --------------------------------------------------------------------------------------------
# readers: bad input, one test per case of issue 2
# --------------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.gpkg: file not found"):
        read_layer(tmp_path / "nope.gpkg")


def test_unknown_layer_lists_available(tmp_path):
    path = tmp_path / "layers.gpkg"
    pyogrio.write_dataframe(dept_gdf(), path, layer="dept_police")
    with pytest.raises(InputError, match="no layer 'dept_fires'; available layers: dept_police"):
        read_layer(path, "dept_fires")


def test_missing_required_field(tmp_path):
    path = tmp_path / "layers.gpkg"
    pyogrio.write_dataframe(dept_gdf().drop(columns=["网格名称"]), path, layer="dept_police")
    with pytest.raises(InputError, match=r"layer dept_police: field dept_grid_name: missing required field"):
        read_layer(path, "dept_police")


def test_wrong_geometry_type(tmp_path):
    path = tmp_path / "layers.gpkg"
    pts = dept_gdf().set_geometry(gpd.GeoSeries([Point(X0, Y0)] * 3, crs=4547))
    pyogrio.write_dataframe(pts, path, layer="dept_police")
    with pytest.raises(InputError, match="expected polygon geometries for a dept layer but found Point"):
        read_layer(path, "dept_police")


def test_no_crs(tmp_path):
    path = tmp_path / "grids.shp"
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        pyogrio.write_dataframe(dept_gdf(crs_=None).rename(columns=PINYIN), path)
    assert not (tmp_path / "grids.prj").exists()
    with pytest.raises(CRSError, match=r"declares no CRS \(the .prj file is missing\)"):
        read_layer(path, kind="dept")
    assert read_layer(path, kind="dept", crs_if_missing=4547).crs.to_epsg() == 4547
    pq = tmp_path / "dept_z.parquet"
    dept_gdf(crs_=None).to_parquet(pq)
    with pytest.raises(CRSError, match="layer dept_z: the layer declares no CRS"):
        read_layer(pq)


def test_malformed_geojson(tmp_path):
    path = tmp_path / "grids.geojson"
    path.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": ',
                    encoding="utf-8")
    with pytest.raises(InputError, match=r"grids\.geojson: not a readable GeoJSON"):
        read_layer(path, kind="dept")


def test_empty_layer(tmp_path):
    path = tmp_path / "layers.gpkg"
    pyogrio.write_dataframe(dept_gdf().iloc[:0], path, layer="dept_police")
    with pytest.raises(InputError, match="layer dept_police: the layer is empty"):
        read_layer(path, "dept_police")


def test_unsupported_format_and_unknown_kind(tmp_path):
    path = tmp_path / "grids.xlsx"
    path.write_bytes(b"x")
    with pytest.raises(InputError, match=r"unsupported file type '\.xlsx'"):
        read_layer(path)
    gpkg = tmp_path / "layers.gpkg"
    pyogrio.write_dataframe(dept_gdf(), gpkg, layer="dept_police")
    with pytest.raises(InputError, match="unknown layer kind 'grids'"):
        read_layer(gpkg, kind="grids")


def test_csv_without_geometry_columns(tmp_path):
    path = tmp_path / "dept_x.csv"
    pd.DataFrame({"dept_grid_id": ["A"], "dept_grid_name": ["a"]}).to_csv(path, index=False)
    with pytest.raises(InputError, match="neither lon/lat columns"):
        read_layer(path)


# --------------------------------------------------------------------------------------------
# writers
# --------------------------------------------------------------------------------------------


def test_write_layers_atomic_append_and_replace(tmp_path):
    path = tmp_path / "out.gpkg"
    write_layers({"dept_police": dept_gdf().pipe(map_fields, "dept")}, path)
    write_layers({"dept_fire": dept_gdf(2).pipe(map_fields, "dept"),
                  "table": pd.DataFrame({"k": ["a"], "v": [1]})}, path, append=True)
    assert sorted(list_layers(path)) == ["dept_fire", "dept_police", "table"]
    write_layers({"dept_fire": dept_gdf(1).pipe(map_fields, "dept")}, path, append=True)
    assert len(read_layer(path, "dept_fire")) == 1
    assert len(read_layer(path, "dept_police")) == 3
    write_layers({"dept_civil": dept_gdf(1).pipe(map_fields, "dept")}, path)  # replace the file
    assert list_layers(path) == ["dept_civil"]
    before = path.read_bytes()
    with pytest.raises(InputError, match="layer names must be non-empty text"):
        write_layers({"dept_x": dept_gdf(1), "": dept_gdf(1)}, path, append=True)
    assert path.read_bytes() == before  # failed write left the old file intact
    assert sorted(os.listdir(tmp_path)) == ["out.gpkg"]  # and no temp files behind


def test_write_table_csv_and_fingerprint(tmp_path):
    path = tmp_path / "t.csv"
    write_table_csv(gpd.GeoDataFrame({"a": ["东莞"]}, geometry=[Point(1, 2)], crs=4547), path)
    assert path.read_bytes().startswith(codecs.BOM_UTF8)  # for Excel, by default
    text = path.read_text(encoding="utf-8-sig")
    assert text.splitlines() == ["a,geometry", "东莞,POINT (1 2)"]
    assert fingerprint(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(InputError, match="file not found"):
        fingerprint(tmp_path / "none.csv")


# --------------------------------------------------------------------------------------------
# events
# --------------------------------------------------------------------------------------------


def _events_frame() -> pd.DataFrame:
    lon, lat = crs.xy_to_lonlat(np.full(8, X0), np.full(8, Y0))
    glon, glat = crs.wgs84_to_gcj02(lon[0], lat[0])
    blon, blat = crs.wgs84_to_bd09(lon[0], lat[0])
    return pd.DataFrame({
        "案件编号": [f"C{i}" for i in range(8)],
        "类别": ["治安", "消防", "治安", "安全生产", "治安", "治安", "治安", "城市管理"],
        "上报时间": ["2024-01-02T08:00:00", "2024-01-03", "2024-01-04T00:00:00+08:00", "not a date",
                     "2024-02-01", "2024-02-02", "2024-02-03", "2024-02-04"],
        "地址": ["长安镇"] * 8,
        "经度": [lon[0], glon, blon, lon[0], "", lat[0], lon[0], lon[0]],
        "纬度": [lat[0], glat, blat, lat[0], "", lon[0], lat[0], lat[0]],
        "坐标系": ["cgcs2000", "GCJ02", "bd09", "wgs84", "", "", "mars", "WGS84"],
        "status": ["M", "M", "T", "M", "U", "M", "M", "U"],
    })


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_read_events(tmp_path, encoding):
    path = tmp_path / "cases.csv"
    _events_frame().to_csv(path, index=False, encoding=encoding)
    ev = read_events(path)
    assert ev.n_total == 8
    assert ev.skipped_reasons == {"unmatched": 2, "bad_reported_at": 1, "swapped_lonlat": 1,
                                  "unknown_coord_sys": 1}
    assert ev.n_skipped == 5
    assert ev.gdf["case_id"].tolist() == ["C0", "C1", "C2"]
    np.testing.assert_allclose(ev.gdf["x"], X0, atol=1e-3)  # cgcs2000, gcj02 and bd09 all land here
    np.testing.assert_allclose(ev.gdf["y"], Y0, atol=1e-3)
    np.testing.assert_allclose(ev.gdf.geometry.x, ev.gdf["x"])
    assert ev.gdf.crs.to_epsg() == 4547
    assert str(ev.gdf["reported_at"].dtype) == "datetime64[ns]"
    assert ev.gdf["reported_at"].iloc[2] == pd.Timestamp("2024-01-04")  # +08:00 → local time
    assert ev.gdf["category"].tolist() == ["治安", "消防", "治安"]


def test_read_events_no_coordinates_and_boundary(tmp_path):
    path = tmp_path / "hazards.csv"
    lon, lat = crs.xy_to_lonlat(np.array([X0, X0 + 5000]), np.array([Y0, Y0]))
    pd.DataFrame({"hazard_id": ["H1", "H2", "H3"], "reported_at": ["2024-01-01"] * 3,
                  "lon": [lon[0], lon[1], None], "lat": [lat[0], lat[1], None]}).to_csv(path, index=False)
    ev = read_events(path, boundary=box(X0 - 100, Y0 - 100, X0 + 100, Y0 + 100))
    assert ev.gdf["hazard_id"].tolist() == ["H1"]
    assert ev.skipped_reasons == {"no_coordinates": 1, "outside_boundary": 1}
    assert ev.gdf["category"].isna().all()  # optional column filled


def test_read_events_missing_column(tmp_path):
    path = tmp_path / "cases.csv"
    pd.DataFrame({"case_id": ["C1"], "lon": [113.7], "lat": [23.0]}).to_csv(path, index=False)
    with pytest.raises(InputError, match=re.escape("cases.csv: field reported_at: missing required column")):
        read_events(path)


# --------------------------------------------------------------------------------------------
# the sample city
# --------------------------------------------------------------------------------------------


def test_read_sample_city(small_city):
    layers = read_layers(small_city / "layers.gpkg")
    for name in ("city", "towns", "communities", "roads", "buildings", "units", "facilities", "std_addresses",
                 "dept_police", "dept_fire", "dept_urban", "dept_civil", "dept_safety"):
        assert name in layers, name
        assert layers[name].crs.to_epsg() == 4547
    assert layers["city"]["county_code"].iloc[0] == "441900"
    assert layers["communities"]["community_code"].str.fullmatch(r"\d{12}").all()
    assert layers["towns"]["town_code"].str.fullmatch(r"\d{9}").all()
    ev = read_events(small_city / "cases.csv")
    assert ev.n_total == len(pd.read_csv(small_city / "cases.csv"))
    assert len(ev.gdf) + ev.n_skipped == ev.n_total
    assert len(ev.gdf) > 0
    assert ev.skipped_reasons.get("no_coordinates", 0) > 0
    city = layers["city"].geometry.iloc[0]
    inside = shapely.contains_xy(city, ev.gdf["x"].to_numpy(), ev.gdf["y"].to_numpy())
    assert inside.mean() > 0.9  # GCJ-02/BD-09 rows converted, not placed 600 m–1.2 km off


def test_cli_validate_bad_input_exits_2(tmp_path):
    from gridplan.cli import app

    result = CliRunner().invoke(app, ["validate", str(tmp_path / "missing.gpkg")])
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1
    assert "missing.gpkg: file not found" in lines[0]


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """One bad file per case of issue 2, with the message the user must see."""
    cases: dict[str, tuple[Path, str]] = {}
    cases["missing file"] = (tmp_path / "absent.gpkg", "absent.gpkg: file not found")
    empty = tmp_path / "empty.gpkg"
    pyogrio.write_dataframe(dept_gdf().iloc[:0], empty, layer="dept_police")
    cases["empty layer"] = (empty, "layer dept_police: the layer is empty")
    nofield = tmp_path / "nofield.gpkg"
    pyogrio.write_dataframe(dept_gdf().drop(columns=["网格名称"]), nofield, layer="dept_police")
    cases["missing field"] = (nofield, "field dept_grid_name: missing required field")
    points = tmp_path / "points.gpkg"
    pyogrio.write_dataframe(dept_gdf().set_geometry(gpd.GeoSeries([Point(X0, Y0)] * 3, crs=4547)), points,
                            layer="dept_police")
    cases["wrong geometry"] = (points, "expected polygon geometries for a dept layer but found Point")
    noprj = tmp_path / "dept_x.shp"
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        pyogrio.write_dataframe(dept_gdf(crs_=None).rename(columns=PINYIN), noprj)
    cases["no crs"] = (noprj, "declares no CRS")
    broken = tmp_path / "dept_y.geojson"
    broken.write_text('{"type": "FeatureCollection", "features": [', encoding="utf-8")
    cases["malformed geojson"] = (broken, "not a readable GeoJSON")
    return cases


def test_cli_every_bad_input_exits_2_with_one_line(tmp_path):
    from gridplan.cli import app

    for case, (path, message) in _bad_inputs(tmp_path).items():
        result = CliRunner().invoke(app, ["-q", "validate", str(path)])
        assert result.exit_code == 2, case
        lines = [ln for ln in result.output.splitlines() if ln.strip()]
        assert len(lines) == 1, (case, result.output)
        assert message in lines[0], (case, lines[0])
        assert "Traceback" not in result.output


def test_read_events_keeps_the_geocoders_grid_code(tmp_path):
    """A located CSV's grid_code is the base grid, never renamed to a departmental id."""
    from gridplan.layers import map_fields, read_events

    csv = tmp_path / "located.csv"
    csv.write_text(
        "case_id,category,reported_at,address,lon,lat,coord_sys,status,grid_code\n"
        "C1,治安,2024-01-02T08:00:00,长安镇乌沙社区兴发南路23号,113.8,22.8,cgcs2000,M,441900119001001\n",
        encoding="utf-8",
    )
    gdf = read_events(csv).gdf
    assert "grid_code" in gdf.columns
    assert "dept_grid_id" not in gdf.columns
    assert str(gdf["grid_code"].iloc[0]) == "441900119001001"
    # in a departmental layer GRID_CODE still means the department's own id
    assert "dept_grid_id" in map_fields(pd.DataFrame({"GRID_CODE": ["P1"]}), "dept").columns
