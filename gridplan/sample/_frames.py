"""Small shared pieces of the sample generator: the CRS, GeoDataFrames and arrow string columns."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

CRS = "EPSG:4547"


def gdf(data: dict[str, Any], geometry: Any) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(data, geometry=geometry, crs=CRS)


def pa_str(values: Any) -> pa.Array:
    """Arrow string array from a pandas Series / numpy array / list of str."""
    return pa.array(values, type=pa.string()) if not isinstance(values, pa.Array) else values


def ser(arr: pa.Array) -> pd.Series:
    """Pandas ``str`` Series over an arrow string array (no per-row Python objects)."""
    return pd.Series(arr, dtype="str")


def lpad(values: np.ndarray, width: int) -> pa.Array:
    """Integers as zero-padded strings of *width*."""
    return pc.utf8_lpad(pc.cast(pa.array(values), pa.string()), width, "0")


def norm(w: np.ndarray) -> np.ndarray:
    w = np.asarray(w, dtype=float)
    return w / w.sum()
