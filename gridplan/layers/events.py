"""Located events (cases, hazards) read from geocoder output or any lon/lat CSV."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridplan import crs
from gridplan.errors import InputError
from gridplan.layers import formats as _readers
from gridplan.layers.catalog import Catalog, coerce_fields, load_catalog, map_fields
from gridplan.layers.formats import parse_datetimes

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventTable:
    """Located events and the count of rows that could not be used.

    Attributes
    ----------
    gdf
        Located rows as points in the compute CRS, with ``x``, ``y`` (metres), ``reported_at``
        (datetime64) and ``category`` plus every other input column (canonical names).
    n_total
        Data rows in the file.
    n_skipped
        Rows left out (``n_total - len(gdf)``).
    skipped_reasons
        Reason → rows: ``unmatched`` (geocoder status U), ``no_coordinates``, ``swapped_lonlat``
        (lat/lon given the wrong way round: reported, not silently swapped back),
        ``invalid_coordinates`` (not degrees), ``unknown_coord_sys``, ``bad_reported_at``,
        ``outside_boundary`` (only when a boundary is given).

    """

    gdf: gpd.GeoDataFrame
    n_total: int
    n_skipped: int
    skipped_reasons: dict[str, int]

def read_events(
    path: str | Path,
    *,
    to_crs: crs.CRSLike = crs.COMPUTE_EPSG,
    boundary: Any = None,
    encoding: str | None = None,
    catalog: Catalog | None = None,
) -> EventTable:
    """Read located events (cases/hazards) from a CSV with lon/lat into the compute CRS.

    Parameters
    ----------
    path
        CSV (UTF-8 with or without BOM, or GBK/GB18030) with ``lon``, ``lat``, ``reported_at``
        (ISO 8601), optional ``coord_sys`` (default ``cgcs2000``; per row), ``category`` and, for
        geocoder output, ``status``.  Chinese headers (经度, 纬度, 上报时间, 类别 …) are mapped.
    to_crs
        Target CRS for the points (default EPSG:4547).
    catalog
        Catalog to use (default :func:`load_catalog`).
    boundary
        Optional city polygon (shapely geometry or GeoDataFrame in *to_crs*); rows outside it are
        skipped as ``outside_boundary``.
    encoding
        Text encoding override (default: detected).

    Returns
    -------
    EventTable

    Raises
    ------
    InputError
        Missing file or a missing ``lon``/``lat``/``reported_at`` column.  Bad rows are counted
        in :attr:`EventTable.skipped_reasons`, not raised.

    """
    t0 = time.perf_counter()
    cat = catalog or load_catalog()
    p = Path(path)
    _readers.require_file(p)
    df = _readers.read_csv_text(p, encoding=encoding)
    df = map_fields(df, "cases", catalog=cat)
    for name in ("lon", "lat", "reported_at"):
        if name not in df.columns:
            raise InputError(
                "missing required column; events need lon, lat (经度, 纬度) and reported_at (上报时间)",
                file=p,
                field=name,
            )
    n_total = len(df)
    reasons: dict[str, int] = {}
    keep = np.ones(n_total, dtype=bool)

    def drop(mask: np.ndarray, reason: str) -> None:
        nonlocal keep
        hit = mask & keep
        if hit.any():
            reasons[reason] = reasons.get(reason, 0) + int(hit.sum())
            keep &= ~hit

    if "status" in df.columns:
        status = df["status"].astype("str").str.strip().str.upper().to_numpy()
        drop(status == "U", "unmatched")
    lon = pd.to_numeric(df["lon"], errors="coerce").to_numpy(dtype="float64")
    lat = pd.to_numeric(df["lat"], errors="coerce").to_numpy(dtype="float64")
    drop(~(np.isfinite(lon) & np.isfinite(lat)), "no_coordinates")
    drop(np.asarray(crs.is_swapped_lonlat(lon, lat, bbox_lonlat=crs.CHINA_BBOX)), "swapped_lonlat")
    with np.errstate(invalid="ignore"):
        drop((np.abs(lon) > 180) | (np.abs(lat) > 90), "invalid_coordinates")
    systems = np.full(n_total, "cgcs2000", dtype=object)
    if "coord_sys" in df.columns:
        raw_sys = df["coord_sys"].to_numpy(dtype=object)
        valid = np.zeros(n_total, dtype=bool)
        for value in pd.unique(raw_sys):
            try:
                canon = crs.normalize_coord_sys(value)
            except InputError:
                continue
            sel = (raw_sys == value) if not _is_na(value) else pd.isna(raw_sys)
            systems[sel] = canon
            valid |= sel
        drop(~valid, "unknown_coord_sys")
    reported = parse_datetimes(df["reported_at"])
    drop(reported.isna().to_numpy(), "bad_reported_at")
    x = np.full(n_total, np.nan)
    y = np.full(n_total, np.nan)
    x[keep], y[keep] = crs.lonlat_to_xy(lon[keep], lat[keep], to_crs=to_crs, coord_sys=systems[keep])
    if boundary is not None:
        drop(np.asarray(crs.is_outside(x, y, boundary)), "outside_boundary")

    located = df.loc[keep].copy()
    located["reported_at"] = reported[keep]
    if "category" not in located.columns:
        located["category"] = pd.Series(pd.NA, index=located.index, dtype="str")
    located = coerce_fields(located.drop(columns=["reported_at"]), catalog=cat).assign(
        reported_at=located["reported_at"]
    )
    located["x"] = x[keep]
    located["y"] = y[keep]
    gdf = gpd.GeoDataFrame(located, geometry=shapely.points(x[keep], y[keep]), crs=to_crs)
    gdf = gdf.reset_index(drop=True)
    n_skipped = n_total - len(gdf)
    logger.info(
        "read %d events from %s: %d located, %d skipped (%s) in %.2f s",
        n_total, p.name, len(gdf), n_skipped,
        ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) or "none",
        time.perf_counter() - t0,
    )
    return EventTable(gdf=gdf, n_total=n_total, n_skipped=n_skipped, skipped_reasons=reasons)

def _is_na(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA
