"""Shared pieces of the map builders: options, GeoJSON with escaped properties, styled layers.

Every property value that reaches a feature is a string from :func:`gridplan.maps.escape.escape_html`;
folium embeds the GeoJSON with ``tojson`` and its popup/tooltip templates insert those values into
``innerHTML``, so user text shows as text.  Labels and legend captions go through the same escaping.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import branca.colormap as bcm
import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium.plugins import Fullscreen, Search

from gridplan.errors import InputError
from gridplan.layers.labels import field_label, field_unit, format_value
from gridplan.maps._elements import HtmlControl, Registry, add_page_css, legend_html, title_html
from gridplan.maps._palettes import COLUMN_LABELS, GRID_FIELDS, OTHER_COLORS
from gridplan.maps._repr import OfflineMap
from gridplan.maps.escape import escape_html, escape_values, js_json
from gridplan.maps.simplify import display_geometry

_TILE_VARS = re.compile(r"\{[xyz]\}")


@dataclass(frozen=True)
class MapOptions:
    """Display options shared by every builder.

    Attributes
    ----------
    tile_url
        Leaflet tile URL template (``http(s)://…/{z}/{x}/{y}…``) of an intranet, 天地图 or GCJ-02
        basemap; ``None`` (default) draws no tiles and no request leaves the page.
    tile_crs
        ``"wgs84"`` (also for CGCS2000 basemaps such as 天地图) or ``"gcj02"`` (Amap, Tencent): with
        ``gcj02`` every overlay is shifted to GCJ-02 so it lines up with the basemap.
    tile_attribution
        Attribution text of the basemap (shown escaped).
    tolerance_m
        Display simplification tolerance in metres.
    decimals
        Decimal places of degrees kept (5 ≈ 1.1 m).
    raster_max_pixels
        Longest side of an embedded raster image (the heat map); larger rasters are resampled.

    """

    tile_url: str | None = None
    tile_crs: str = "wgs84"
    tile_attribution: str = "底图"
    tolerance_m: float = 3.0
    decimals: int = 5
    raster_max_pixels: int = 2048

    def __post_init__(self) -> None:
        if self.tile_crs not in ("wgs84", "gcj02"):
            raise InputError(f"tile_crs must be wgs84 or gcj02, got {self.tile_crs!r}", field="tile_crs")
        if self.tile_url is not None:
            url = self.tile_url
            if not url.startswith(("http://", "https://")) or len(_TILE_VARS.findall(url)) < 3:
                raise InputError(
                    "tile URL must be an http(s) template with {z}, {x} and {y}, e.g. "
                    "http://tiles.intranet/{z}/{x}/{y}.png",
                    field="tile_url",
                )
            if any(ch in url for ch in "\"'<>`\\ \n"):
                raise InputError("tile URL contains quotes, spaces or angle brackets", field="tile_url")

    @property
    def gcj02(self) -> bool:
        """True when overlays must be shifted to GCJ-02."""
        return self.tile_url is not None and self.tile_crs == "gcj02"


# --------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------


def _opts(options: MapOptions | None) -> MapOptions:
    return options if options is not None else MapOptions()


def _display(gdf: gpd.GeoDataFrame, o: MapOptions, *, tolerance_m: float | None = None) -> gpd.GeoDataFrame:
    return display_geometry(
        gdf,
        tolerance_m=o.tolerance_m if tolerance_m is None else tolerance_m,
        decimals=o.decimals,
        gcj02=o.gcj02,
    )


def _num(v: float) -> str:
    """Compact legend number: integers for |v| ≥ 100, else up to 2 significant decimals.

    Examples
    --------
    >>> _num(366.7), _num(0.125), _num(12.0)
    ('367', '0.12', '12')

    """
    v = float(v)
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.2f}".rstrip("0").rstrip(".")


def _feature_collection(gdf: gpd.GeoDataFrame, props: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """GeoJSON dict with ``id`` = row number and the given (already escaped) string properties."""
    geoms = shapely.to_geojson(np.asarray(gdf.geometry.values, dtype=object))

    keys = list(props)
    cols = [list(props[k]) for k in keys]
    feats = []
    for i, g in enumerate(geoms):
        feats.append(
            {
                "type": "Feature",
                "id": str(i),
                "properties": {k: cols[j][i] for j, k in enumerate(keys)},
                "geometry": json.loads(g),
            }
        )
    return {"type": "FeatureCollection", "features": feats}


def _escaped_columns(gdf: pd.DataFrame, fields: Mapping[str, str]) -> dict[str, list[str]]:
    """Escaped display strings of the present *fields* columns, as a person reads them.

    Every value goes through :func:`gridplan.layers.labels.format_value`: codes in Chinese
    (``M`` → 已匹配, ``ok`` → 在范围内, ``police`` → 公安), numbers with their unit
    (``320 户``, ``86.03 件/千人``), p-values as ``< 0.001``, times as ``2024-01-02 08:00``.
    """
    out: dict[str, list[str]] = {}
    for col in fields:
        if col in gdf.columns:
            values = gdf[col].tolist()
            distinct: dict[Any, str] = {}
            shown = []
            for v in values:  # codes repeat: format each distinct value once
                try:
                    text = distinct.get(v)
                    if text is None:
                        text = distinct[v] = format_value(col, v)
                except TypeError:  # unhashable
                    text = format_value(col, v)
                shown.append(text)
            out[col] = escape_values(shown)
    return out


def _popup(props: Mapping[str, Any], fields: Mapping[str, str]) -> folium.GeoJsonPopup:
    present = [c for c in fields if c in props]
    return folium.GeoJsonPopup(
        fields=present, aliases=[escape_html(fields[c]) for c in present], labels=True, max_width=360
    )


#: Leaflet maxZoom (MarkerCluster needs one when there is no tile layer) and minZoom: these are city
#: maps (zoom 7 shows a whole province), and MarkerCluster builds one cluster level per zoom level
#: from minZoom up, so zooms 0–6 would only cost load time.
_MAX_ZOOM: dict[str, Any] = {"maxZoom": 19, "minZoom": 7}

#: Fractional zoom: with whole zoom levels ``fitBounds`` may only fill a quarter of the screen
#: (the next level would not fit), so the city looked small; 0.1 steps let it fill the view.
_SNAP: dict[str, Any] = {"zoomSnap": 0.1, "zoomDelta": 0.5}


def _new_map(bounds: tuple[float, float, float, float], o: MapOptions, **kw: Any) -> folium.Map:
    m = OfflineMap(  # a folium.Map whose notebook view inlines the assets too
        location=None, tiles=None, control_scale=False, prefer_canvas=True, **_MAX_ZOOM, **_SNAP, **kw
    )
    m._gridplan_tile_url = o.tile_url  # the one remote URL its notebook view may use
    _add_tiles(m, o)
    _fit(m, bounds)
    add_page_css(m)
    return m


def _add_tiles(m: folium.Map, o: MapOptions) -> None:
    if o.tile_url:
        folium.TileLayer(
            tiles=o.tile_url,
            attr=escape_html(o.tile_attribution) or "底图",
            name="底图",
            overlay=False,
            control=False,
            max_zoom=19,
        ).add_to(m)


def _fit(m: folium.Map, bounds: tuple[float, float, float, float]) -> None:
    minx, miny, maxx, maxy = bounds
    if np.all(np.isfinite(bounds)):
        m.fit_bounds([[miny, minx], [maxy, maxx]], padding=(12, 12))


def _bounds(*frames: gpd.GeoDataFrame | None) -> tuple[float, float, float, float]:
    boxes = [f.total_bounds for f in frames if f is not None and len(f)]
    if not boxes:
        return (np.nan, np.nan, np.nan, np.nan)
    b = np.vstack(boxes)
    return (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())


def _finish(
    m: folium.Map,
    reg: Registry,
    *,
    title: str,
    subtitle: str,
    legends: Sequence[str | tuple[str, Any]],
    fullscreen: bool = True,
) -> folium.Map:
    """Add the title, legends, layer control, full-screen button and registry to *m*.

    A legend given as ``(html, layer)`` shows only while that layer is on the map.
    """
    HtmlControl(title_html(title, subtitle), position="topleft").add_to(m)
    for item in legends:
        html, layer = item if isinstance(item, tuple) else (item, None)
        HtmlControl(html, position="bottomright", layer=layer).add_to(m)
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    if fullscreen:
        Fullscreen(
            position="topleft", title="全屏", title_cancel="退出全屏", force_separate_button=True
        ).add_to(m)
    m.add_child(reg)
    root: Any = m.get_root()
    root.title = escape_html(title)
    return m


def _prepare_background(background: Mapping[str, gpd.GeoDataFrame] | None, o: MapOptions) -> dict[str, Any]:
    """Display copies of the background layers (city, towns, communities, roads) that exist."""
    out: dict[str, Any] = {}
    if not background:
        return out
    for key in ("city", "towns", "communities", "roads"):
        gdf = background.get(key)
        if gdf is None or not len(gdf):
            continue
        shown = _display(gdf, o, tolerance_m=max(o.tolerance_m, 5.0))
        out[key] = _merge_roads(shown) if key == "roads" else shown
    return out


def _merge_roads(roads: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """One MultiLineString per ``road_class``: thousands of background segments become a few layers."""
    cls = roads["road_class"].astype("string").fillna("") if "road_class" in roads.columns else None
    keys = cls.to_numpy(dtype=object) if cls is not None else np.full(len(roads), "", dtype=object)
    parts, idx = shapely.get_parts(np.asarray(roads.geometry.values, dtype=object), return_index=True)
    lines = shapely.get_type_id(parts) == 1
    parts, idx = parts[lines], idx[lines]
    rows, geoms = [], []
    for k in pd.unique(keys):
        sel = parts[keys[idx] == k]
        if len(sel):
            rows.append(k)
            geoms.append(shapely.multilinestrings(sel))
    return gpd.GeoDataFrame({"road_class": rows}, geometry=geoms, crs=roads.crs)


#: Line weight of road classes on the background (others: 1).
_ROAD_WEIGHT = {"主干道": 2.4, "快速路": 2.8, "高速公路": 3.0, "次干道": 1.5}


_BG_STYLE: dict[str, tuple[str, dict[str, Any]]] = {
    "roads": ("道路", {"color": "#c8c8c8", "weight": 1, "opacity": 0.9}),
    "communities": ("村(社区)界", {"color": "#9e9e9e", "weight": 0.8, "fill": False, "dashArray": "3 3"}),
    "towns": ("镇街界", {"color": "#616161", "weight": 1.6, "fill": False}),
    "city": ("市界", {"color": "#303030", "weight": 2.5, "fill": False}),
}


def _add_background(
    m: folium.Map, reg: Registry, bg: Mapping[str, gpd.GeoDataFrame], *, labels: bool = True
) -> None:
    """Draw the prepared background layers (light styles, not interactive) and town labels."""
    for key in ("roads", "communities", "towns", "city"):
        gdf = bg.get(key)
        if gdf is None:
            continue
        name, style = _BG_STYLE[key]
        props: dict[str, list[str]] = {}
        for col in ("town_name", "community_name", "road_name", "name"):
            if col in gdf.columns:
                props[col] = escape_values(gdf[col].tolist())
                break
        if key == "roads" and "road_class" in gdf.columns:
            props = {"road_class": escape_values(gdf["road_class"].tolist())}
        layer = folium.GeoJson(
            _feature_collection(gdf, props),
            name=escape_html(name),
            style_function=(
                lambda f, s=style: {**s, "weight": _ROAD_WEIGHT.get(f["properties"]["road_class"], 1)}
            )
            if key == "roads" and "road_class" in props
            else (lambda _f, s=style: s),
            interactive=False,
            control=True,
            smooth_factor=1.0,
        )
        layer.add_to(m)
        reg.register(f"background:{key}", layer)
        if key == "towns" and labels and "town_name" in gdf.columns and len(gdf) <= 200:
            pts = gdf.geometry.representative_point()
            rows = [
                [round(p.y, 5), round(p.x, 5), n]
                for p, n in zip(pts, escape_values(gdf["town_name"]), strict=True)
            ]
            labels_el = _LabelLayer(rows, name=escape_html("镇街名称"))
            labels_el.add_to(m)
            reg.register("background:labels", labels_el)


class _LabelLayer(folium.map.Layer):
    """Permanent text labels (escaped HTML) at points, from JSON data: ``[[lat, lon, html], …]``."""

    _template = folium.map.Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.layerGroup();
        (function(){
            var rows = {{ this.js_rows }};
            for (var i = 0; i < rows.length; i++) {
                L.tooltip({permanent: true, direction: 'center', className: 'gridplan-label',
                           interactive: false})
                    .setLatLng([rows[i][0], rows[i][1]]).setContent(rows[i][2])
                    .addTo({{ this.get_name() }});
            }
        })();
        {% endmacro %}
        """
    )

    def __init__(self, rows: list[list[Any]], *, name: str) -> None:
        super().__init__(name=name, overlay=True, control=True, show=True)
        self._name = "LabelLayer"

        self.js_rows = js_json(rows)


def _colormap(values: pd.Series, cmap: str) -> bcm.StepColormap | None:
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    base = getattr(bcm.linear, cmap, None)
    if base is None:
        raise InputError(f"unknown colormap {cmap!r}; use a branca linear name such as YlGnBu_09, YlOrRd_09")
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        hi = lo + 1.0
    qs = np.unique(np.quantile(v, np.linspace(0, 1, 7)))
    if qs.size < 3:
        qs = np.linspace(lo, hi, 4)
    return base.scale(lo, hi).to_step(index=list(qs))


def _caption(column: str) -> str:
    """Legend caption of a numeric column: its Chinese name and unit (``户数（户）``)."""
    label = COLUMN_LABELS.get(column) or field_label(column)
    unit = field_unit(column)
    return f"{label}（{unit}）" if unit and unit not in label else label


def _step_legend(caption: str, cm: bcm.StepColormap) -> str:
    rows = []
    idx = list(cm.index)
    for i in range(len(idx) - 1):
        color = cm.rgb_hex_str((idx[i] + idx[i + 1]) / 2)
        rows.append((color, f"{_num(idx[i])} – {_num(idx[i + 1])}"))
    return legend_html(caption, rows)


@dataclass(frozen=True)
class LayerStyle:
    """How :func:`_grid_layer` colours, labels and indexes a polygon layer.

    Attributes
    ----------
    color_by
        Numeric column for a quantile step colour ramp (``None``: one colour, or categories).
    cmap
        branca linear colormap name for *color_by*.
    key
        Registry key of the layer (what the page's JavaScript finds it by).
    category_colors, category_col
        ``value → (colour, label)`` and the column holding the value; wins over *color_by*.
    fields
        ``column → label`` shown in the popup (escaped).
    search
        Add a search box by ``grid_code``.
    tooltip_field
        Column shown on hover.
    stroke
        Outline colour (``None``: the fill colour).
    show
        Visible when the page opens.

    """

    color_by: str | None = None
    cmap: str = "YlGnBu_09"
    key: str = "grids"
    category_colors: Mapping[str, tuple[str, str]] | None = None
    category_col: str | None = None
    fields: Mapping[str, str] = field(default_factory=lambda: dict(GRID_FIELDS))
    search: bool = True
    tooltip_field: str | None = "grid_code"
    stroke: str | None = "#1f4e79"
    show: bool = True


def _fills(grids: gpd.GeoDataFrame, name: str, style: LayerStyle) -> tuple[list[str], str | None]:
    """Fill colour per feature and the legend HTML (categories, a numeric ramp, or one colour)."""
    fill = np.full(len(grids), "#9ecae1", dtype=object)
    legend = None
    cat_col = style.category_col
    if cat_col is not None and style.category_colors is not None and cat_col in grids.columns:
        cats = grids[cat_col].astype("string").fillna("").to_numpy()
        known = dict(style.category_colors.items())
        extra = [c for c in pd.unique(cats) if c not in known]
        for i, c in enumerate(extra):
            known[c] = (OTHER_COLORS[i % len(OTHER_COLORS)], c or "未知")
        fill = np.array([known[c][0] for c in cats], dtype=object)
        present = [c for c in known if c in set(cats)]
        legend = legend_html(name, [(known[c][0], known[c][1]) for c in present])
    elif style.color_by is not None:
        color_by = style.color_by
        if color_by not in grids.columns:
            raise InputError(f"no column {color_by!r} to colour the grids by", field=color_by)
        cm = _colormap(grids[color_by], style.cmap)
        if cm is not None:
            vals = pd.to_numeric(grids[color_by], errors="coerce").to_numpy(dtype=float)
            fill = np.array([cm.rgb_hex_str(v) if np.isfinite(v) else "#cccccc" for v in vals], dtype=object)
            legend = _step_legend(_caption(color_by), cm)
    return fill.tolist(), legend


def _grid_layer(
    m: folium.Map, reg: Registry, grids: gpd.GeoDataFrame, *, name: str, style: LayerStyle | None = None
) -> tuple[str, Any] | None:
    """Add a polygon layer with popups, tooltips, styling and search.

    Returns its legend HTML with the layer (for :func:`_finish`: the legend follows the layer's
    visibility), or ``None`` when the layer has no legend.
    """
    style = style or LayerStyle()
    props = _escaped_columns(grids, style.fields)
    fills, legend = _fills(grids, name, style)
    stroke = style.stroke

    def paint(feature: dict[str, Any]) -> dict[str, Any]:
        fill = fills[int(feature["id"])]
        return {"fillColor": fill, "color": stroke or fill, "weight": 1, "fillOpacity": 0.55}

    layer = folium.GeoJson(
        _feature_collection(grids, props),
        name=escape_html(name),
        style_function=paint,
        highlight_function=lambda _f: {"weight": 3, "color": "#ff6600", "fillOpacity": 0.75},
        smooth_factor=1.0,
        show=style.show,
    )
    if props:
        _popup(props, style.fields).add_to(layer)
        if style.tooltip_field and style.tooltip_field in props:
            folium.GeoJsonTooltip(fields=[style.tooltip_field], labels=False, sticky=True).add_to(layer)
    layer.add_to(m)
    reg.register(style.key, layer)
    if style.search and "grid_code" in props and len(grids):
        Search(
            layer=layer,
            search_label="grid_code",
            placeholder="搜索网格编码",
            collapsed=False,
            position="topleft",
            geom_type="Polygon",
        ).add_to(m)
    return (legend, layer) if legend else None


def _start(
    bounds: tuple[float, float, float, float], o: MapOptions, background: Mapping[str, Any], title: str
) -> tuple[folium.Map, Registry]:
    """Open a map on *bounds* with its layer registry and the background layers drawn."""
    m = _new_map(bounds, o)
    reg = Registry(title)
    _add_background(m, reg, background)
    return m, reg


def _outline(
    m: folium.Map,
    reg: Registry,
    grids: gpd.GeoDataFrame | None,
    *,
    name: str = "基础网格",
    weight: float = 0.8,
) -> None:
    """Draw *grids* as non-interactive outlines (registered as ``grids``); nothing if ``None``."""
    if grids is None:
        return
    layer = folium.GeoJson(
        _feature_collection(grids, _escaped_columns(grids, {"grid_code": ""})),
        name=escape_html(name),
        style_function=lambda _f: {"color": "#1f4e79", "weight": weight, "fill": False},
        interactive=False,
    ).add_to(m)
    reg.register("grids", layer)
