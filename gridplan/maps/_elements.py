"""Small folium elements of our own: HTML controls (title, legends), the page registry, Chinese UI.

Every string these elements emit is either built from :mod:`gridplan.maps.escape` output or passed
to the page through :func:`~gridplan.maps.escape.js_json`, never pasted raw into JavaScript.
"""

from __future__ import annotations

from typing import Any

import folium
from branca.element import MacroElement
from jinja2 import Template

from gridplan.maps.escape import escape_html, js_json

__all__ = ["HtmlControl", "Registry", "legend_html", "title_html"]


class HtmlControl(MacroElement):
    """A Leaflet control showing trusted, already-escaped HTML (title box, legend).

    Parameters
    ----------
    html
        HTML built by this package from escaped strings.
    position
        ``topleft``, ``topright``, ``bottomleft`` or ``bottomright``.
    layer
        The folium layer a legend belongs to: the control is shown only while that layer is on
        the map (switching it in the layer control shows or hides its legend).

    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function(){
            var m = {{ this._parent.get_name() }};
            var ctl = L.control({position: {{ this.js_position }}});
            ctl.onAdd = function() {
                var div = L.DomUtil.create('div', 'gridplan-box');
                div.innerHTML = {{ this.js_html }};
                L.DomEvent.disableClickPropagation(div);
                return div;
            };
            ctl.addTo(m);
            {%- if this.layer is not none %}
            var lay = {{ this.layer.get_name() }};
            var sync = function() {
                ctl.getContainer().style.display = m.hasLayer(lay) ? '' : 'none';
            };
            m.on('overlayadd overlayremove', sync);
            sync();
            {%- endif %}
        })();
        {% endmacro %}
        """
    )

    def __init__(self, html: str, *, position: str = "bottomright", layer: Any = None) -> None:
        super().__init__()
        self.layer = layer
        self._name = "HtmlControl"
        if position not in ("topleft", "topright", "bottomleft", "bottomright"):
            raise ValueError(f"bad control position {position!r}")
        self.js_html = js_json(html)
        self.js_position = js_json(position)


class Registry(MacroElement):
    """Publishes the Leaflet map and its named layers as ``window.gridplan.maps[i]`` for tests.

    Also sets the Chinese UI (zoom button titles, metric-only scale bar) and an attribution prefix
    without an external link.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function(){
            var m = {{ this._parent.get_name() }};
            window.gridplan = window.gridplan || {maps: []};
            var layers = {};
            {%- for key, el in this.layers.items() %}
            layers[{{ key }}] = {{ el.get_name() }};
            {%- endfor %}
            window.gridplan.maps.push({map: m, layers: layers, title: {{ this.js_title }}});
            L.control.scale({imperial: false, metric: true}).addTo(m);
            if (m.attributionControl) { m.attributionControl.setPrefix('Leaflet'); }
            if (m.zoomControl) {
                m.zoomControl._zoomInButton.title = '放大';
                m.zoomControl._zoomOutButton.title = '缩小';
            }
        })();
        {% endmacro %}
        """
    )

    def __init__(self, title: str = "") -> None:
        super().__init__()
        self._name = "Registry"
        self._layers: dict[str, Any] = {}
        self.js_title = js_json(title)

    @property
    def layers(self) -> dict[str, Any]:
        """JSON-quoted key → folium element."""
        return {js_json(k): v for k, v in self._layers.items()}

    def register(self, key: str, element: Any) -> Any:
        """Remember *element* under *key*; returns the element."""
        self._layers[key] = element
        return element


_BOX_CSS = (
    "<style>.gridplan-box{background:rgba(255,255,255,.92);padding:6px 9px;border-radius:4px;"
    "box-shadow:0 1px 4px rgba(0,0,0,.3);font:12px/1.4 'Noto Sans CJK SC','Microsoft YaHei',sans-serif;"
    "max-width:320px}.gridplan-box h4{margin:0 0 4px;font-size:14px}.gridplan-box i{display:inline-block;"
    "width:14px;height:12px;margin-right:5px;vertical-align:middle;border:1px solid #777}"
    ".gridplan-label{background:transparent;border:0;box-shadow:none;color:#555;font-weight:bold;"
    "text-shadow:0 0 3px #fff,0 0 3px #fff}.gridplan-label:before{display:none}"
    ".leaflet-popup-content table th{text-align:right;padding-right:6px;color:#555;font-weight:normal}"
    "</style>"
)


def add_page_css(m: folium.Map) -> None:
    """Add the shared CSS of titles, legends and labels to the page (once)."""
    root: Any = m.get_root()
    root.header.add_child(folium.Element(_BOX_CSS), name="gridplan_css")


def title_html(title: str, subtitle: str = "") -> str:
    """HTML of the title box (both strings escaped here)."""
    sub = f"<div>{escape_html(subtitle)}</div>" if subtitle else ""
    return f"<h4>{escape_html(title)}</h4>{sub}"


def legend_html(caption: str, rows: list[tuple[str, str]], *, outline: bool = False) -> str:
    """HTML of a legend: a caption and (colour, label) rows; every label escaped here.

    Examples
    --------
    >>> legend_html("图例", [("#ff0000", "<b>")])
    '<h4>图例</h4><div><i style="background:#ff0000"></i>&lt;b&gt;</div>'

    """
    out = [f"<h4>{escape_html(caption)}</h4>"]
    for color, label in rows:
        c = _css_color(color)
        style = f"background:transparent;border:2px solid {c}" if outline else f"background:{c}"
        out.append(f'<div><i style="{style}"></i>{escape_html(label)}</div>')
    return "".join(out)


def _css_color(color: str) -> str:
    """Accept only ``#rgb``/``#rrggbb`` colours (they come from our palettes, checked anyway)."""
    s = str(color)
    if s.startswith("#") and len(s) in (4, 7, 9) and all(ch in "0123456789abcdefABCDEF" for ch in s[1:]):
        return s
    raise ValueError(f"not a hex colour: {color!r}")
