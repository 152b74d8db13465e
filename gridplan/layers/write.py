"""Writing layers and tables: GeoPackage, CSV and Excel, each through :func:`gridplan._atomic.atomic_path`.

Every writer takes the data first and the target path second (``write_layers(layers, path)``,
``write_table_csv(df, path)``), as :func:`gridplan.plans.write_plan` and the raster writers do.

Tables are written for people by default, because that is who opens a CSV on a Chinese Windows PC:

* **UTF-8 with a BOM** — without it Excel reads UTF-8 as GBK and shows mojibake (``bom=False``
  for machines; our readers accept both).
* **Formula neutralisation** (OWASP "CSV injection") — a text cell that starts with ``=``, ``+``,
  ``-``, ``@``, tab or carriage return gets a leading ``'`` so Excel shows it as text instead of
  running it (``=HYPERLINK("http://evil", "点我")``).  Numbers are never touched (nor text that is a
  plain number such as ``-12.5``); the GeoPackage and Parquet outputs keep the original text.
* :func:`write_table` also gives the columns their Chinese headers and the codes their Chinese
  values from :mod:`gridplan.layers.labels`; ``.xlsx`` goes through :mod:`gridplan.layers.excel`
  (number formats, frozen header, filter, widths).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely

from gridplan._atomic import atomic_path
from gridplan.errors import CRSError, InputError
from gridplan.layers.excel import FORMULA_PREFIXES, labelled_frame, neutralize_formulas, write_workbook
from gridplan.layers.styles import style_geopackage

logger = logging.getLogger(__name__)

__all__ = [
    "FORMULA_PREFIXES",
    "geometry_kwargs",
    "neutralize_formulas",
    "write_csv_part",
    "write_layers",
    "write_table",
    "write_table_csv",
]


def _gdal_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Return *frame* with pandas nullable numbers as float64 (GDAL has no masked integers)."""
    nullable = [c for c in frame.columns if str(frame[c].dtype) in ("Int64", "Int32", "Float64", "boolean")]
    if not nullable:
        return frame
    out = frame.copy()
    for col in nullable:
        out[col] = out[col].astype("float64")
    return out


_TYPE_NAMES = ("Point", "LineString", "LineString", "Polygon", "MultiPoint", "MultiLineString",
               "MultiPolygon", "GeometryCollection")  # by shapely type id
_FAMILIES = {"Point": "MultiPoint", "MultiPoint": "MultiPoint", "LineString": "MultiLineString",
             "LinearRing": "MultiLineString", "MultiLineString": "MultiLineString",
             "Polygon": "MultiPolygon", "MultiPolygon": "MultiPolygon"}


def geometry_kwargs(gdf: gpd.GeoDataFrame, *, name: str = "") -> dict[str, Any]:
    """Return the pyogrio options that give a GeoPackage layer exactly one geometry type.

    QGIS asks which sub-layer to load when a layer mixes types, so single and multi parts of one
    family are written as multi (``Polygon`` + ``MultiPolygon`` → ``MultiPolygon``); a layer of
    one type keeps it; a layer without geometries is ``Unknown``.  Mixed families (points and
    polygons in one layer) cannot be one type: they stay ``Unknown`` and are logged.

    Examples
    --------
    >>> from shapely import Point, box, MultiPolygon
    >>> geometry_kwargs(gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1), MultiPolygon([box(2, 2, 3, 3)])]))
    {'geometry_type': 'MultiPolygon', 'promote_to_multi': True}
    >>> geometry_kwargs(gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1), None]))
    {'geometry_type': 'Polygon', 'promote_to_multi': False}

    """
    geoms = gdf.geometry.to_numpy()
    have = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    kinds = {_TYPE_NAMES[t] for t in set(shapely.get_type_id(geoms[have]).tolist())}
    if not kinds:
        return {"geometry_type": "Unknown"}
    if len(kinds) == 1:
        return {"geometry_type": kinds.pop(), "promote_to_multi": False}
    families = {_FAMILIES.get(k) for k in kinds}
    if len(families) == 1 and None not in families:
        return {"geometry_type": families.pop(), "promote_to_multi": True}
    logger.warning("layer %s mixes %s: written as geometry type Unknown", name, ", ".join(sorted(kinds)))
    return {"geometry_type": "Unknown", "promote_to_multi": False}


def write_layers(
    layers: Mapping[str, pd.DataFrame],
    path: str | os.PathLike[str],
    *,
    append: bool = False,
    households_band: tuple[int, int] | None = None,
) -> Path:
    """Write layers (GeoDataFrames) and tables (DataFrames) to one GeoPackage atomically.

    Parameters
    ----------
    layers
        Layer name → GeoDataFrame (or DataFrame for an attribute table), written in this order.
    path
        Target ``.gpkg``; its folder must exist.
    append
        Keep the other layers of an existing file (layers of the same name are replaced);
        otherwise the file is replaced as a whole.
    households_band
        ``(min, max)`` households for the ``base_grids`` style (default: the file's ``plan_meta``).

    Returns
    -------
    pathlib.Path
        *path*.  Readers never see a half-written file: everything is written to a temporary file
        in the same folder (a copy of the old one when appending), which then replaces *path*.
        Every layer has one geometry type (:func:`geometry_kwargs`), a default QGIS style and
        Chinese field aliases (:func:`gridplan.layers.styles.style_geopackage`).

    Raises
    ------
    InputError
        No layers, an empty layer name, or a missing folder.
    CRSError
        A layer with geometries but no CRS.

    """
    p = Path(path)
    if p.suffix.lower() != ".gpkg":
        raise InputError("a GeoPackage must be written to a .gpkg file", file=p)
    if not layers:
        raise InputError("nothing to write (no layers given)", file=p)
    for name, df in layers.items():
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"layer names must be non-empty text, got {name!r}", file=p)
        spatial = isinstance(df, gpd.GeoDataFrame) and not shapely.is_missing(df.geometry.to_numpy()).all()
        if spatial and df.crs is None:
            raise CRSError("has no CRS; set it before writing", file=p, layer=name)
    with atomic_path(p) as tmp:
        if append and p.exists():
            shutil.copy2(p, tmp)
        for name, df in layers.items():
            kwargs = geometry_kwargs(df, name=name) if isinstance(df, gpd.GeoDataFrame) else {}
            pyogrio.write_dataframe(_gdal_ready(df), tmp, layer=name, driver="GPKG", **kwargs)
        style_geopackage(tmp, households_band=households_band)
    logger.info("wrote %d layers to %s", len(layers), p)
    return p


def _plain_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Return *df* as a plain DataFrame with the geometry as WKT (3 decimals)."""
    if not isinstance(df, gpd.GeoDataFrame):
        return pd.DataFrame(df)
    frame = pd.DataFrame(df.drop(columns=[df.geometry.name]))
    frame[df.geometry.name] = shapely.to_wkt(df.geometry.to_numpy(), rounding_precision=3)
    return frame


def write_table_csv(
    df: pd.DataFrame, path: str | os.PathLike[str], *, bom: bool = True, neutralize: bool = True
) -> Path:
    """Write *df* to CSV atomically, with its own column names (other commands can read it back).

    Parameters
    ----------
    df
        The table; a GeoDataFrame's geometry becomes WKT.
    path
        Target file; its folder must exist.
    bom
        Start with a UTF-8 BOM so Excel shows Chinese (default); ``False`` for machines.
    neutralize
        Prefix formula-looking text cells with ``'`` (:func:`neutralize_formulas`; default).

    """
    p = Path(path)
    with atomic_path(p) as tmp:
        write_csv_part(df, tmp, header=True, bom=bom, neutralize=neutralize)
    return p


def write_csv_part(
    df: pd.DataFrame, path: str | os.PathLike[str], *, header: bool, bom: bool = True, neutralize: bool = True
) -> Path:
    r"""Write *df* as :func:`write_table_csv` does, but in place and optionally without the header.

    For tables written in parts by several processes: part 0 with ``header=True`` (and the BOM),
    the others with ``header=False``; the parts' bytes, concatenated in order
    (:func:`gridplan._atomic.concat_files`), are the bytes :func:`write_table_csv` writes for the
    whole table, because every cell is written from its row alone.  *path* is not written atomically:
    it is the caller's temporary file.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> df = pd.DataFrame({"a": ["=1+1", "x"], "b": [1.5, None]})
    >>> one = write_table_csv(df, folder / "one.csv")
    >>> _ = write_csv_part(df.iloc[:1], folder / "p0", header=True)
    >>> _ = write_csv_part(df.iloc[1:], folder / "p1", header=False)
    >>> one.read_bytes() == (folder / "p0").read_bytes() + (folder / "p1").read_bytes()
    True

    """
    p = Path(path)
    frame = _plain_frame(df)
    if neutralize:
        frame = neutralize_formulas(frame)
    # CRLF rows (RFC 4180, as Excel writes): a CR or LF inside a cell is then always quoted
    encoding = "utf-8-sig" if bom and header else "utf-8"
    frame.to_csv(p, index=False, header=header, encoding=encoding, lineterminator="\r\n")
    return p


def write_table(
    df: pd.DataFrame | Mapping[str, pd.DataFrame],
    path: str | os.PathLike[str],
    *,
    bom: bool = True,
    labels: bool = True,
) -> Path:
    r"""Write a table for people: CSV (UTF-8 with BOM) or ``.xlsx``, Chinese headers, atomically.

    Parameters
    ----------
    df
        The table, or (``.xlsx`` only) sheet name → table for a workbook of several sheets.
    path
        ``.csv`` or ``.xlsx``; its folder must exist.
    bom
        CSV only: start with a UTF-8 BOM (default) so Excel on a Chinese PC reads it.
    labels
        Chinese headers (with units) and Chinese values of coded columns (status, level,
        department, …) from :mod:`gridplan.layers.labels` (default); ``False`` keeps the column
        names and values as they are.

    Examples
    --------
    >>> import codecs, tempfile
    >>> p = write_table(pd.DataFrame({"level": ["town"], "change_pct": [-77.6]}),
    ...                 Path(tempfile.mkdtemp()) / "t.csv")
    >>> p.read_bytes().startswith(codecs.BOM_UTF8), p.read_text("utf-8-sig").splitlines()
    (True, ['统计层级,同比变化（%）', '镇街,-77.6'])

    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise InputError("table output must end in .csv or .xlsx", file=target)
    if suffix == ".xlsx":
        sheets = dict(df) if isinstance(df, Mapping) else {target.stem[:31] or "table": df}
        return write_workbook(sheets, target, labels=labels)
    if isinstance(df, Mapping):
        raise InputError("several tables need an .xlsx workbook, not a CSV", file=target)
    frame = labelled_frame(_plain_frame(df)) if labels else df
    return write_table_csv(frame, target, bom=bom)
