"""The FastAPI application: :func:`create_app` wires the service, middleware and routers.

Security rules (PRODUCT §3.8, §7) enforced here and in :mod:`gridplan.api.routes`:

* anonymous callers reach only ``GET /health``, ``POST /login`` and the API description
  (``/docs``, ``/openapi.json``: no data); every other request is authenticated by
  :class:`~gridplan.api.guard.AuthGuard` from its headers alone, before routing and before any
  body is read or parsed (an anonymous upload is refused with 401 unread);
* every route declares the permission it needs (:data:`gridplan.api.auth.PERMISSIONS`); a leader
  holds no write permission, so every write route answers a leader with 403;
* request bodies are capped at ``max_upload_mb`` before they are read (413), uploads are checked
  by :mod:`gridplan.api.uploads`;
* every response carries a Content-Security-Policy without remote sources, ``nosniff`` and
  ``frame-ancestors 'none'`` (:mod:`gridplan.api.middleware`); the Swagger UI is served from the
  ``fastapi-offline`` package, so ``/docs`` makes no request outside this server;
* one exception handler maps :class:`~gridplan.errors.GridplanError` to its HTTP status
  (:func:`gridplan.errors.http_status_for`); unexpected errors give a 500 without details.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gridplan.api.auth import SessionTimes, TokenVerifier, create_user_token
from gridplan.api.guard import AuthGuard
from gridplan.api.jobs import JobRunner
from gridplan.api.middleware import BodyLimit, SecurityHeaders, csp_for
from gridplan.api.routes import admin, analyses, editor, edits, jobs, maps, plans, session, uploads, web
from gridplan.api.schemas import scrub_paths
from gridplan.api.service import Service
from gridplan.api.tasks import bind_tasks
from gridplan.api.uploads import UploadLimits
from gridplan.errors import GridplanError, http_status_for
from gridplan.settings import Settings, get_settings
from gridplan.store.base import is_postgres_url
from gridplan.store.meta import MetaStore
from gridplan.store.plans import PlanRepository

logger = logging.getLogger(__name__)

__all__ = ["PUBLIC_PATHS", "Service", "create_app", "create_user_token"]

PUBLIC_PATHS = frozenset(
    {"/", "/health", "/login", "/signin", "/docs", "/openapi.json", "/docs/oauth2-redirect"}
)
#: Prefixes anyone may reach: the offline Swagger UI's own files.
PUBLIC_PREFIXES = ("/docs/static/",)
#: The routers, in the order their routes are matched and listed in ``/openapi.json``.
ROUTERS = (
    session.router,
    web.router,
    admin.router,
    plans.router,
    edits.router,
    editor.router,
    uploads.router,
    analyses.router,
    jobs.router,
    maps.router,
)

_FALLBACK_DOCS = """<!doctype html><html><head><meta charset="utf-8"><title>gridplan API</title></head>
<body><h1>gridplan API</h1><p>Machine-readable description: <a href="/openapi.json">/openapi.json</a></p>
<ul id="ops"></ul><script>
fetch("/openapi.json").then(r => r.json()).then(spec => {
  const ul = document.getElementById("ops");
  for (const [path, ops] of Object.entries(spec.paths)) for (const [m, op] of Object.entries(ops)) {
    const li = document.createElement("li");
    li.textContent = m.toUpperCase() + " " + path + " \u2014 " + (op.summary || "");
    ul.appendChild(li);
  }
});
</script></body></html>"""


def _make_fastapi(**kwargs: Any) -> FastAPI:
    """Build FastAPI with docs that load nothing from a CDN.

    The Swagger UI comes from the ``fastapi-offline`` package; without it, ``/docs`` is a minimal
    local page listing the operations of ``/openapi.json``.
    """
    try:
        from fastapi_offline import FastAPIOffline
    except ImportError:
        app = FastAPI(docs_url=None, redoc_url=None, **kwargs)

        @app.get("/docs", include_in_schema=False)
        def docs() -> HTMLResponse:
            return HTMLResponse(_FALLBACK_DOCS)

        return app
    return FastAPIOffline(static_url="/docs/static", redoc_url=None, **kwargs)


async def gridplan_error(request: Request, exc: Exception) -> JSONResponse:
    """Answer a :class:`GridplanError` with its HTTP status and the fields it names (no server path)."""
    assert isinstance(exc, GridplanError)
    status = getattr(exc, "http_status", None) or http_status_for(exc)
    body: dict[str, Any] = {"detail": scrub_paths(str(exc)), "error": exc.__class__.__name__}
    for key in ("file", "layer", "row", "field"):
        value = getattr(exc, key, None)
        if value is not None:
            body[key] = Path(str(value)).name if key == "file" else value
    return JSONResponse(body, status_code=status)


_ERROR_NAMES = {
    400: "BadRequest",
    401: "NotAuthenticated",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
}


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """Answer an ``HTTPException`` with an :class:`~gridplan.api.schemas.ErrorBody`."""
    assert isinstance(exc, StarletteHTTPException)
    name = _ERROR_NAMES.get(exc.status_code, f"HTTP{exc.status_code}")
    if exc.status_code == 413:
        name = "UploadTooLarge"
    body = {"detail": scrub_paths(str(exc.detail)), "error": name}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """Answer a request that fails validation with one line naming the field (422)."""
    assert isinstance(exc, RequestValidationError)
    errs = list(exc.errors())
    first = errs[0] if errs else {"loc": (), "msg": "invalid request"}
    loc = [str(x) for x in first.get("loc", ()) if x not in ("body", "query", "path", "header", "cookie")]
    field = ".".join(loc) or None
    more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
    detail = f"{field or 'request'}: {first.get('msg', 'invalid')}{more}"
    body: dict[str, Any] = {"detail": scrub_paths(detail)[:500], "error": "ValidationError"}
    if field:
        body["field"] = field
    return JSONResponse(body, status_code=422)


def _json_error_bodies(app: FastAPI) -> None:
    """Make ``/openapi.json`` say error bodies are JSON even on routes whose success is HTML or a file."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = build()
        for ops in spec.get("paths", {}).values():
            for op in ops.values():
                for resp in op.get("responses", {}).values():
                    media = resp.get("content", {})
                    for mt in list(media):
                        ref = media[mt].get("schema", {})
                        if str(ref.get("$ref", "")).endswith("/ErrorBody") and mt != "application/json":
                            del media[mt]
                            media["application/json"] = {"schema": ref}
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def _folders(
    target: str | Path, settings: Settings, data_dir: str | Path | None, maps_dir: str | Path | None
) -> tuple[Path, Path]:
    """Return the data folder (uploads, results) and the maps folder, created if missing.

    A workspace holds both; on PostgreSQL the files still need a folder: ``$GRIDPLAN_WORKSPACE``.
    """
    root = Path(settings.workspace) if is_postgres_url(target) else Path(target)
    data = Path(data_dir) if data_dir is not None else (root / "data" if is_postgres_url(target) else root)
    maps_out = Path(maps_dir) if maps_dir is not None else root / "maps"
    for sub in ("uploads", "results"):
        (data / sub).mkdir(parents=True, exist_ok=True)
    maps_out.mkdir(parents=True, exist_ok=True)
    return data, maps_out


def create_app(
    target: str | Path,
    *,
    settings: Settings | None = None,
    maps_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    meta_schema: str = "gridplan_meta",
    plans_schema: str = "gridplan_plans",
    sessions: SessionTimes | None = None,
    max_unzipped_mb: float = 2048.0,
) -> FastAPI:
    """Build the service on a workspace folder or a PostgreSQL/PostGIS URL.

    Parameters
    ----------
    target
        Workspace folder (GeoPackages + ``meta.sqlite``) or ``postgresql://…`` URL.
    settings
        Limits and defaults (``max_upload_mb``, ``max_upload_features``, household band …);
        default :func:`gridplan.settings.get_settings`.
    maps_dir
        Published maps folder served read-only at ``/maps/`` (default ``<workspace>/maps``).
    data_dir
        Uploads and job results (default ``<workspace>``; ``$GRIDPLAN_WORKSPACE/data`` for PostgreSQL).
    meta_schema, plans_schema
        PostgreSQL schemas of the metadata tables and of the plan tables.
    sessions
        Absolute and idle lifetime of a session (``POST /login``, browser sign-in); default 12 h
        and 30 min.  A session made from an API token also ends when that token expires or is
        revoked.
    max_unzipped_mb
        Largest total uncompressed size of an uploaded archive (MiB).

    """
    settings = settings or get_settings()
    sessions = sessions or SessionTimes()
    meta = MetaStore(target, schema=meta_schema)
    data, maps_out = _folders(target, settings, data_dir, maps_dir)
    limits = UploadLimits(
        max_upload_bytes=int(settings.max_upload_mb * 2**20),
        max_features=int(settings.max_upload_features),
        max_unzipped_bytes=int(max_unzipped_mb * 2**20),
    )
    service = Service(
        meta=meta,
        plans=PlanRepository(
            meta, root=None if meta.is_postgres else Path(target), plans_schema=plans_schema
        ),
        jobs=JobRunner(meta, workers=1),
        verifier=TokenVerifier(meta, session_idle_s=sessions.idle_s),
        data_dir=data,
        maps_dir=maps_out,
        limits=limits,
        settings=settings,
        sessions=sessions,
    )
    # the queue is the store's: this process's workers also run jobs other processes queued
    service.jobs.start(bind_tasks(service))
    app = _make_fastapi(
        title="gridplan",
        version=_version(),
        description="City grid governance service: plans, uploads, background jobs, published maps. "
        "Authenticate with POST /login, then send `Authorization: Bearer <token>`.",
        lifespan=_lifespan,
        swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": False},
    )
    app.state.service = service
    # outermost last: headers on every answer → identity from the headers → size cap → routing
    app.add_middleware(BodyLimit, max_bytes=limits.max_upload_bytes + 64 * 1024)
    app.add_middleware(AuthGuard, public=PUBLIC_PATHS, public_prefixes=PUBLIC_PREFIXES)
    app.add_middleware(SecurityHeaders, csp=csp_for(settings.tile_url))
    app.add_exception_handler(GridplanError, gridplan_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    for router in ROUTERS:
        app.include_router(router)
    _json_error_bodies(app)
    logger.info(
        "gridplan service on %s (data %s, maps %s)",
        "PostGIS" if meta.is_postgres else f"workspace {target}",
        data,
        maps_out,
    )
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    app.state.service.jobs.shutdown()


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("gridplan")
    except Exception:
        return os.environ.get("GRIDPLAN_VERSION", "0")
