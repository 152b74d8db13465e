"""Checking uploads before anything reads them: size, archive safety, format, feature counts.

Archives are inspected before extraction and extracted by streaming with hard byte caps, because
a ZIP's declared sizes can lie: members with absolute names, ``..`` parts, drive letters or
symlinks are refused, as are members with unexpected extensions, too many members, a total
uncompressed size above the limit or a compression ratio typical of zip bombs.  Every refusal is an
:class:`~gridplan.errors.InputError` (HTTP 4xx) that names the file and, for archives, the member.
"""

from __future__ import annotations

import logging
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd
import pyogrio

from gridplan._atomic import atomic_path
from gridplan.errors import InputError
from gridplan.layers.formats import require_shapefile_parts

logger = logging.getLogger(__name__)

__all__ = [
    "UploadLimits",
    "UploadTooLarge",
    "check_city_layers",
    "ingest_cases",
    "ingest_layers",
    "safe_extract",
]

LAYER_EXTS = frozenset({".gpkg", ".zip", ".geojson", ".json"})
CASES_EXTS = frozenset({".csv", ".zip"})
#: What may be inside an uploaded archive.
ARCHIVE_EXTS = frozenset(
    {
        ".shp",
        ".shx",
        ".dbf",
        ".prj",
        ".cpg",
        ".qix",
        ".sbn",
        ".sbx",
        ".xml",
        ".gpkg",
        ".geojson",
        ".json",
        ".csv",
        ".txt",
    }
)


class UploadTooLarge(InputError):  # noqa: N818 - reads as a status, like HTTP 413
    """An upload over a size or feature-count limit (HTTP 413)."""

    http_status = 413


@dataclass(frozen=True)
class UploadLimits:
    """Limits applied to one upload.

    Attributes
    ----------
    max_upload_bytes
        Largest accepted request body / file.
    max_features
        Most features (layers: summed over layers; CSV: rows).
    max_unzipped_bytes
        Largest total uncompressed size of an archive.
    max_ratio
        Largest uncompressed/compressed ratio of an archive or of one member.
    max_members
        Most members in an archive.

    """

    max_upload_bytes: int = 200 * 2**20
    max_features: int = 5_000_000
    max_unzipped_bytes: int = 2 * 2**30
    max_ratio: float = 100.0
    max_members: int = 1000


def _check_member_name(name: str, file: str) -> PurePosixPath:
    text = name.replace("\\", "/")
    p = PurePosixPath(text)
    if (
        text.startswith("/")
        or ".." in p.parts
        or (len(text) > 1 and text[1] == ":")
        or any(part in ("", ".") for part in p.parts[:-1])
    ):
        raise InputError(f"archive member {name!r} has an unsafe path (absolute or '..'); refused", file=file)
    return p


def safe_extract(
    archive: Path, dest: Path, *, file: str, limits: UploadLimits, allowed_exts: frozenset[str] = ARCHIVE_EXTS
) -> list[Path]:
    """Check and extract a ZIP archive into *dest*; return the extracted files.

    Raises
    ------
    InputError
        Not a ZIP, unsafe member path, symlink, unexpected extension, too many members, or a
        zip bomb (declared or actual size/ratio over the limits).

    """
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"not a readable ZIP archive ({exc})", file=file) from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > limits.max_members:
            raise InputError(
                f"archive has {len(infos)} members; at most {limits.max_members} allowed", file=file
            )
        if not infos:
            raise InputError("archive is empty", file=file)
        total_declared = 0
        compressed = max(archive.stat().st_size, 1)
        for info in infos:
            p = _check_member_name(info.filename, file)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise InputError(f"archive member {info.filename!r} is a symbolic link; refused", file=file)
            if p.suffix.lower() not in allowed_exts:
                raise InputError(
                    f"archive member {info.filename!r}: extension not allowed "
                    f"(expected {', '.join(sorted(allowed_exts))})",
                    file=file,
                )
            if info.file_size > limits.max_ratio * max(info.compress_size, 1) and info.file_size > 2**20:
                raise InputError(
                    f"archive member {info.filename!r} expands {info.file_size} bytes from "
                    f"{info.compress_size}: looks like a zip bomb; refused",
                    file=file,
                )
            total_declared += info.file_size
        if total_declared > limits.max_unzipped_bytes or (
            total_declared > limits.max_ratio * compressed and total_declared > 2**20
        ):
            raise InputError(
                f"archive expands to {total_declared} bytes from {compressed}: over the "
                "limit or looks like a zip bomb; refused",
                file=file,
            )
        dest.mkdir(parents=True, exist_ok=True)
        out: list[Path] = []
        written = 0
        budget = min(limits.max_unzipped_bytes, int(limits.max_ratio * compressed) + 2**20)
        for info in infos:
            target = dest / PurePosixPath(info.filename.replace("\\", "/")).name
            if target in out:
                raise InputError(f"archive has two members named {target.name!r}", file=file)
            with zf.open(info) as src, open(target, "wb") as dst:
                while chunk := src.read(1 << 16):
                    written += len(chunk)
                    if written > budget:
                        raise InputError(
                            "archive expands beyond its declared size or the limit: zip bomb refused",
                            file=file,
                        )
                    dst.write(chunk)
            out.append(target)
    return out


def _count_gpkg(path: Path, file: str) -> dict[str, int]:
    try:
        names = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
        counts = {
            n: int(pyogrio.read_info(path, layer=n, force_feature_count=True)["features"]) for n in names
        }
    except Exception as exc:  # GDAL cannot open it
        raise InputError(
            f"cannot be read as a vector dataset ({str(exc).splitlines()[0][:200]})", file=file
        ) from None
    return counts


def _check_features(counts: dict[str, int], file: str, limits: UploadLimits) -> None:
    if not counts:
        raise InputError("holds no vector layer", file=file)
    total = sum(counts.values())
    if total > limits.max_features:
        raise UploadTooLarge(
            f"{total} features; at most {limits.max_features} allowed (max_upload_features)", file=file
        )


def _extension(filename: str, allowed: frozenset[str], hint: str) -> str:
    """Return the lower-case extension of *filename* if it is *allowed* (``InputError`` with *hint*)."""
    ext = Path(filename).suffix.lower()
    if ext not in allowed:
        raise InputError(
            f"unexpected file type {ext or '(none)'}; upload {hint}", file=filename, field="file"
        )
    return ext


def check_city_layers(path: Path, filename: str) -> None:
    """Read an uploaded city's layers through the one door of :func:`gridplan.layers.read_layers`.

    What a merge would trip over later is refused now (HTTP 422), naming the uploaded file rather
    than the server's copy: a layer with no features, layer names the catalog does not know (with
    its names suggested), NaN/inf coordinates, coordinates that contradict the declared CRS.
    """
    from gridplan.layers import read_layers

    try:
        read_layers(path)
    except InputError as exc:
        raise type(exc)(exc.reason, file=filename, layer=exc.layer, row=exc.row, field=exc.field) from None


def ingest_layers(
    src: Path, filename: str, dest_dir: Path, *, limits: UploadLimits, city: bool = False
) -> tuple[Path, dict[str, int]]:
    """Turn an uploaded layers file into ``dest_dir/layers.gpkg``.

    Accepts a GeoPackage, GeoJSON, or a ZIP of shapefiles / one GeoPackage; returns the new file
    and the feature count of each layer.  With *city* (a layers upload, not an edited grid layer)
    the layers are also read as a merge will read them (:func:`check_city_layers`).
    """
    out, counts = _ingest_layers(src, filename, dest_dir, limits=limits)
    if city:
        check_city_layers(out, filename)
    return out, counts


def _ingest_layers(
    src: Path, filename: str, dest_dir: Path, *, limits: UploadLimits
) -> tuple[Path, dict[str, int]]:
    ext = _extension(filename, LAYER_EXTS, ".gpkg, .geojson or a .zip of shapefiles")
    dest_dir.mkdir(parents=True, exist_ok=True)
    out = dest_dir / "layers.gpkg"
    if ext == ".gpkg":
        found = _count_gpkg(src, filename)
        _check_features(found, filename, limits)
        with atomic_path(out) as tmp:
            shutil.copyfile(src, tmp)
        return out, found
    if ext in (".geojson", ".json"):
        sources = [(src, Path(filename).stem.lower())]
    else:
        files = safe_extract(src, dest_dir / "unzipped", file=filename, limits=limits)
        gpkgs = [f for f in files if f.suffix.lower() == ".gpkg"]
        if len(gpkgs) == 1:
            found = _count_gpkg(gpkgs[0], f"{filename}:{gpkgs[0].name}")
            _check_features(found, filename, limits)
            with atomic_path(out) as tmp:
                shutil.copyfile(gpkgs[0], tmp)
            shutil.rmtree(dest_dir / "unzipped", ignore_errors=True)
            return out, found
        sources = [(f, f.stem.lower()) for f in files if f.suffix.lower() in (".shp", ".geojson")]
        if not sources:
            raise InputError("archive holds no .shp, .geojson or .gpkg layer", file=filename)
    counts: dict[str, int] = {}
    with atomic_path(out) as tmp:
        for path, layer in sources:
            name = f"{filename}:{path.name}" if path != src else filename
            if path.suffix.lower() == ".shp":
                require_shapefile_parts(path, name=name)
            try:
                n = int(pyogrio.read_info(path, force_feature_count=True)["features"])
            except Exception as exc:
                raise InputError(f"cannot be read ({str(exc).splitlines()[0][:200]})", file=name) from None
            counts[layer] = n
            _check_features(counts, filename, limits)
            try:
                gdf = pyogrio.read_dataframe(path)
                pyogrio.write_dataframe(gdf, tmp, layer=layer, driver="GPKG", append=tmp.exists())
            except Exception as exc:
                raise InputError(f"cannot be read ({str(exc).splitlines()[0][:200]})", file=name) from None
    shutil.rmtree(dest_dir / "unzipped", ignore_errors=True)
    return out, counts


def ingest_cases(src: Path, filename: str, dest_dir: Path, *, limits: UploadLimits) -> tuple[Path, int]:
    """Check an uploaded cases/hazards CSV (or a ZIP holding one CSV).

    It is stored as ``dest_dir/events.csv`` (UTF-8); returns the path and the row count.
    """
    ext = _extension(filename, CASES_EXTS, "a .csv (or a .zip with one .csv)")
    dest_dir.mkdir(parents=True, exist_ok=True)
    name = filename
    if ext == ".zip":
        files = safe_extract(
            src, dest_dir / "unzipped", file=filename, limits=limits, allowed_exts=frozenset({".csv"})
        )
        if len(files) != 1:
            raise InputError("archive must hold exactly one .csv", file=filename)
        src, name = files[0], f"{filename}:{files[0].name}"
    table = None
    for enc in ("utf-8-sig", "gb18030"):
        try:
            table = pd.read_csv(src, dtype=str, keep_default_na=False, encoding=enc)
            break
        except UnicodeDecodeError:
            continue
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise InputError(f"not a readable CSV ({str(exc).splitlines()[0]})", file=name) from None
    if table is None:
        raise InputError("text is neither UTF-8 nor GB18030", file=name)
    if "address" not in table.columns and not {"lon", "lat"} <= set(table.columns):
        raise InputError("needs an 'address' column or 'lon' and 'lat' columns", file=name, field="address")
    if len(table) > limits.max_features:
        raise UploadTooLarge(
            f"{len(table)} rows; at most {limits.max_features} allowed (max_upload_features)", file=name
        )
    out = dest_dir / "events.csv"
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False, encoding="utf-8")
    shutil.rmtree(dest_dir / "unzipped", ignore_errors=True)
    return out, len(table)
