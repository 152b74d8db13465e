"""Published maps in real headless Chromium (Playwright driving Debian's /usr/bin/chromium).

Every map of the standard set is opened from file://: no request may leave the page's own file,
no console error, the expected Leaflet layers are present, the screenshot shows the grid colour,
XSS payloads in the data appear as text and no dialog ever fires.  A GCJ-02 map puts a case at
its GCJ-02 position.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.browser

PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "${alert(1)}",
    "\\`${alert(2)}`\\",
    "\"'><svg onload=alert(3)>",
    "</script><script>alert(4)</script>",
]
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
GRID_STROKE = (0x1F, 0x4E, 0x79)


@pytest.fixture(scope="module")
def published(small_city: Path, small_plan: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every kind of map published from the small sample, with XSS payloads planted in the data."""
    import rasterio
    from affine import Affine

    from gridplan import maps
    from gridplan.layers import read_layers
    from gridplan.plans import read_plan

    out = tmp_path_factory.mktemp("maps_browser")
    plan = read_plan(small_plan)
    layers = read_layers(small_city / "layers.gpkg")
    bg = {k: layers[k] for k in ("city", "towns", "communities", "roads")}
    grids = plan.base_grids.copy()
    grids.loc[grids.index[: len(PAYLOADS)], "community_name"] = PAYLOADS
    paths: dict[str, Path] = {}
    paths["base"] = maps.publish_map(
        maps.base_grid_map(grids, background=bg), out, title="基础网格", slug="base"
    )
    depts = {k: v for k, v in layers.items() if k.startswith("dept_")}
    paths["dept"] = maps.publish_map(
        maps.dept_grid_map(depts, crosswalk=plan.crosswalk, base_grids=grids, background=bg),
        out,
        title="部门",
        slug="dept",
    )
    paths["qa"] = maps.publish_map(
        maps.qa_map(plan.qa_issues, base_grids=grids, background=bg), out, title="QA", slug="qa"
    )
    # a small KDE-like raster over the city
    x0, y0, x1, y1 = grids.total_bounds
    nx, ny = 60, 80
    yy, xx = np.mgrid[0:ny, 0:nx]
    heat = (100 * np.exp(-((xx - 30) ** 2 + (yy - 40) ** 2) / 200)).astype("float32")
    tif = out / "heat.tif"
    with rasterio.open(
        tif,
        "w",
        driver="GTiff",
        width=nx,
        height=ny,
        count=1,
        dtype="float32",
        crs="EPSG:4547",
        transform=Affine((x1 - x0) / nx, 0, x0, 0, -(y1 - y0) / ny, y1),
        nodata=-1,
    ) as dst:
        dst.write(heat, 1)
    paths["heat"] = maps.publish_map(
        maps.heatmap_map(tif, base_grids=grids, background=bg), out, title="热力", slug="heat"
    )
    hot = grids[["grid_code", "geometry"]].copy()
    hot["gi_bin"] = (np.arange(len(hot)) % 7) - 3
    hot["count"] = np.arange(len(hot))
    emerging = grids[["grid_code", "geometry"]].copy()
    emerging["pattern"] = ["New Hot Spot", "Persistent Cold Spot", "No Pattern Detected", PAYLOADS[1]] * (
        len(grids) // 4
    ) + ["Sporadic Hot Spot"] * (len(grids) % 4)
    paths["hot"] = maps.publish_map(
        maps.hotspot_map(hot, emerging, background=bg), out, title="热点", slug="hot"
    )
    cases = pd.read_csv(small_city / "truth_cases.csv", dtype={"case_id": str}, nrows=400)
    cases = cases[["case_id", "lon", "lat"]].assign(category="治安", address="某地址", status="M")
    cases.loc[cases.index[: len(PAYLOADS)], "address"] = PAYLOADS
    cases.loc[cases.index[: len(PAYLOADS)], "category"] = PAYLOADS
    paths["cases"] = maps.publish_map(
        maps.cases_map(cases, base_grids=grids, background=bg), out, title="案件", slug="cases"
    )
    from shapely import Point

    from gridplan.maps.event_maps import coverage_map

    cx, cy = grids.geometry.union_all().centroid.coords[0]
    posts = gpd.GeoDataFrame({"site_id": ["S1", "S2"], "post_rank": [1, 2], "covered_points": [9, 4],
                              "covered_weight": [9.0, 4.0]},
                             geometry=[Point(cx, cy), Point(cx + 900, cy)], crs=4547)
    uncovered = gpd.GeoDataFrame({"weight": [1.0, 2.0], "reason": ["no post within 800 m"] * 2},
                                 geometry=[Point(cx - 3000, cy), Point(cx, cy + 3000)], crs=4547)
    paths["coverage"] = maps.publish_map(
        coverage_map(posts, uncovered, radius_m=800, base_grids=grids, background=bg), out,
        title="覆盖", slug="coverage",
    )
    paths["dual"] = maps.publish_map(
        maps.dual_grid_map(plan.base_grids, grids, background=bg, color_by="households"),
        out,
        title="对比",
        slug="dual",
    )
    return {"out": out, "paths": paths, "n_grids": len(grids), "n_cases": len(cases)}


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Any:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=ARGS)
        yield b
        b.close()


class Page:
    """A page with request, console-error and dialog recorders."""

    def __init__(self, browser: Any, path: Path) -> None:
        self.page = browser.new_page(viewport={"width": 1000, "height": 700})
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self._dialog)
        self.page.goto(path.resolve().as_uri(), wait_until="load")

    def _dialog(self, d: Any) -> None:
        self.dialogs.append(d.message)
        d.dismiss()

    def layers(self) -> list[dict[str, int]]:
        return self.page.evaluate(
            "() => window.gridplan.maps.map(m => Object.fromEntries(Object.entries(m.layers).map("
            "([k, l]) => [k, l.getLayers ? l.getLayers().length : (m.map.hasLayer(l) ? 1 : 0)])))"
        )

    def pixels_near(self, rgb: tuple[int, int, int], tol: int = 40) -> int:
        from PIL import Image

        img = np.asarray(Image.open(io.BytesIO(self.page.screenshot())).convert("RGB")).astype(int)
        d = np.abs(img - np.array(rgb)).sum(axis=2)
        return int((d <= tol).sum())


EXPECTED = {
    "base": ({"grids", "background:towns", "background:roads", "background:city"}, GRID_STROKE),
    "dept": ({"grids", "dept:police", "dept:fire"}, GRID_STROKE),
    "qa": ({"grids", "qa:dept_police", "qa:dept_fire"}, GRID_STROKE),
    "heat": ({"grids", "heat"}, GRID_STROKE),
    "hot": ({"hotspots", "emerging"}, tuple(round(0.55 * c + 0.45 * 221) for c in (0xD6, 0x2F, 0x27))),
    "cases": ({"grids", "cases"}, GRID_STROKE),
    "dual": ({"grids"}, GRID_STROKE),
    "coverage": ({"grids", "posts", "uncovered", "coverage"}, GRID_STROKE),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_map_offline_layers_and_pixels(browser: Any, published: dict[str, Any], name: str) -> None:
    path = published["paths"][name]
    p = Page(browser, path)
    try:
        own = path.resolve().as_uri()
        foreign = [u for u in p.requests if u != own and not u.startswith("data:")]
        assert foreign == [], f"{name}: requests left the page: {foreign[:5]}"
        assert p.errors == [], f"{name}: console errors {p.errors[:3]}"
        layers = p.layers()
        keys, color = EXPECTED[name]
        for lay in layers:
            assert keys <= set(lay), f"{name}: missing layers {keys - set(lay)}"
        if name in ("base", "dual"):
            assert all(lay["grids"] == published["n_grids"] for lay in layers)
        if name == "cases":
            assert layers[0]["cases"] == published["n_cases"]
        if name == "hot":
            assert layers[0]["hotspots"] > 0
            assert layers[0]["emerging"] > 0
        # the dual map splits the viewport in two half-width maps, so fewer outline pixels show
        min_pixels = 60 if name == "dual" else 200
        assert p.pixels_near(color) > min_pixels, f"{name}: screenshot shows no {color} pixels"
        assert p.dialogs == []
    finally:
        p.page.close()


def test_index_lists_every_map(browser: Any, published: dict[str, Any]) -> None:
    p = Page(browser, published["out"] / "index.html")
    try:
        hrefs = p.page.eval_on_selector_all("#maps a", "els => els.map(e => e.getAttribute('href'))")
        assert sorted(hrefs) == sorted(f"{k}.html" for k in published["paths"])
        assert [u for u in p.requests if not u.startswith("file://")] == []
    finally:
        p.page.close()


def test_xss_payloads_show_as_text(browser: Any, published: dict[str, Any]) -> None:
    # grid popups and tooltips: open the popup of every grid with a payload and read its text
    p = Page(browser, published["paths"]["base"])
    try:
        texts = p.page.evaluate(
            """() => {
                const m = window.gridplan.maps[0], g = m.layers.grids, out = [];
                g.eachLayer(l => {
                    l.fire('click', {latlng: l.getBounds().getCenter()}, true);
                    const els = document.querySelectorAll('.leaflet-popup-content');
                    if (els.length) out.push(els[els.length - 1].textContent);
                });
                return out;
            }"""
        )
        joined = "\n".join(texts)
        for payload in PAYLOADS:
            assert payload in joined, f"payload not shown as text: {payload}"
        assert (
            p.page.evaluate(
                "() => document.querySelectorAll('.leaflet-popup-content img, "
                ".leaflet-popup-content script, .leaflet-popup-content svg').length"
            )
            == 0
        )
        assert p.dialogs == []
    finally:
        p.page.close()
    # case popups (marker cluster) and the emerging-pattern layer
    p = Page(browser, published["paths"]["cases"])
    try:
        texts = p.page.evaluate(
            """() => {
                const m = window.gridplan.maps[0], out = [];
                // case popups are built when opened: their content is a function of the marker
                const text = mk => { const c = mk.getPopup().getContent();
                                     return String(typeof c === 'function' ? c(mk) : c); };
                m.layers.cases.getLayers().filter(mk => text(mk).includes('alert'))
                  .forEach(mk => {
                    mk.getPopup().setLatLng(mk.getLatLng()).openOn(m.map);
                    const els = document.querySelectorAll('.leaflet-popup-content');
                    out.push(els[els.length - 1].textContent);
                });
                return out;
            }"""
        )
        joined = "\n".join(texts)
        for payload in PAYLOADS:
            assert payload in joined
        p.page.wait_for_timeout(100)
        assert p.dialogs == []
    finally:
        p.page.close()
    p = Page(browser, published["paths"]["hot"])
    try:
        legend = p.page.evaluate(
            "() => Array.from(document.querySelectorAll('.gridplan-box')).map(e => e.textContent).join('\\n')"
        )
        assert PAYLOADS[1] in legend
        assert "热点 - 99% 置信度" in legend
        assert p.dialogs == []
        assert p.errors == []
    finally:
        p.page.close()


def test_gcj02_basemap_moves_overlays(browser: Any, tmp_path: Path) -> None:
    from shapely import box

    from gridplan import maps
    from gridplan.crs import lonlat_to_xy, wgs84_to_gcj02

    lon0, lat0 = 113.75, 23.02  # Dongguan
    cases = pd.DataFrame({"case_id": ["A"], "lon": [lon0], "lat": [lat0], "category": ["治安"]})
    x, y = lonlat_to_xy(lon0, lat0)
    grids = gpd.GeoDataFrame(
        {"grid_code": ["441900119001001"]}, geometry=[box(x - 300, y - 300, x + 300, y + 300)], crs=4547
    )
    tile = "http://tiles.invalid/{z}/{x}/{y}.png"
    opts = maps.MapOptions(tile_url=tile, tile_crs="gcj02")
    path = maps.publish_map(
        maps.cases_map(cases, base_grids=grids, options=opts),
        tmp_path,
        title="gcj",
        slug="gcj",
        tile_url=tile,
    )
    p = Page(browser, path)
    try:
        ll = p.page.evaluate(
            "() => { const l = window.gridplan.maps[0].layers.cases.getLayers()[0].getLatLng();"
            " return [l.lng, l.lat]; }"
        )
        glon, glat = wgs84_to_gcj02(np.array([lon0]), np.array([lat0]))
        dx = (ll[0] - glon[0]) * 111_320 * np.cos(np.radians(lat0))
        dy = (ll[1] - glat[0]) * 110_574
        assert np.hypot(dx, dy) < 1.0
        # the grid square moved by the same ~600 m offset: its centre is within 2 m of the shifted centre
        c = p.page.evaluate(
            "() => { const c = window.gridplan.maps[0].layers.grids.getBounds().getCenter();"
            " return [c.lng, c.lat]; }"
        )
        assert abs(c[0] - glon[0]) * 102_000 < 3
        assert abs(c[1] - glat[0]) * 110_574 < 3
        # the only requests outside the page are tiles of the configured server
        others = [u for u in p.requests if not u.startswith(("file://", "data:"))]
        assert all(u.startswith("http://tiles.invalid/") for u in others)
    finally:
        p.page.close()


def test_search_by_grid_code_flies_to_the_grid(browser: Any, published: dict[str, Any]) -> None:
    p = Page(browser, published["paths"]["base"])
    try:
        code, bounds = p.page.evaluate(
            """() => { const l = window.gridplan.maps[0].layers.grids.getLayers()[10];
                       const b = l.getBounds();
                       return [l.feature.properties.grid_code,
                               [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]]; }"""
        )
        zoom0 = p.page.evaluate("() => window.gridplan.maps[0].map.getZoom()")
        p.page.type(".leaflet-control-search input", code, delay=5)
        p.page.wait_for_timeout(600)
        p.page.press(".leaflet-control-search input", "Enter")
        p.page.wait_for_timeout(1500)  # flyTo animation
        lon, lat, zoom = p.page.evaluate(
            "() => { const m = window.gridplan.maps[0].map, c = m.getCenter();"
            " return [c.lng, c.lat, m.getZoom()]; }"
        )
        w, s, e, n = bounds
        assert w <= lon <= e
        assert s <= lat <= n
        assert zoom > zoom0
        assert p.errors == []
    finally:
        p.page.close()


# every word of Latin letters a leader may see: units, the method's name, the map library
ALLOWED_WORDS = {"Gi", "km", "m", "p", "z", "Leaflet", "CGCS", "WGS", "GCJ", "BD"}
# standalone Latin words (an id such as MZ000001 or C0042 touches digits and is not one)
_WORD = r"(?<![A-Za-z0-9_])[A-Za-z_]+(?![A-Za-z0-9_])"
# free text written by other rooms (QA details come from validate) is not map vocabulary
FREE_TEXT_HEADS = {"说明"}

_VISIBLE_TEXT = """(maxPerLayer) => {
    const out = [];
    const add = (where, t) => { if (t && t.trim()) out.push([where, t.trim()]); };
    const rows = (root, where) => root.querySelectorAll('tr').forEach(tr => {
        const th = tr.querySelector('th'), td = tr.querySelector('td');
        add(where + ' th', th ? th.textContent : '');
        if (td) out.push([where + ' td|' + (th ? th.textContent.trim() : ''), td.textContent.trim()]);
    });
    document.querySelectorAll('.gridplan-box, .leaflet-control-layers, .leaflet-control-search')
        .forEach(e => add('control', e.innerText));
    document.querySelectorAll('.leaflet-control-search input')
        .forEach(e => add('control', e.getAttribute('placeholder')));
    window.gridplan.maps.forEach(m => Object.entries(m.layers).forEach(([key, layer]) => {
        if (!layer.getLayers) return;
        layer.getLayers().slice(0, maxPerLayer).forEach(l => {
            // folium binds GeoJSON popups/tooltips on the layer group, markers carry their own
            const popup = (l.getPopup && l.getPopup()) || (layer.getPopup && layer.getPopup());
            if (!popup) return;
            let content = popup.getContent();
            if (typeof content === 'function') content = content(l);
            const div = document.createElement('div');
            if (typeof content === 'string') div.innerHTML = content; else div.appendChild(content);
            rows(div, key);
            const tip = (l.getTooltip && l.getTooltip()) || (layer.getTooltip && layer.getTooltip());
            if (tip) {
                let t = tip.getContent();
                if (typeof t === 'function') t = t(l);
                add(key + ' tooltip', typeof t === 'string' ? t : (t && t.textContent));
            }
        });
    }));
    return out;
}"""


@pytest.mark.parametrize("name", list(EXPECTED))
def test_no_english_key_or_bare_code_in_visible_text(
    browser: Any, published: dict[str, Any], name: str
) -> None:
    """Walk the DOM text a leader can see (controls, legends, popups, tooltips) of each standard map."""
    import re

    p = Page(browser, published["paths"][name])
    try:
        p.page.wait_for_timeout(300)
        texts = p.page.evaluate(_VISIBLE_TEXT, 60)
        assert texts, f"{name}: no visible text found"
        bad = []
        for where, text in texts:
            if where.split("|")[-1] in FREE_TEXT_HEADS:
                continue
            for payload in PAYLOADS:  # planted XSS strings are user data shown as text
                text = text.replace(payload, " ")
            words = set(re.findall(_WORD, text)) - ALLOWED_WORDS
            if words:
                bad.append((where, text[:80], sorted(words)[:5]))
        assert bad == [], f"{name}: English or bare codes visible: {bad[:6]}"
        assert p.errors == []
    finally:
        p.page.close()
