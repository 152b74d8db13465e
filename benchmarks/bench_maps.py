"""Published maps: city-scale base-grid map size and time to the load event in headless Chromium.

Targets (issue 6): the ~3,000-grid base-grid map with its offline background (city, towns,
communities, roads) is ≤ 15 MB and reaches its load event in ≤ 5 s.  Targets (issue 19): the
cases map of 50,000 cases (the default ``max_cases``) is ≤ 8 MB and draws its markers in ≤ 3 s.
The anchor is the same map built the way a folium user would: ``GeoDataFrame.explore``-style
``folium.GeoJson`` of the unsimplified grids at full coordinate precision with the default CDN
assets (its load time is not measured: it needs the internet).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import city_data, city_plan, measure

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _plan_grids(folder: Path) -> tuple[Any, dict[str, Any], str]:
    """Base grids of the cached city plan (merged once, with a lock) and the background layers."""

    from gridplan.layers import read_layers
    from gridplan.plans import read_plan

    scale, seed = folder.name.rsplit("-", 1)
    plan = read_plan(city_plan(scale, int(seed)))
    layers = read_layers(folder / "layers.gpkg")
    bg = {k: layers[k] for k in ("city", "towns", "communities", "roads") if k in layers}
    return plan.base_grids, bg, plan.meta.plan_id


def _load_seconds(
    path: Path, runs: int = 3, layer: str = "grids", expect: int = 0
) -> tuple[float, int]:
    """Median seconds from navigation start to the load event; and the number of off-page requests.

    The page must have drawn at least one feature of *layer* by then (``window.gridplan`` registry);
    with *expect*, the time runs until *layer* holds *expect* features (all cases clustered).
    """
    from playwright.sync_api import sync_playwright

    times = []
    foreign = 0
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for _ in range(runs):
            page = b.new_page(viewport={"width": 1280, "height": 800})
            reqs: list[str] = []
            page.on("request", lambda r, reqs=reqs: reqs.append(r.url))
            t0 = time.perf_counter()
            page.goto(path.resolve().as_uri(), wait_until="load", timeout=120_000)
            count = f"window.gridplan.maps[0].layers[{layer!r}].getLayers().length"
            if expect:  # every marker clustered (chunked loading may go on after the load event)
                page.wait_for_function(f"() => {count} >= {expect}", timeout=120_000)
            times.append(time.perf_counter() - t0)
            assert page.evaluate(f"() => {count}") > 0
            foreign = max(foreign, sum(1 for u in reqs if not u.startswith(("file://", "data:"))))
            page.close()
        b.close()
    times.sort()
    return times[len(times) // 2], foreign


def run(scale: str) -> list[dict[str, str]]:
    import folium

    from gridplan import maps

    folder = city_data(scale)
    grids, bg, plan_id = _plan_grids(folder)
    out = Path(tempfile.mkdtemp(prefix="bench_maps_"))
    with measure() as m_build:
        m = maps.base_grid_map(grids, background=bg)
        path = maps.publish_map(m, out, title="基础网格", slug="base-grids", plan_id=plan_id)
    size_mb = path.stat().st_size / 1e6
    # anchor: plain folium GeoJson of the same grids, full precision, CDN assets, no background
    with measure() as m_anchor:
        fm = folium.Map(tiles=None)
        folium.GeoJson(
            grids.to_crs(4326)[["grid_code", "households", "geometry"]].to_json(),
            tooltip=folium.GeoJsonTooltip(["grid_code", "households"]),
        ).add_to(fm)
        anchor_html = fm.get_root().render()
    anchor_mb = len(anchor_html.encode("utf-8")) / 1e6
    rows = [
        {
            "task": f"base-grid map build+publish ({len(grids):,} grids + background)",
            "ours": f"{m_build.seconds:.1f} s",
            "anchor_name": "folium GeoJson (no simplification)",
            "anchor": f"{m_anchor.seconds:.1f} s",
            "ratio": f"{m_build.seconds / max(m_anchor.seconds, 1e-9):.2f}",
            "notes": f"peak {m_build.peak_mib:.0f} MiB",
        },
        {
            "task": "base-grid map file size",
            "ours": f"{size_mb:.1f} MB",
            "anchor_name": "folium GeoJson (grids only, CDN assets)",
            "anchor": f"{anchor_mb:.1f} MB",
            "ratio": f"{size_mb / max(anchor_mb, 1e-9):.2f}",
            "notes": "target ≤ 15 MB; ours inlines Leaflet + plugins and draws city/towns/communities/roads",
        },
    ]
    if Path(CHROMIUM).exists():
        secs, foreign = _load_seconds(path)
        rows.append(
            {
                "task": "base-grid map: load event in headless Chromium (median of 3)",
                "ours": f"{secs:.2f} s",
                "anchor_name": "target",
                "anchor": "5 s",
                "ratio": f"{secs / 5:.2f}",
                "notes": f"file://, {foreign} off-page requests",
            }
        )
    rows += _cases_rows(grids, out)
    return rows


N_CASES = 50_000


def _synthetic_cases(grids: Any, n: int = N_CASES, seed: int = 0) -> Any:
    """*n* cases spread over the base grids (random points, categories, dates, addresses of real length)."""
    import geopandas as gpd
    import numpy as np
    import pandas as pd
    import shapely

    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = grids.total_bounds
    union = shapely.union_all(grids.geometry.values)
    pts: list[Any] = []
    while sum(len(p) for p in pts) < n:
        cand = shapely.points(rng.uniform(x0, x1, n), rng.uniform(y0, y1, n))
        pts.append(cand[shapely.contains_xy(union, shapely.get_coordinates(cand)[:, 0],
                                            shapely.get_coordinates(cand)[:, 1])])
    geom = gpd.GeoSeries(np.concatenate(pts)[:n], crs=grids.crs).to_crs(4326)
    cats = np.array(["消防隐患", "治安", "环境卫生", "出租屋", "安全生产", "占道经营", "噪音扰民"])
    days = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
    return pd.DataFrame({
        "case_id": [f"C{i:07d}" for i in range(n)],
        "category": cats[rng.integers(0, len(cats), n)],
        "reported_at": days.strftime("%Y-%m-%d"),
        "address": [f"东莞市莞城街道某某社区鸿福路{i % 900 + 1}号{i % 7 + 1}栋" for i in range(n)],
        "status": rng.choice(["M", "T", "C"], n),
        "grid_code": rng.choice(grids["grid_code"].to_numpy(), n),
        "lon": geom.x.to_numpy(),
        "lat": geom.y.to_numpy(),
    })


def _cases_rows(grids: Any, out: Path) -> list[dict[str, str]]:
    """Issue 19: the 50,000-case map's file size and time until its markers are drawn."""
    from gridplan import maps

    cases = _synthetic_cases(grids)
    with measure() as m_build:
        m = maps.cases_map(cases, base_grids=grids)
        path = maps.publish_map(m, out, title="案件分布", slug="cases")
    size_mb = path.stat().st_size / 1e6
    rows = [{
        "task": f"cases map build+publish ({N_CASES:,} cases)",
        "ours": f"{m_build.seconds:.1f} s",
        "anchor_name": "target file size",
        "anchor": "8 MB",
        "ratio": f"{size_mb / 8:.2f}",
        "notes": (f"{size_mb:.1f} MB, {size_mb * 1e6 / N_CASES:.0f} bytes a case; "
                  f"peak {m_build.peak_mib:.0f} MiB"),
    }]
    if Path(CHROMIUM).exists():
        secs, foreign = _load_seconds(path, layer="cases", expect=N_CASES)
        rows.append({
            "task": f"cases map ({N_CASES:,}): all markers clustered in headless Chromium (median of 3)",
            "ours": f"{secs:.2f} s",
            "anchor_name": "target",
            "anchor": "3 s",
            "ratio": f"{secs / 3:.2f}",
            "notes": f"file://, {foreign} off-page requests",
        })
    return rows


if __name__ == "__main__":
    print(run(sys.argv[1] if len(sys.argv) > 1 else "city"))
