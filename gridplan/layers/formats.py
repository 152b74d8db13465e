"""Format-specific raw readers behind :mod:`gridplan.layers` (private).

Each reader returns the file's table as it is (original column names, no CRS handling beyond what
the file declares) and turns every library failure into an :class:`~gridplan.errors.InputError`
that names the file.  Two things are hand-written here because the libraries get them wrong for
Chinese data:

* **Shapefile encoding.**  Without a ``.cpg`` (and without a code-page byte in the ``.dbf``), GDAL
  decodes text as ISO-8859-1 and returns mojibake without a warning.  We sniff the ``.dbf`` bytes
  (field names and records): valid UTF-8 → UTF-8, else valid GB18030 (a superset of GBK/GB2312) →
  GB18030, and pass that to pyogrio's ``encoding=``.
* **CSV encoding.**  Exports from Chinese desktop software are often GBK; a UTF-8 BOM is common
  too.  We try UTF-8 (BOM stripped) and fall back to GB18030.  All CSV columns are read as text so
  codes such as ``441900119001`` are never turned into floats.
"""

from __future__ import annotations

import logging
import re
import struct
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyogrio.errors import DataLayerError, DataSourceError

from gridplan import crs
from gridplan.errors import CRSError, InputError

logger = logging.getLogger(__name__)

#: File suffix → format name.
FORMATS: dict[str, str] = {
    ".gpkg": "gpkg",
    ".shp": "shp",
    ".geojson": "geojson",
    ".json": "geojson",
    ".parquet": "parquet",
    ".geoparquet": "parquet",
    ".csv": "csv",
    ".txt": "csv",
}

_OGR_ERRORS = (DataSourceError, DataLayerError)

#: Column names taken as a WKT geometry in CSV input (case-insensitive).
WKT_COLUMNS = ("wkt", "geometry", "geom", "the_geom", "shape")

_DIGITS = re.compile(r"^\d+$")
_INTEGRAL_TEXT = re.compile(r"^\d+\.0*$")
_SCI_TEXT = re.compile(r"^\d+(\.\d+)?[eE]\+?\d+$")
_SNIFF_BYTES = 16 * 1024 * 1024


def detect_format(path: Path) -> str:
    """Return the format name of *path* from its suffix, or raise :class:`InputError`."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        supported = ", ".join(sorted(set(FORMATS)))
        raise InputError(f"unsupported file type {path.suffix!r}; use one of {supported}", file=path)
    return fmt


def require_file(path: Path) -> None:
    """Raise :class:`InputError` unless *path* is an existing file."""
    if not path.exists():
        raise InputError("file not found; check the path", file=path)
    if path.is_dir():
        raise InputError("is a folder, not a file; give the path of the layer file", file=path)


def list_gpkg_layers(path: Path) -> list[tuple[str, str | None]]:
    """Return ``[(layer_name, geometry_type or None), …]`` of a GeoPackage."""
    try:
        info = pyogrio.list_layers(path)
    except _OGR_ERRORS as exc:
        raise InputError(f"not a readable GeoPackage ({_first_line(exc)})", file=path) from None
    return [(str(name), None if gtype is None else str(gtype)) for name, gtype in info]


def resolve_gpkg_layer(path: Path, layer: str | None) -> str:
    """Return the layer to read: *layer* (exact, then case-insensitive) or the only layer."""
    names = [name for name, _ in list_gpkg_layers(path)]
    if not names:
        raise InputError("the GeoPackage holds no layers", file=path)
    if layer is None:
        if len(names) == 1:
            return names[0]
        raise InputError(
            f"holds {len(names)} layers; name the one to read: {', '.join(names)}", file=path
        )
    if layer in names:
        return layer
    folded = {n.casefold(): n for n in names}
    if layer.casefold() in folded:
        return folded[layer.casefold()]
    raise InputError(f"no layer {layer!r}; available layers: {', '.join(names)}", file=path)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_ogr(path: Path, layer: str | None, *, encoding: str | None = None) -> gpd.GeoDataFrame:
    """Read one layer through pyogrio; OGR failures become :class:`InputError`."""
    kwargs: dict[str, Any] = {"use_arrow": True}  # ~3x faster than the row-wise reader
    if layer is not None:
        kwargs["layer"] = layer
    if encoding is not None:
        kwargs["encoding"] = encoding
    try:
        with warnings.catch_warnings():
            # NaN/inf coordinates: shapely warns while decoding; the geometry door refuses them by row
            warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
            return pyogrio.read_dataframe(path, **kwargs)
    except _OGR_ERRORS as exc:
        kind = {"geojson": "GeoJSON", "gpkg": "GeoPackage", "shp": "Shapefile"}.get(
            FORMATS.get(path.suffix.lower(), ""), "layer"
        )
        raise InputError(f"not a readable {kind} ({_first_line(exc)})", file=path, layer=layer) from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"text is not in {encoding or 'the declared encoding'} ({exc.reason}); "
            "add a .cpg file naming the encoding (e.g. GBK)",
            file=path,
            layer=layer,
        ) from None


def require_shapefile_parts(path: Path, *, prj: bool = True, name: str | None = None) -> None:
    """Refuse a Shapefile whose ``.dbf`` (attributes) or, with *prj*, ``.prj`` (CRS) is missing.

    GDAL reads a ``.shp`` alone as geometries without fields or CRS; the user then hears about a
    missing required field or CRS instead of the file they forgot to copy.
    """
    needed = {".shx": "the shape index", ".dbf": "the attributes"}
    if prj:
        needed[".prj"] = "the CRS"
    missing = [f"{ext} ({what})" for ext, what in needed.items() if _sidecar(path, ext) is None]
    if missing:
        raise InputError(
            f"the shapefile's {', '.join(missing)} file is missing beside it; copy every file of the "
            "shapefile (.shp, .shx, .dbf, .prj, .cpg)",
            file=name or path,
        )


def read_shapefile(path: Path, *, encoding: str | None = None) -> gpd.GeoDataFrame:
    """Read a Shapefile, honouring ``.cpg`` and otherwise detecting UTF-8 / GB18030.

    Its ``.shx`` and ``.dbf`` must be there; a missing ``.prj`` is the reader's CRS error (a CRS may
    be given instead).
    """
    require_shapefile_parts(path, prj=False)
    cpg = _sidecar(path, ".cpg")
    if encoding is None and cpg is None:
        encoding = sniff_dbf_encoding(path)
        if encoding is not None:
            logger.debug("%s has no .cpg; text detected as %s", path, encoding)
    return read_ogr(path, None, encoding=encoding)


def _sidecar(path: Path, suffix: str) -> Path | None:
    for candidate in (path.with_suffix(suffix), path.with_suffix(suffix.upper())):
        if candidate.exists():
            return candidate
    return None


def sniff_dbf_encoding(shp_path: Path) -> str | None:
    """Guess the text encoding of a Shapefile's ``.dbf`` without a ``.cpg``.

    Returns ``None`` when the text is plain ASCII (any encoding reads it) or the ``.dbf`` is
    missing, ``"UTF-8"`` when the bytes are valid UTF-8, ``"GB18030"`` when they are valid
    GB18030 (GBK/GB2312 are subsets), else ``None`` (leave it to GDAL).
    """
    dbf = _sidecar(shp_path, ".dbf")
    if dbf is None:
        return None
    with open(dbf, "rb") as fh:
        head = fh.read(32)
        if len(head) < 32:
            return None
        header_len, _record_len = struct.unpack("<HH", head[8:12])
        descriptors = fh.read(max(header_len - 32, 0))
        body = fh.read(_SNIFF_BYTES)
    names = b"".join(
        descriptors[i : i + 11].split(b"\x00", 1)[0] + b" "
        for i in range(0, len(descriptors) - 31, 32)
        if descriptors[i : i + 1] != b"\r"
    )
    text = names + body
    if text.isascii():
        return None
    truncated = len(body) == _SNIFF_BYTES
    for codec in ("utf-8", "gb18030"):
        if _decodes(text, codec, allow_truncated_tail=truncated):
            return "UTF-8" if codec == "utf-8" else "GB18030"
    return None


def _decodes(data: bytes, codec: str, *, allow_truncated_tail: bool) -> bool:
    try:
        data.decode(codec)
    except UnicodeDecodeError as exc:
        return allow_truncated_tail and exc.start >= len(data) - 4
    return True


def read_geoparquet(path: Path) -> gpd.GeoDataFrame:
    """Read a GeoParquet file; a plain Parquet file without geo metadata is an :class:`InputError`."""
    try:
        return gpd.read_parquet(path)
    except (ValueError, OSError, TypeError) as exc:
        raise InputError(f"not a readable GeoParquet file ({_first_line(exc)})", file=path) from None


def sniff_text_encoding(path: Path) -> str:
    """Return ``"utf-8-sig"``, ``"utf-8"`` or ``"gb18030"`` for a text file, else raise."""
    with open(path, "rb") as fh:
        data = fh.read(_SNIFF_BYTES)
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    truncated = len(data) == _SNIFF_BYTES
    if _decodes(data, "utf-8", allow_truncated_tail=truncated):
        return "utf-8"
    if _decodes(data, "gb18030", allow_truncated_tail=truncated):
        return "gb18030"
    raise InputError("text is neither UTF-8 nor GBK/GB18030; save it as UTF-8", file=path)


def read_csv_text(path: Path, *, encoding: str | None = None) -> pd.DataFrame:
    """Read a CSV with every column as text (codes stay strings), encoding detected when not given."""
    enc = encoding or sniff_text_encoding(path)
    try:
        df = _read_csv(path, enc)
    except UnicodeDecodeError:
        if encoding is not None or enc == "gb18030":
            raise InputError(f"text is not valid {enc}; save it as UTF-8", file=path) from None
        df = _read_csv(path, "gb18030")  # a GBK byte beyond the sniffed head
    except pd.errors.EmptyDataError:
        raise InputError("the CSV file is empty (no header row)", file=path) from None
    except pd.errors.ParserError as exc:
        raise InputError(f"not a readable CSV ({_first_line(exc)})", file=path) from None
    df.columns = [str(c).lstrip("\ufeff").strip() for c in df.columns]
    return df


def _read_csv(path: Path, encoding: str) -> pd.DataFrame:
    """Read with pyarrow's parser (~7x faster); fall back to pandas' C parser for its messages."""
    try:
        return pd.read_csv(path, dtype=str, encoding=encoding, engine="pyarrow")
    except UnicodeDecodeError:
        raise
    except ValueError:  # pyarrow.ArrowInvalid: ragged rows, invalid UTF-8 … → C parser says which row
        return pd.read_csv(path, dtype=str, encoding=encoding)


# ------------------------------------------------------------------------------------------
# text, codes and dates
# ------------------------------------------------------------------------------------------


_NULL_TEXT = ("", "NULL", "null")


def blank_to_na(s: pd.Series) -> pd.Series:
    """Text column with blank/``NULL`` cells as missing (values are not otherwise touched)."""
    text = s if pd.api.types.is_string_dtype(s) else s.astype("str")
    blank = text.isin(_NULL_TEXT)
    padded = text.str.startswith(" ") | text.str.endswith(" ")
    if padded.any():
        text = text.where(~padded.fillna(False).astype(bool), text.str.strip())
        blank = text.isin(_NULL_TEXT)
    return text.mask(blank.fillna(False).astype(bool))


def to_code_text(s: pd.Series, digits: int | None) -> pd.Series:
    """Codes/ids as text: integers and integral floats lose no digits and get no ``.0``."""
    if pd.api.types.is_bool_dtype(s):
        return s.astype("str")
    if pd.api.types.is_numeric_dtype(s):
        out = pd.Series(pd.NA, index=s.index, dtype="str")
        ok = s.notna()
        vals = s[ok]
        if pd.api.types.is_float_dtype(vals) and not np.all(np.mod(vals.to_numpy(), 1) == 0):
            out[ok] = vals.astype("str")
        else:
            out[ok] = vals.astype("int64").astype("str")
        text = out
    else:
        text = blank_to_na(s)
        dotted = text.str.contains(".", regex=False).fillna(False).astype(bool)
        dotted |= text.str.contains("E", case=False, regex=False).fillna(False).astype(bool)
        if dotted.any():  # "441900.0" from a float column; Excel's "4.41900119001E+11"
            sub = text[dotted]
            integral = sub.str.fullmatch(_INTEGRAL_TEXT.pattern).astype(bool)
            sci = sub.str.fullmatch(_SCI_TEXT.pattern).astype(bool)
            fixed = sub.where(~integral, sub.str.split(".", n=1).str[0])
            if sci.any():
                as_num = pd.to_numeric(sub[sci], errors="coerce")
                fixed = fixed.where(~sci, as_num.map(lambda v: str(int(v)) if v == v else None))
            text = text.where(~dotted, fixed)
    if digits:
        short = (text.str.len() < digits).fillna(False).astype(bool)
        if short.any():
            sub = text[short]
            pad = sub.str.fullmatch(_DIGITS.pattern).astype(bool)
            text = text.where(~short, sub.where(~pad, sub.str.zfill(digits)))
    return text.astype("str")


def parse_datetimes(s: pd.Series) -> pd.Series:
    """Parse ISO 8601 text to naive datetime64 (China Standard Time); unparseable → NaT.

    Examples
    --------
    >>> parse_datetimes(pd.Series(["2024-03-01T08:30:00", "2024-03-02", "yesterday"])).tolist()
    [Timestamp('2024-03-01 08:30:00'), Timestamp('2024-03-02 00:00:00'), NaT]

    """
    if pd.api.types.is_datetime64_any_dtype(s):
        parsed = s
    else:
        text = blank_to_na(s)
        try:
            parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
        except (ValueError, TypeError):  # mixed time zones
            parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None)
    return parsed.astype("datetime64[ns]")


def csv_to_gdf(
    df: pd.DataFrame,
    path: Path,
    layer: str,
    geometry_kind: str | None,
    crs_if_missing: crs.CRSLike | None,
    coord_sys: str | None = None,
) -> gpd.GeoDataFrame:
    """Build point geometry from lon/lat (+coord_sys) or polygons from a WKT column.

    Rows whose lon/lat are swapped or not degrees get no geometry (logged; validation reports
    them as ``null_geometry``); when most rows are swapped the columns are, and that is an error.
    """
    if "lon" in df.columns and "lat" in df.columns:
        lon = pd.to_numeric(df["lon"], errors="coerce").to_numpy(dtype="float64")
        lat = pd.to_numeric(df["lat"], errors="coerce").to_numpy(dtype="float64")
        default = coord_sys or "cgcs2000"
        if "coord_sys" in df.columns:
            systems: Any = df["coord_sys"].fillna(default).to_numpy(dtype=object)
        else:
            systems = default
        swapped = np.asarray(crs.is_swapped_lonlat(lon, lat, bbox_lonlat=crs.CHINA_BBOX))
        with np.errstate(invalid="ignore"):
            bad = swapped | (np.abs(lon) > 180) | (np.abs(lat) > 90)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            if swapped.sum() * 2 > np.isfinite(lon).sum():
                raise InputError(
                    f"lon and lat look swapped (row {first + 1}: lon {lon[first]}, lat {lat[first]}); "
                    "swap the two columns",
                    file=path, layer=layer, field="lon",
                )
            logger.warning(
                "%s: %d rows have swapped or impossible lon/lat (first: row %d); left without geometry",
                path.name, int(bad.sum()), first + 1,
            )
            lon, lat = np.where(bad, np.nan, lon), np.where(bad, np.nan, lat)
        try:
            wlon, wlat = crs.to_wgs84(lon, lat, systems)
        except InputError as exc:
            raise InputError(exc.reason, file=path, layer=layer, field="coord_sys") from None
        ok = np.isfinite(wlon) & np.isfinite(wlat)
        geom = np.full(len(df), None, dtype=object)
        geom[ok] = shapely.points(wlon[ok], wlat[ok])
        return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geom, index=df.index), crs=crs.EXCHANGE_EPSG)
    wkt_col = next((c for c in df.columns if str(c).casefold() in WKT_COLUMNS), None)
    if wkt_col is not None:
        try:
            geom = shapely.from_wkt(df[wkt_col].fillna("").replace("", None).to_numpy(dtype=object))
        except shapely.errors.GEOSException as exc:
            raise InputError(f"bad WKT ({exc})", file=path, layer=layer, field=str(wkt_col)) from None
        gdf = gpd.GeoDataFrame(df.drop(columns=[wkt_col]), geometry=gpd.GeoSeries(geom, index=df.index))
        if crs_if_missing is not None:
            return gdf.set_crs(crs_if_missing)
        x0, y0, x1, y1 = gdf.total_bounds
        if np.all(np.isfinite([x0, y0, x1, y1])) and -180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90:
            return gdf.set_crs(crs.EXCHANGE_EPSG)  # degrees: CGCS2000, as for lon/lat
        raise CRSError(
            "WKT coordinates are not degrees and the CRS is unknown; pass crs_if_missing= "
            "(e.g. 4547)",
            file=path,
            layer=layer,
        )
    if geometry_kind == "none":
        empty = gpd.GeoSeries([None] * len(df), index=df.index)
        return gpd.GeoDataFrame(df, geometry=empty, crs=crs.EXCHANGE_EPSG)
    raise InputError(
        "the CSV has neither lon/lat columns (经度/纬度) nor a WKT column; add one", file=path, layer=layer
    )
