"""QGIS-ready outputs (issue 19): default styles in ``layer_styles``, Chinese aliases, one geometry type.

QGIS itself is not installed in CI (``qgis_process`` would pull in the whole desktop), so these
tests open what QGIS reads — the GeoPackage's SQLite tables and the QML/SLD documents — and check
that they parse and reference every layer and field.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from common import X0, Y0, make_plan
from shapely import MultiPolygon, Point, box

from gridplan.layers import list_layers, write_layers
from gridplan.layers.labels import field_label, vocabulary
from gridplan.layers.styles import STYLE_NAME, layer_style, style_geopackage
from gridplan.plans import read_plan, write_plan


def _tables(path: Path) -> dict[str, str | None]:
    with sqlite3.connect(path) as con:
        rows = con.execute(
            "SELECT c.table_name, g.column_name FROM gpkg_contents c"
            " LEFT JOIN gpkg_geometry_columns g ON g.table_name = c.table_name"
        ).fetchall()
    return dict(rows)


def _columns(con: sqlite3.Connection, table: str, geom: str | None) -> list[str]:
    return [r[1] for r in con.execute(f'PRAGMA table_info("{table}")') if not r[5] and r[1] != geom]


def _styles(path: Path) -> dict[str, tuple[ET.Element, ET.Element, int]]:
    with sqlite3.connect(path) as con:
        rows = con.execute(
            "SELECT f_table_name, styleQML, styleSLD, useAsDefault FROM layer_styles WHERE styleName = ?",
            (STYLE_NAME,),
        ).fetchall()
    return {t: (ET.fromstring(qml), ET.fromstring(sld), use) for t, qml, sld, use in rows}


def _check_every_layer_and_field(path: Path) -> dict[str, tuple[ET.Element, ET.Element, int]]:
    tables = _tables(path)
    styles = _styles(path)
    assert set(styles) == {t for t, g in tables.items() if g}  # every spatial layer has a style
    with sqlite3.connect(path) as con:
        aliases = {(t, c): (n, title) for t, c, n, title in con.execute(
            "SELECT table_name, column_name, name, title FROM gpkg_data_columns")}
        ext = {r[0] for r in con.execute("SELECT extension_name FROM gpkg_extensions")}
        for table, geom in tables.items():
            columns = _columns(con, table, geom)
            for col in columns:  # every field of every layer has its Chinese alias
                assert aliases[(table, col)][0].startswith(field_label(col)), (table, col)
            if table in styles:
                qml = styles[table][0]
                got = {a.get("field"): a.get("name") for a in qml.iter("alias")}
                assert got == {c: field_label(c) for c in columns}
                assert styles[table][2] == 1
    assert {"gpkg_schema", "gdal_aspatial"} <= ext
    assert "layer_styles" not in list_layers(path)  # GDAL and our readers see only the data
    return styles


def test_plan_gpkg_is_styled_with_aliases_and_one_geometry_type(tmp_path):
    plan = make_plan()
    qa = plan.qa_issues
    mixed = pd.concat([qa, gpd.GeoDataFrame(
        {"layer": ["dept_police"], "feature_id": ["P2"], "issue": ["gap"], "detail": ["gap"]},
        geometry=[MultiPolygon([box(X0, Y0, X0 + 2, Y0 + 2), box(X0 + 5, Y0, X0 + 6, Y0 + 1)])], crs=4547,
    )], ignore_index=True)
    params = {**plan.meta.params, "households_min": 150, "households_max": 250}
    plan = dataclasses.replace(plan, qa_issues=mixed, meta=dataclasses.replace(plan.meta, params=params))
    path = write_plan(plan, tmp_path / "plan.gpkg")
    styles = _check_every_layer_and_field(path)
    types = dict(pyogrio.list_layers(path))
    assert types["qa_issues"] == "MultiPolygon"
    assert types["base_grids"] == "Polygon"
    back = read_plan(path)
    assert back.qa_issues.geometry.geom_equals(mixed.geometry).all()  # shapes unchanged
    grids = styles["base_grids"][0].find("renderer-v2")
    assert grids.get("type") == "graduatedSymbol"
    assert grids.get("attr") == "households"
    ranges = [(float(r.get("lower")), float(r.get("upper"))) for r in grids.iter("range")]
    assert ranges[:2] == [(0, 150), (150, 250)]  # the plan's own band
    assert "150–250 户" in [r.get("label") for r in grids.iter("range")][1]
    issues = styles["qa_issues"][0].find("renderer-v2")
    assert issues.get("attr") == "issue"
    assert {c.get("value"): c.get("label") for c in issues.iter("category")}["gap"] == "缝隙"
    assert styles["atomic_units"][0].find("renderer-v2").get("type") == "singleSymbol"
    rules = styles["base_grids"][1].findall(".//{http://www.opengis.net/se}Rule")
    assert len(rules) == 3


def test_hotspot_and_emerging_layers_get_their_colours(tmp_path):
    geoms = [box(X0 + i * 10, Y0, X0 + i * 10 + 10, Y0 + 10) for i in range(3)]
    hot = gpd.GeoDataFrame({"grid_code": ["a", "b", "c"], "gi_bin": [-3, 0, 3], "gi_p": [0.001, 0.5, 0.002]},
                           geometry=geoms, crs=4547)
    emerging = gpd.GeoDataFrame({"code": ["a", "b", "c"], "pattern": ["New Hot Spot"] * 3}, geometry=geoms,
                                crs=4547)
    posts = gpd.GeoDataFrame({"site_id": ["S1"]}, geometry=[Point(X0, Y0)], crs=4547)
    yoy = pd.DataFrame({"level": ["town"], "change_pct": [-77.6]})
    layers = {"hotspots": hot, "emerging": emerging, "posts": posts, "yoy": yoy}
    path = write_layers(layers, tmp_path / "hot.gpkg")
    styles = _check_every_layer_and_field(path)
    gi = styles["hotspots"][0].find("renderer-v2")
    cats = {c.get("value"): c for c in gi.iter("category")}
    assert set(cats) == set(vocabulary("gi_bin"))
    colors = {s.get("name"): s.find(".//Option[@name='color']").get("value") for s in gi.iter("symbol")}
    assert colors[cats["3"].get("symbol")].startswith("214,47,39")  # ArcGIS 99 % hot red
    assert colors[cats["0"].get("symbol")].startswith("255,255,191")
    pat = styles["emerging"][0].find("renderer-v2")
    assert pat.get("attr") == "pattern"
    assert len(list(pat.iter("category"))) == 17
    marker = styles["posts"][0].find(".//layer")
    assert marker.get("class") == "SimpleMarker"
    with sqlite3.connect(path) as con:  # the attribute table has aliases too
        assert con.execute("SELECT name FROM gpkg_data_columns WHERE table_name = 'yoy'"
                           " AND column_name = 'change_pct'").fetchone() == ("同比变化",)
    style_geopackage(path)  # idempotent: restyling replaces our rows
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT count(*) FROM layer_styles").fetchone() == (3,)


@pytest.mark.parametrize(("name", "geom", "expect"), [
    ("dept_fire", "POLYGON", ("single", "fill")),
    ("roads", "MULTILINESTRING", ("single", "line")),
    ("uncovered", "POINT", ("single", "marker")),
])
def test_layer_style_kinds(name, geom, expect):
    s = layer_style(name, ["x"], geom)
    assert (s.kind, s.geometry) == expect


def test_mixed_geometry_families_stay_readable(tmp_path, caplog):
    gdf = gpd.GeoDataFrame({"a": [1, 2]}, geometry=[Point(X0, Y0), box(X0, Y0, X0 + 1, Y0 + 1)], crs=4547)
    path = write_layers({"mixed": gdf}, tmp_path / "m.gpkg")
    assert "mixes" in caplog.text
    assert len(pyogrio.read_dataframe(path)) == 2


def _tif(path: Path) -> Path:
    import numpy as np
    import rasterio
    from affine import Affine

    data = np.zeros((20, 30), dtype="float32")
    data[5:10, 5:20] = 40.0
    with rasterio.open(path, "w", driver="GTiff", width=30, height=20, count=1, dtype="float32",
                       crs="EPSG:4547", transform=Affine(50, 0, X0, 0, -50, Y0 + 1000), nodata=-1) as dst:
        dst.write(data, 1)
    return path


def test_qgis_project_loads_every_layer_styled_and_grouped(tmp_path):
    from gridplan.layers.qgis_project import default_project_layers, write_qgis_project

    out = tmp_path / "outputs"
    out.mkdir()
    plan = write_plan(make_plan(), out / "plan.gpkg")
    geoms = [box(X0, Y0, X0 + 10, Y0 + 10)]
    hot_gdf = gpd.GeoDataFrame({"gi_bin": [3]}, geometry=geoms, crs=4547)
    hot = write_layers({"hotspots": hot_gdf}, out / "hot.gpkg")
    heat = _tif(out / "heat.tif")
    layers = default_project_layers(plan=plan, hotspots=hot, proposal=out / "missing.gpkg", heat=heat)
    (tmp_path / "project").mkdir()
    path = write_qgis_project(layers, tmp_path / "project" / "gridplan.qgs")
    root = ET.parse(path).getroot()
    assert root.tag == "qgis"
    assert root.find("projectCrs/spatialrefsys/authid").text == "EPSG:4547"
    assert root.find("properties/Paths/Absolute").text == "false"
    groups = [g.get("name") for g in root.findall("layer-tree-group/layer-tree-group")]
    assert groups == ["方案", "热点分析", "热力图"]  # no proposal: its file is missing
    tree_ids = {t.get("id"): t for t in root.iter("layer-tree-layer")}
    maplayers = root.findall("projectlayers/maplayer")
    assert {m.find("id").text for m in maplayers} == set(tree_ids)
    names = {m.find("layername").text for m in maplayers}
    assert {"基础网格", "热点 / 冷点 (Gi*)", "事件热力图（件/km²）"} <= names
    for ml in maplayers:  # every source resolves from the project folder, every layer is styled
        source = ml.find("datasource").text
        file_part, _, layer_part = source.partition("|layername=")
        assert file_part.startswith("./")
        assert (path.parent / file_part).resolve().exists()
        if ml.get("type") == "vector":
            assert layer_part in list_layers((path.parent / file_part).resolve())
            assert ml.find("renderer-v2") is not None
            aliases = {a.get("field"): a.get("name") for a in ml.iter("alias")}
            assert aliases
            assert all(name == field_label(f) for f, name in aliases.items())
            assert ml.find("provider").text == "ogr"
        else:
            items = ml.findall(".//colorrampshader/item")
            assert len(items) == 5
            assert float(items[-1].get("value")) == pytest.approx(40.0)
            assert items[-1].get("label") == "≥ 40.0 件/km²"
    hot_layer = next(m for m in maplayers if m.find("layername").text.startswith("热点"))
    assert hot_layer.find("renderer-v2").get("attr") == "gi_bin"
    base = next(t for t in tree_ids.values() if t.get("name") == "基础网格")
    assert base.get("checked") == "Qt::Checked"


def test_qgis_project_errors(tmp_path):
    from gridplan.errors import InputError
    from gridplan.layers.qgis_project import ProjectLayer, write_qgis_project

    with pytest.raises(InputError, match=r"\.qgs"):
        write_qgis_project([], tmp_path / "p.xml")
    with pytest.raises(InputError, match="no layers"):
        write_qgis_project([], tmp_path / "p.qgs")
    with pytest.raises(InputError, match="missing layer file"):
        write_qgis_project([ProjectLayer(tmp_path / "none.gpkg", "x", "g", "base_grids")], tmp_path / "p.qgs")
    assert list(tmp_path.iterdir()) == []
