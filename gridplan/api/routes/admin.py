"""Admin routes: users (list, create, deactivate) and API tokens (list, create, revoke)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from gridplan.api.auth import Principal, create_user_token, hash_secret
from gridplan.api.deps import ServiceDep, require
from gridplan.api.schemas import errors
from gridplan.store.meta import Role

__all__ = ["router"]

router = APIRouter(prefix="/admin", tags=["admin"], responses=errors(401, 403, 404, 413, 422))

_NAME = r"^[A-Za-z0-9_.@-]{1,64}$"
Admin = Annotated[Principal, require("admin")]


class UserCreate(BaseModel):
    name: str = Field(..., pattern=_NAME)
    role: Role
    password: str | None = Field(None, min_length=10, max_length=256)


class TokenCreate(BaseModel):
    name: str = Field(..., pattern=_NAME, description="user the token belongs to (created if missing)")
    role: Role | None = Field(None, description="role of a new user (required when the user does not exist)")
    days: float = Field(90.0, gt=0, le=3650, description="days until the token expires")
    label: str | None = Field(None, max_length=128)


class TokenCreated(BaseModel):
    token: str = Field(..., description="shown once; only its hash is stored")
    token_id: str
    user: str
    expires_at: dt.datetime


@router.get("/users")
def list_users(_: Admin, service: ServiceDep) -> list[dict[str, Any]]:
    """Users and roles."""
    return service.meta.list_users()


@router.post("/users", status_code=201)
def add_user(body: UserCreate, _: Admin, service: ServiceDep) -> dict[str, Any]:
    """Create a user (with a password for ``POST /login``, stored hashed)."""
    service.meta.add_user(
        body.name, body.role, password_hash=hash_secret(body.password) if body.password else None
    )
    return {"name": body.name, "role": body.role}


@router.delete("/users/{name}")
def remove_user(name: str, _: Admin, service: ServiceDep) -> dict[str, Any]:
    """Deactivate a user and revoke all its tokens."""
    service.meta.deactivate_user(name)
    service.verifier.forget()
    return {"name": name, "active": False}


@router.get("/tokens")
def list_tokens(_: Admin, service: ServiceDep) -> list[dict[str, Any]]:
    """Token ids, owners and expiry (never the tokens or their hashes)."""
    return service.meta.list_tokens()


@router.post("/tokens", status_code=201, response_model=TokenCreated)
def add_token(body: TokenCreate, _: Admin, service: ServiceDep) -> TokenCreated:
    """Create an API token (shown once in this response)."""
    token, token_id, expires = create_user_token(
        service.meta, body.name, body.role, days=body.days, label=body.label
    )
    return TokenCreated(token=token, token_id=token_id, user=body.name, expires_at=expires)


@router.delete("/tokens/{token_id}")
def revoke_token(token_id: str, _: Admin, service: ServiceDep) -> dict[str, Any]:
    """Revoke a token (effective immediately)."""
    service.meta.revoke_token(token_id)
    service.verifier.forget(token_id)
    return {"token_id": token_id, "revoked": True}
