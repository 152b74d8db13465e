"""Published maps for leaders: folium builders, offline assets, escaping, publishing (PRODUCT §3.7).

* :mod:`gridplan.maps.grid_maps` — base grids, departmental grids, QA, before/after (``DualMap``).
* :mod:`gridplan.maps.event_maps` — heat raster, Gi* hot spots and emerging patterns, cases.
  Both: GeoDataFrames in, ``folium.Map`` out, no analysis; shared rules in ``maps._layers``.
* :mod:`gridplan.maps.escape` — the one place user strings are escaped for HTML and JavaScript.
* :mod:`gridplan.maps.assets` — Leaflet and plugins inlined from the pinned npm packages.
* :mod:`gridplan.maps.simplify` — topology-preserving display simplification, ~1 m coordinates.
* :mod:`gridplan.maps.publish` — atomic publishing, slugs, ``index.html`` and ``manifest.json``.
* :mod:`gridplan.maps.standard` — the standard map set of a plan (what ``gridplan publish`` makes).
"""

from __future__ import annotations

from gridplan.maps._layers import LayerStyle, MapOptions
from gridplan.maps._palettes import CHANGE_KINDS, EMERGING_PATTERNS, GI_BINS, QA_ISSUES
from gridplan.maps.escape import escape_html, js_json
from gridplan.maps.event_maps import cases_map, heatmap_map, hotspot_map
from gridplan.maps.grid_maps import base_grid_map, dept_grid_map, dual_grid_map, qa_map
from gridplan.maps.publish import publish_map, read_manifest, render_html, slugify
from gridplan.maps.standard import PublishedMap, StandardInputs, StandardMapOptions, publish_standard_set

__all__ = [
    "CHANGE_KINDS",
    "EMERGING_PATTERNS",
    "GI_BINS",
    "QA_ISSUES",
    "LayerStyle",
    "MapOptions",
    "PublishedMap",
    "StandardInputs",
    "StandardMapOptions",
    "base_grid_map",
    "cases_map",
    "dept_grid_map",
    "dual_grid_map",
    "escape_html",
    "heatmap_map",
    "hotspot_map",
    "js_json",
    "publish_map",
    "publish_standard_set",
    "qa_map",
    "read_manifest",
    "render_html",
    "slugify",
]
