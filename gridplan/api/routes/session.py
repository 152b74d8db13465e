"""Service routes: ``GET /health`` and ``POST /login`` (anonymous), ``GET /me``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from gridplan.api.auth import Principal, issue_token, verify_secret
from gridplan.api.deps import ServiceDep, current_principal
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


def _by_token(service: Service, token: str) -> tuple[str, str]:
    """User and role of an API token (256-bit random secrets: nothing to guess, so no lock-out)."""
    try:
        p = service.verifier.verify(token)
    except AuthError:
        raise HTTPException(401, "invalid credentials") from None
    if p.kind != "api":  # a session cannot extend itself
        raise HTTPException(401, "log in with an API token or a password, not a session token")
    return p.name, p.role


def _by_password(service: Service, username: str, password: str) -> tuple[str, str]:
    """User and role for a password, throttled per user name."""
    key = f"user:{username}"
    try:
        service.throttle.check(key)
    except AuthError as exc:
        raise HTTPException(429, str(exc)) from None
    user = service.meta.get_user(username)
    ok = verify_secret(password, user["password_hash"] if user else None)
    if not ok or user is None or not user["active"]:
        service.throttle.failed(key)
        raise HTTPException(401, "invalid credentials")
    service.throttle.succeeded(key)
    return user["name"], user["role"]


@router.post("/login", response_model=LoginResponse)
def login(body: LoginRequest, service: ServiceDep) -> LoginResponse:
    """Exchange user name + password, or an API token, for a session bearer token."""
    if not (body.token or (body.username and body.password)):
        raise HTTPException(422, "send username and password, or token")
    if body.token:
        name, role = _by_token(service, body.token)
    else:
        name, role = _by_password(service, body.username or "", body.password or "")
    service.meta.purge_expired_tokens()
    token, expires = issue_token(service.meta, name, kind="session", ttl_s=service.session_ttl_s)
    return LoginResponse(access_token=token, expires_at=expires, role=role, user=name)


@router.get("/me")
def me(p: Annotated[Principal, Depends(current_principal)]) -> dict[str, Any]:
    """Who the token belongs to."""
    return {"user": p.name, "role": p.role, "token_id": p.token_id, "expires_at": p.expires_at}
