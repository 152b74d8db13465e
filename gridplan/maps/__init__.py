"""Published maps for leaders: folium builders, offline assets, escaping, publishing (PRODUCT §3.7).

* :mod:`gridplan.maps.builders` — GeoDataFrames in, ``folium.Map``/``DualMap`` out (no analysis).
* :mod:`gridplan.maps.escape` — the one place user strings are escaped for HTML and JavaScript.
* :mod:`gridplan.maps.assets` — Leaflet and plugins inlined from the pinned npm packages.
* :mod:`gridplan.maps.simplify` — topology-preserving display simplification, ~1 m coordinates.
* :mod:`gridplan.maps.publish` — atomic publishing, slugs, ``index.html`` and ``manifest.json``.
"""

from __future__ import annotations

from gridplan.maps.builders import (
    EMERGING_PATTERNS,
    GI_BINS,
    MapOptions,
    base_grid_map,
    cases_map,
    dept_grid_map,
    dual_grid_map,
    heatmap_map,
    hotspot_map,
    qa_map,
)
from gridplan.maps.escape import escape_html, js_json
from gridplan.maps.publish import publish_map, read_manifest, render_html, slugify

__all__ = [
    "EMERGING_PATTERNS",
    "GI_BINS",
    "MapOptions",
    "base_grid_map",
    "cases_map",
    "dept_grid_map",
    "dual_grid_map",
    "escape_html",
    "heatmap_map",
    "hotspot_map",
    "js_json",
    "publish_map",
    "qa_map",
    "read_manifest",
    "render_html",
    "slugify",
]
