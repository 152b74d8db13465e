"""Published maps: city-scale base-grid map size and time to the load event in headless Chromium.

Targets (issue 6): the ~3,000-grid base-grid map with its offline background (city, towns,
communities, roads) is ≤ 15 MB and reaches its load event in ≤ 5 s.  The anchor is the same map
built the way a folium user would: ``GeoDataFrame.explore``-style ``folium.GeoJson`` of the
unsimplified grids at full coordinate precision with the default CDN assets (its load time is
not measured: it needs the internet).
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


def _load_seconds(path: Path, runs: int = 3) -> tuple[float, int]:
    """Median seconds from navigation start to the load event; and the number of off-page requests."""
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
            times.append(time.perf_counter() - t0)
            n = page.evaluate("() => window.gridplan.maps[0].layers.grids.getLayers().length")
            assert n > 0
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
    return rows


if __name__ == "__main__":
    print(run(sys.argv[1] if len(sys.argv) > 1 else "city"))
