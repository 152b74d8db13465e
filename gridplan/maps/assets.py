"""Offline Leaflet assets: folium's CDN links replaced by inlined copies of the npm packages.

What this module owns
---------------------
* Where the JavaScript/CSS comes from: ``gridplan/maps/assets/vendor/`` — the files of the npm
  packages pinned in ``gridplan/maps/assets/package.json`` + ``package-lock.json`` (leaflet,
  leaflet.markercluster, leaflet.fullscreen, leaflet-search, leaflet.sync — the versions folium's
  templates expect), with their licences and a checksummed ``MANIFEST.json``, shipped in the wheel.
  They are copied by :mod:`gridplan.maps.assets_vendor` from ``npm ci`` output, never by hand.
* :func:`make_offline`: walks a folium element tree, empties every ``default_js``/``default_css``
  (folium's Map alone links leaflet, jquery, bootstrap, awesome-markers and font-awesome from four
  CDNs) and puts the needed libraries into the page header as inline ``<script>``/``<style>``
  blocks, with every ``url(...)`` image of the CSS turned into a ``data:`` URI.  A map file is then
  one self-contained HTML file that opens from ``file://`` on a machine with no internet.

jQuery, Bootstrap, awesome-markers and font-awesome are not shipped: gridplan's maps use no
``folium.Icon`` markers and no Bootstrap widgets, so they would be dead weight.  An element whose
assets are unknown here raises :class:`AssetError` rather than silently linking a CDN.
"""

from __future__ import annotations

import base64
import mimetypes
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from branca.element import Element, Figure

from gridplan.errors import GridplanError

__all__ = ["ASSET_DIR", "AssetError", "Bundle", "bundle_for", "inline_bundles", "make_offline"]

#: Folder holding package.json, package-lock.json (the pins) and vendor/ (the shipped files).
ASSET_DIR = Path(__file__).resolve().parent / "assets"
INSTALL_HINT = "pip install --force-reinstall gridplan"


class AssetError(GridplanError):
    """The offline map assets are missing or an element needs an asset we do not ship."""


@dataclass(frozen=True)
class Bundle:
    """One library: its JS and CSS files relative to ``vendor/`` (the npm package layout)."""

    name: str
    js: tuple[str, ...]
    css: tuple[str, ...]


#: The libraries gridplan inlines, in load order (Leaflet first).
BUNDLES: dict[str, Bundle] = {
    "leaflet": Bundle("leaflet", ("leaflet/dist/leaflet.js",), ("leaflet/dist/leaflet.css",)),
    "markercluster": Bundle(
        "markercluster",
        ("leaflet.markercluster/dist/leaflet.markercluster.js",),
        (
            "leaflet.markercluster/dist/MarkerCluster.css",
            "leaflet.markercluster/dist/MarkerCluster.Default.css",
        ),
    ),
    "fullscreen": Bundle(
        "fullscreen",
        ("leaflet.fullscreen/Control.FullScreen.js",),
        ("leaflet.fullscreen/Control.FullScreen.css",),
    ),
    "search": Bundle(
        "search",
        ("leaflet-search/dist/leaflet-search.min.js",),
        ("leaflet-search/dist/leaflet-search.min.css",),
    ),
    "sync": Bundle("sync", ("leaflet.sync/L.Map.Sync.js",), ()),
}

# folium default_js/default_css names → the bundle that replaces them (None: not needed).
_LINK_NAMES: dict[str, str | None] = {
    "leaflet": "leaflet",
    "leaflet_css": "leaflet",
    "jquery": None,
    "bootstrap": None,
    "bootstrap_css": None,
    "glyphicons_css": None,
    "awesome_markers": None,
    "awesome_markers_font_css": None,
    "awesome_markers_css": None,
    "awesome_rotate_css": None,
    "markerclusterjs": "markercluster",
    "markerclustercss": "markercluster",
    "markerclusterdefaultcss": "markercluster",
    "Control.Fullscreen.js": "fullscreen",
    "Control.FullScreen.css": "fullscreen",
    "Leaflet.Search.js": "search",
    "Leaflet.Search.css": "search",
    "Leaflet.Sync": "sync",
}

_URL_RE = re.compile(r"url\(\s*['\"]?([^'\")]+?)['\"]?\s*\)")
_CLOSE_SCRIPT_RE = re.compile(r"</(script)", re.IGNORECASE)
_CLOSE_STYLE_RE = re.compile(r"</(style)", re.IGNORECASE)


def _vendor() -> Path:
    nm = ASSET_DIR / "vendor"
    if not (nm / "leaflet" / "dist" / "leaflet.js").exists():
        raise AssetError(f"offline map assets are missing from {nm}: the installation is damaged; "
                         f"reinstall ({INSTALL_HINT})")
    return nm


def _data_uri(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if path.suffix == ".svg":
        mime = "image/svg+xml"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _inline_css(path: Path) -> str:
    """CSS text with every relative ``url()`` replaced by a data URI (``#…`` VML refs kept)."""
    text = path.read_text(encoding="utf-8")

    def repl(m: re.Match[str]) -> str:
        ref = m.group(1)
        if ref.startswith(("#", "data:")):
            return m.group(0)
        if "://" in ref or ref.startswith("//"):
            raise AssetError(f"{path.name}: CSS refers to a remote resource {ref!r}")
        target = (path.parent / ref).resolve()
        if not target.exists():
            raise AssetError(f"{path.name}: CSS image {ref} not found ({target})")
        return f'url("{_data_uri(target)}")'

    return _CLOSE_STYLE_RE.sub(r"<\\/\1", _URL_RE.sub(repl, text))


@lru_cache(maxsize=16)
def _bundle_html(name: str) -> str:
    nm = _vendor()
    b = BUNDLES[name]
    parts: list[str] = []
    for css in b.css:
        parts.append(f'<style data-gridplan-asset="{name}">\n{_inline_css(nm / css)}\n</style>')
    for js in b.js:
        code = (nm / js).read_text(encoding="utf-8")
        code = _CLOSE_SCRIPT_RE.sub(r"<\\/\1", code)
        parts.append(f'<script data-gridplan-asset="{name}">\n{code}\n</script>')
    return "\n".join(parts)


def inline_bundles(names: list[str] | tuple[str, ...]) -> str:
    """HTML (``<style>`` + ``<script>``) inlining the given bundles, in :data:`BUNDLES` order."""
    wanted = [n for n in BUNDLES if n in set(names)]
    return "\n".join(_bundle_html(n) for n in wanted)


def _walk(element: Any) -> list[Any]:
    out = [element]
    for child in getattr(element, "_children", {}).values():
        out.extend(_walk(child))
    return out


def bundle_for(link_name: str, url: str = "") -> str | None:
    """Name of the bundle replacing a folium asset link (``None`` when it is not needed).

    Raises :class:`AssetError` for an asset gridplan does not ship.

    Examples
    --------
    >>> bundle_for("leaflet_css"), bundle_for("jquery")
    ('leaflet', None)

    """
    if link_name in _LINK_NAMES:
        return _LINK_NAMES[link_name]
    raise AssetError(f"map element needs asset {link_name!r} ({url}) that gridplan does not ship offline")


def make_offline(root: Figure) -> list[str]:
    """Strip every CDN link from the element tree under *root* and inline the needed libraries.

    Parameters
    ----------
    root
        The :class:`branca.element.Figure` of a folium map (``m.get_root()``); changed in place,
        once (a second call is a no-op).

    Returns
    -------
    list of str
        Names of the inlined bundles.

    """
    done = getattr(root, "_gridplan_offline", None)
    if done is not None:
        return list(done)
    needed: set[str] = {"leaflet"}
    for el in _walk(root):
        for attr in ("default_js", "default_css"):
            links = getattr(el, attr, None)
            if not links:
                continue
            for name, url in links:
                bundle = bundle_for(name, url)
                if bundle:
                    needed.add(bundle)
            setattr(el, attr, [])
    names = [n for n in BUNDLES if n in needed]
    root.header.add_child(Element(inline_bundles(names)), name="gridplan_assets", index=1)
    setattr(root, "_gridplan_offline", names)  # noqa: B010 - marks the figure as converted
    return names
