"""Upload routes: departmental layers and cases/hazards CSVs, checked before anything reads them.

:func:`store_upload` is the one way a file enters the service (also for ``POST
/plans/{id}/reimport``): streamed to disk under the size cap, checked by
:mod:`gridplan.api.uploads`, registered in the metadata store — or removed entirely on any error.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, UploadFile

from gridplan.api.auth import Principal
from gridplan.api.deps import ServiceDep, require
from gridplan.api.schemas import errors
from gridplan.api.service import Service
from gridplan.api.uploads import UploadTooLarge, ingest_cases, ingest_layers

__all__ = ["router", "store_upload"]

router = APIRouter(prefix="/uploads", tags=["uploads"], responses=errors(401, 403, 404, 413, 422))


def _save_stream(upload: UploadFile, dest: Path, *, max_bytes: int) -> int:
    n = 0
    with open(dest, "wb") as fh:
        while chunk := upload.file.read(1 << 20):
            n += len(chunk)
            if n > max_bytes:
                raise UploadTooLarge(
                    f"over the upload limit of {max_bytes} bytes (max_upload_mb)",
                    file=upload.filename or "upload",
                    field="file",
                )
            fh.write(chunk)
    return n


def _check(service: Service, incoming: Path, filename: str, kind: str) -> tuple[Path, dict[str, int]]:
    """Check the saved file with the ingest of its *kind*; return the stored file and layer counts."""
    folder = incoming.parent
    if kind == "cases":
        path, n = ingest_cases(incoming, filename, folder, limits=service.limits)
        return path, {"events": n}
    return ingest_layers(incoming, filename, folder, limits=service.limits, city=kind == "layers")


def store_upload(service: Service, file: UploadFile, kind: str, owner: str) -> dict[str, Any]:
    """Save, check and register an upload of *kind* (``layers``, ``grids`` or ``cases``)."""
    upload_id = secrets.token_hex(8)
    folder = service.data_dir / "uploads" / upload_id
    folder.mkdir(parents=True)
    filename = Path(file.filename or "upload").name
    try:
        ext = re.sub(r"[^a-z0-9]", "", Path(filename).suffix.lower())[:8]
        incoming = folder / f"incoming.{ext or 'bin'}"
        size = _save_stream(file, incoming, max_bytes=service.limits.max_upload_bytes)
        path, layers = _check(service, incoming, filename, kind)
        n = sum(layers.values())
        incoming.unlink(missing_ok=True)
        service.meta.add_upload(
            {
                "upload_id": upload_id,
                "kind": kind,
                "filename": filename[:256],
                "path": str(path),
                "features": n,
                "layers_json": json.dumps(layers),
                "owner": owner,
            }
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return {
        "upload_id": upload_id,
        "kind": kind,
        "filename": filename,
        "bytes": size,
        "features": n,
        "layers": layers,
    }


@router.post("/layers", status_code=201)
def upload_layers(
    file: Annotated[UploadFile, File(description=".gpkg, .geojson or .zip of shapefiles")],
    p: Annotated[Principal, require("plans:write")],
    service: ServiceDep,
) -> dict[str, Any]:
    """Upload departmental layers (checked: size, archive safety, feature count)."""
    return store_upload(service, file, "layers", p.name)


@router.post("/cases", status_code=201)
def upload_cases(
    file: Annotated[UploadFile, File(description="cases/hazards .csv (or .zip with one .csv)")],
    p: Annotated[Principal, require("analysis:run")],
    service: ServiceDep,
) -> dict[str, Any]:
    """Upload a cases or hazards CSV for geocoding."""
    return store_upload(service, file, "cases", p.name)
