"""Map builders and display geometry on hand-made layers with known answers."""

from __future__ import annotations

import html as html_lib
import json
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely import box

from gridplan import maps
from gridplan.crs import lonlat_to_xy, wgs84_to_gcj02
from gridplan.errors import CRSError, InputError
from gridplan.maps.publish import check_offline
from gridplan.maps.simplify import display_geometry, is_coverage

X0, Y0 = 500000.0, 2550000.0


def wiggly_coverage(n: int = 4) -> gpd.GeoDataFrame:
    """n×n cells whose shared edges are jagged (many vertices): noded line work, polygonized."""
    rng = np.random.default_rng(0)
    size = 500.0
    t = np.linspace(-1.0, n * size + 1.0, 200)
    lines = []
    for k in range(n + 1):
        jit = rng.normal(0, 0.8, t.size) if 0 < k < n else np.zeros(t.size)
        lines.append(shapely.LineString(np.column_stack([X0 + k * size + jit, Y0 + t])))
        lines.append(shapely.LineString(np.column_stack([X0 + t, Y0 + k * size + jit])))
    polys = list(shapely.polygonize(list(shapely.union_all(lines).geoms)).geoms)
    polys = sorted(polys, key=lambda p: (round(p.centroid.x), round(p.centroid.y)))
    assert len(polys) == n * n
    codes = [f"44190011900{i:04d}" for i in range(n * n)]
    return gpd.GeoDataFrame(
        {
            "grid_code": codes,
            "households": np.arange(n * n) * 10 + 300,
            "residents": 1000,
            "community_name": "社区",
            "town_name": "长安镇",
        },
        geometry=polys,
        crs=4547,
    )


def test_display_geometry_keeps_coverage_and_shrinks() -> None:
    g = wiggly_coverage()
    assert is_coverage(g.geometry.values)
    out = display_geometry(g, tolerance_m=3.0, decimals=6)
    assert out.crs.to_epsg() == 4326
    before = shapely.get_num_coordinates(g.geometry.values).sum()
    after = shapely.get_num_coordinates(out.geometry.values).sum()
    assert after < before / 2
    # still a coverage after simplification and rounding: shared edges stay shared
    assert shapely.coverage_is_valid(out.geometry.values)
    union = shapely.union_all(out.geometry.values)
    assert union.geom_type == "Polygon"
    assert len(union.interiors) == 0


def test_display_geometry_rounds_and_shifts_to_gcj02() -> None:
    lon, lat = 113.75, 23.02
    x, y = lonlat_to_xy(lon, lat)
    g = gpd.GeoDataFrame(geometry=[shapely.Point(x, y)], crs=4547)
    wgs = display_geometry(g, decimals=5).geometry.iloc[0]
    assert wgs.x == pytest.approx(lon, abs=1e-5)
    assert wgs.y == pytest.approx(lat, abs=1e-5)
    assert wgs.x == round(wgs.x, 5)
    gcj = display_geometry(g, decimals=7, gcj02=True).geometry.iloc[0]
    glon, glat = wgs84_to_gcj02(np.array([lon]), np.array([lat]))
    assert gcj.x == pytest.approx(glon[0], abs=2e-7)
    assert gcj.y == pytest.approx(glat[0], abs=2e-7)
    shift_m = np.hypot((gcj.x - lon) * 102_500, (gcj.y - lat) * 110_600)
    assert 400 < shift_m < 800  # the GCJ-02 offset in Dongguan is ~600 m


def test_display_geometry_errors_and_non_coverage() -> None:
    g = gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1)])
    with pytest.raises(CRSError, match="no CRS"):
        display_geometry(g)
    with pytest.raises(CRSError, match="projected"):
        display_geometry(g.set_crs(4326))
    with pytest.raises(InputError, match="decimals"):
        display_geometry(g.set_crs(4547), decimals=0)
    overlapping = gpd.GeoDataFrame(
        geometry=[box(X0, Y0, X0 + 100, Y0 + 100), box(X0 + 50, Y0, X0 + 150, Y0 + 100), None], crs=4547
    )
    out = display_geometry(overlapping)
    assert len(out) == 2
    assert out.is_valid.all()


def _page_data(html: str) -> list[dict]:
    """GeoJSON FeatureCollections embedded in a rendered page."""
    return [json.loads(m) for m in re.findall(r"_add\((\{\"features\".*?\})\);\n", html)]


def test_base_grid_map_popups_legend_search_offline() -> None:
    g = wiggly_coverage(3).assign(staff=2, workload=1.5)
    m = maps.base_grid_map(g, title="基础网格")
    html = maps.render_html(m)
    assert check_offline(html) == []
    fcs = _page_data(html)
    grid_fc = next(fc for fc in fcs if "grid_code" in fc["features"][0]["properties"])
    props = grid_fc["features"][0]["properties"]
    assert set(props) >= {
        "grid_code",
        "community_name",
        "town_name",
        "households",
        "residents",
        "staff",
        "workload",
    }
    assert html_lib.unescape(props["workload"]) == "1.5 小时/月"  # numbers carry their unit
    assert props["households"] == "300 户"
    assert "L.Control.Search" in html
    assert "搜索网格编码" in html
    assert "户数" in html  # legend caption
    assert "L.control.fullscreen" in html
    assert "L.control.scale" in html
    assert "cdn" not in re.sub(r"<(script|style) data-gridplan-asset.*?</\1>", "", html, flags=re.S).lower()


def test_map_options_validation() -> None:
    with pytest.raises(InputError, match="tile_crs"):
        maps.MapOptions(tile_crs="bd09")
    with pytest.raises(InputError, match="template"):
        maps.MapOptions(tile_url="ftp://x/{z}/{x}/{y}")
    with pytest.raises(InputError, match="quotes"):
        maps.MapOptions(tile_url="http://x/{z}/{x}/{y}.png?a='")
    assert maps.MapOptions(tile_url="http://t/{z}/{x}/{y}.png", tile_crs="gcj02").gcj02
    assert not maps.MapOptions(tile_crs="gcj02").gcj02


def test_tile_url_is_the_only_remote_reference() -> None:
    url = "http://tiles.intranet.local/{z}/{x}/{y}.png"
    m = maps.base_grid_map(wiggly_coverage(2), options=maps.MapOptions(tile_url=url))
    html = maps.render_html(m, tile_url=url)
    assert url in html
    assert check_offline(html) == [url]  # without the allowance the tile URL is reported
    assert check_offline(html, allowed_prefixes=["http://tiles.intranet.local/"]) == []


def test_color_by_missing_column_is_an_input_error() -> None:
    with pytest.raises(InputError, match="no column"):
        maps.base_grid_map(wiggly_coverage(2), color_by="nope")


def test_cases_map_skips_unlocated_converts_and_caps() -> None:
    cases = pd.DataFrame(
        {
            "case_id": ["a", "b", "c", "d"],
            "lon": ["113.75", "", "113.76", "113.77"],
            "lat": ["23.02", "", "23.03", "23.04"],
            "coord_sys": ["cgcs2000", "", "gcj02", "wgs84"],
            "reported_at": ["2024-01-01", "2024-01-02", "2024-01-03", "2023-01-01"],
            "category": ["治安", "消防", "消防", "治安"],
        }
    )
    html = maps.render_html(maps.cases_map(cases, max_cases=2))
    rows = json.loads(re.search(r"var data = (\[\[.*?\]\]);", html).group(1))
    assert len(rows) == 2  # 'b' has no coordinates, 'd' is the oldest
    assert "1 件无坐标未显示" in html
    assert "1 件较早案件未显示" in html
    # the gcj02 case was converted back to WGS-84: it moved by the GCJ-02 offset (~600 m)
    _lat_c, lon_c = rows[1][0], rows[1][1]
    assert abs(lon_c - 113.76) > 0.003
    with pytest.raises(InputError, match="lon"):
        maps.cases_map(pd.DataFrame({"lat": [1.0]}))


def test_hotspot_and_emerging_colours_and_legend() -> None:
    g = wiggly_coverage(3)
    hot = g[["grid_code", "geometry"]].assign(gi_bin=[-3, -2, -1, 0, 1, 2, 3, 3, 0])
    em = g[["grid_code", "geometry"]].assign(pattern=["New Hot Spot"] * 4 + ["No Pattern Detected"] * 5)
    html = maps.render_html(maps.hotspot_map(hot, em))
    assert '"fillColor": "#d62f27"' in html
    assert '"fillColor": "#4575b5"' in html
    assert '"fillColor": "#ffffbf"' not in html  # insignificant cells hidden by default
    assert "热点 - 99% 置信度" in html
    assert "冷点 - 90% 置信度" in html
    assert "新增热点" in html
    with pytest.raises(InputError, match="gi_bin"):
        maps.hotspot_map(g, None)


def test_heatmap_overlay_is_an_embedded_png(tmp_path) -> None:
    import rasterio
    from affine import Affine

    tif = tmp_path / "heat.tif"
    data = np.zeros((40, 50), dtype="float32")
    data[10:20, 10:30] = 50
    with rasterio.open(
        tif,
        "w",
        driver="GTiff",
        width=50,
        height=40,
        count=1,
        dtype="float32",
        crs="EPSG:4547",
        transform=Affine(50, 0, X0, 0, -50, Y0 + 2000),
        nodata=-1,
    ) as dst:
        dst.write(data, 1)
    html = maps.render_html(maps.heatmap_map(tif))
    assert "data:image/png;base64," in html
    assert "L.imageOverlay" in html
    bounds = json.loads(
        re.search(
            r"L\.imageOverlay\(\s*\"data:image/png;base64,[^\"]+\",\s*(\[\[.*?\]\])", html, flags=re.S
        ).group(1)
    )
    (s, w), (n, e) = bounds
    assert 113.99 < w < e < 114.03
    assert 23.0 < s < n < 23.1
    with pytest.raises(InputError, match="not found"):
        maps.heatmap_map(tmp_path / "missing.tif")


def test_qa_and_dept_maps() -> None:
    g = wiggly_coverage(2)
    qa = gpd.GeoDataFrame(
        {
            "layer": ["dept_police", "base_grids"],
            "feature_id": ["P1", ""],
            "issue": ["overlap", "gap"],
            "detail": ["P1/P2 30 m²", "12 m²"],
        },
        geometry=[box(X0, Y0, X0 + 10, Y0 + 10), None],
        crs=4547,
    )
    html = maps.render_html(maps.qa_map(qa, base_grids=g))
    assert "重叠" in html
    assert "其中 1 条无位置" in html
    cw = pd.DataFrame(
        {
            "department": ["police", "police"],
            "dept_grid_id": ["P1", "P1"],
            "grid_code": ["A", "B"],
            "area_share": [0.7, 0.3],
            "household_share": [0.7, 0.3],
        }
    )
    dept = g.assign(dept_grid_id=["P1", "P2", "P3", "P4"], dept_grid_name="派出所")
    html = maps.render_html(maps.dept_grid_map({"dept_police": dept}, crosswalk=cw, base_grids=g))
    texts = [f["properties"].get("_crosswalk") for fc in _page_data(html) for f in fc["features"]]
    assert "A (70%)、B (30%)" in texts


def test_dual_map_colours_changes() -> None:
    g = wiggly_coverage(2)
    ch = pd.DataFrame({"grid_code": g["grid_code"], "change": ["added", "unchanged", "reshaped", "recoded"]})
    d = maps.dual_grid_map(g, g, changes=ch)
    html = maps.render_html(d)
    assert ".sync(" in html
    assert html.count("L.map(") == 2
    assert "新增" in html
    assert "边界调整" in html
    assert '"fillColor": "#1a9850"' in html


def test_emerging_pattern_labels_match_the_analysis() -> None:
    from gridplan.hotspots import emerging

    assert set(maps.EMERGING_PATTERNS) == set(emerging.PATTERNS)
    assert {k: v[1] for k, v in maps.EMERGING_PATTERNS.items()} == emerging.PATTERNS_ZH


def _text(html: str) -> str:
    """The page with JSON ``\\uXXXX`` escapes decoded (folium writes layer names and data so)."""
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda mt: chr(int(mt.group(1), 16)), html)


def test_coverage_map_posts_circles_and_uncovered() -> None:
    from shapely import Point

    from gridplan.maps.event_maps import coverage_map

    posts = gpd.GeoDataFrame({"site_id": ["S1", "S2"], "post_rank": [1, 2], "covered_points": [5, 3],
                              "covered_weight": [5.0, 3.0]},
                             geometry=[Point(X0, Y0), Point(X0 + 800, Y0)], crs=4547)
    unc = gpd.GeoDataFrame({"weight": [1.0], "reason": ["no post within 500 m"]},
                           geometry=[Point(X0 + 3000, Y0)], crs=4547)
    html = _text(maps.render_html(coverage_map(posts, unc, radius_m=500, base_grids=wiggly_coverage(2))))
    assert check_offline(html) == []
    assert html.count("L.circle(") == 2
    assert '"radius": 500.0' in html
    assert "500 m 内无岗位" in html
    assert "no post" not in re.sub(r'"reason": "[^"]*"', "", html)  # shown in Chinese only
    assert "2 个岗位，覆盖半径 500 m；1 处需求未覆盖" in html


def test_legends_follow_their_layer_and_list_drawn_classes() -> None:
    g = wiggly_coverage(3)
    hot = g[["grid_code", "geometry"]].assign(gi_bin=[3, 3, 2, 0, 0, 0, 0, 0, 0])
    em = g[["grid_code", "geometry"]].assign(pattern=["New Hot Spot"] * 9)
    html = maps.render_html(maps.hotspot_map(hot, em, measure="rate"))
    assert "热点分析 (Gi*)：每千人事件数" in html
    assert "不显著" not in html  # bin 0 is not drawn, so no swatch for it
    assert "热点 - 90% 置信度" not in html  # nor for a class that does not occur
    assert html.count("m.hasLayer(lay)") == 2  # both legends follow their layer's visibility
    assert '"zoomSnap": 0.1' in html


def test_dept_and_qa_layer_names_are_chinese() -> None:
    g = wiggly_coverage(2)
    dept = g.assign(dept_grid_id=["P1", "P2", "P3", "P4"], dept_grid_name="派出所")
    html = _text(maps.render_html(maps.dept_grid_map({"dept_police": dept, "dept_civil": dept})))
    assert "公安网格" in html
    assert "民政网格" in html
    assert "部门网格: police" not in html
    qa = gpd.GeoDataFrame({"layer": ["dept_civil"], "feature_id": ["M1"], "issue": ["gap"], "detail": ["x"]},
                          geometry=[box(X0, Y0, X0 + 10, Y0 + 10)], crs=4547)
    html = maps.render_html(maps.qa_map(qa, base_grids=g))
    assert "质量问题：民政网格" in _text(html)
    assert "dept_civil" not in "".join(f["properties"].get("layer", "") for fc in _page_data(html)
                                       for f in fc["features"])


def test_cases_map_of_50000_cases_stays_under_8_mb() -> None:
    """Compact rows (popups built in the browser): the default 50,000 cases fit in 8 MB with assets."""
    rng = np.random.default_rng(1)
    n = 50_000
    roads = np.array(["人民路", "解放路", "幸福路", "建设路", "文化路", "团结巷", "光明街", "才景大道"])
    towns = np.array(["东城街道", "莞城街道", "南城街道", "石碣镇", "长安镇", "虎门镇"])
    cases = pd.DataFrame({
        "case_id": [f"AJ2024{i:07d}" for i in range(n)],
        "category": rng.choice(["治安", "消防", "城市管理", "矛盾纠纷", "安全生产"], n),
        "reported_at": pd.Timestamp("2024-01-01")
        + pd.to_timedelta(rng.integers(0, 3 * 365 * 24 * 60, n), unit="min"),
        "address": [f"广东省东莞市{t}{r}{k}号{b}栋" for t, r, k, b in zip(
            rng.choice(towns, n), rng.choice(roads, n), rng.integers(1, 300, n), rng.integers(1, 20, n),
            strict=True)],
        "status": rng.choice(["M", "M", "M", "T"], n),
        "grid_code": [f"441900{rng.integers(0, 10**9):09d}" for _ in range(n)],
        "lon": rng.uniform(113.6, 114.1, n),
        "lat": rng.uniform(22.8, 23.1, n),
    })
    html = maps.render_html(maps.cases_map(cases))
    size = len(html.encode("utf-8"))
    assert size <= 8_000_000, f"{size / 1e6:.2f} MB for {n} cases"
    rows = json.loads(re.search(r"var data = (\[\[.*?\]\]);", html).group(1))
    assert len(rows) == n
    head = json.loads(_text(re.search(r"var head = (\[\[.*?\]\]), cats", html).group(1)))
    status = next(h for h in head if h[0] == "定位状态")
    assert sorted(status[1]) == sorted(["已匹配", "多个候选"])
    assert all(isinstance(r[6], int) for r in rows[:100])  # status once as a table, an index per case
    # the cluster goes on the map before the markers go to it: MarkerCluster.addLayers on a group
    # that is not on a map yet is quadratic (hasLayer over a list), 1.5 s more at 50,000 cases
    script = html[html.index("var data = "):]
    assert script.index("cluster.addTo(") < script.index("cluster.addLayers(markers)")
    assert '"disableClusteringAtZoom": 17' in html
    assert '"minZoom": 7' in html
