"""Event map builders: the KDE heat raster, Gi* hot spots and emerging patterns, located cases.

GeoDataFrames (or a GeoTIFF) in, ``folium.Map`` out; no analysis inside — the rasters and
statistics come from :mod:`gridplan.hotspots`.  Shared rules in :mod:`gridplan.maps._layers`;
maps of the grids themselves are in :mod:`gridplan.maps.grid_maps`.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from folium.plugins import FastMarkerCluster
from folium.template import Template

from gridplan.crs import to_wgs84, wgs84_to_gcj02
from gridplan.errors import InputError
from gridplan.layers.labels import field_label
from gridplan.maps._elements import Registry, legend_html
from gridplan.maps._layers import (
    LayerStyle,
    MapOptions,
    _bounds,
    _display,
    _escaped_columns,
    _feature_collection,
    _finish,
    _grid_layer,
    _opts,
    _outline,
    _popup,
    _prepare_background,
    _start,
)
from gridplan.maps._palettes import CASE_COLORS, EMERGING_PATTERNS, GI_BINS
from gridplan.maps.escape import _JS_TABLE, escape_html, escape_values, js_json

logger = logging.getLogger(__name__)

__all__ = ["cases_map", "coverage_map", "heatmap_map", "hotspot_map"]


def heatmap_map(
    heat: str | Path,
    *,
    base_grids: gpd.GeoDataFrame | None = None,
    background: Mapping[str, gpd.GeoDataFrame] | None = None,
    cmap: str = "YlOrRd",
    opacity: float = 0.75,
    title: str = "事件热力图",
    subtitle: str = "",
    options: MapOptions | None = None,
) -> folium.Map:
    """Map the KDE raster as a coloured PNG image overlay (data URI) with a legend (events per km²).

    Parameters
    ----------
    heat
        Single-band GeoTIFF in a projected CRS (``gridplan heatmap`` output), nodata set.
    cmap
        Matplotlib colormap name.
    opacity
        Opacity of the non-zero pixels, 0–1.
    base_grids
        Optional base grids drawn as outlines.
    background
        Optional ``{"city", "towns", "communities", "roads"}`` layers drawn underneath.
    title, subtitle
        Shown in the title box (escaped).
    options
        Tiles, GCJ-02 shift, simplification, and the longest side of the embedded image
        (``raster_max_pixels``; larger rasters are resampled, bilinear) (:class:`MapOptions`).

    """
    from gridplan.maps._raster import heat_png

    o = _opts(options)
    png, bounds, vmax = heat_png(
        heat, cmap=cmap, opacity=opacity, max_pixels=o.raster_max_pixels, gcj02=o.gcj02
    )
    bg = _prepare_background(background, o)
    grids = _display(base_grids, o) if base_grids is not None else None
    west, south, east, north = bounds
    m, reg = _start((west, south, east, north), o, bg, title)
    uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    overlay = folium.raster_layers.ImageOverlay(
        image=uri,
        bounds=[[south, west], [north, east]],
        name=escape_html("热力图"),
        opacity=1.0,
        interactive=False,
        zindex=400,
    )
    overlay.add_to(m)
    reg.register("heat", overlay)
    _outline(m, reg, grids)
    legend = _gradient_legend("事件密度 (件/km²)", cmap, vmax)
    return _finish(m, reg, title=title, subtitle=subtitle, legends=[legend])


def _gradient_legend(caption: str, cmap: str, vmax: float) -> str:
    import matplotlib

    cm = matplotlib.colormaps[cmap]
    steps = [0.05, 0.25, 0.5, 0.75, 1.0]
    rows = []
    for s in steps:
        r, g, b, _a = cm(s)
        rows.append(
            (
                f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}",
                f"{'≥ ' if s == 1.0 else ''}{vmax * s:.1f}",
            )
        )
    return legend_html(caption, rows)


_HOT_FIELDS = {
    "bin_label": "类别",
    "name": "名称",
    "grid_code": "网格编码",
    "h3": "H3 单元",
    "count": "事件数",
    "rate": "每千人事件数",
    "rate_hh": "每百户事件数",
    "density": "事件密度",
    "gi_z": "Gi* z 值",
    "gi_p": "显著性 p 值",
}
_EMERGING_FIELDS = {
    "pattern_label": "时空模式",
    "name": "名称",
    "grid_code": "网格编码",
    "h3": "H3 单元",
    "trend_z": "趋势 z 值",
    "trend_p": "趋势 p 值",
}


def _hot_cells(
    hotspots: gpd.GeoDataFrame | None, o: MapOptions, show_insignificant: bool
) -> gpd.GeoDataFrame | None:
    """Display copy of the Gi* cells to draw (bin −3..3 with its label), ``None`` if there are none."""
    if hotspots is None or not len(hotspots):
        return None
    if "gi_bin" not in hotspots.columns:
        raise InputError("hotspots layer has no gi_bin column", layer="hotspots", field="gi_bin")
    h = hotspots.copy()
    h["gi_bin"] = pd.to_numeric(h["gi_bin"], errors="coerce").fillna(0).astype(int).clip(-3, 3)
    if not show_insignificant:
        h = h[h["gi_bin"] != 0]
    hs = _display(h, o)
    hs["bin_label"] = [GI_BINS[b][1] for b in hs["gi_bin"]]
    hs["_bin"] = hs["gi_bin"].astype(str)
    return hs


def _emerging_cells(
    emerging: gpd.GeoDataFrame | None, o: MapOptions, show_insignificant: bool
) -> gpd.GeoDataFrame | None:
    """Display copy of the emerging-hot-spot locations to draw (pattern + Chinese label)."""
    if emerging is None or not len(emerging):
        return None
    if "pattern" not in emerging.columns:
        raise InputError("emerging layer has no pattern column", layer="emerging", field="pattern")
    e = emerging.copy()
    e["pattern"] = e["pattern"].astype("string").fillna("No Pattern Detected")
    if not show_insignificant:
        e = e[e["pattern"] != "No Pattern Detected"]
    em = _display(e, o)
    em["pattern_label"] = [EMERGING_PATTERNS.get(p, (None, p))[1] for p in em["pattern"]]
    return em


def hotspot_map(
    hotspots: gpd.GeoDataFrame | None,
    emerging: gpd.GeoDataFrame | None = None,
    *,
    background: Mapping[str, gpd.GeoDataFrame] | None = None,
    show_insignificant: bool = False,
    title: str = "热点分析 (Gi*)",
    subtitle: str = "",
    measure: str | None = None,
    options: MapOptions | None = None,
) -> folium.Map:
    """Gi* hot/cold spots (ArcGIS colours, 99/95/90 % legend) and emerging-hot-spot patterns.

    Each legend shows only while its layer is on the map (the emerging patterns start hidden when
    there are Gi* cells) and lists only the classes drawn.

    Parameters
    ----------
    hotspots
        Layer ``hotspots`` of HOT.gpkg (``gi_bin`` −3..3; ``count``, ``gi_z``, ``gi_p`` shown).
    emerging
        Layer ``emerging`` (``pattern``: ArcGIS labels such as ``"New Hot Spot"``).
    show_insignificant
        Also draw bin-0 cells / "No Pattern Detected" locations (larger file).
    background
        Optional ``{"city", "towns", "communities", "roads"}`` layers drawn underneath.
    title, subtitle
        Shown in the title box (escaped).
    measure
        The quantity Gi* was computed on (a column such as ``count``, ``rate``, ``density``): the
        legend then says what it measures (``热点分析 (Gi*)：每千人事件数``), so a leader reading it
        beside the heat map (events per km²) knows why the two may peak in different places.
    options
        Tiles, GCJ-02 shift, simplification (:class:`MapOptions`).

    """
    o = _opts(options)
    bg = _prepare_background(background, o)
    legends: list[str | tuple[str, Any]] = []
    caption = "热点分析 (Gi*)" + (f"：{field_label(measure)}" if measure else "")
    hs = _hot_cells(hotspots, o, show_insignificant)
    em = _emerging_cells(emerging, o, show_insignificant)
    m, reg = _start(_bounds(hs, em, bg.get("city")), o, bg, title)
    if hs is not None:
        colors = {str(k): v for k, v in GI_BINS.items()}
        style = LayerStyle(
            key="hotspots",
            category_colors=colors,
            category_col="_bin",
            fields=_HOT_FIELDS,
            search=False,
            tooltip_field="bin_label",
            stroke="#666666",
        )
        layer = _grid_layer(m, reg, hs, name="热点 / 冷点", style=style)
        present = set(hs["gi_bin"].tolist())  # only the classes on the map (bin 0 is hidden by default)
        rows = [GI_BINS[b] for b in (3, 2, 1, 0, -1, -2, -3) if b in present]
        legends.append((legend_html(caption, rows), layer[1] if layer else None))
    if em is not None:
        style = LayerStyle(
            key="emerging",
            category_colors=EMERGING_PATTERNS,
            category_col="pattern",
            fields=_EMERGING_FIELDS,
            search=False,
            tooltip_field="pattern_label",
            stroke="#444444",
            show=hs is None,
        )
        legend = _grid_layer(m, reg, em, name="时空热点模式", style=style)
        if legend:
            legends.append(legend)  # shown with its layer only
    logger.info(
        "hotspot map: %d hot/cold features, %d emerging",
        0 if hs is None else len(hs),
        0 if em is None else len(em),
    )
    return _finish(m, reg, title=title, subtitle=subtitle, legends=legends)


_CASE_FIELDS = {
    "case_id": "编号",
    "category": "类别",
    "reported_at": "上报时间",
    "address": "地址",
    "status": "定位状态",
    "grid_code": "网格编码",
}


def _case_points(
    cases: pd.DataFrame, max_cases: int, o: MapOptions
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, int, int]:
    """Cases with coordinates (WGS-84, or GCJ-02 for a GCJ-02 basemap), the newest *max_cases*.

    Returns the rows, their lon and lat, and the counts skipped (no coordinates) and dropped (older).
    """
    for col in ("lon", "lat"):
        if col not in cases.columns:
            raise InputError(f"cases table has no {col} column (geocode it first)", field=col)
    lon = pd.to_numeric(cases["lon"], errors="coerce").to_numpy(dtype=float, copy=True)
    lat = pd.to_numeric(cases["lat"], errors="coerce").to_numpy(dtype=float, copy=True)
    if "coord_sys" in cases.columns:
        sys_ = cases["coord_sys"].astype("string").fillna("").replace("", "cgcs2000").to_numpy(dtype=object)
        fin = np.isfinite(lon) & np.isfinite(lat)
        if fin.any():
            lon[fin], lat[fin] = to_wgs84(lon[fin], lat[fin], sys_[fin])
    ok = np.isfinite(lon) & np.isfinite(lat)
    df = cases.loc[ok]
    lon, lat = lon[ok], lat[ok]
    n_skipped = int((~ok).sum())
    n_dropped = 0
    if len(df) > max_cases:
        order = np.arange(len(df))
        if "reported_at" in df.columns:
            order = np.argsort(pd.to_datetime(df["reported_at"], errors="coerce").to_numpy(), kind="stable")
        keep = np.sort(order[-max_cases:])
        n_dropped = len(df) - max_cases
        df, lon, lat = df.iloc[keep], lon[keep], lat[keep]
    if o.gcj02 and len(lon):
        lon, lat = wgs84_to_gcj02(lon, lat)
    lon, lat = np.round(np.asarray(lon, dtype=float), 7), np.round(np.asarray(lat, dtype=float), 7)
    return df, lon, lat, n_skipped, n_dropped


class _CaseCluster(FastMarkerCluster):
    """Clustered case markers built in the browser from compact rows (not pre-rendered popups).

    The page carries one short row per case — ``[lat, lon, category index, value, …]``, values
    already formatted and HTML-escaped in Python, repeated values as lookup indexes and a prefix
    common to a whole column (``广东省东莞市`` of every address) once — plus the field names and the
    category names and colours once; the popup table is assembled in JavaScript when a popup opens.
    This keeps 50,000 cases at ≈ 140 bytes each instead of ≈ 875 with popup HTML per case, and the
    markers go to the cluster in one ``addLayers`` call once the cluster is on the map (chunked
    loading keeps the page responsive; added before the map, MarkerCluster's bookkeeping is
    quadratic).  Clustering is computed from the map's ``minZoom`` (7) to zoom 16 only.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = (function(){
                var head = {{ this.js_head }}, cats = {{ this.js_cats }}, colors = {{ this.js_colors }};
                var catHead = {{ this.js_cat_head }};
                var data = {{ this.js_data }};
                var cluster = L.markerClusterGroup({{ this.options|tojavascript }});
                function cell(row, j) {
                    var h = head[j], v = row[3 + j];
                    return h[1] ? h[1][v] : (v === '' ? '' : (h[2] || '') + v);
                }
                function popup(row) {  // built when opened, not for every case at load
                    var html = '<table>';
                    if (catHead) { html += '<tr><th>' + catHead + '</th><td>' + cats[row[2]] + '</td></tr>'; }
                    for (var j = 0; j < head.length; j++) {
                        var v = cell(row, j);
                        if (v !== '') { html += '<tr><th>' + head[j][0] + '</th><td>' + v + '</td></tr>'; }
                    }
                    return html + '</table>';
                }
                var markers = new Array(data.length);
                for (var i = 0; i < data.length; i++) {
                    var mk = L.circleMarker([data[i][0], data[i][1]], {
                        radius: 5, color: '#ffffff', weight: 1, fillColor: colors[data[i][2]],
                        fillOpacity: 0.9});
                    mk.bindPopup(popup.bind(null, data[i]), {maxWidth: 360});
                    markers[i] = mk;
                }
                // on the map first: MarkerCluster.addLayers on a group not yet on a map checks every
                // marker against a plain list (hasLayer), quadratic: 1.5 s of 2.8 s at 50,000 cases
                cluster.addTo({{ this._parent.get_name() }});
                cluster.addLayers(markers);
                return cluster;
            })();
        {% endmacro %}"""
    )

    def __init__(self, table: _CaseTable, *, name: str) -> None:
        # clustering stops at zoom 17 (street level: every case its own marker), and the map's
        # minZoom bounds the levels below: fewer cluster levels to build at load
        super().__init__([], name=name, options={"chunkedLoading": True, "disableClusteringAtZoom": 17})
        self._name = "CaseCluster"
        # compact JSON (no blanks), escaped for a <script> exactly as js_json does
        self.js_data = json.dumps(table.rows, ensure_ascii=False, separators=(",", ":")).translate(_JS_TABLE)
        self.js_head = js_json(table.head)
        self.js_cats = js_json(table.cats)
        self.js_colors = js_json(table.colors)
        self.js_cat_head = js_json(table.cat_head)


@dataclass(frozen=True)
class _CaseTable:
    """The compact case data of :class:`_CaseCluster` (every text already HTML-escaped).

    ``rows`` are ``[lat, lon, category index, value or lookup index, …]``; ``head`` gives per value
    column ``[label, lookup table or null, common prefix]``: the lookup table for a column whose
    values repeat (status, town, grid), else the prefix every value of the column starts with.
    """

    rows: list[list[Any]]
    head: list[list[Any]]
    cats: list[str]
    colors: list[str]
    cat_head: str
    color_of: dict[str, str]


def _coded_column(values: list[str], n: int) -> tuple[list[Any], list[str] | None, str]:
    """Code a column: lookup indexes when its values repeat, else values minus their common prefix.

    Values repeat when there are ≥ 4 rows a value on average (status, town, grid code); the prefix
    all values share (``广东省东莞市``) is returned third.

    >>> _coded_column(["东莞市a1", "东莞市b2", "东莞市c3"], 3)
    (['a1', 'b2', 'c3'], None, '东莞市')
    """
    distinct = list(dict.fromkeys(values))
    if n >= 64 and len(distinct) <= max(64, n // 4):
        index = {v: i for i, v in enumerate(distinct)}
        return [index[v] for v in values], distinct, ""
    filled = [v for v in values if v]
    prefix = os.path.commonprefix(filled) if len(filled) > 1 else ""  # noqa: RUF071 (text, not paths)
    prefix = prefix[: _safe_cut(prefix)]
    if not prefix:
        return values, None, ""
    k = len(prefix)
    return [v[k:] if v else v for v in values], None, prefix


def _safe_cut(prefix: str) -> int:
    """Length of *prefix* without a trailing, possibly cut, HTML entity (``&amp;`` split as ``&am``)."""
    amp = prefix.rfind("&")
    return amp if amp >= 0 and ";" not in prefix[amp:] else len(prefix)


def _case_rows(df: pd.DataFrame, lon: np.ndarray, lat: np.ndarray) -> _CaseTable:
    """Return the compact marker rows of the cases map (see :class:`_CaseTable`)."""
    cats = (
        df["category"].astype("string").fillna("") if "category" in df.columns else pd.Series([""] * len(df))
    )
    color_of = {c: CASE_COLORS[i % len(CASE_COLORS)] for i, c in enumerate(pd.unique(cats))}
    index_of = {c: i for i, c in enumerate(color_of)}
    props = _escaped_columns(df, {c: "" for c in _CASE_FIELDS if c != "category"})
    present = [c for c in _CASE_FIELDS if c in props]
    head: list[list[Any]] = []
    cols = []
    for c in present:
        values, lookup, prefix = _coded_column(["" if v == "—" else v for v in props[c]], len(df))
        head.append([escape_html(_CASE_FIELDS[c]), lookup, prefix])
        cols.append(values)
    rows = [
        [round(float(la), 5), round(float(lo), 5), k, *vals]
        for la, lo, k, *vals in zip(lat, lon, [index_of[c] for c in cats], *cols, strict=True)
    ]
    uniq = list(color_of)
    return _CaseTable(
        rows=rows,
        head=head,
        cats=escape_values(c or "未分类" for c in uniq),
        colors=[color_of[c] for c in uniq],
        cat_head=escape_html(_CASE_FIELDS["category"]) if "category" in df.columns else "",
        color_of=color_of,
    )


def cases_map(
    cases: pd.DataFrame,
    *,
    base_grids: gpd.GeoDataFrame | None = None,
    background: Mapping[str, gpd.GeoDataFrame] | None = None,
    max_cases: int = 50_000,
    title: str = "案件分布",
    subtitle: str = "",
    options: MapOptions | None = None,
) -> folium.Map:
    """Located cases as clustered circle markers (MarkerCluster) coloured by category.

    Parameters
    ----------
    cases
        Geocoder output or any table with ``lon``, ``lat`` (CGCS2000/WGS-84 degrees) and optionally
        ``case_id``, ``category``, ``reported_at``, ``address``, ``status``, ``grid_code``.  Rows
        without coordinates are skipped (counted in the subtitle).
    max_cases
        Most recent (by ``reported_at``) cases drawn; the rest are counted in the subtitle.
    base_grids
        Optional base grids drawn as outlines.
    background
        Optional ``{"city", "towns", "communities", "roads"}`` layers drawn underneath.
    title, subtitle
        Shown in the title box (escaped).
    options
        Tiles, GCJ-02 shift, simplification (:class:`MapOptions`).

    """
    o = _opts(options)
    df, lon, lat, n_skipped, n_dropped = _case_points(cases, max_cases, o)
    table = _case_rows(df, lon, lat)
    color_of = table.color_of
    uniq = list(color_of)
    grids = _display(base_grids, o) if base_grids is not None else None
    bg = _prepare_background(background, o)
    if len(lon):
        pts_bounds = (float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max()))
    else:
        pts_bounds = _bounds(grids, bg.get("city"))
    m, reg = _start(pts_bounds, o, bg, title)
    _outline(m, reg, grids)
    cluster = _CaseCluster(table, name=escape_html("案件"))
    cluster.add_to(m)
    reg.register("cases", cluster)
    legend = legend_html("案件类别", [(color_of[c], c or "未分类") for c in uniq[:12]])
    sub = subtitle or f"共 {len(df)} 件" + (f"；{n_skipped} 件无坐标未显示" if n_skipped else "") + (
        f"；另有 {n_dropped} 件较早案件未显示" if n_dropped else ""
    )
    logger.info(
        "cases map: %d cases (%d without coordinates, %d older dropped)", len(df), n_skipped, n_dropped
    )
    return _finish(m, reg, title=title, subtitle=sub, legends=[legend])




_POST_FIELDS = {"post_rank": "布点顺序", "site_id": "候选点编号", "covered_points": "覆盖需求点数",
                "covered_weight": "覆盖需求量"}
_UNCOVERED_FIELDS = {"reason_zh": "原因", "weight": "需求权重"}
_POST_COLOR, _UNCOVERED_COLOR = "#08519c", "#d62f27"


def _uncovered_reason(reason: Any) -> str:
    """``no post within 1000 m`` (coverage.coverage_layers) → ``1000 m 内无岗位``."""
    text = str(reason)
    for en, zh in (("no post within ", "内无岗位"), ("no candidate site within ", "内无候选点")):
        if text.startswith(en):
            return f"{text[len(en):]} {zh}"
    return text


def _point_layer(m: folium.Map, reg: Registry, gdf: gpd.GeoDataFrame, *, key: str, name: str,
                 color: str, radius: float, fields: Mapping[str, str]) -> Any:
    props = _escaped_columns(gdf, fields)
    layer = folium.GeoJson(
        _feature_collection(gdf, props),
        name=escape_html(name),
        marker=folium.CircleMarker(radius=radius, weight=1, color="#ffffff", fill=True, fill_opacity=0.9),
        style_function=lambda _f: {"fillColor": color, "color": "#ffffff", "weight": 1},
    )
    if props:
        _popup(props, fields).add_to(layer)
    layer.add_to(m)
    reg.register(key, layer)
    return layer


def coverage_map(
    posts: gpd.GeoDataFrame,
    uncovered: gpd.GeoDataFrame | None = None,
    *,
    radius_m: float,
    base_grids: gpd.GeoDataFrame | None = None,
    background: Mapping[str, gpd.GeoDataFrame] | None = None,
    title: str = "固定岗位覆盖",
    subtitle: str = "",
    options: MapOptions | None = None,
) -> folium.Map:
    """Map fixed posts with their coverage circles and the demand points left uncovered.

    Parameters
    ----------
    posts, uncovered
        Layers ``posts`` and ``uncovered`` of COVER.gpkg (``gridplan coverage``; points, projected).
    radius_m
        Coverage radius in metres (the ``radius_m`` of its ``summary`` table).
    base_grids
        Optional base grids drawn as outlines.
    background
        Optional ``{"city", "towns", "communities", "roads"}`` layers drawn underneath.
    title, subtitle
        Shown in the title box (escaped); default subtitle counts posts and uncovered points.
    options
        Tiles, GCJ-02 shift, simplification (:class:`MapOptions`).

    """
    o = _opts(options)
    bg = _prepare_background(background, o)
    grids = _display(base_grids, o) if base_grids is not None else None
    shown = _display(posts, o)
    unc = _display(uncovered, o) if uncovered is not None and len(uncovered) else None
    m, reg = _start(_bounds(shown, unc, grids, bg.get("city")), o, bg, title)
    _outline(m, reg, grids)
    circles = folium.FeatureGroup(name=escape_html(f"覆盖范围（半径 {radius_m:g} m）"))
    for p in shown.geometry:
        folium.Circle([p.y, p.x], radius=float(radius_m), color=_POST_COLOR, weight=1, fill=True,
                      fill_opacity=0.08, interactive=False).add_to(circles)
    circles.add_to(m)
    reg.register("coverage", circles)
    rows = [(_POST_COLOR, f"岗位（{len(shown)} 个）")]
    _point_layer(m, reg, shown, key="posts", name="岗位", color=_POST_COLOR, radius=7, fields=_POST_FIELDS)
    if unc is not None:
        unc = unc.assign(reason_zh=[_uncovered_reason(r) for r in unc.get("reason", [""] * len(unc))])
        _point_layer(m, reg, unc, key="uncovered", name="未覆盖需求点", color=_UNCOVERED_COLOR, radius=3,
                     fields=_UNCOVERED_FIELDS)
        rows.append((_UNCOVERED_COLOR, f"未覆盖需求点（{len(unc)} 处）"))
    sub = subtitle or f"{len(shown)} 个岗位，覆盖半径 {radius_m:g} m；" + (
        f"{0 if unc is None else len(unc)} 处需求未覆盖")
    logger.info("coverage map: %d posts, %d uncovered", len(shown), 0 if unc is None else len(unc))
    return _finish(m, reg, title=title, subtitle=sub, legends=[legend_html("固定岗位覆盖", rows)])
