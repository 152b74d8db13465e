"""Published maps, read-only: ``GET /maps/`` (the index page) and ``GET /maps/<file>``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from gridplan.api.auth import Principal
from gridplan.api.deps import ServiceDep, require

__all__ = ["router"]

router = APIRouter(prefix="/maps", tags=["maps"])

_MAP_FILE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,127}\.(?:html|json|png|css|js)$")


def _map_file(maps_dir: Path, name: str) -> Path:
    """Return the published file *name* inside *maps_dir* (400 for an unsafe name, 404 when absent)."""
    if not _MAP_FILE.match(name) or ".." in name:
        raise HTTPException(400, f"not a valid map file name: {name[:80]!r}")
    root = maps_dir.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise HTTPException(404, f"no published map {name!r}")
    return path


@router.get("/")
def maps_index(_: Annotated[Principal, require("maps:read")], service: ServiceDep) -> FileResponse:
    """Serve the published maps' index page."""
    return FileResponse(_map_file(service.maps_dir, "index.html"), media_type="text/html; charset=utf-8")


@router.get("/{name:path}")
def map_file(name: str, _: Annotated[Principal, require("maps:read")], service: ServiceDep) -> FileResponse:
    """One published map file (read-only)."""
    return FileResponse(_map_file(service.maps_dir, name))
