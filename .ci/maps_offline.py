"""CI: every map a published folder lists loads in headless Chromium with the network cut off.

Usage: ``python .ci/maps_offline.py MAPS_DIR`` (run with the dev virtualenv, which has Playwright;
Chromium from ``GRIDPLAN_CHROMIUM`` or /usr/bin/chromium).  For each map of ``manifest.json``:
no request leaves the page's own file (the context is offline; any other is reported), no console error, and
Leaflet drew at least one layer.  Exit 1 with one line per failure.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def check(maps_dir: Path) -> list[str]:
    """Failures of the maps in *maps_dir* (``[]`` when every map loads offline)."""
    from playwright.sync_api import sync_playwright

    manifest = json.loads((maps_dir / "manifest.json").read_text(encoding="utf-8"))
    pages = [maps_dir / "index.html"] + [maps_dir / m["file"] for m in manifest["maps"]]
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=os.environ.get("GRIDPLAN_CHROMIUM", "/usr/bin/chromium"),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
        )
        context = browser.new_context(offline=True)  # no network at all: a request that leaves fails
        for path in pages:
            own = path.resolve().as_uri()
            page = context.new_page()
            foreign: list[str] = []
            errors: list[str] = []
            page.on(
                "request",
                lambda r, own=own, foreign=foreign: None
                if r.url == own or r.url.startswith("data:")
                else foreign.append(r.url),
            )
            page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            page.goto(own, wait_until="load")
            if path.name != "index.html":
                layers = page.evaluate(
                    "() => typeof L === 'undefined' || !window.gridplan ? 0 : window.gridplan.maps.reduce("
                    "(n, m) => n + Object.values(m.layers).filter(l => m.map.hasLayer(l)).length, 0)"
                )
                if not layers:
                    problems.append(f"{path.name}: Leaflet is not loaded or shows no layer")
            if foreign:
                problems.append(f"{path.name}: requests left the page: {foreign[:3]}")
            if errors:
                problems.append(f"{path.name}: console errors: {errors[:3]}")
            page.close()
        browser.close()
    print(f"{len(pages)} pages of {maps_dir} checked offline in Chromium: {len(problems)} problems")
    return problems


if __name__ == "__main__":
    found = check(Path(sys.argv[1]))
    for line in found:
        print(line, file=sys.stderr)
    sys.exit(1 if found else 0)
