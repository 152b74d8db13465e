"""Chinese labels of our outputs: column headers, units, number formats and value vocabularies.

One table (``labels.yml`` beside this module, plus the ``zh`` names of ``catalog.yml``) serves every
face a person sees: Excel headers (:func:`gridplan.layers.write_table`), QGIS field aliases and
styles (:mod:`gridplan.layers.styles`), and map popups and legends (:mod:`gridplan.maps`).  A code
that has no entry is shown as it is (a new department key stays readable, never blank).

Examples
--------
>>> field_label("households"), field_label("gi_p"), field_label("police_grid_id")
('户数', '显著性 p 值', '公安网格编码')
>>> value_label("status", "M"), value_label("department", "civil"), value_label("gi_bin", 3)
('已匹配', '民政', '热点 - 99% 置信度')
>>> format_value("area_m2", 1234.4), format_value("change_pct", -77.56), format_value("rate", 86.03)
('1,234 m²', '-77.6%', '86.03 件/千人')
"""

from __future__ import annotations

import datetime
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from gridplan.layers.catalog import load_catalog

__all__ = [
    "LABELS_PATH",
    "FieldLabel",
    "department_label",
    "field_format",
    "field_label",
    "field_unit",
    "format_value",
    "value_color",
    "value_label",
    "vocabulary",
]

#: The labels table.
LABELS_PATH: Path = Path(__file__).resolve().with_name("labels.yml")

#: Formats a column may have (how a number is shown; ``pct`` is a fraction, ``pct100`` percent points).
FORMATS = ("int", "float1", "float2", "float3", "pct", "pct100", "code", "p", "datetime")


@dataclass(frozen=True)
class FieldLabel:
    """Chinese header, unit and number format of one column."""

    zh: str
    unit: str = ""
    format: str = ""


@dataclass(frozen=True)
class _Labels:
    fields: Mapping[str, FieldLabel]
    patterns: Mapping[str, str]
    values: Mapping[str, Mapping[str, tuple[str, str]]]
    departments: Mapping[str, str]


def _entry(value: Any) -> tuple[str, str]:
    if isinstance(value, Mapping):
        return str(value.get("zh", "")), str(value.get("color", ""))
    return str(value), ""


@lru_cache(maxsize=1)
def _labels() -> _Labels:
    with open(LABELS_PATH, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    fields = {}
    for name, spec in raw["fields"].items():
        fmt = str(spec.get("format", ""))
        if fmt and fmt not in FORMATS:
            raise ValueError(f"{LABELS_PATH}: field {name}: unknown format {fmt!r}")
        fields[str(name)] = FieldLabel(zh=str(spec["zh"]), unit=str(spec.get("unit", "")), format=fmt)
    values = {str(col): {str(k): _entry(v) for k, v in table.items()} for col, table in raw["values"].items()}
    return _Labels(
        fields=fields,
        patterns={str(k): str(v) for k, v in raw.get("patterns", {}).items()},
        values=values,
        departments={str(k): str(v) for k, v in raw.get("departments", {}).items()},
    )


def department_label(key: str) -> str:
    """Return the Chinese name of a department key (``police`` → ``公安``); unknown keys unchanged."""
    return _labels().departments.get(str(key), str(key))


def _catalog_zh(column: str) -> str:
    spec = load_catalog().fields.get(column)
    return spec.zh if spec is not None else ""


@lru_cache(maxsize=4096)
def _field(column: str) -> FieldLabel:
    labels = _labels()
    if column in labels.fields:
        return labels.fields[column]
    zh = _catalog_zh(column)
    if zh:
        spec = load_catalog().fields[column]
        fmt = {"code": "code", "id": "code", "int": "int", "datetime": "datetime"}.get(spec.type, "")
        unit = {
            "households": "户",
            "residents": "人",
            "floating_residents": "人",
            "rental_rooms": "间",
            "employees": "人",
        }.get(column, "")
        return FieldLabel(zh=zh, unit=unit, format=fmt)
    if column.endswith("_grid_id") and column != "dept_grid_id":
        dept = column[: -len("_grid_id")]
        return FieldLabel(zh=f"{department_label(dept)}网格编码", format="code")
    if column.startswith("in_") and len(column) > 3:
        inner = _field(column[3:])
        if inner.zh != column[3:]:
            return FieldLabel(zh=f"原{inner.zh}", unit=inner.unit, format=inner.format)
    return FieldLabel(zh=column)


def field_label(column: str) -> str:
    """Return the Chinese header of *column* (the column itself when the table has none)."""
    return _field(str(column)).zh


def field_unit(column: str) -> str:
    """Return the unit shown after values of *column* (``""`` when none)."""
    return _field(str(column)).unit


def field_format(column: str) -> str:
    """Return the number format of *column*: one of :data:`FORMATS`, or ``""``."""
    return _field(str(column)).format


def _key(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return str(int(float(value)))
    return str(value)


def vocabulary(column: str) -> dict[str, tuple[str, str]]:
    """Return ``{value: (zh, colour)}`` of a coded column (``{}`` when it has no vocabulary)."""
    return dict(_labels().values.get(str(column), {}))


def value_label(column: str, value: Any) -> str:
    """Return the Chinese label of a coded *value* of *column* (status, level, department, …).

    Departments (column ``department``, or ``layer`` values ``dept_<key>``) use the departments
    table; catalog layer names (``communities``) their Chinese name.  Unknown values come back as text.
    """
    key = _key(value)
    column = str(column)
    if column == "department":
        return department_label(key)
    if column == "layer":
        if key.startswith("dept_"):
            return f"{department_label(key[5:])}网格"
        spec = load_catalog().layers.get(key)
        return spec.zh if spec is not None and spec.zh else key
    entry = _labels().values.get(column, {}).get(key)
    return entry[0] if entry and entry[0] else key


def value_color(column: str, value: Any, default: str = "") -> str:
    """Return the colour the table gives a coded *value* of *column* (``default`` when none)."""
    entry = _labels().values.get(str(column), {}).get(_key(value))
    return entry[1] if entry and entry[1] else default


def _number(value: float, fmt: str) -> str:
    if fmt == "p":
        return "< 0.001" if 0 <= value < 0.001 else f"{value:.3f}"
    if fmt == "pct":
        return f"{value * 100:.1f}%"
    if fmt == "pct100":
        return f"{value:.1f}%"
    if fmt == "int":
        return f"{value:,.0f}"
    if fmt.startswith("float"):
        return f"{value:,.{int(fmt[-1])}f}"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _datetime_text(value: Any) -> str:
    """``2024-01-02 08:00`` (Beijing time for aware values); text that is no date stays as it is."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        return str(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("Asia/Shanghai")
    return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.strftime("%Y-%m-%d %H:%M")


def format_value(column: str, value: Any) -> str:
    """Return *value* of *column* as a person reads it: translated code, or number with its unit.

    Missing values (``None``, NaN, NA) become ``"—"``; codes stay text (``441900`` never ``441,900``).
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    try:
        if value != value:  # pandas NA / NaT compare unequal to themselves (or raise)
            return "—"
    except (TypeError, ValueError):
        return "—"
    column = str(column)
    if column in _labels().values or column in ("department", "layer"):
        return value_label(column, value)
    label = _field(column)
    if isinstance(value, bool) or label.format == "code":
        return str(value)
    if label.format == "datetime" or isinstance(value, datetime.datetime | datetime.date):
        return _datetime_text(value)
    if isinstance(value, numbers.Real):
        text = _number(float(value), label.format)
        return f"{text} {label.unit}" if label.unit else text
    return str(value)
