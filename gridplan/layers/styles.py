"""QGIS-ready GeoPackages: a default style per layer and Chinese field aliases.

QGIS reads two optional tables of a GeoPackage when it opens a layer, and a planner then sees a
styled layer with Chinese field names instead of a random single colour and ``gi_bin``:

* ``layer_styles`` — the table QGIS itself writes ("Save as default" in the GeoPackage): one row
  per layer with a QML document (the QGIS style) and an SLD document (the same classes for
  GeoServer or other OGC clients), ``useAsDefault = 1``.  It is deliberately **not** registered
  in ``gpkg_contents`` (QGIS finds it by name), and the file declares GDAL's ``gdal_aspatial``
  extension, with which GDAL lists only the tables of ``gpkg_contents``: our readers and every
  ``pyogrio.list_layers`` caller see the same layers as before.
* ``gpkg_data_columns`` — the GeoPackage *schema* extension: ``name``/``title`` of every column is
  its Chinese label from :mod:`gridplan.layers.labels`; GDAL ≥ 3.3 reads ``name`` as the field's
  alternative name, which QGIS shows as the alias.  The QML carries the same aliases.

Which style a layer gets follows its columns, so any writer's layers are styled the same way:
``gi_bin`` → the ArcGIS hot-spot colours, ``pattern`` → the emerging hot-spot colours, ``issue``
→ QA kinds, ``change`` → plan-diff kinds, ``base_grids`` → graduated households band (below /
in / above the plan's band), ``atomic_units`` and departmental grids → outlines; anything else
a single symbol of its geometry type.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from gridplan.layers.labels import department_label, field_label, value_label, vocabulary

logger = logging.getLogger(__name__)

__all__ = ["STYLE_NAME", "Style", "StyleClass", "layer_style", "style_geopackage", "style_qml", "style_sld"]

#: ``styleName`` of the rows we write in ``layer_styles``.
STYLE_NAME = "gridplan"

_BAND_COLORS = ("#9ecae1", "#a1d99b", "#fc9272")  # below / in / above the households band
_OUTLINE = "#636363"


@dataclass(frozen=True)
class StyleClass:
    """One class of a style: a category ``value`` or a range ``[lower, upper)``, its colour and label."""

    label: str
    color: str
    value: str | None = None
    lower: float | None = None
    upper: float | None = None


@dataclass(frozen=True)
class Style:
    """The default style of one layer: ``kind`` ∈ {single, categorized, graduated}."""

    kind: str
    geometry: str  # fill | line | marker
    attr: str = ""
    classes: tuple[StyleClass, ...] = ()
    color: str = "#bdbdbd"
    fill: bool = True


def _categories(column: str, present: Sequence[str] | None = None) -> tuple[StyleClass, ...]:
    out = [
        StyleClass(label=zh, color=color or "#bdbdbd", value=value)
        for value, (zh, color) in vocabulary(column).items()
    ]
    return tuple(out)


def _band(households_band: tuple[int, int]) -> tuple[StyleClass, ...]:
    lo, hi = households_band
    return (
        StyleClass(f"{value_label('band_status', 'below')}（< {lo} 户）", _BAND_COLORS[0], lower=0, upper=lo),
        StyleClass(
            f"{value_label('band_status', 'ok')}（{lo}–{hi} 户）", _BAND_COLORS[1], lower=lo, upper=hi
        ),
        StyleClass(
            f"{value_label('band_status', 'above')}（> {hi} 户）", _BAND_COLORS[2], lower=hi, upper=1e12
        ),
    )


def layer_style(
    name: str, columns: Sequence[str], geometry_type: str, *, households_band: tuple[int, int] = (300, 500)
) -> Style:
    """Return the default :class:`Style` of layer *name* with *columns* and GeoPackage *geometry_type*.

    Examples
    --------
    >>> s = layer_style("hotspots", ["grid_code", "gi_bin"], "MULTIPOLYGON")
    >>> s.kind, s.attr, s.classes[0].label, s.classes[0].color
    ('categorized', 'gi_bin', '冷点 - 99% 置信度', '#4575b5')
    >>> layer_style("base_grids", ["households"], "POLYGON", households_band=(200, 400)).classes[1].label
    '在范围内（200–400 户）'

    """
    geom = geometry_type.upper()
    kind = "marker" if "POINT" in geom else "line" if "LINE" in geom or geom == "CURVE" else "fill"
    cols = set(columns)
    for attr in ("gi_bin", "pattern", "issue", "change"):
        if attr in cols:
            return Style("categorized", kind, attr, _categories(attr))
    if name == "base_grids" and "households" in cols:
        return Style("graduated", kind, "households", _band(households_band))
    if name == "atomic_units":
        return Style("single", kind, color="#969696", fill=False)
    if name.startswith("dept_"):
        return Style("single", kind, color="#3182bd", fill=False)
    if name == "uncovered":
        return Style("single", kind, color="#d62f27")
    if name == "posts":
        return Style("single", kind, color="#08519c")
    return Style("single", kind)


def _rgba(color: str, alpha: int = 255) -> str:
    c = color.lstrip("#")
    return f"{int(c[0:2], 16)},{int(c[2:4], 16)},{int(c[4:6], 16)},{alpha}"


def _symbol_xml(style: Style, color: str, name: str) -> str:
    opts: dict[str, str]
    if style.geometry == "marker":
        cls, qtype = "SimpleMarker", "marker"
        opts = {
            "color": _rgba(color),
            "name": "circle",
            "size": "2.4",
            "outline_color": "255,255,255,255",
            "outline_width": "0.2",
        }
    elif style.geometry == "line":
        cls, qtype = "SimpleLine", "line"
        opts = {"line_color": _rgba(color), "line_width": "0.5", "line_style": "solid"}
    else:
        cls, qtype = "SimpleFill", "fill"
        stroke = color if not style.fill else _OUTLINE
        opts = {
            "color": _rgba(color, 200 if style.fill else 0),
            "style": "solid" if style.fill else "no",
            "outline_color": _rgba(stroke),
            "outline_width": "0.26" if style.fill else "0.4",
            "outline_style": "solid",
        }
    body = "".join(f'<Option name="{k}" type="QString" value={quoteattr(v)}/>' for k, v in opts.items())
    return (
        f'<symbol type="{qtype}" name="{name}" alpha="1" clip_to_extent="1" force_rhr="0">'
        f'<layer class="{cls}" enabled="1" pass="0" locked="0"><Option type="Map">{body}</Option>'
        "</layer></symbol>"
    )


def _renderer_xml(style: Style) -> str:
    if style.kind == "single":
        return (
            f'<renderer-v2 type="singleSymbol" symbollevels="0" enableorderby="0" forceraster="0">'
            f"<symbols>{_symbol_xml(style, style.color, '0')}</symbols></renderer-v2>"
        )
    symbols = "".join(_symbol_xml(style, c.color, str(i)) for i, c in enumerate(style.classes))
    if style.kind == "categorized":
        items = "".join(
            f"<category value={quoteattr(str(c.value))} label={quoteattr(c.label)}"
            f' symbol="{i}" render="true"/>'
            for i, c in enumerate(style.classes)
        )
        return (
            f'<renderer-v2 type="categorizedSymbol" attr={quoteattr(style.attr)} symbollevels="0" '
            f'enableorderby="0" forceraster="0"><categories>{items}</categories>'
            f"<symbols>{symbols}</symbols></renderer-v2>"
        )
    ranges = "".join(
        f'<range lower="{c.lower}" upper="{c.upper}" label={quoteattr(c.label)} symbol="{i}" render="true"/>'
        for i, c in enumerate(style.classes)
    )
    return (
        f'<renderer-v2 type="graduatedSymbol" attr={quoteattr(style.attr)} graduatedMethod="GraduatedColor" '
        f'symbollevels="0" enableorderby="0" forceraster="0"><ranges>{ranges}</ranges>'
        f"<symbols>{symbols}</symbols></renderer-v2>"
    )


def style_qml(style: Style, columns: Sequence[str]) -> str:
    """Return the QML document of *style* with the Chinese alias of every column."""
    aliases = "".join(
        f'<alias index="{i}" field={quoteattr(c)} name={quoteattr(field_label(c))}/>'
        for i, c in enumerate(columns)
    )
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"
        '<qgis version="3.28.0" styleCategories="AllStyleCategories">'
        f"{_renderer_xml(style)}<aliases>{aliases}</aliases></qgis>"
    )


def _sld_symbolizer(style: Style, color: str) -> str:
    def p(name: str, value: str) -> str:
        return f'<se:SvgParameter name="{name}">{value}</se:SvgParameter>'

    if style.geometry == "marker":
        return (
            "<se:PointSymbolizer><se:Graphic><se:Mark><se:WellKnownName>circle</se:WellKnownName>"
            f"<se:Fill>{p('fill', color)}</se:Fill></se:Mark><se:Size>7</se:Size></se:Graphic>"
            "</se:PointSymbolizer>"
        )
    if style.geometry == "line":
        stroke = p("stroke", color) + p("stroke-width", "1")
        return f"<se:LineSymbolizer><se:Stroke>{stroke}</se:Stroke></se:LineSymbolizer>"
    fill = f"<se:Fill>{p('fill', color)}{p('fill-opacity', '0.8')}</se:Fill>" if style.fill else ""
    stroke = color if not style.fill else _OUTLINE
    return f"<se:PolygonSymbolizer>{fill}<se:Stroke>{p('stroke', stroke)}</se:Stroke></se:PolygonSymbolizer>"


def _sld_filter(style: Style, c: StyleClass) -> str:
    prop = f"<ogc:PropertyName>{escape(style.attr)}</ogc:PropertyName>"
    if style.kind == "categorized":
        return (
            f"<ogc:Filter><ogc:PropertyIsEqualTo>{prop}<ogc:Literal>{escape(str(c.value))}</ogc:Literal>"
            "</ogc:PropertyIsEqualTo></ogc:Filter>"
        )
    return (
        f"<ogc:Filter><ogc:And><ogc:PropertyIsGreaterThanOrEqualTo>{prop}<ogc:Literal>{c.lower}"
        f"</ogc:Literal></ogc:PropertyIsGreaterThanOrEqualTo><ogc:PropertyIsLessThan>{prop}"
        f"<ogc:Literal>{c.upper}</ogc:Literal></ogc:PropertyIsLessThan></ogc:And></ogc:Filter>"
    )


def style_sld(style: Style, layer_name: str) -> str:
    """Return the SLD 1.1 document of *style* (one rule per class) for layer *layer_name*."""
    if style.kind == "single":
        rules = (
            f"<se:Rule><se:Name>{escape(layer_name)}</se:Name>{_sld_symbolizer(style, style.color)}</se:Rule>"
        )
    else:
        rules = "".join(
            f"<se:Rule><se:Name>{escape(c.label)}</se:Name><se:Description><se:Title>{escape(c.label)}"
            f"</se:Title></se:Description>{_sld_filter(style, c)}{_sld_symbolizer(style, c.color)}</se:Rule>"
            for c in style.classes
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<StyledLayerDescriptor version="1.1.0" xmlns="http://www.opengis.net/sld" '
        'xmlns:se="http://www.opengis.net/se" xmlns:ogc="http://www.opengis.net/ogc">'
        f"<NamedLayer><se:Name>{escape(layer_name)}</se:Name><UserStyle><se:Name>{STYLE_NAME}</se:Name>"
        f"<se:FeatureTypeStyle>{rules}</se:FeatureTypeStyle></UserStyle></NamedLayer>"
        "</StyledLayerDescriptor>"
    )


_DDL = (
    "CREATE TABLE IF NOT EXISTS layer_styles (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " f_table_catalog TEXT(256),"
    " f_table_schema TEXT(256), f_table_name TEXT(256), f_geometry_column TEXT(256), styleName TEXT(30),"
    " styleQML TEXT, styleSLD TEXT, useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30),"
    " update_time DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))",
    "CREATE TABLE IF NOT EXISTS gpkg_data_columns (table_name TEXT NOT NULL, column_name TEXT NOT NULL,"
    " name TEXT, title TEXT, description TEXT, mime_type TEXT, constraint_name TEXT,"
    " CONSTRAINT pk_gdc PRIMARY KEY (table_name, column_name), CONSTRAINT gdc_tn UNIQUE (table_name, name))",
    "CREATE TABLE IF NOT EXISTS gpkg_data_column_constraints (constraint_name TEXT NOT NULL,"
    " constraint_type TEXT NOT NULL, value TEXT, min NUMERIC, min_is_inclusive BOOLEAN, max NUMERIC,"
    " max_is_inclusive BOOLEAN, description TEXT,"
    " CONSTRAINT gdcc_ntv UNIQUE (constraint_name, constraint_type, value))",
)

# gdal_aspatial: GDAL then lists only the tables of gpkg_contents (not layer_styles) as layers
_SCHEMA_EXTENSIONS = (
    ("gpkg_data_columns", "gpkg_schema", "http://www.geopackage.org/spec121/#extension_schema"),
    ("gpkg_data_column_constraints", "gpkg_schema", "http://www.geopackage.org/spec121/#extension_schema"),
    (None, "gdal_aspatial", "http://gdal.org/geopackage_aspatial.html"),
)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _band_from_meta(con: sqlite3.Connection, tables: set[str]) -> tuple[int, int] | None:
    if "plan_meta" not in tables:
        return None
    row = con.execute("SELECT value FROM plan_meta WHERE key = 'params'").fetchone()
    try:
        params = json.loads(row[0]) if row and row[0] else {}
        return int(params["households_min"]), int(params["households_max"])
    except (ValueError, KeyError, TypeError):
        return None


def _aliases(columns: Sequence[str]) -> list[str]:
    labels = [field_label(c) for c in columns]
    counts = {lab: labels.count(lab) for lab in labels}
    return [lab if counts[lab] == 1 else f"{lab}（{c}）" for lab, c in zip(labels, columns, strict=True)]


def _style_table(
    con: sqlite3.Connection, table: str, geom_col: str | None, geom_type: str | None, band: tuple[int, int]
) -> None:
    info = con.execute(f"PRAGMA table_info({_ident(table)})").fetchall()
    columns = [r[1] for r in info if not r[5] and r[1] != geom_col]
    con.execute("DELETE FROM gpkg_data_columns WHERE table_name = ?", (table,))
    con.executemany(
        "INSERT INTO gpkg_data_columns (table_name, column_name, name, title, description)"
        " VALUES (?, ?, ?, ?, ?)",
        [
            (table, c, a, a, field_label(c) if a != field_label(c) else None)
            for c, a in zip(columns, _aliases(columns), strict=True)
        ],
    )
    if geom_col is None:
        return
    style = layer_style(table, columns, geom_type or "GEOMETRY", households_band=band)
    con.execute("DELETE FROM layer_styles WHERE f_table_name = ? AND styleName = ?", (table, STYLE_NAME))
    title = department_label(table[5:]) + "网格" if table.startswith("dept_") else value_label("layer", table)
    con.execute(
        "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column,"
        " styleName, styleQML, styleSLD, useAsDefault, description, owner)"
        " VALUES ('', '', ?, ?, ?, ?, ?, 1, ?, 'gridplan')",
        (table, geom_col, STYLE_NAME, style_qml(style, columns), style_sld(style, table), title),
    )


def style_geopackage(path: str | Path, *, households_band: tuple[int, int] | None = None) -> Path:
    """Write the default QGIS style and the Chinese aliases of every layer of the GeoPackage *path*.

    Call it on the file a writer is still writing (the temporary file of
    :func:`gridplan._atomic.atomic_path`), so readers see the styles together with the data.
    Rerunning replaces our rows (``styleName = 'gridplan'``); styles a user saved under another
    name are kept.

    Parameters
    ----------
    path
        A GeoPackage.
    households_band
        ``(min, max)`` households of a base grid for the ``base_grids`` style; default the
        ``households_min``/``households_max`` of the file's ``plan_meta``, else ``(300, 500)``.

    """
    p = Path(path)
    con = sqlite3.connect(p)
    try:
        with con:
            rows = con.execute(
                "SELECT c.table_name, g.column_name, g.geometry_type_name FROM gpkg_contents c"
                " LEFT JOIN gpkg_geometry_columns g ON g.table_name = c.table_name"
                " WHERE c.data_type IN ('features', 'attributes')"
            ).fetchall()
            band = households_band or _band_from_meta(con, {r[0] for r in rows}) or (300, 500)
            for ddl in _DDL:
                con.execute(ddl)
            for table, column, ext, definition in ((t, None, e, d) for t, e, d in _SCHEMA_EXTENSIONS):
                con.execute(
                    "DELETE FROM gpkg_extensions WHERE table_name IS ? AND extension_name = ?", (table, ext)
                )
                con.execute(
                    "INSERT INTO gpkg_extensions (table_name, column_name, extension_name, definition, scope)"
                    " VALUES (?, ?, ?, ?, 'read-write')",
                    (table, column, ext, definition),
                )
            for table, geom_col, geom_type in rows:
                _style_table(con, table, geom_col, geom_type, band)
    finally:
        con.close()
    logger.info("styled %d layers of %s for QGIS", len(rows), p)
    return p
