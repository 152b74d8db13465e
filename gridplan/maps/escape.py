r"""The one place where user-supplied strings are made safe for the HTML and JavaScript of a map.

Every map builder passes every string that came from data or from a user (case text, addresses,
names, codes, categories, layer titles, column names) through this module before it reaches a
folium element.  Two contexts matter:

* **HTML** — Leaflet's ``bindPopup``/``bindTooltip``, the layer control and leaflet-search all put
  their strings into ``innerHTML``: ``<img src=x onerror=…>`` runs there.  :func:`escape_html`
  entity-encodes ``& < > " '`` (and ``/``, so no URL in user text looks like a link to load).
* **JavaScript source** — folium writes ``Popup``/``Tooltip`` text and some plugin options *into the
  script itself*, often inside a template literal (`` `…` ``) or a quoted string, where
  ``${alert(1)}`` is evaluated even after ``html.escape`` and ``</script>`` in the data ends the
  script block.  :func:`escape_html` therefore also entity-encodes `` ` ``, ``$``, ``\``, ``{``,
  ``}`` and line terminators, so its output is inert text in an HTML context *and* a no-op inside
  any JS string or template literal.  Data that travels as JSON inside ``<script>`` goes through
  :func:`js_json`, which escapes ``< > & ' ` $`` and U+2028/9 to ``\uXXXX``.

Why hand-written: ``html.escape`` and Jinja's ``tojson`` each cover one context only; the union
of both, applied in one place, is what makes folium's templates safe.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

__all__ = ["escape_html", "escape_values", "js_json", "js_string"]

# HTML entity for every character that is special in HTML text, attributes, JS strings or JS
# template literals.  "&" must be replaced first (it is the escape character itself).
_HTML_TABLE = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "'": "&#x27;",
        "`": "&#x60;",
        "$": "&#x24;",
        "\\": "&#x5C;",
        "{": "&#x7B;",
        "}": "&#x7D;",
        "/": "&#x2F;",
        "\n": "&#10;",
        "\r": "&#13;",
        "\u2028": "&#x2028;",
        "\u2029": "&#x2029;",
        "\x00": "",
    }
)

# \uXXXX escapes for JSON placed inside <script> (after json.dumps, so quotes are already safe).
_JS_TABLE = str.maketrans(
    {
        "<": "\\u003c",
        ">": "\\u003e",
        "&": "\\u0026",
        "'": "\\u0027",
        "`": "\\u0060",
        "$": "\\u0024",
        "\u2028": "\\u2028",
        "\u2029": "\\u2029",
    }
)


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def escape_html(value: Any) -> str:
    r"""Return *value* as text that is inert in HTML and inside any JavaScript string literal.

    Parameters
    ----------
    value
        Anything; ``None``/NaN/``pd.NA`` become ``""``, other values ``str(value)``.

    Returns
    -------
    str
        The text with ``& < > " ' ` $ \ { }`` and line breaks replaced by HTML character
        references, so a browser displays exactly the original characters.

    Examples
    --------
    >>> escape_html("<img src=x onerror=alert(1)>")
    '&lt;img src=x onerror=alert(1)&gt;'
    >>> escape_html("${alert(1)}")
    '&#x24;&#x7B;alert(1)&#x7D;'
    >>> escape_html(None)
    ''

    """
    if _is_missing(value):
        return ""
    return str(value).translate(_HTML_TABLE)


def escape_values(values: Any) -> list[str]:
    """Vector form of :func:`escape_html` for a sequence (e.g. a pandas Series).

    Examples
    --------
    >>> escape_values(["a&b", None, 3])
    ['a&amp;b', '', '3']

    """
    return [escape_html(v) for v in values]


def js_json(obj: Any) -> str:
    r"""Serialise *obj* as JSON that is safe to place anywhere inside a ``<script>`` element.

    Examples
    --------
    >>> js_json({"t": "</script>`${x}`"})
    '{"t": "\\u003c/script\\u003e\\u0060\\u0024{x}\\u0060"}'

    """
    return json.dumps(obj, ensure_ascii=False, allow_nan=False).translate(_JS_TABLE)


def js_string(value: Any) -> str:
    r"""Return a quoted JavaScript string literal for *value* (see :func:`js_json`).

    Examples
    --------
    >>> js_string("a'b")
    '"a\\u0027b"'

    """
    return js_json("" if _is_missing(value) else str(value))
