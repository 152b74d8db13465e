"""Grid map builders: base grids, departmental grids with their crosswalk, QA issues, before/after.

GeoDataFrames in, ``folium.Map`` (or ``DualMap``) out; no analysis inside.  The rules every
builder follows are in :mod:`gridplan.maps._layers` (display geometry, escaped properties, no tiles
unless configured); offline assets are attached when the map is rendered
(:func:`gridplan.maps.publish.render_html`).  Maps of events (heat, hot spots, cases) are in
:mod:`gridplan.maps.event_maps`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from folium.plugins import DualMap

from gridplan.errors import InputError
from gridplan.layers.labels import department_label, value_label
from gridplan.maps._elements import Registry, add_page_css, legend_html
from gridplan.maps._layers import (
    _MAX_ZOOM,
    _SNAP,
    LayerStyle,
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
    _opts,
    _outline,
    _popup,
    _prepare_background,
    _start,
)
from gridplan.maps._palettes import CHANGE_KINDS, GRID_FIELDS, OTHER_COLORS, QA_ISSUES
from gridplan.maps._repr import OfflineDualMap
from gridplan.maps.escape import escape_html

logger = logging.getLogger(__name__)

__all__ = ["base_grid_map", "dept_grid_map", "dual_grid_map", "qa_map"]


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
    m, reg = _start(_bounds(grids, bg.get("city")), o, bg, title)
    legend = _grid_layer(m, reg, grids, name="基础网格", style=LayerStyle(color_by=color_by, cmap=cmap))
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
    m, reg = _start(_bounds(grids, *shown.values()), o, bg, title)
    cw = _crosswalk_text(crosswalk)
    rows = []
    for i, (dept, gdf) in enumerate(shown.items()):
        name = dept.removeprefix("dept_")
        name_zh = f"{department_label(name)}网格"
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
            name=escape_html(name_zh),
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
        rows.append((color, name_zh))
    _outline(m, reg, grids, name="基础网格 (轮廓)", weight=1.2)
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
    m, reg = _start(_bounds(grids, qa_d, bg.get("city")), o, bg, title)
    _outline(m, reg, grids, weight=1)
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
            style = LayerStyle(
                key=f"qa:{lay}",
                category_colors=colors,
                category_col="issue",
                fields=fields,
                search=False,
                tooltip_field="issue_label",
                stroke=None,
            )
            source = value_label("layer", lay) if lay else "其他"
            _grid_layer(m, reg, part, name=f"质量问题：{source}", style=style)
        present = set(issue)
        legends.append(legend_html("质量问题", [colors[c] for c in colors if c in present]))
    sub = subtitle or f"共 {len(qa)} 条问题" + (f"，其中 {n_nogeom} 条无位置" if n_nogeom else "") + (
        f"；{n_cut} 处面积最小的问题未画出" if n_cut else ""
    )
    logger.info("QA map: %d issues (%d without geometry)", len(qa), n_nogeom)
    return _finish(m, reg, title=title, subtitle=sub, legends=legends)


def dual_grid_map(  # noqa: PLR0913 - keyword-only display options, as folium's own Map
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
    d = OfflineDualMap(  # a DualMap whose notebook view inlines the assets too
        location=None,
        layout="horizontal",
        tiles=None,
        control_scale=False,
        prefer_canvas=True,
        **_MAX_ZOOM,
        **_SNAP,
    )
    d._gridplan_tile_url = o.tile_url  # the one remote URL its notebook view may use
    bounds = _bounds(b, a)
    legends_all: list[list[str | tuple[str, Any]]] = [[], []]
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
        style = LayerStyle(
            color_by=None if cat_col else color_by,
            cmap=cmap,
            category_colors=CHANGE_KINDS if cat_col else None,
            category_col=cat_col,
            fields=fields,
        )
        legend = _grid_layer(mm, reg, g, name=f"基础网格 ({sub_title})", style=style)
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
