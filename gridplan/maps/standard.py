"""The standard set of offline maps for leaders (PRODUCT §3.7, §5), published in one call.

:func:`publish_standard_set` is what ``gridplan publish`` runs, and what the API can run: from a
plan and the optional outputs of the other steps it builds and publishes, in this order,

============================  ======================  =========================================
map (slug)                    needs                   shows
============================  ======================  =========================================
``base-grids``                the plan                base grids coloured by households
``dept-grids``                ``layers`` with dept_*  departmental grids against the base grids
``qa-issues``                 the plan                gaps, overlaps, invalid geometry, …
``heatmap``                   ``heatmap`` (KDE tif)   the density raster
``hotspots``                  ``hotspots`` (HOT.gpkg) Gi* bins, emerging patterns when present
``cases``                     ``cases`` (geocoded)    the most recent cases, clustered
``proposal``                  ``proposal`` (gpkg)     the proposal's grids by workload
``proposal-compare``          ``proposal``            current plan | proposal, side by side
``plan-diff``                 ``diff_against``        older plan | this plan, side by side
============================  ======================  =========================================

Each map is built and published before the next is read, through
:func:`gridplan.maps.publish.publish_map` (atomic, under the folder's lock), so a bad input met
later leaves the maps already published intact.  The background (city, towns, communities, roads)
comes from ``layers`` when given, else it is dissolved from the base grids.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from gridplan.errors import InputError
from gridplan.maps._layers import MapOptions
from gridplan.maps.event_maps import cases_map, heatmap_map, hotspot_map
from gridplan.maps.grid_maps import base_grid_map, dept_grid_map, dual_grid_map, qa_map
from gridplan.maps.publish import publish_map
from gridplan.plans import Plan, diff_plans, read_plan

logger = logging.getLogger(__name__)

__all__ = ["PublishedMap", "StandardInputs", "StandardMapOptions", "publish_standard_set"]

_BACKGROUND = ("city", "towns", "communities", "roads")


@dataclass(frozen=True)
class StandardInputs:
    """The optional inputs of the standard set; each one given adds its maps.

    Attributes
    ----------
    layers
        City layers GeoPackage: city/towns/communities/roads background and the ``dept_*`` grids.
    hotspots
        ``gridplan hotspots`` output (layers ``hotspots``, optional ``emerging``).
    heatmap
        ``gridplan heatmap`` raster.
    cases
        Geocoded cases CSV (``gridplan geocode`` output; lon/lat CGCS2000).
    proposal
        ``gridplan balance`` output: the workload map and the before/after map.
    diff_against
        An older plan: a before/after map of this plan's changes.

    """

    layers: Path | None = None
    hotspots: Path | None = None
    heatmap: Path | None = None
    cases: Path | None = None
    proposal: Path | None = None
    diff_against: Path | None = None


@dataclass(frozen=True)
class StandardMapOptions:
    """How the standard set is drawn and labelled.

    Attributes
    ----------
    map
        Basemap and display options shared by every map (:class:`~gridplan.maps.MapOptions`).
    data_date
        Date of the data shown in the index (default: the plan's creation date).
    max_cases
        Most recent cases drawn on the cases map.

    """

    map: MapOptions = field(default_factory=MapOptions)
    data_date: str | None = None
    max_cases: int = 50_000


@dataclass(frozen=True)
class PublishedMap:
    """One published map: its title, slug and HTML file."""

    title: str
    slug: str
    path: Path


@dataclass(frozen=True)
class _Page:
    """A built map waiting to be published."""

    m: Any
    slug: str
    title: str
    summary: str
    plan_id: str | None = None


def publish_standard_set(
    plan: Plan,
    out: Path,
    *,
    inputs: StandardInputs | None = None,
    options: StandardMapOptions | None = None,
) -> list[PublishedMap]:
    """Build and publish the standard maps of *plan* into *out* (``index.html``, ``manifest.json``).

    Parameters
    ----------
    plan
        The plan whose base grids, crosswalk and QA issues are drawn.
    out
        Folder to publish into (created by :func:`~gridplan.maps.publish.publish_map` if missing).
    inputs
        Optional outputs of the other steps; each one given adds its maps (see the module table).
    options
        Basemap, display, data date and case limit.

    Returns
    -------
    list of PublishedMap
        In publishing order (the order of the module table).

    Raises
    ------
    InputError
        An input file is missing or unreadable, or lacks the layer it needs.

    """
    inputs = inputs or StandardInputs()
    options = options or StandardMapOptions()
    date = options.data_date or str(plan.meta.created_at)[:10]
    published: list[PublishedMap] = []
    for page in _pages(plan, inputs, options):
        path = publish_map(
            page.m,
            out,
            title=page.title,
            slug=page.slug,
            plan_id=plan.meta.plan_id if page.plan_id is None else page.plan_id,
            data_date=date,
            summary=page.summary,
            tile_url=options.map.tile_url,
        )
        published.append(PublishedMap(title=page.title, slug=page.slug, path=path))
    logger.info("published %d standard maps of plan %s into %s", len(published), plan.meta.plan_id, out)
    return published


def _pages(plan: Plan, inputs: StandardInputs, options: StandardMapOptions) -> Iterator[_Page]:
    """Yield the maps of the set one at a time, each built only when the previous one is published."""
    layers: Mapping[str, Any] = {}
    if inputs.layers is not None:
        from gridplan.layers import read_layers

        layers = read_layers(inputs.layers)
    background = {k: layers[k] for k in _BACKGROUND if k in layers} or _background_from_plan(plan.base_grids)
    yield from _plan_pages(plan, layers, background, options.map)
    yield from _analysis_pages(plan.base_grids, inputs, background, options)
    if inputs.proposal is not None:
        yield from _proposal_pages(plan, read_plan(inputs.proposal), background, options.map)
    if inputs.diff_against is not None:
        old = read_plan(inputs.diff_against)
        yield _Page(
            dual_grid_map(
                old.base_grids,
                plan.base_grids,
                changes=_changes(old, plan),
                background=background,
                options=options.map,
                title="方案版本对比",
            ),
            slug="plan-diff",
            title="方案版本对比",
            summary=f"左：旧方案 {old.meta.plan_id}；右：新方案 {plan.meta.plan_id}",
        )


def _plan_pages(
    plan: Plan, layers: Mapping[str, Any], background: dict[str, Any], opts: MapOptions
) -> Iterator[_Page]:
    """Yield base grids, departmental grids (when ``dept_*`` layers are given) and QA issues."""
    grids = plan.base_grids
    n_hh = int(pd.to_numeric(grids.get("households"), errors="coerce").sum()) if "households" in grids else 0
    yield _Page(
        base_grid_map(
            grids,
            background=background,
            options=opts,
            title="基础网格",
            subtitle=f"{len(grids)} 个网格，{n_hh} 户",
        ),
        slug="base-grids",
        title="基础网格",
        summary=f"{len(grids)} 个基础网格，按户数着色；可按网格编码搜索",
    )
    depts = {k: v for k, v in layers.items() if k.startswith("dept_")}
    if depts:
        yield _Page(
            dept_grid_map(
                depts, crosswalk=plan.crosswalk, base_grids=grids, background=background, options=opts
            ),
            slug="dept-grids",
            title="部门网格与基础网格对照",
            summary=f"{len(depts)} 个部门的网格及其对应的基础网格",
        )
    yield _Page(
        qa_map(plan.qa_issues, base_grids=grids, background=background, options=opts),
        slug="qa-issues",
        title="数据质量问题",
        summary=f"{len(plan.qa_issues)} 条质量问题（缝隙、重叠、无效几何等）",
    )


def _analysis_pages(
    grids: gpd.GeoDataFrame, inputs: StandardInputs, background: dict[str, Any], options: StandardMapOptions
) -> Iterator[_Page]:
    """Heatmap, hotspots and cases, for the inputs given."""
    opts = options.map
    if inputs.heatmap is not None:
        yield _Page(
            heatmap_map(inputs.heatmap, base_grids=grids, background=background, options=opts),
            slug="heatmap",
            title="事件热力图",
            summary="核密度热力图（件/km²）",
        )
    if inputs.hotspots is not None:
        hot = _read_gpkg_layer(inputs.hotspots, "hotspots")
        emerging = _with_geometry(_read_gpkg_layer(inputs.hotspots, "emerging", required=False), hot)
        n_sig = (
            int((pd.to_numeric(hot["gi_bin"], errors="coerce").fillna(0) != 0).sum())
            if "gi_bin" in hot
            else 0
        )
        yield _Page(
            hotspot_map(hot, emerging, background=background, options=opts),
            slug="hotspots",
            title="热点分析",
            summary=f"Gi* 显著热点/冷点 {n_sig} 处" + ("，含时空热点模式" if emerging is not None else ""),
        )
    if inputs.cases is not None:
        if not inputs.cases.exists():
            raise InputError("file not found", file=inputs.cases)
        cases = pd.read_csv(inputs.cases, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        yield _Page(
            cases_map(
                cases, base_grids=grids, background=background, max_cases=options.max_cases, options=opts
            ),
            slug="cases",
            title="案件分布",
            summary=f"{len(cases)} 件案件（聚合显示）",
        )


def _proposal_pages(plan: Plan, prop: Plan, background: dict[str, Any], opts: MapOptions) -> Iterator[_Page]:
    """Yield the proposal's grids by workload, and current plan | proposal side by side."""
    pg = prop.base_grids
    color = "workload" if "workload" in pg.columns else "households"
    yield _Page(
        base_grid_map(
            pg, background=background, color_by=color, options=opts, title="调整方案", cmap="YlOrRd_09"
        ),
        slug="proposal",
        title="调整方案：网格员与工作量",
        plan_id=prop.meta.plan_id,
        summary=f"{len(pg)} 个网格，按{'工作量' if color == 'workload' else '户数'}着色",
    )
    yield _Page(
        dual_grid_map(
            plan.base_grids,
            pg,
            changes=_changes(plan, prop),
            color_by=color,
            background=background,
            options=opts,
            title="调整方案前后对比",
        ),
        slug="proposal-compare",
        title="调整方案前后对比",
        plan_id=prop.meta.plan_id,
        summary=f"左：现行方案 {plan.meta.plan_id}；右：调整方案 {prop.meta.plan_id}",
    )


def _read_gpkg_layer(path: Path, layer: str, *, required: bool = True) -> Any:
    """Read *layer* of a GeoPackage in a projected CRS (EPSG:4547 when it has none); a table as is."""
    import pyogrio

    if not path.exists():
        raise InputError("file not found", file=path)
    try:
        names = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
    except Exception as exc:  # pyogrio raises DataSourceError and friends
        raise InputError(f"cannot read as a GeoPackage: {exc}", file=path) from None
    if layer not in names:
        if required:
            raise InputError(f"no layer {layer!r} (found: {', '.join(names)})", file=path, layer=layer)
        return None
    gdf = gpd.read_file(path, layer=layer)
    if not isinstance(gdf, gpd.GeoDataFrame):
        return gdf  # a table (no geometry column)
    if gdf.crs is None:
        gdf = gdf.set_crs(4547)
    elif not gdf.crs.is_projected:
        gdf = gdf.to_crs(4547)
    return gdf


def _background_from_plan(grids: gpd.GeoDataFrame) -> dict[str, Any]:
    """Towns and communities outlines dissolved from the base grids (when no layers are given)."""
    out: dict[str, Any] = {}
    for key, code, name in (
        ("communities", "community_code", "community_name"),
        ("towns", "town_code", "town_name"),
    ):
        if code in grids.columns:
            cols = [c for c in (code, name) if c in grids.columns]
            out[key] = grids[[*cols, "geometry"]].dissolve(by=code, as_index=False, method="coverage")
    if len(grids):
        out["city"] = grids[["geometry"]].dissolve(method="coverage")
    return out


def _changes(old: Plan, new: Plan) -> pd.DataFrame | None:
    """Grid change kinds (``grid_code``, ``change``) from :func:`gridplan.plans.diff_plans`."""
    grids = diff_plans(old, new).grids
    if "grid_code" not in grids.columns or "change" not in grids.columns:
        return None
    return grids[["grid_code", "change"]]


def _with_geometry(table: Any, hot: Any) -> Any:
    """Join the hotspot geometries onto the emerging table on its location key, if it has none."""
    if table is None or (isinstance(table, gpd.GeoDataFrame) and table.geometry.notna().any()):
        return table
    for key in ("grid_code", "h3", "code"):
        if key in table.columns and key in hot.columns:
            geo = hot[[key, "geometry"]].drop_duplicates(key)
            cols = [c for c in table.columns if c != "geometry"]
            return gpd.GeoDataFrame(
                table[cols].merge(geo, on=key, how="inner"), geometry="geometry", crs=hot.crs
            )
    return None
