"""``gridplan publish``: the standard set of offline maps for leaders (PRODUCT §3.7, §5)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from gridplan.cli._app import app, console, user_errors

logger = logging.getLogger(__name__)

_BACKGROUND = ("city", "towns", "communities", "roads")


def _read_gpkg_layer(path: Path, layer: str, *, required: bool = True) -> Any:
    import geopandas as gpd
    import pyogrio

    from gridplan.errors import InputError

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


def _background_from_plan(grids: Any) -> dict[str, Any]:
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


@app.command()
@user_errors
def publish(
    plan_path: Path = typer.Option(
        ..., "--plan", metavar="PLAN.gpkg", help="Plan GeoPackage (gridplan merge)."
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", metavar="maps/", help="Folder to publish into (index.html)."
    ),
    layers_path: Path | None = typer.Option(
        None,
        "--layers",
        metavar="LAYERS.gpkg",
        help="City layers: city/towns/communities/roads background and the dept_* grids map.",
    ),
    hotspots_path: Path | None = typer.Option(
        None, "--hotspots", metavar="HOT.gpkg", help="gridplan hotspots output (layers hotspots, emerging)."
    ),
    heatmap_path: Path | None = typer.Option(
        None, "--heatmap", metavar="HEAT.tif", help="gridplan heatmap raster."
    ),
    cases_path: Path | None = typer.Option(
        None, "--cases", metavar="OUT.csv", help="Geocoded cases (gridplan geocode output; lon/lat CGCS2000)."
    ),
    proposal_path: Path | None = typer.Option(
        None,
        "--proposal",
        metavar="PROPOSAL.gpkg",
        help="gridplan balance output: workload map and before/after map.",
    ),
    diff_against: Path | None = typer.Option(
        None,
        "--diff-against",
        metavar="OLD_PLAN.gpkg",
        help="Older plan: publish a before/after map of the plan's changes.",
    ),
    tile_url: str | None = typer.Option(
        None,
        "--tile-url",
        help="Basemap tile URL template with {z}/{x}/{y} (intranet, 天地图, Amap). "
        "Default: no tiles, no request leaves the page; city/towns/communities/roads are the background.",
    ),
    tile_crs: str = typer.Option(
        "wgs84",
        "--tile-crs",
        help="wgs84 (also CGCS2000/天地图) or gcj02 (Amap, "
        "Tencent): with gcj02 every overlay is shifted to GCJ-02 to line up.",
    ),
    tile_attribution: str = typer.Option(
        "底图", "--tile-attribution", help="Attribution text of the basemap."
    ),
    data_date: str | None = typer.Option(
        None, "--data-date", help="Date of the data shown in the index (default: the plan's creation date)."
    ),
    tolerance_m: float = typer.Option(
        3.0, "--tolerance-m", min=0.0, help="Display simplification in metres (topology kept)."
    ),
    max_cases: int = typer.Option(
        50_000, "--max-cases", min=1, help="Most recent cases drawn on the cases map."
    ),
) -> None:
    """Publish the standard offline maps into OUT, with index.html and manifest.json.

    Base grids and QA always; departmental grids, heatmap, hotspots, cases, proposal and diff
    when their inputs are given, each a self-contained HTML file that opens offline.  Prints the
    path of OUT/index.html.
    """
    import pandas as pd

    from gridplan import maps
    from gridplan.plans import read_plan

    opts = maps.MapOptions(
        tile_url=tile_url, tile_crs=tile_crs, tile_attribution=tile_attribution, tolerance_m=tolerance_m
    )
    plan = read_plan(plan_path)
    grids = plan.base_grids
    date = data_date or str(plan.meta.created_at)[:10]
    pid = plan.meta.plan_id
    layers: dict[str, Any] = {}
    if layers_path is not None:
        from gridplan.layers import read_layers

        layers = read_layers(layers_path)
    background = {k: layers[k] for k in _BACKGROUND if k in layers} or _background_from_plan(grids)
    published: list[tuple[str, Path]] = []

    def put(m: Any, *, slug: str, title: str, summary: str, plan_id: str = pid) -> None:
        path = maps.publish_map(
            m,
            out,
            title=title,
            slug=slug,
            plan_id=plan_id,
            data_date=date,
            summary=summary,
            tile_url=tile_url,
        )
        published.append((title, path))

    n_hh = int(pd.to_numeric(grids.get("households"), errors="coerce").sum()) if "households" in grids else 0
    put(
        maps.base_grid_map(
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
        put(
            maps.dept_grid_map(
                depts, crosswalk=plan.crosswalk, base_grids=grids, background=background, options=opts
            ),
            slug="dept-grids",
            title="部门网格与基础网格对照",
            summary=f"{len(depts)} 个部门的网格及其对应的基础网格",
        )
    put(
        maps.qa_map(plan.qa_issues, base_grids=grids, background=background, options=opts),
        slug="qa-issues",
        title="数据质量问题",
        summary=f"{len(plan.qa_issues)} 条质量问题（缝隙、重叠、无效几何等）",
    )
    if heatmap_path is not None:
        put(
            maps.heatmap_map(heatmap_path, base_grids=grids, background=background, options=opts),
            slug="heatmap",
            title="事件热力图",
            summary="核密度热力图（件/km²）",
        )
    if hotspots_path is not None:
        hot = _read_gpkg_layer(hotspots_path, "hotspots")
        emerging = _with_geometry(_read_gpkg_layer(hotspots_path, "emerging", required=False), hot)
        n_sig = (
            int((pd.to_numeric(hot["gi_bin"], errors="coerce").fillna(0) != 0).sum())
            if "gi_bin" in hot
            else 0
        )
        put(
            maps.hotspot_map(hot, emerging, background=background, options=opts),
            slug="hotspots",
            title="热点分析",
            summary=f"Gi* 显著热点/冷点 {n_sig} 处" + ("，含时空热点模式" if emerging is not None else ""),
        )
    if cases_path is not None:
        from gridplan.errors import InputError

        if not cases_path.exists():
            raise InputError("file not found", file=cases_path)
        cases = pd.read_csv(cases_path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        put(
            maps.cases_map(cases, base_grids=grids, background=background, max_cases=max_cases, options=opts),
            slug="cases",
            title="案件分布",
            summary=f"{len(cases)} 件案件（聚合显示）",
        )
    if proposal_path is not None:
        prop = read_plan(proposal_path)
        pg = prop.base_grids
        color = "workload" if "workload" in pg.columns else "households"
        put(
            maps.base_grid_map(
                pg, background=background, color_by=color, options=opts, title="调整方案", cmap="YlOrRd_09"
            ),
            slug="proposal",
            title="调整方案：网格员与工作量",
            plan_id=prop.meta.plan_id,
            summary=f"{len(pg)} 个网格，按{'工作量' if color == 'workload' else '户数'}着色",
        )
        put(
            maps.dual_grid_map(
                grids,
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
            summary=f"左：现行方案 {pid}；右：调整方案 {prop.meta.plan_id}",
        )
    if diff_against is not None:
        old = read_plan(diff_against)
        put(
            maps.dual_grid_map(
                old.base_grids,
                grids,
                changes=_changes(old, plan),
                background=background,
                options=opts,
                title="方案版本对比",
            ),
            slug="plan-diff",
            title="方案版本对比",
            summary=f"左：旧方案 {old.meta.plan_id}；右：新方案 {pid}",
        )
    table = Table(title=f"publish → {out}", show_header=True)
    table.add_column("map")
    table.add_column("file")
    table.add_column("size", justify="right")
    for title, path in published:
        table.add_row(title, path.name, f"{path.stat().st_size / 1e6:.1f} MB")
    console.print(table)
    console.print(str((out / "index.html").resolve()), soft_wrap=True, highlight=False, markup=False)


def _changes(old: Any, new: Any) -> Any:
    """Grid change kinds from ``plans.diff_plans`` when that function exists (else ``None``)."""
    from gridplan import plans

    diff = getattr(plans, "diff_plans", None)
    if diff is None:
        return None
    grids = diff(old, new).grids
    if "grid_code" not in grids.columns or "change" not in grids.columns:
        return None
    return grids[["grid_code", "change"]]


def _with_geometry(table: Any, hot: Any) -> Any:
    """Join the hotspot geometries onto the emerging table on its location key, if it has none."""
    import geopandas as gpd

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
