"""Service routes: ``GET /health`` and ``POST /login`` (anonymous), ``GET /me``."""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from gridplan.api.auth import LoginThrottledError, Principal, issue_token, verify_secret
from gridplan.api.deps import ServiceDep, current_principal
from gridplan.api.schemas import errors
from gridplan.api.service import Service
from gridplan.errors import AuthError

__all__ = ["router"]

router = APIRouter(tags=["service"])


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


@router.get("/health")
def health(service: ServiceDep) -> dict[str, Any]:
    """Liveness: no authentication, no data."""
    return {"status": "ok", "backend": "postgis" if service.meta.is_postgres else "workspace"}


def _by_token(service: Service, token: str) -> Principal:
    """Return the API token's principal (256-bit random secrets: nothing to guess, so no back-off)."""
    try:
        p = service.verifier.verify(token)
    except AuthError:
        raise HTTPException(401, "invalid credentials") from None
    if p.kind != "api":  # a session cannot extend itself
        raise HTTPException(401, "log in with an API token or a password, not a session token")
    return p


def _by_password(service: Service, username: str, password: str, address: str) -> tuple[str, str]:
    """User and role for a password, with back-off per (user name, client address)."""
    key = (username, address)
    try:
        service.throttle.check(key)
    except LoginThrottledError as exc:
        wait = str(max(1, math.ceil(exc.retry_after)))
        raise HTTPException(429, str(exc), headers={"Retry-After": wait}) from None
    user = service.meta.get_user(username)
    ok = verify_secret(password, user["password_hash"] if user else None)
    if not ok or user is None or not user["active"]:
        service.throttle.failed(key)
        raise HTTPException(401, "invalid credentials")
    service.throttle.succeeded(key)
    return user["name"], user["role"]


def open_session(
    service: Service, address: str, *, username: str = "", password: str = "", token: str = ""
) -> tuple[str, dt.datetime, str, str]:
    """Check a password or an API token; return a new session ``(token, expires, user, role)``.

    A session from an API token is bound to it (ends with it); one from a password is bound to
    the user (ends when the user is deactivated).  Both end at ``sessions.ttl_s`` or after
    ``sessions.idle_s`` without a request.
    """
    parent = None
    if token:
        parent = _by_token(service, token)
        name, role = parent.name, str(parent.role)
    elif username and password:
        name, role = _by_password(service, username, password, address)
    else:
        raise HTTPException(422, "send username and password, or token")
    service.meta.purge_expired_tokens()
    session, expires = issue_token(
        service.meta, name, kind="session", ttl_s=service.sessions.ttl_s, parent=parent
    )
    return session, expires, name, role


@router.post("/login", response_model=LoginResponse, responses=errors(401, 413, 422, 429))
def login(body: LoginRequest, request: Request, service: ServiceDep) -> LoginResponse:
    """Exchange user name + password, or an API token, for a session bearer token."""
    address = request.client.host if request.client else "-"
    token, expires, name, role = open_session(
        service, address, username=body.username or "", password=body.password or "", token=body.token or ""
    )
    return LoginResponse(access_token=token, expires_at=expires, role=role, user=name)


@router.get("/me", responses=errors(401, 403))
def me(p: Annotated[Principal, Depends(current_principal)]) -> dict[str, Any]:
    """Who the token belongs to."""
    return {"user": p.name, "role": p.role, "token_id": p.token_id, "expires_at": p.expires_at}
