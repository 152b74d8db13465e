"""The FastAPI application: :func:`create_app` wires stores, auth, jobs, middleware and routes.

Security rules (PRODUCT §3.8, §7) enforced here:

* anonymous callers reach only ``GET /health``, ``POST /login`` and the API description
  (``/docs``, ``/openapi.json``: no data) — every other route depends on a bearer token;
* every route declares the permission it needs (:data:`gridplan.api.auth.PERMISSIONS`); a leader
  holds no write permission, so every write route answers a leader with 403;
* request bodies are capped at ``max_upload_mb`` before they are read (413), uploads are checked
  by :mod:`gridplan.api.uploads`;
* every response carries a Content-Security-Policy without remote sources, ``nosniff`` and
  ``frame-ancestors 'none'``; the Swagger UI is served from the ``fastapi-offline`` package, so
  ``/docs`` makes no request outside this server;
* one exception handler maps :class:`~gridplan.errors.GridplanError` to its HTTP status
  (:func:`gridplan.errors.http_status_for`); unexpected errors give a 500 without details.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gridplan.api.auth import LoginThrottle, Principal, TokenVerifier, hash_secret, issue_token, verify_secret
from gridplan.api.deps import current_principal, require
from gridplan.api.jobs import JobRunner
from gridplan.api.service import Service
from gridplan.api.uploads import UploadLimits
from gridplan.errors import AuthError, GridplanError, InputError, http_status_for
from gridplan.settings import Settings, get_settings
from gridplan.store.meta import MetaStore, is_postgres_url
from gridplan.store.plans import PlanRepository

logger = logging.getLogger(__name__)

__all__ = ["PUBLIC_PATHS", "Service", "create_app", "create_user_token"]

CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:{tiles}; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PUBLIC_PATHS = frozenset({"/health", "/login", "/docs", "/openapi.json", "/docs/oauth2-redirect"})




# --------------------------------------------------------------------------------------------
# middleware
# --------------------------------------------------------------------------------------------


class BodyLimit:
    """Refuse request bodies over *max_bytes* with 413, by header and while streaming."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        too_big = JSONResponse(
            {
                "detail": f"request body over the upload limit of {self.max_bytes} bytes (max_upload_mb)",
                "error": "UploadTooLarge",
            },
            status_code=413,
        )
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await too_big(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    # FastAPI turns errors while reading a body into 400, except HTTPException
                    raise HTTPException(
                        413, f"request body over the upload limit of {self.max_bytes} bytes (max_upload_mb)"
                    )
            return msg

        await self.app(scope, limited, send)


class SecurityHeaders:
    """Add CSP (no remote sources), ``nosniff``, frame denial and no-referrer to every response."""

    def __init__(self, app: ASGIApp, *, csp: str) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"cache-control", b"no-store"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                names = {k.lower() for k, _ in msg.get("headers", [])}
                msg = {
                    **msg,
                    "headers": [
                        *msg.get("headers", []),
                        *[(k, v) for k, v in self.headers if k not in names],
                    ],
                }
            await send(msg)

        await self.app(scope, receive, send_with_headers)


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


# --------------------------------------------------------------------------------------------
# auth dependencies
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------------

_NAME = r"^[A-Za-z0-9_.@-]{1,64}$"


class LoginRequest(BaseModel):
    """A user name + password, or an API token, to exchange for a session bearer token."""

    username: str | None = Field(None, max_length=64)
    password: str | None = Field(None, max_length=256)
    token: str | None = Field(None, max_length=256)


class LoginResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: dt.datetime
    role: str
    user: str


class UserCreate(BaseModel):
    name: str = Field(..., pattern=_NAME)
    role: Literal["planner", "analyst", "leader", "admin"]
    password: str | None = Field(None, min_length=10, max_length=256)


class TokenCreate(BaseModel):
    name: str = Field(..., pattern=_NAME, description="user the token belongs to (created if missing)")
    role: Literal["planner", "analyst", "leader", "admin"] | None = Field(
        None, description="role of a new user (required when the user does not exist)"
    )
    days: float = Field(90.0, gt=0, le=3650, description="days until the token expires")
    label: str | None = Field(None, max_length=128)


class TokenCreated(BaseModel):
    token: str = Field(..., description="shown once; only its hash is stored")
    token_id: str
    user: str
    expires_at: dt.datetime


def create_user_token(
    meta: MetaStore, name: str, role: str | None, *, days: float, label: str | None = None
) -> tuple[str, str, dt.datetime]:
    """Create (if needed) user *name* and an API token for it; return ``(token, token_id, expires)``."""
    user = meta.get_user(name)
    if user is None:
        if role is None:
            raise InputError(f"user {name!r} does not exist; give a role to create it", field="role")
        meta.add_user(name, role)
    elif role is not None and role != user["role"]:
        raise InputError(f"user {name!r} already has role {user['role']}", field="role")
    token, expires = issue_token(meta, name, kind="api", ttl_s=days * 86400, label=label)
    return token, token.split("_", 2)[1], expires


# --------------------------------------------------------------------------------------------
# factory
# --------------------------------------------------------------------------------------------


def _default_dir(target: str | Path, sub: str, settings: Settings) -> Path:
    if is_postgres_url(target):  # files (uploads, results, maps) still need a folder
        return Path(settings.workspace) / sub
    return Path(target) / sub


def create_app(
    target: str | Path,
    *,
    settings: Settings | None = None,
    maps_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    meta_schema: str = "gridplan_meta",
    plans_schema: str = "gridplan_plans",
    session_ttl_s: float = 12 * 3600,
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
    session_ttl_s
        Lifetime of a session token issued by ``POST /login`` (s).
    max_unzipped_mb
        Largest total uncompressed size of an uploaded archive (MiB).

    """
    settings = settings or get_settings()
    meta = MetaStore(target, schema=meta_schema)
    root = None if meta.is_postgres else Path(target)
    data = (
        Path(data_dir) if data_dir is not None else (root if root else _default_dir(target, "data", settings))
    )
    maps = (
        Path(maps_dir)
        if maps_dir is not None
        else (root / "maps" if root else _default_dir(target, "maps", settings))
    )
    for sub in ("uploads", "results"):
        (data / sub).mkdir(parents=True, exist_ok=True)
    maps.mkdir(parents=True, exist_ok=True)
    limits = UploadLimits(
        max_upload_bytes=int(settings.max_upload_mb * 2**20),
        max_features=int(settings.max_upload_features),
        max_unzipped_bytes=int(max_unzipped_mb * 2**20),
    )
    service = Service(
        meta=meta,
        plans=PlanRepository(meta, root=root, plans_schema=plans_schema),
        jobs=JobRunner(meta, workers=1),
        verifier=TokenVerifier(meta),
        data_dir=data,
        maps_dir=maps,
        limits=limits,
        settings=settings,
        session_ttl_s=session_ttl_s,
    )

    app = _make_fastapi(
        title="gridplan",
        version=_version(),
        description="City grid governance service: plans, uploads, background jobs, published maps. "
        "Authenticate with POST /login, then send `Authorization: Bearer <token>`.",
        lifespan=_lifespan,
        swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": False},
    )
    app.state.service = service
    tiles = ""
    if settings.tile_url:
        from urllib.parse import urlsplit

        parts = urlsplit(settings.tile_url)
        if parts.scheme in ("http", "https") and parts.netloc:
            tiles = f" {parts.scheme}://{parts.netloc.replace('{s}', '*')}"
    app.add_middleware(BodyLimit, max_bytes=limits.max_upload_bytes + 64 * 1024)
    app.add_middleware(SecurityHeaders, csp=CSP.format(tiles=tiles))

    @app.exception_handler(GridplanError)
    async def gridplan_error(request: Request, exc: GridplanError) -> JSONResponse:
        status = getattr(exc, "http_status", None) or http_status_for(exc)
        body: dict[str, Any] = {"detail": str(exc), "error": exc.__class__.__name__}
        for key in ("file", "layer", "row", "field"):
            if getattr(exc, key, None) is not None:
                body[key] = getattr(exc, key)
        return JSONResponse(body, status_code=status)

    @app.get("/health", tags=["service"])
    def health() -> dict[str, Any]:
        """Liveness: no authentication, no data."""
        return {"status": "ok", "backend": "postgis" if meta.is_postgres else "workspace"}

    throttle = LoginThrottle()

    @app.post("/login", tags=["service"], response_model=LoginResponse)
    def login(body: LoginRequest) -> LoginResponse:
        """Exchange user name + password, or an API token, for a session bearer token."""
        if not (body.token or (body.username and body.password)):
            raise HTTPException(422, "send username and password, or token")
        if body.token:  # 256-bit random secrets: nothing to guess, so no lock-out either
            try:
                p = service.verifier.verify(body.token)
            except AuthError:
                raise HTTPException(401, "invalid credentials") from None
            if p.kind != "api":  # a session cannot extend itself
                raise HTTPException(401, "log in with an API token or a password, not a session token")
            name, role = p.name, p.role
        else:
            key = f"user:{body.username}"
            try:
                throttle.check(key)
            except AuthError as exc:
                raise HTTPException(429, str(exc)) from None
            user = meta.get_user(body.username or "")
            ok = verify_secret(body.password or "", user["password_hash"] if user else None)
            if not ok or user is None or not user["active"]:
                throttle.failed(key)
                raise HTTPException(401, "invalid credentials")
            name, role = user["name"], user["role"]
            throttle.succeeded(key)
        meta.purge_expired_tokens()
        token, expires = issue_token(meta, name, kind="session", ttl_s=service.session_ttl_s)
        return LoginResponse(access_token=token, expires_at=expires, role=role, user=name)

    @app.get("/me", tags=["service"])
    def me(p: Annotated[Principal, Depends(current_principal)]) -> dict[str, Any]:
        """Who the token belongs to."""
        return {"user": p.name, "role": p.role, "token_id": p.token_id, "expires_at": p.expires_at}

    # -- admin ---------------------------------------------------------------------------------
    @app.get("/admin/users", tags=["admin"])
    def list_users(_: Annotated[Principal, require("admin")]) -> list[dict[str, Any]]:
        """Users and roles."""
        return meta.list_users()

    @app.post("/admin/users", tags=["admin"], status_code=201)
    def add_user(body: UserCreate, _: Annotated[Principal, require("admin")]) -> dict[str, Any]:
        """Create a user (with a password for ``POST /login``, stored hashed)."""
        meta.add_user(
            body.name, body.role, password_hash=hash_secret(body.password) if body.password else None
        )
        return {"name": body.name, "role": body.role}

    @app.delete("/admin/users/{name}", tags=["admin"])
    def remove_user(name: str, _: Annotated[Principal, require("admin")]) -> dict[str, Any]:
        """Deactivate a user and revoke all its tokens."""
        meta.deactivate_user(name)
        service.verifier.forget()
        return {"name": name, "active": False}

    @app.get("/admin/tokens", tags=["admin"])
    def list_tokens(_: Annotated[Principal, require("admin")]) -> list[dict[str, Any]]:
        """Token ids, owners and expiry (never the tokens or their hashes)."""
        return meta.list_tokens()

    @app.post("/admin/tokens", tags=["admin"], status_code=201, response_model=TokenCreated)
    def add_token(body: TokenCreate, _: Annotated[Principal, require("admin")]) -> TokenCreated:
        """Create an API token (shown once in this response)."""
        token, token_id, expires = create_user_token(
            meta, body.name, body.role, days=body.days, label=body.label
        )
        return TokenCreated(token=token, token_id=token_id, user=body.name, expires_at=expires)

    @app.delete("/admin/tokens/{token_id}", tags=["admin"])
    def revoke_token(token_id: str, _: Annotated[Principal, require("admin")]) -> dict[str, Any]:
        """Revoke a token (effective immediately)."""
        meta.revoke_token(token_id)
        service.verifier.forget(token_id)
        return {"token_id": token_id, "revoked": True}

    from gridplan.api.routes_data import register

    register(app, service)
    logger.info(
        "gridplan service on %s (data %s, maps %s)",
        "PostGIS" if meta.is_postgres else f"workspace {target}",
        data,
        maps,
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
