"""Writers of hotspot outputs."""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import pandas as pd

from gridplan.errors import InputError


def _tmp_for(path: Path) -> Path:
    if not path.parent.exists():
        raise InputError(f"output folder {path.parent} does not exist", file=path)
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")

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
    tmp = _tmp_for(target)
    try:
        if suffix == ".csv":
            df.to_csv(tmp, index=False, encoding="utf-8-sig")
        else:
            plain = df.copy()
            for col in plain.columns:  # openpyxl cannot write pandas NA
                if str(plain[col].dtype) in ("Int64", "Float64", "boolean"):
                    plain[col] = plain[col].astype(object).where(plain[col].notna(), None)
            plain.to_excel(tmp, index=False, engine="openpyxl", sheet_name=target.stem[:31] or "table")
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target

def write_gpkg(path: str | os.PathLike[str], layers: dict[str, pd.DataFrame]) -> Path:
    """Write layers (GeoDataFrames) and tables (DataFrames) into one new GeoPackage, atomically."""
    import pyogrio

    target = Path(path)
    tmp = _tmp_for(target)
    try:
        for k, (name, frame) in enumerate(layers.items()):
            data = frame
            if not isinstance(frame, gpd.GeoDataFrame):
                data = frame.copy()
                for col in data.columns:
                    if str(data[col].dtype) in ("Int64", "Float64"):
                        data[col] = data[col].astype("float64")
            pyogrio.write_dataframe(data, tmp, layer=name, driver="GPKG", append=k > 0)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target
