"""Published maps, read-only: ``GET /maps/`` (the maps home page) and ``GET /maps/<file>``.

The home page lists the maps of the folder's manifest, newest first, for any caller holding
``maps:read`` (a browser with a sign-in cookie, or a script with a bearer token); a browser
without a session is sent to ``/signin`` by :class:`~gridplan.api.guard.AuthGuard`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

from gridplan.api.auth import Principal
from gridplan.api.deps import ServiceDep, require
from gridplan.api.schemas import content, errors
from gridplan.api.web import maps_home_page

__all__ = ["router"]

router = APIRouter(
    prefix="/maps",
    tags=["maps"],
    responses={
        **errors(400, 401, 403, 404, 422),
        **content("text/html", "(browsers without a session: to /signin)", 303),
    },
)

_MEDIA_TYPES = ("text/html", "application/json", "image/png", "text/css", "text/javascript")
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


@router.get("/", response_class=HTMLResponse)
def maps_home(p: Annotated[Principal, require("maps:read")], service: ServiceDep) -> HTMLResponse:
    """Serve the maps home page: every published map, newest first, with a sign-out button."""
    from gridplan.maps.publish import read_manifest

    entries = read_manifest(service.maps_dir)["maps"]
    return HTMLResponse(maps_home_page(entries, user=p.name, role=p.role))


@router.get(
    "/{name:path}",
    response_class=FileResponse,
    responses={
        200: {
            "description": "a published file",
            "content": {t: {"schema": {"type": "string"}} for t in _MEDIA_TYPES},
        }
    },
)
def map_file(name: str, _: Annotated[Principal, require("maps:read")], service: ServiceDep) -> FileResponse:
    """One published map file (read-only)."""
    return FileResponse(_map_file(service.maps_dir, name))
