"""Tables for people: formula neutralisation, Chinese headers and values, Excel workbooks.

:func:`write_workbook` writes ``.xlsx`` with openpyxl (write-only, so a 50,000-row table stays
fast): a bold frozen header row in Chinese (unit in the header), an autofilter over the table,
column widths from the text (a Chinese character counts twice), number formats from
:mod:`gridplan.layers.labels` (``#,##0``, ``0.0%`` …; percent-point columns such as ``change_pct``
are divided by 100 so Excel's ``%`` shows ``-77.6%``), codes written as text (a 15-digit grid code
never becomes ``4.419E+14``) and every formula-looking text cell neutralised.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from gridplan._atomic import atomic_path
from gridplan.errors import InputError
from gridplan.layers.labels import field_format, field_label, field_unit, value_label, vocabulary

__all__ = ["FORMULA_PREFIXES", "labelled_frame", "neutralize_formulas", "write_workbook"]

#: First characters that make Excel (or LibreOffice) read a cell as a formula (OWASP).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

_PLAIN_NUMBER = r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?"

#: labels format → Excel number format.
_EXCEL_FORMATS = {
    "int": "#,##0",
    "float1": "#,##0.0",
    "float2": "#,##0.00",
    "float3": "0.000",
    "pct": "0.0%",
    "pct100": "0.0%",
    "p": "0.0000",
}

_CODED_EXTRA = ("department", "layer")


def _is_text(col: pd.Series) -> bool:
    return col.dtype == object or pd.api.types.is_string_dtype(col.dtype)


def neutralize_formulas(df: pd.DataFrame) -> pd.DataFrame:
    r"""Return *df* with every text cell that Excel would run as a formula prefixed with ``'``.

    Examples
    --------
    >>> df = pd.DataFrame({"address": ['=HYPERLINK("http://evil","点我")', "-1+1", "-12.5", "长安镇"],
    ...                    "n": [-1, 2, 3, 4]})
    >>> neutralize_formulas(df)["address"].tolist()
    ['\'=HYPERLINK("http://evil","点我")', "'-1+1", '-12.5', '长安镇']

    """
    out: pd.DataFrame | None = None
    for col in df.columns:
        s = df[col]
        if not _is_text(s) or (isinstance(df, gpd.GeoDataFrame) and col == df.geometry.name):
            continue
        text = s.astype("string")
        live = text.str[:1].isin(FORMULA_PREFIXES) & ~text.str.fullmatch(_PLAIN_NUMBER)
        live = live.fillna(False).astype(bool)
        if live.any():
            if out is None:
                out = df.copy()
            fixed = s.astype(object).copy()
            fixed[live.to_numpy()] = "'" + text[live].astype(str)
            out[col] = fixed
    return df.copy() if out is None else out


def _header(column: str, *, excel: bool) -> str:
    zh, unit, fmt = field_label(column), field_unit(column), field_format(column)
    if fmt in ("pct", "pct100") and not excel:
        unit = "%"
    return f"{zh}（{unit}）" if unit else zh


def _unique_headers(columns: list[str], *, excel: bool) -> list[str]:
    headers = [_header(c, excel=excel) for c in columns]
    seen: dict[str, int] = {}
    for h in headers:
        seen[h] = seen.get(h, 0) + 1
    return [h if seen[h] == 1 else f"{h}（{c}）" for h, c in zip(headers, columns, strict=True)]


def _translate(col: pd.Series, column: str) -> pd.Series:
    """Return the coded column *col* in Chinese (each distinct value translated once)."""
    if not (vocabulary(column) or column in _CODED_EXTRA):
        return col
    distinct = pd.unique(col.dropna())
    table = {v: value_label(column, v) for v in distinct}
    return col.map(table).astype(object).where(col.notna(), None)


def labelled_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Return *df* for a person reading a CSV: Chinese headers with units, coded values in Chinese.

    Fractions (``pct``) become percent points and every percent column says ``（%）`` in its header.

    Examples
    --------
    >>> labelled_frame(pd.DataFrame({"status": ["M", "U"], "area_share": [0.25, 1.0]})).to_dict("list")
    {'匹配状态': ['已匹配', '未匹配'], '面积占比（%）': [25.0, 100.0]}

    """
    out = {}
    columns = [str(c) for c in df.columns]
    for column, header in zip(columns, _unique_headers(columns, excel=False), strict=True):
        col = _translate(df[column], column)
        if field_format(column) == "pct" and pd.api.types.is_numeric_dtype(col):
            col = (col * 100).round(2)
        out[header] = col
    return pd.DataFrame(out, index=df.index)


def _width(header: str, values: list[Any]) -> float:
    def size(v: Any) -> int:
        text = "" if v is None else str(v)
        return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)

    sample = values[:: max(1, len(values) // 500)]
    return float(min(60, max(8, size(header) + 2, *(size(v) + 1 for v in sample))))


def _cell_values(col: pd.Series, column: str) -> tuple[list[Any], str]:
    """Return the Python values of one column for openpyxl and their number format."""
    fmt = field_format(column)
    if fmt == "code" or col.dtype == object or pd.api.types.is_string_dtype(col.dtype):
        values = col.astype(object).where(col.notna(), None).tolist()
        return (
            [v if v is None or isinstance(v, str) else str(v) for v in values] if fmt == "code" else values
        ), ""
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        naive = col.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None) if col.dt.tz else col
        return naive.astype(object).where(naive.notna(), None).tolist(), "yyyy-mm-dd hh:mm"
    if pd.api.types.is_bool_dtype(col.dtype):
        return col.astype(object).where(col.notna(), None).tolist(), ""
    if pd.api.types.is_numeric_dtype(col.dtype):
        num = col.astype("float64")
        if fmt == "pct100":
            num = num / 100.0
        integral = fmt == "int" or (not fmt and pd.api.types.is_integer_dtype(col.dtype))
        values = [None if not np.isfinite(v) else (int(v) if integral else float(v)) for v in num.to_numpy()]
        return values, _EXCEL_FORMATS.get(fmt, "")
    return col.astype(object).where(col.notna(), None).tolist(), ""


def _write_sheet(wb: Any, title: str, df: pd.DataFrame, *, labels: bool) -> None:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    ws = wb.create_sheet(title=title)
    frame = neutralize_formulas(df)
    columns = [str(c) for c in frame.columns]
    headers = _unique_headers(columns, excel=True) if labels else columns
    data = []
    for column in columns:
        col = _translate(frame[column], column) if labels else frame[column]
        data.append(_cell_values(col, column))
    for i, (header, (values, _)) in enumerate(zip(headers, data, strict=True), start=1):
        ws.column_dimensions[get_column_letter(i)].width = _width(header, values)
    ws.freeze_panes = "A2"
    if columns:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(frame) + 1}"
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    head = []
    for header in headers:
        cell = WriteOnlyCell(ws, value=header)
        cell.font, cell.fill = bold, fill
        head.append(cell)
    ws.append(head)
    formats = [fmt for _, fmt in data]
    for row in zip(*(values for values, _ in data), strict=True):
        cells: list[Any] = list(row)
        for j, fmt in enumerate(formats):
            if fmt and cells[j] is not None:
                cell = WriteOnlyCell(ws, value=cells[j])
                cell.number_format = fmt
                cells[j] = cell
        ws.append(cells)


def write_workbook(
    sheets: Mapping[str, pd.DataFrame], path: str | os.PathLike[str], *, labels: bool = True
) -> Path:
    r"""Write tables as the sheets of one ``.xlsx`` workbook, atomically.

    Parameters
    ----------
    sheets
        Sheet name (at most 31 characters, no ``[]:*?/\``) → table; a GeoDataFrame's geometry is
        left out (a spreadsheet cannot show it).
    path
        Target ``.xlsx``; its folder must exist.
    labels
        Chinese headers, values and number formats (default).

    Raises
    ------
    InputError
        No sheets, or a sheet name Excel refuses.

    """
    from openpyxl import Workbook

    target = Path(path)
    if not sheets:
        raise InputError("nothing to write (no tables given)", file=target)
    wb = Workbook(write_only=True)
    for title, df in sheets.items():
        if not title or len(title) > 31 or any(ch in title for ch in "[]:*?/\\"):
            raise InputError(
                f"sheet name {title!r} is not allowed by Excel (≤ 31 characters, none of []:*?/\\)",
                file=target,
            )
        frame = pd.DataFrame(df.drop(columns=[df.geometry.name])) if isinstance(df, gpd.GeoDataFrame) else df
        _write_sheet(wb, title, frame, labels=labels)
    with atomic_path(target) as tmp:
        wb.save(tmp)
    return target
