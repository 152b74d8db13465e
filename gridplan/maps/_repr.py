"""Maps that display offline in Jupyter: the notebook view inlines the same assets as a published page.

folium's ``Map._repr_html_`` renders the page with its CDN ``<script src>``/``<link href>`` tags (six
URLs), so on an intranet a map shown as ``m`` in a notebook is blank.  Our builders return
:class:`OfflineMap` / :class:`OfflineDualMap`, whose notebook view is the page of
:func:`gridplan.maps.publish.render_html` — Leaflet and plugins inlined, refused if any remote
reference remains — in a sandbox-free ``<iframe srcdoc>`` (the isolation folium uses too, so the
notebook's own CSS and JavaScript cannot reach the map).
"""

from __future__ import annotations

import html
from typing import Any

import folium
from folium.plugins import DualMap

__all__ = ["OfflineDualMap", "OfflineMap", "offline_repr_html"]

#: Height of the notebook view; the width follows the notebook's cell.
NOTEBOOK_HEIGHT_PX = 520


def offline_repr_html(m: Any, *, height_px: int = NOTEBOOK_HEIGHT_PX) -> str:
    """Return the notebook HTML of map *m*: its offline page in an ``<iframe srcdoc>``."""
    from gridplan.maps.publish import render_html

    tile_url = getattr(m, "_gridplan_tile_url", None)
    page = render_html(m, tile_url=tile_url)
    return (
        f'<iframe srcdoc="{html.escape(page, quote=True)}" '
        f'style="width:100%;height:{int(height_px)}px;border:none" allowfullscreen></iframe>'
    )


class OfflineMap(folium.Map):
    """A ``folium.Map`` whose notebook view works offline (assets inlined, no CDN)."""

    def _repr_html_(self, **kwargs: Any) -> str:
        return offline_repr_html(self)


class OfflineDualMap(DualMap):
    """A ``folium.plugins.DualMap`` whose notebook view works offline."""

    def _repr_html_(self, **kwargs: Any) -> str:
        return offline_repr_html(self)
