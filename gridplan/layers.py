"""Layers: the catalog, readers that map any input onto canonical layers, and atomic writers.

Data floor: imports :mod:`gridplan.errors`, :mod:`gridplan.crs` and the private format readers.

What this module owns
---------------------
* The **layer catalog** (``layers/catalog.yml``, documented in ``layers/README.md``): every layer
  of PRODUCT §4 with its geometry type, id field, required fields, field types and the Chinese /
  legacy aliases that are renamed to canonical names (``网格编码`` → ``dept_grid_id``).
* **Readers** for GeoPackage, Shapefile (UTF-8 or GBK; ``.cpg`` honoured, otherwise detected),
  GeoJSON, GeoParquet and CSV (lon/lat + ``coord_sys``, or a WKT column).  Every reader maps field
  names through the catalog, checks the required fields, keeps codes as zero-padded text (a county
  code read as the integer 441900 stays ``"441900"``; a 12-digit community code never becomes a
  float), and reprojects to the compute CRS (default EPSG:4547).  Bad input is an
  :class:`~gridplan.errors.InputError` (a :class:`~gridplan.errors.CRSError` for CRS problems) that
  names the file, layer and field.
* **Events** (:func:`read_events`): cases/hazards CSVs or geocoder output → located points in the
  compute CRS; rows that cannot be used are counted by reason, not raised.
* **Writers**: :func:`write_layers` (GeoPackage) and :func:`write_table_csv`, both atomic (temp file
  in the same folder, then :func:`os.replace`).

Validation of geometry and values (QA) is :mod:`gridplan.validate`'s job; this module only refuses
input that cannot be a layer at all (missing file/layer/field, wrong kind of geometry, no CRS).
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
import yaml

from gridplan import _readers, crs
from gridplan._readers import parse_datetimes
from gridplan.errors import CRSError, InputError

logger = logging.getLogger(__name__)

#: Where the catalog lives in a source checkout (first) or inside the installed package.
CATALOG_PATHS: tuple[Path, ...] = (
    Path(__file__).resolve().parents[1] / "layers" / "catalog.yml",
    Path(__file__).resolve().parent / "data" / "catalog.yml",
)

#: Catalog geometry kind → geometry types a feature of that layer may have.
GEOMETRY_TYPES: dict[str, frozenset[str]] = {
    "polygon": frozenset({"Polygon", "MultiPolygon"}),
    "line": frozenset({"LineString", "MultiLineString", "LinearRing"}),
    "point": frozenset({"Point", "MultiPoint"}),
    "none": frozenset({"Point", "MultiPoint"}),
}




# --------------------------------------------------------------------------------------------
# catalog
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    """One canonical field: type (``code``, ``id``, ``str``, ``int``, ``float``, ``datetime``)."""

    name: str
    type: str
    digits: int | None = None
    zh: str = ""
    en: str = ""
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class LayerSpec:
    """One canonical layer (or layer kind such as ``dept``)."""

    name: str
    geometry: str
    required: tuple[str, ...]
    id_field: str | None = None
    nullable: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    zh: str = ""
    en: str = ""
    aliases: tuple[str, ...] = ()
    rename: Mapping[str, str] = field(default_factory=dict)
    coverage: bool = False


@dataclass(frozen=True, eq=False)
class Catalog:
    """The parsed ``layers/catalog.yml``.

    Examples
    --------
    >>> cat = load_catalog()
    >>> cat.kind_for("dept_police"), cat.kind_for("communities"), cat.kind_for("社区")
    ('dept', 'communities', 'communities')
    >>> cat.field_for("网格编码", "dept"), cat.field_for("户数")
    ('dept_grid_id', 'households')

    """

    fields: Mapping[str, FieldSpec]
    layers: Mapping[str, LayerSpec]
    kinds: tuple[tuple[str, str], ...]
    path: Path | None = None

    def kind_for(self, layer_name: str) -> str | None:
        """Return the catalog layer (kind) that *layer_name* is, or ``None`` if unrecognised."""
        name = layer_name.strip()
        if name in self.layers:
            return name
        folded = name.casefold()
        for spec in self.layers.values():
            if folded == spec.name.casefold() or folded in (a.casefold() for a in spec.aliases):
                return spec.name
        for pattern, kind in self.kinds:
            if fnmatch.fnmatchcase(folded, pattern.casefold()):
                return kind
        return None

    def field_for(self, column: str, kind: str | None = None) -> str | None:
        """Return the canonical field a column name stands for (in layer *kind*), or ``None``."""
        key = _fold(column)
        if kind is not None and kind in self.layers:
            target = _layer_renames(self, kind).get(key)
            if target is not None:
                return target
        return _alias_index(self).get(key)

    def spec(self, kind: str) -> LayerSpec:
        """Return the :class:`LayerSpec` of *kind*; unknown kinds are an :class:`InputError`."""
        try:
            return self.layers[kind]
        except KeyError:
            raise InputError(
                f"unknown layer kind {kind!r}; use one of {', '.join(self.layers)}"
            ) from None


def _fold(name: str) -> str:
    return str(name).strip().casefold()


@lru_cache(maxsize=8)
def _alias_index(cat: Catalog) -> dict[str, str]:
    index: dict[str, str] = {}
    truncated: dict[str, list[str]] = {}
    for spec in cat.fields.values():
        index[_fold(spec.name)] = spec.name
        for alias in spec.aliases:
            index.setdefault(_fold(alias), spec.name)
        if len(spec.name) > 10:
            truncated.setdefault(_fold(spec.name[:10]), []).append(spec.name)
    for short, names in truncated.items():  # Shapefile's 10-character field names, when unambiguous
        if len(names) == 1:
            index.setdefault(short, names[0])
    return index


@lru_cache(maxsize=64)
def _layer_renames(cat: Catalog, kind: str) -> dict[str, str]:
    return {_fold(k): v for k, v in cat.layers[kind].rename.items()}


def _tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


@lru_cache(maxsize=4)
def _load_catalog_cached(path: str) -> Catalog:
    with open(path, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    fields = {
        name: FieldSpec(
            name=name,
            type=str(spec["type"]),
            digits=spec.get("digits"),
            zh=str(spec.get("zh", "")),
            en=str(spec.get("en", "")),
            aliases=_tuple(spec.get("aliases")),
        )
        for name, spec in raw["fields"].items()
    }
    layers = {
        name: LayerSpec(
            name=name,
            geometry=str(spec["geometry"]),
            required=_tuple(spec.get("required")),
            id_field=spec.get("id_field"),
            nullable=_tuple(spec.get("nullable")),
            optional=_tuple(spec.get("optional")),
            zh=str(spec.get("zh", "")),
            en=str(spec.get("en", "")),
            aliases=_tuple(spec.get("aliases")),
            rename={str(k): str(v) for k, v in (spec.get("rename") or {}).items()},
            coverage=bool(spec.get("coverage", False)),
        )
        for name, spec in raw["layers"].items()
    }
    kinds = tuple((str(k["pattern"]), str(k["kind"])) for k in raw.get("kinds", ()))
    return Catalog(fields=fields, layers=layers, kinds=kinds, path=Path(path))


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load the layer catalog (cached).

    Parameters
    ----------
    path
        A catalog YAML file; default ``layers/catalog.yml`` of the source tree (or the copy in
        ``gridplan/data``).

    """
    if path is None:
        for candidate in CATALOG_PATHS:
            if candidate.exists():
                path = candidate
                break
        else:  # pragma: no cover - packaging error
            raise FileNotFoundError(f"layer catalog not found in {', '.join(map(str, CATALOG_PATHS))}")
    return _load_catalog_cached(str(Path(path).resolve()))


# --------------------------------------------------------------------------------------------
# field mapping and coercion
# --------------------------------------------------------------------------------------------


def map_fields(df: pd.DataFrame, kind: str | None, *, catalog: Catalog | None = None) -> pd.DataFrame:
    """Rename columns to canonical names through the catalog (returns a renamed copy).

    A column is renamed only when its canonical name is not taken already; the geometry column is
    never renamed.

    Examples
    --------
    >>> df = pd.DataFrame({"网格编码": ["A1"], "名称": ["一网格"], "other": [1]})
    >>> list(map_fields(df, "dept").columns)
    ['dept_grid_id', 'dept_grid_name', 'other']

    """
    cat = catalog or load_catalog()
    geom_name = df.geometry.name if isinstance(df, gpd.GeoDataFrame) else None
    taken = {c for c in df.columns if c in cat.fields}
    renames: dict[str, str] = {}
    for col in df.columns:
        if col == geom_name or col in cat.fields:
            continue
        target = cat.field_for(str(col), kind)
        if target is not None and target not in taken:
            renames[col] = target
            taken.add(target)
    return df.rename(columns=renames) if renames else df.copy()


def coerce_fields(df: pd.DataFrame, *, catalog: Catalog | None = None) -> pd.DataFrame:
    """Cast every canonical column to its catalog type (returns a copy).

    ``code`` → zero-padded text, ``id``/``str`` → text (blank → missing), ``int`` → int64 (float64
    when there are missing values), ``float`` → float64, ``datetime`` → datetime64 (ISO 8601).

    Examples
    --------
    >>> df = pd.DataFrame({"county_code": [441900], "community_code": [441900119001.0],
    ...                    "town_code": ["41900119"], "households": ["12"]})
    >>> out = coerce_fields(df)
    >>> out.loc[0, "county_code"], out.loc[0, "community_code"], out.loc[0, "town_code"]
    ('441900', '441900119001', '041900119')
    >>> out["households"].dtype
    dtype('int64')

    """
    cat = catalog or load_catalog()
    out = df.copy()
    for col in out.columns:
        spec = cat.fields.get(col)
        if spec is None or (isinstance(out, gpd.GeoDataFrame) and col == out.geometry.name):
            continue
        s = out[col]
        if spec.type in ("code", "id"):
            out[col] = _readers.to_code_text(s, spec.digits if spec.type == "code" else None)
        elif spec.type == "str":
            out[col] = _readers.blank_to_na(s)
        elif spec.type in ("int", "float"):
            num = pd.to_numeric(s, errors="coerce") if not pd.api.types.is_numeric_dtype(s) else s
            num = num.astype("float64")
            if spec.type == "int" and num.notna().all() and np.all(np.mod(num.to_numpy(), 1) == 0):
                out[col] = num.astype("int64")
            else:
                out[col] = num
        elif spec.type == "datetime":
            out[col] = parse_datetimes(s)
    return out


# --------------------------------------------------------------------------------------------
# reading layers
# --------------------------------------------------------------------------------------------


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
    to_crs: Any = crs.COMPUTE_EPSG,
    encoding: str | None = None,
    crs_if_missing: Any = None,
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
    return _read_layer(
        Path(path), layer, kind=kind, to_crs=to_crs, encoding=encoding, crs_if_missing=crs_if_missing,
        coord_sys=coord_sys, catalog=catalog or load_catalog(), log_level=logging.INFO,
    )


def _read_layer(
    p: Path,
    layer: str | None,
    *,
    kind: str | None,
    to_crs: Any,
    encoding: str | None,
    crs_if_missing: Any,
    catalog: Catalog,
    log_level: int,
    coord_sys: str | None = None,
) -> gpd.GeoDataFrame:
    t0 = time.perf_counter()
    cat = catalog
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
    path: str | Path, *, to_crs: Any = crs.COMPUTE_EPSG, catalog: Catalog | None = None
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
            skipped.append(name)
            continue
        out[name] = _read_layer(
            p, name if _readers.detect_format(p) == "gpkg" else None, kind=None, to_crs=to_crs,
            encoding=None, crs_if_missing=None, catalog=cat, log_level=logging.DEBUG,
        )
    if not out:
        raise InputError(
            f"holds no layer the catalog knows (found: {', '.join(names)}); expected e.g. "
            f"{', '.join(n for n in cat.layers if n != 'dept')}, dept_<name>",
            file=p,
        )
    if skipped:
        logger.info("skipped layers the catalog does not know: %s", ", ".join(skipped))
    logger.info(
        "read %d layers from %s: %s", len(out), p.name, ", ".join(f"{k} {len(v):,}" for k, v in out.items())
    )
    return out


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


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


def fingerprint(path: str | Path) -> str:
    """Return the SHA-256 hex digest of a file's bytes (the identity recorded in plan metadata)."""
    p = Path(path)
    _readers.require_file(p)
    digest = hashlib.sha256()
    with open(p, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# events
# --------------------------------------------------------------------------------------------


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
    to_crs: Any = crs.COMPUTE_EPSG,
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


def required_fields(kind: str, *, catalog: Catalog | None = None) -> tuple[str, ...]:
    """Return the required fields of layer *kind* (e.g. ``required_fields("dept")``)."""
    return (catalog or load_catalog()).spec(kind).required


def layer_kinds(names: Iterable[str], *, catalog: Catalog | None = None) -> dict[str, str | None]:
    """Map layer names to their catalog kinds (``None`` when unrecognised)."""
    cat = catalog or load_catalog()
    return {name: cat.kind_for(name) for name in names}


__all__ = [
    "Catalog",
    "EventTable",
    "FieldSpec",
    "LayerSpec",
    "coerce_fields",
    "fingerprint",
    "layer_kinds",
    "list_layers",
    "load_catalog",
    "map_fields",
    "parse_datetimes",
    "read_events",
    "read_layer",
    "read_layers",
    "required_fields",
    "write_layers",
    "write_table_csv",
]
