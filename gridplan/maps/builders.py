"""Map builders: GeoDataFrames in, ``folium.Map`` (or ``DualMap``) out; no analysis inside.

Each builder draws layers that other modules computed (plans, QA, KDE raster, Gi*, emerging
patterns, geocoded cases, proposals, diffs) on a map with a Chinese UI: title box, legend, layer
control, metric scale bar, full-screen button and — on grid maps — search by grid code.

Rules every builder follows (helpers in :mod:`gridplan.maps._layers`):

* geometry goes through :func:`gridplan.maps.simplify.display_geometry` (topology-preserving
  simplification in metres, EPSG:4326, rounded to ~1 m, shifted to GCJ-02 for a GCJ-02 basemap);
* every user string goes through :mod:`gridplan.maps.escape`: feature properties are stored
  HTML-escaped in the GeoJSON (which folium embeds with ``tojson``), and the popup/tooltip
  templates only ever insert those escaped values — never ``folium.Popup(text)``/``Tooltip(text)``;
* no tiles unless :class:`MapOptions` configures a tile URL; the city, towns, communities and
  roads are drawn as a light background instead.

Offline assets are attached when the map is rendered (:func:`gridplan.maps.publish.render_html`).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from folium.plugins import DualMap, FastMarkerCluster

from gridplan.crs import wgs84_to_gcj02
from gridplan.errors import InputError
from gridplan.maps._elements import Registry, add_page_css, legend_html
from gridplan.maps._layers import (
    _MAX_ZOOM,
    MapOptions,
    _add_background,
    _add_tiles,
    _bounds,
    _display,
    _escaped_columns,
    _feature_collection,
    _finish,
    _fit,
    _grid_layer,
    _new_map,
    _opts,
    _popup,
    _prepare_background,
)
from gridplan.maps._palettes import (
    CASE_COLORS,
    CHANGE_KINDS,
    EMERGING_PATTERNS,
    GI_BINS,
    GRID_FIELDS,
    OTHER_COLORS,
    QA_ISSUES,
)
from gridplan.maps.escape import escape_html

logger = logging.getLogger(__name__)

__all__ = [
    "CHANGE_KINDS",
    "EMERGING_PATTERNS",
    "GI_BINS",
    "QA_ISSUES",
    "MapOptions",
    "base_grid_map",
    "cases_map",
    "dept_grid_map",
    "dual_grid_map",
    "heatmap_map",
    "hotspot_map",
    "qa_map",
]

# --------------------------------------------------------------------------------------------
# public builders
# --------------------------------------------------------------------------------------------


def base_grid_map(
    base_grids: gpd.GeoDataFrame,
    *,
    background: Mapping[str, gpd.GeoDataFrame] | None = None,
    color_by: str | None = "households",
    cmap: str = "YlGnBu_09",
    title: str = "基础网格",
    subtitle: str = "",
    options: MapOptions | None = None,
) -> folium.Map:
    """Map the base grids with popups (code, community, town, households, residents, staff, workload).

    Parameters
    ----------
    base_grids
        ``base_grids`` of a plan or proposal (projected CRS).
    background
        Optional ``{"city", "towns", "communities", "roads"}`` layers drawn underneath.
    color_by
        Numeric column styling the fill (legend from a quantile step colormap); ``None`` for one colour.
    cmap
        branca linear colormap name.
    title, subtitle
        Shown in the title box (escaped).
    options
        Tiles, GCJ-02 shift, simplification.

    """
    o = _opts(options)
    grids = _display(base_grids, o)
    bg = _prepare_background(background, o)
    m = _new_map(_bounds(grids, bg.get("city")), o)
    reg = Registry(title)
    _add_background(m, reg, bg)
    legend = _grid_layer(m, reg, grids, name="基础网格", color_by=color_by, cmap=cmap)
    logger.info("base grid map: %d grids, colour by %s", len(grids), color_by)
    return _finish(m, reg, title=title, subtitle=subtitle, legends=[legend] if legend else [])


def dept_grid_map(
    dept_layers: Mapping[str, gpd.GeoDataFrame],
    *,
    crosswalk: pd.DataFrame | None = None,
    base_grids: gpd.GeoDataFrame | None = None,
    background: Mapping[str, gpd.GeoDataFrame] | None = None,
    title: str = "部门网格与基础网格对照",
    subtitle: str = "",
    options: MapOptions | None = None,
) -> folium.Map:
    """Departmental grids (one overlay per department) with their crosswalk to base grids.

    Each departmental grid's popup lists the base grids it maps to (``dept_crosswalk`` rows,
    largest ``area_share`` first, at most five).  Only the first department is shown at start.
    """
    o = _opts(options)
    bg = _prepare_background(background, o)
    grids = _display(base_grids, o) if base_grids is not None else None
    shown = {
        k: _display(v, o, tolerance_m=max(o.tolerance_m, 6.0))
        for k, v in dept_layers.items()
        if v is not None and len(v)
    }
    m = _new_map(_bounds(grids, *shown.values()), o)
    reg = Registry(title)
    _add_background(m, reg, bg)
    cw = _crosswalk_text(crosswalk)
    rows = []
    for i, (dept, gdf) in enumerate(shown.items()):
        name = dept.removeprefix("dept_")
        color = OTHER_COLORS[i % len(OTHER_COLORS)]
        gdf = gdf.copy()
        ids = gdf["dept_grid_id"].astype("string").fillna("") if "dept_grid_id" in gdf.columns else None
        if ids is not None:
            gdf["_crosswalk"] = [cw.get((name, v), cw.get((dept, v), "")) for v in ids]
        fields = {
            "dept_grid_id": "部门网格编号",
            "dept_grid_name": "部门网格名称",
            "_crosswalk": "对应基础网格",
        }
        props = _escaped_columns(gdf, fields)
        layer = folium.GeoJson(
            _feature_collection(gdf, props),
            name=escape_html(f"部门网格: {name}"),
            style_function=lambda _f, c=color: {
                "color": c,
                "weight": 1.5,
                "fillColor": c,
                "fillOpacity": 0.25,
            },
            highlight_function=lambda _f: {"weight": 3, "fillOpacity": 0.5},
            show=(i == 0),
        )
        if props:
            _popup(props, fields).add_to(layer)
        layer.add_to(m)
        reg.register(f"dept:{name}", layer)
        rows.append((color, name))
    if grids is not None:
        base = folium.GeoJson(
            _feature_collection(grids, _escaped_columns(grids, {"grid_code": ""})),
            name=escape_html("基础网格 (轮廓)"),
            style_function=lambda _f: {"color": "#1f4e79", "weight": 1.2, "fill": False},
            interactive=False,
        ).add_to(m)
        reg.register("grids", base)
    logger.info("departmental grid map: %d departments", len(shown))
    return _finish(
        m, reg, title=title, subtitle=subtitle, legends=[legend_html("部门网格", rows)] if rows else []
    )


def _crosswalk_text(crosswalk: pd.DataFrame | None) -> dict[tuple[str, str], str]:
    """``(department, dept_grid_id)`` → "grid_code (share %)" text of its top five base grids."""
    if crosswalk is None or not len(crosswalk):
        return {}
    need = {"department", "dept_grid_id", "grid_code", "area_share"}
    if not need <= set(crosswalk.columns):
        raise InputError(
            f"dept_crosswalk lacks columns {sorted(need - set(crosswalk.columns))}", layer="dept_crosswalk"
        )
    cw = crosswalk.sort_values("area_share", ascending=False)
    cw = cw.assign(
        _t=cw["grid_code"].astype(str)
        + " ("
        + (cw["area_share"] * 100).round(0).astype(int).astype(str)
        + "%)"
    )
    grouped = cw.groupby(["department", "dept_grid_id"], sort=False)["_t"].agg(lambda s: "、".join(s.head(5)))
    return {(str(k[0]), str(k[1])): v for k, v in grouped.items()}


def qa_map(
    qa_issues: pd.DataFrame,
    *,
    base_grids: gpd.GeoDataFrame | None = None,
    background: Mapping[str, gpd.GeoDataFrame] | None = None,
    max_features: int = 10_000,
    title: str = "数据质量问题",
    subtitle: str = "",
    options: MapOptions | None = None,
) -> folium.Map:
    """QA issues (gaps, overlaps, invalid geometries, …) coloured by issue kind over the base grids.

    Rows without geometry are counted in the subtitle (they have nothing to draw); beyond
    *max_features* only the largest issues (by area) are drawn, and the rest are counted.
    """
    o = _opts(options)
    bg = _prepare_background(background, o)
    grids = _display(base_grids, o) if base_grids is not None else None
    qa = qa_issues
    if not isinstance(qa, gpd.GeoDataFrame):
        qa = gpd.GeoDataFrame(qa, geometry=gpd.GeoSeries([None] * len(qa), index=qa.index), crs=4547)
    qa_d = _display(qa, o, tolerance_m=1.0) if len(qa) else qa
    n_nogeom = len(qa) - len(qa_d)
    n_cut = 0
    if len(qa_d) > max_features:
        area = qa.geometry.area.reindex(qa_d.index).to_numpy()
        keep = np.sort(np.argsort(-area, kind="stable")[:max_features])
        n_cut = len(qa_d) - max_features
        qa_d = qa_d.iloc[keep]
    m = _new_map(_bounds(grids, qa_d, bg.get("city")), o)
    reg = Registry(title)
    _add_background(m, reg, bg)
    if grids is not None:
        base = folium.GeoJson(
            _feature_collection(grids, _escaped_columns(grids, {"grid_code": ""})),
            name=escape_html("基础网格"),
            style_function=lambda _f: {"color": "#1f4e79", "weight": 1, "fill": False},
            interactive=False,
        ).add_to(m)
        reg.register("grids", base)
    legends = []
    if len(qa_d):
        fields = {"issue_label": "问题", "layer": "图层", "feature_id": "要素编号", "detail": "说明"}
        qa_d = qa_d.copy()
        issue = (
            qa_d["issue"].astype("string").fillna("")
            if "issue" in qa_d.columns
            else pd.Series("", index=qa_d.index)
        )
        qa_d["issue_label"] = [QA_ISSUES.get(v, (None, v))[1] for v in issue]
        qa_d["issue"] = issue
        colors = dict(QA_ISSUES)
        for i, v in enumerate(c for c in pd.unique(issue) if c not in colors):
            colors[v] = (OTHER_COLORS[i % len(OTHER_COLORS)], v or "未知")
        src = (
            qa_d["layer"].astype("string").fillna("")
            if "layer" in qa_d.columns
            else pd.Series("", index=qa_d.index)
        )
        for lay in pd.unique(src):
            part = qa_d[(src == lay).to_numpy()]
            _grid_layer(
                m,
                reg,
                part,
                name=f"质量问题: {lay or '其他'}",
                color_by=None,
                cmap="YlOrRd_09",
                key=f"qa:{lay}",
                category_colors=colors,
                category_col="issue",
                fields=fields,
                search=False,
                tooltip_field="issue_label",
                stroke=None,
            )
        present = set(issue)
        legends.append(legend_html("质量问题", [colors[c] for c in colors if c in present]))
    sub = subtitle or f"共 {len(qa)} 条问题" + (f"，其中 {n_nogeom} 条无位置" if n_nogeom else "") + (
        f"；{n_cut} 处面积最小的问题未画出" if n_cut else ""
    )
    logger.info("QA map: %d issues (%d without geometry)", len(qa), n_nogeom)
    return _finish(m, reg, title=title, subtitle=sub, legends=legends)


def heatmap_map(
    heat: str | Path,
    *,
    base_grids: gpd.GeoDataFrame | None = None,
    background: Mapping[str, gpd.GeoDataFrame] | None = None,
    cmap: str = "YlOrRd",
    opacity: float = 0.75,
    max_pixels: int = 2048,
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
    max_pixels
        Longest side of the embedded image; larger rasters are resampled (bilinear).
    base_grids
        Optional base grids drawn as outlines.
    background
        Optional ``{"city", "towns", "communities", "roads"}`` layers drawn underneath.
    title, subtitle
        Shown in the title box (escaped).
    options
        Tiles, GCJ-02 shift, simplification (:class:`MapOptions`).

    """
    from gridplan.maps._raster import heat_png

    o = _opts(options)
    png, bounds, vmax = heat_png(heat, cmap=cmap, opacity=opacity, max_pixels=max_pixels, gcj02=o.gcj02)
    bg = _prepare_background(background, o)
    grids = _display(base_grids, o) if base_grids is not None else None
    west, south, east, north = bounds
    m = _new_map((west, south, east, north), o)
    reg = Registry(title)
    _add_background(m, reg, bg)
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
    if grids is not None:
        layer = folium.GeoJson(
            _feature_collection(grids, _escaped_columns(grids, {"grid_code": ""})),
            name=escape_html("基础网格"),
            style_function=lambda _f: {"color": "#1f4e79", "weight": 0.8, "fill": False},
            interactive=False,
        ).add_to(m)
        reg.register("grids", layer)
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


def hotspot_map(
    hotspots: gpd.GeoDataFrame | None,
    emerging: gpd.GeoDataFrame | None = None,
    *,
    background: Mapping[str, gpd.GeoDataFrame] | None = None,
    show_insignificant: bool = False,
    title: str = "热点分析 (Gi*)",
    subtitle: str = "",
    options: MapOptions | None = None,
) -> folium.Map:
    """Gi* hot/cold spots (ArcGIS colours, 99/95/90 % legend) and emerging-hot-spot patterns.

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
    options
        Tiles, GCJ-02 shift, simplification (:class:`MapOptions`).

    """
    o = _opts(options)
    bg = _prepare_background(background, o)
    legends: list[str] = []
    hs = em = None
    if hotspots is not None and len(hotspots):
        if "gi_bin" not in hotspots.columns:
            raise InputError("hotspots layer has no gi_bin column", layer="hotspots", field="gi_bin")
        h = hotspots.copy()
        h["gi_bin"] = pd.to_numeric(h["gi_bin"], errors="coerce").fillna(0).astype(int).clip(-3, 3)
        if not show_insignificant:
            h = h[h["gi_bin"] != 0]
        hs = _display(h, o)
        hs["bin_label"] = [GI_BINS[b][1] for b in hs["gi_bin"]]
        hs["_bin"] = hs["gi_bin"].astype(str)
    if emerging is not None and len(emerging):
        if "pattern" not in emerging.columns:
            raise InputError("emerging layer has no pattern column", layer="emerging", field="pattern")
        e = emerging.copy()
        e["pattern"] = e["pattern"].astype("string").fillna("No Pattern Detected")
        if not show_insignificant:
            e = e[e["pattern"] != "No Pattern Detected"]
        em = _display(e, o)
        em["pattern_label"] = [EMERGING_PATTERNS.get(p, (None, p))[1] for p in em["pattern"]]
    m = _new_map(_bounds(hs, em, bg.get("city")), o)
    reg = Registry(title)
    _add_background(m, reg, bg)
    if hs is not None:
        fields = {
            "bin_label": "类别",
            "grid_code": "网格编码",
            "h3": "H3 单元",
            "count": "事件数",
            "rate": "比率",
            "gi_z": "Gi* z 值",
            "gi_p": "p 值",
        }
        colors = {str(k): v for k, v in GI_BINS.items()}
        _grid_layer(
            m,
            reg,
            hs,
            name="热点 / 冷点",
            color_by=None,
            cmap="",
            key="hotspots",
            category_colors=colors,
            category_col="_bin",
            fields=fields,
            search=False,
            tooltip_field="bin_label",
            stroke="#666666",
        )
        legends.append(legend_html("热点分析 (Gi*)", [GI_BINS[b] for b in (3, 2, 1, 0, -1, -2, -3)]))
    if em is not None:
        fields = {
            "pattern_label": "时空模式",
            "pattern": "Pattern",
            "grid_code": "网格编码",
            "h3": "H3 单元",
            "trend_z": "趋势 z 值",
            "trend_p": "趋势 p 值",
        }
        legend = _grid_layer(
            m,
            reg,
            em,
            name="时空热点模式",
            color_by=None,
            cmap="",
            key="emerging",
            category_colors=EMERGING_PATTERNS,
            category_col="pattern",
            fields=fields,
            search=False,
            tooltip_field="pattern_label",
            stroke="#444444",
            show=hs is None,
        )
        if legend:
            legends.append(legend)
    logger.info(
        "hotspot map: %d hot/cold features, %d emerging",
        0 if hs is None else len(hs),
        0 if em is None else len(em),
    )
    return _finish(m, reg, title=title, subtitle=subtitle, legends=legends)


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
    for col in ("lon", "lat"):
        if col not in cases.columns:
            raise InputError(f"cases table has no {col} column (geocode it first)", field=col)
    lon = pd.to_numeric(cases["lon"], errors="coerce").to_numpy(dtype=float, copy=True)
    lat = pd.to_numeric(cases["lat"], errors="coerce").to_numpy(dtype=float, copy=True)
    if "coord_sys" in cases.columns:
        from gridplan.crs import to_wgs84

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
    cats = (
        df["category"].astype("string").fillna("") if "category" in df.columns else pd.Series([""] * len(df))
    )
    uniq = list(pd.unique(cats))
    color_of = {c: CASE_COLORS[i % len(CASE_COLORS)] for i, c in enumerate(uniq)}
    fields = {
        "case_id": "编号",
        "category": "类别",
        "reported_at": "上报时间",
        "address": "地址",
        "status": "定位状态",
        "grid_code": "网格编码",
    }
    props = _escaped_columns(df, fields)
    popups = []
    present = [c for c in fields if c in props]
    for i in range(len(df)):
        popups.append(
            "<table>"
            + "".join(f"<tr><th>{escape_html(fields[c])}</th><td>{props[c][i]}</td></tr>" for c in present)
            + "</table>"
        )
    colors = [color_of[c] for c in cats]
    rows = [[float(a), float(b), p, c] for a, b, p, c in zip(lat, lon, popups, colors, strict=True)]
    grids = _display(base_grids, o) if base_grids is not None else None
    bg = _prepare_background(background, o)
    if len(lon):
        pts_bounds = (float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max()))
    else:
        pts_bounds = _bounds(grids, bg.get("city"))
    m = _new_map(pts_bounds, o)
    reg = Registry(title)
    _add_background(m, reg, bg)
    if grids is not None:
        layer = folium.GeoJson(
            _feature_collection(grids, _escaped_columns(grids, {"grid_code": ""})),
            name=escape_html("基础网格"),
            style_function=lambda _f: {"color": "#1f4e79", "weight": 0.8, "fill": False},
            interactive=False,
        ).add_to(m)
        reg.register("grids", layer)
    callback = (
        "function (row) {"
        " var mk = L.circleMarker(new L.LatLng(row[0], row[1]),"
        " {radius: 5, color: '#ffffff', weight: 1, fillColor: row[3], fillOpacity: 0.9});"
        " mk.bindPopup(row[2], {maxWidth: 360}); return mk; }"
    )
    cluster = FastMarkerCluster(
        rows, callback=callback, name=escape_html("案件"), options={"chunkedLoading": True}
    )
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


def dual_grid_map(
    before: gpd.GeoDataFrame,
    after: gpd.GeoDataFrame,
    *,
    changes: pd.DataFrame | None = None,
    color_by: str | None = None,
    cmap: str = "YlOrRd_09",
    background: Mapping[str, gpd.GeoDataFrame] | None = None,
    title: str = "方案对比",
    before_title: str = "调整前",
    after_title: str = "调整后",
    subtitle: str = "",
    options: MapOptions | None = None,
) -> DualMap:
    """Before/after maps side by side with synchronised pan and zoom (``folium.plugins.DualMap``).

    Parameters
    ----------
    before, after
        Base grids of the old plan and of the new plan/proposal.
    changes
        Optional ``grid_code``, ``change`` table (``plans.diff_plans(old, new).grids``): the *after*
        map is coloured by change kind (``removed`` rows colour the *before* map).
    color_by
        Numeric column colouring both maps (e.g. ``workload``) when ``changes`` is not given.
    cmap
        branca linear colormap name for ``color_by``.
    before_title, after_title
        Names of the two sides.
    background
        Optional ``{"city", "towns", "communities", "roads"}`` layers drawn underneath.
    title, subtitle
        Shown in the title box (escaped).
    options
        Tiles, GCJ-02 shift, simplification (:class:`MapOptions`).

    """
    o = _opts(options)
    b = _display(before, o)
    a = _display(after, o)
    bg = _prepare_background(background, o)
    d = DualMap(
        location=None,
        layout="horizontal",
        tiles=None,
        control_scale=False,
        prefer_canvas=True,
        **_MAX_ZOOM,
    )
    bounds = _bounds(b, a)
    legends_all: list[list[str]] = [[], []]
    for side, (mm, grids, sub_title) in enumerate(((d.m1, b, before_title), (d.m2, a, after_title))):
        _add_tiles(mm, o)
        _fit(mm, bounds)
        add_page_css(mm)
        reg = Registry(f"{title} - {sub_title}")
        _add_background(mm, reg, bg, labels=False)
        g = grids.copy()
        cat_col = None
        if changes is not None and len(changes) and "grid_code" in g.columns:
            ch = changes.drop_duplicates("grid_code").set_index("grid_code")["change"].astype(str)
            g["change"] = g["grid_code"].astype(str).map(ch).fillna("unchanged")
            g["change_label"] = [CHANGE_KINDS.get(v, (None, v))[1] for v in g["change"]]
            cat_col = "change"
        fields = dict(GRID_FIELDS)
        if cat_col:
            fields["change_label"] = "变化"
        legend = _grid_layer(
            mm,
            reg,
            g,
            name=f"基础网格 ({sub_title})",
            color_by=None if cat_col else color_by,
            cmap=cmap,
            category_colors=CHANGE_KINDS if cat_col else None,
            category_col=cat_col,
            fields=fields,
            search=True,
        )
        if legend:
            legends_all[side].append(legend)
        _finish(
            mm,
            reg,
            title=f"{title}: {sub_title}",
            subtitle=subtitle,
            legends=legends_all[side],
            fullscreen=False,
        )
    root: Any = d.get_root()
    root.title = escape_html(title)
    logger.info("dual map: %d grids before, %d after", len(b), len(a))
    return d
