"""Reading layers: any supported format onto canonical fields in the compute CRS."""

from __future__ import annotations

import hashlib
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
from gridplan.errors import CRSError, InputError
from gridplan.layers import formats as _readers
from gridplan.layers.catalog import (
    GEOMETRY_TYPES,
    Catalog,
    LayerSpec,
    coerce_fields,
    load_catalog,
    map_fields,
)
from gridplan.layers.geometry import check_layers_agree, clean_geometry

logger = logging.getLogger(__name__)


def list_layers(path: str | Path) -> list[str]:
    """Return the layer names in *path* (a GeoPackage's layers; the file stem for other formats).

    Raises
    ------
    InputError
        The file does not exist or cannot be read.

    """
    p = Path(path)
    _readers.require_file(p)
    if _readers.detect_format(p) == "gpkg":
        return [name for name, _ in _readers.list_gpkg_layers(p)]
    return [p.stem]

def read_layer(
    path: str | Path,
    layer: str | None = None,
    *,
    kind: str | None = None,
    to_crs: crs.CRSLike = crs.COMPUTE_EPSG,
    encoding: str | None = None,
    crs_if_missing: crs.CRSLike | None = None,
    coord_sys: str | None = None,
    catalog: Catalog | None = None,
) -> gpd.GeoDataFrame:
    """Read one layer and return it with canonical field names in the compute CRS.

    Parameters
    ----------
    path
        GeoPackage (``.gpkg``), Shapefile (``.shp``), GeoJSON (``.geojson``/``.json``),
        GeoParquet (``.parquet``) or CSV (``.csv``: ``lon``/``lat`` columns, optional
        ``coord_sys``, or a WKT column named ``wkt``/``geometry``).
    layer
        Layer name inside a GeoPackage (optional when it holds one layer).  For single-layer
        formats it names the layer (default: the file stem) for kind inference and messages.
    kind
        Catalog layer such as ``"communities"`` or ``"dept"``; inferred from the layer name when
        omitted (``dept_*`` → ``dept``).  An unrecognised layer is read with field aliases mapped
        but no required-field or geometry checks.
    to_crs
        CRS to reproject to (default EPSG:4547); ``None`` keeps the file's CRS.
    encoding
        Text encoding override for Shapefile/CSV (default: ``.cpg`` or detected).
    crs_if_missing
        CRS to assume when the file declares none (otherwise that is a :class:`CRSError`).
    coord_sys
        For lon/lat data drawn on a Chinese web map: ``gcj02`` (Amap, Tencent) or ``bd09``
        (Baidu) coordinates are converted exactly to WGS-84 first.  For CSV it is the default of
        the ``coord_sys`` column.  ``None``/``cgcs2000``/``wgs84``: no shift.
    catalog
        Catalog to use (default :func:`load_catalog`).

    Returns
    -------
    geopandas.GeoDataFrame
        Canonical columns, codes as zero-padded text, CRS *to_crs*, a fresh RangeIndex.

    Raises
    ------
    InputError
        Missing file, unknown layer (lists the available ones), unreadable/malformed file, empty
        layer, a missing required field (named), or geometry of the wrong kind for the layer.
    CRSError
        The file declares no CRS (CSV lon/lat are taken as CGCS2000 unless ``coord_sys`` says
        otherwise).

    """
    how = _How(kind, to_crs, encoding, crs_if_missing, catalog or load_catalog(), logging.INFO, coord_sys)
    return _read_layer(Path(path), layer, how)


@dataclass(frozen=True)
class _How:
    """How :func:`_read_layer` reads: the arguments of :func:`read_layer` after defaults."""

    kind: str | None
    to_crs: crs.CRSLike
    encoding: str | None
    crs_if_missing: crs.CRSLike | None
    catalog: Catalog
    log_level: int
    coord_sys: str | None = None


def _read_layer(p: Path, layer: str | None, how: _How) -> gpd.GeoDataFrame:
    t0 = time.perf_counter()
    kind, to_crs, encoding, crs_if_missing = how.kind, how.to_crs, how.encoding, how.crs_if_missing
    cat, log_level, coord_sys = how.catalog, how.log_level, how.coord_sys
    _readers.require_file(p)
    fmt = _readers.detect_format(p)
    layer_name = _readers.resolve_gpkg_layer(p, layer) if fmt == "gpkg" else layer or p.stem
    if kind is None:
        kind = cat.kind_for(layer_name)
    elif kind not in cat.layers:
        kind = cat.kind_for(kind) or kind
        cat.spec(kind)  # raises with the list of kinds
    spec = cat.layers.get(kind) if kind else None

    if fmt == "csv":
        df = _readers.read_csv_text(p, encoding=encoding)
        if df.empty:
            raise InputError("the layer is empty (no rows)", file=p, layer=layer_name)
        df = map_fields(df, kind, catalog=cat)
        gdf = _readers.csv_to_gdf(
            df, p, layer_name, spec.geometry if spec else None, crs_if_missing,
            coord_sys=crs.normalize_coord_sys(coord_sys) if coord_sys else None,
        )
    else:
        if fmt == "gpkg":
            raw = _readers.read_ogr(p, layer_name, encoding=encoding)
        elif fmt == "shp":
            raw = _readers.read_shapefile(p, encoding=encoding)
        elif fmt == "geojson":
            raw = _readers.read_ogr(p, None, encoding=encoding)
        else:
            raw = _readers.read_geoparquet(p)
        if not isinstance(raw, gpd.GeoDataFrame):
            raise InputError("has no geometry column; it is a table, not a layer", file=p, layer=layer_name)
        if raw.empty:
            raise InputError("the layer is empty (no features)", file=p, layer=layer_name)
        gdf = map_fields(raw, kind, catalog=cat)
        if gdf.crs is None:
            if crs_if_missing is None:
                hint = " (the .prj file is missing)" if fmt == "shp" else ""
                raise CRSError(
                    f"the layer declares no CRS{hint}; declare it (e.g. EPSG:4490 or EPSG:4547) "
                    "with crs_if_missing= or fix the file",
                    file=p,
                    layer=layer_name,
                )
            gdf = gdf.set_crs(crs_if_missing)
        gdf = clean_geometry(gdf, p, layer_name)
        gdf = _shift_chinese_datum(gdf, coord_sys, p, layer_name)

    if spec is not None:
        _check_required(gdf, spec, p, layer_name)
    gdf = coerce_fields(gdf, catalog=cat)
    if spec is not None:
        _check_geometry_kind(gdf, spec, p, layer_name)
    if to_crs is not None and gdf.crs is not None and not gdf.crs.equals(_as_crs(to_crs)):
        gdf = gdf.to_crs(to_crs)
    gdf = gdf.reset_index(drop=True)
    gdf.attrs["layer"] = layer_name
    gdf.attrs["kind"] = kind
    logger.log(
        log_level,
        "read layer %s (%s) from %s: %d features in %.2f s",
        layer_name, kind or "unrecognised", p.name, len(gdf), time.perf_counter() - t0,
    )
    return gdf

def _shift_chinese_datum(
    gdf: gpd.GeoDataFrame, coord_sys: str | None, path: Path, layer: str
) -> gpd.GeoDataFrame:
    """Convert a GCJ-02/BD-09 lon/lat layer to WGS-84 coordinates (vertex by vertex, exact)."""
    system = crs.normalize_coord_sys(coord_sys) if coord_sys else "cgcs2000"
    if system in ("cgcs2000", "wgs84"):
        return gdf
    if gdf.crs is None or not gdf.crs.is_geographic:
        raise CRSError(
            f"coord_sys {system} applies to lon/lat data, but the layer is in {gdf.crs}; drop coord_sys",
            file=path, layer=layer,
        )

    def shift(coords: np.ndarray) -> np.ndarray:
        lon, lat = crs.to_wgs84(coords[:, 0], coords[:, 1], system)
        return np.column_stack([lon, lat])

    out = gdf.copy()
    out[gdf.geometry.name] = gpd.GeoSeries(
        shapely.transform(gdf.geometry.to_numpy(), shift), index=gdf.index, crs=gdf.crs
    )
    return out

def _as_crs(value: Any) -> Any:
    import pyproj

    return pyproj.CRS.from_user_input(value)

def _check_required(df: pd.DataFrame, spec: LayerSpec, path: Path, layer: str) -> None:
    for name in spec.required:
        if name not in df.columns:
            aliases = load_catalog().fields[name].aliases[:4] if name in load_catalog().fields else ()
            also = f" (or an alias such as {', '.join(aliases)})" if aliases else ""
            raise InputError(
                f"missing required field{also}; add the column or rename it in layers/catalog.yml",
                file=path,
                layer=layer,
                field=name,
            )

def _check_geometry_kind(gdf: gpd.GeoDataFrame, spec: LayerSpec, path: Path, layer: str) -> None:
    """Refuse a layer whose geometries are mostly of the wrong kind (single odd features are QA)."""
    if spec.geometry == "none":
        return
    types = gdf.geometry.geom_type
    present = types.dropna()
    if present.empty:
        return
    allowed = GEOMETRY_TYPES[spec.geometry] | {"GeometryCollection"}
    wrong = ~present.isin(allowed)
    if wrong.sum() * 2 > len(present):
        found = ", ".join(sorted(present[wrong].unique()))
        raise InputError(
            f"expected {spec.geometry} geometries for a {spec.name} layer but found {found} "
            f"({int(wrong.sum())} of {len(present)} features)",
            file=path,
            layer=layer,
        )

def read_layers(
    path: str | Path, *, to_crs: crs.CRSLike = crs.COMPUTE_EPSG, catalog: Catalog | None = None
) -> dict[str, gpd.GeoDataFrame]:
    """Read every recognised layer of a GeoPackage (``dept_*`` included) under its own name.

    Layers the catalog does not know (e.g. plan tables) are skipped and logged.  For a
    single-layer file the result has one entry named after the file stem.

    Raises
    ------
    InputError
        The file is missing/unreadable, holds no recognised layer, or one layer is bad (see
        :func:`read_layer`).

    """
    cat = catalog or load_catalog()
    p = Path(path)
    names = list_layers(p)
    out: dict[str, gpd.GeoDataFrame] = {}
    skipped = []
    for name in names:
        if cat.kind_for(name) is None:
            likely = cat.suggest(name)
            if likely is not None and likely not in names:
                raise InputError(
                    f"is not a layer name the catalog knows; did you mean {likely}? rename the layer "
                    f"(known: {cat.known_names()})",
                    file=p,
                    layer=name,
                )
            skipped.append(name)
            continue
        how = _How(None, to_crs, None, None, cat, logging.DEBUG)
        out[name] = _read_layer(p, name if _readers.detect_format(p) == "gpkg" else None, how)
    if not out:
        raise InputError(
            f"holds no layer the catalog knows (found: {', '.join(names)}); expected e.g. "
            f"{cat.known_names()}",
            file=p,
        )
    check_layers_agree(out, p)
    if skipped:
        logger.info("skipped layers the catalog does not know: %s", ", ".join(skipped))
    logger.info(
        "read %d layers from %s: %s", len(out), p.name, ", ".join(f"{k} {len(v):,}" for k, v in out.items())
    )
    return out

def fingerprint(path: str | Path) -> str:
    """Return the SHA-256 hex digest of a file's bytes (the identity recorded in plan metadata)."""
    p = Path(path)
    _readers.require_file(p)
    digest = hashlib.sha256()
    with open(p, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
