"""Writing layers and tables: GeoPackage, CSV and Excel, each through :func:`gridplan._atomic.atomic_path`.

Every writer takes the data first and the target path second (``write_layers(layers, path)``,
``write_table_csv(df, path)``), as :func:`gridplan.plans.write_plan` and the raster writers do.
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

logger = logging.getLogger(__name__)

__all__ = ["write_layers", "write_table", "write_table_csv"]


def _gdal_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Return *frame* with pandas nullable numbers as float64 (GDAL has no masked integers)."""
    nullable = [c for c in frame.columns if str(frame[c].dtype) in ("Int64", "Int32", "Float64", "boolean")]
    if not nullable:
        return frame
    out = frame.copy()
    for col in nullable:
        out[col] = out[col].astype("float64")
    return out


def write_layers(
    layers: Mapping[str, pd.DataFrame], path: str | os.PathLike[str], *, append: bool = False
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

    Returns
    -------
    pathlib.Path
        *path*.  Readers never see a half-written file: everything is written to a temporary file
        in the same folder (a copy of the old one when appending), which then replaces *path*.

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
            kwargs: dict[str, Any] = {}
            if isinstance(df, gpd.GeoDataFrame) and shapely.is_missing(df.geometry.to_numpy()).all():
                kwargs["geometry_type"] = "Unknown"
            pyogrio.write_dataframe(_gdal_ready(df), tmp, layer=name, driver="GPKG", **kwargs)
    logger.info("wrote %d layers to %s", len(layers), p)
    return p


def write_table_csv(df: pd.DataFrame, path: str | os.PathLike[str], *, bom: bool = False) -> Path:
    """Write *df* to CSV (UTF-8, or UTF-8 with BOM for Excel) atomically; geometry becomes WKT."""
    p = Path(path)
    frame = df
    if isinstance(df, gpd.GeoDataFrame):
        frame = pd.DataFrame(df.drop(columns=[df.geometry.name]))
        frame[df.geometry.name] = shapely.to_wkt(df.geometry.to_numpy(), rounding_precision=3)
    with atomic_path(p) as tmp:
        frame.to_csv(tmp, index=False, encoding="utf-8-sig" if bom else "utf-8")
    return p


def write_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    r"""Write a table as CSV (UTF-8 with BOM so Excel shows Chinese) or .xlsx (openpyxl), atomically.

    Examples
    --------
    >>> import codecs, tempfile
    >>> p = write_table(pd.DataFrame({"名称": ["长安镇"]}), Path(tempfile.mkdtemp()) / "t.csv")
    >>> p.read_bytes().startswith(codecs.BOM_UTF8)
    True

    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise InputError("table output must end in .csv or .xlsx", file=target)
    if suffix == ".csv":
        return write_table_csv(df, target, bom=True)
    plain = df.copy()
    for col in plain.columns:  # openpyxl cannot write pandas NA
        if str(plain[col].dtype) in ("Int64", "Float64", "boolean"):
            plain[col] = plain[col].astype(object).where(plain[col].notna(), None)
    with atomic_path(target) as tmp:
        plain.to_excel(tmp, index=False, engine="openpyxl", sheet_name=target.stem[:31] or "table")
    return target
