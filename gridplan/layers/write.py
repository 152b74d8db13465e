"""Writing layers and tables atomically (GeoPackage, CSV)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely

from gridplan.errors import CRSError, InputError

logger = logging.getLogger(__name__)


def _temp_sibling(path: Path, suffix: str) -> Path:
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp{suffix}")

def write_layers(
    path: str | Path, layers: Mapping[str, pd.DataFrame], *, append: bool = False
) -> Path:
    """Write layers (GeoDataFrames) and tables (DataFrames) to a GeoPackage atomically.

    Parameters
    ----------
    path
        Target ``.gpkg``.
    layers
        Layer name → GeoDataFrame (or DataFrame for an attribute table).
    append
        Keep the other layers of an existing file (layers of the same name are replaced);
        otherwise the file is replaced as a whole.

    Returns
    -------
    pathlib.Path
        *path*.  Readers never see a half-written file: everything is written to a temporary file
        in the same folder (a copy of the old one when appending), which then replaces *path*.

    """
    p = Path(path)
    if not layers:
        raise InputError("nothing to write (no layers given)", file=p)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(p, ".gpkg")
    try:
        if append and p.exists():
            shutil.copy2(p, tmp)
        for name, df in layers.items():
            if not isinstance(name, str) or not name.strip():
                raise InputError(f"layer names must be non-empty text, got {name!r}", file=p)
            frame = df
            missing = shapely.is_missing(df.geometry.to_numpy()) if isinstance(df, gpd.GeoDataFrame) else None
            if missing is not None and df.crs is None and not missing.all():
                raise CRSError("has no CRS; set it before writing", file=p, layer=name)
            kwargs: dict[str, Any] = {}
            if missing is not None and missing.all():
                kwargs["geometry_type"] = "Unknown"
            pyogrio.write_dataframe(frame, tmp, layer=name, driver="GPKG", **kwargs)
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
    logger.info("wrote %d layers to %s", len(layers), p)
    return p

def write_table_csv(df: pd.DataFrame, path: str | Path, *, bom: bool = False) -> Path:
    """Write *df* to CSV (UTF-8, or UTF-8 with BOM for Excel) atomically; geometry becomes WKT."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    frame = df
    if isinstance(df, gpd.GeoDataFrame):
        frame = pd.DataFrame(df.drop(columns=[df.geometry.name]))
        frame[df.geometry.name] = shapely.to_wkt(df.geometry.to_numpy(), rounding_precision=3)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        frame.to_csv(tmp, index=False, encoding="utf-8-sig" if bom else "utf-8")
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
    return p
