"""FastAPI dependencies: the shared service object, the authenticated caller, permission checks.

Routes receive what they need through ``Depends`` (never through closures over the app), so each
router in :mod:`gridplan.api.routes` is a plain module: ``ServiceDep`` is the app's
:class:`~gridplan.api.service.Service`, ``require("plans:read")`` the caller holding that permission.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gridplan.api.auth import Permission, Principal
from gridplan.api.guard import PRINCIPAL_KEY
from gridplan.api.service import Service

__all__ = ["ServiceDep", "current_principal", "get_service", "require"]


def get_service(request: Request) -> Service:
    """Return the app's :class:`Service`."""
    service: Service = request.app.state.service
    return service


#: The app's service, as a route parameter: ``def route(service: ServiceDep) -> …``.
ServiceDep = Annotated[Service, Depends(get_service)]

#: Declares the bearer scheme in OpenAPI (the docs' "Authorize" button); errors are ours (401).
bearer_scheme = HTTPBearer(auto_error=False, description="token from POST /login or `gridplan token create`")


def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
) -> Principal:
    """Return the caller :class:`~gridplan.api.guard.AuthGuard` authenticated (401 if none).

    The guard runs before routing and before any body is read; this dependency only picks up what
    it verified (and documents the bearer scheme in OpenAPI).
    """
    principal = request.scope.get("state", {}).get(PRINCIPAL_KEY)
    if not isinstance(principal, Principal):
        raise HTTPException(
            401,
            "authentication required: send Authorization: Bearer <token> (POST /login)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


def require(permission: Permission) -> Any:
    """Dependency: the caller must hold *permission* (403 otherwise)."""

    def dep(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.can(permission):
            raise HTTPException(403, f"role {principal.role} may not do this (needs {permission})")
        return principal

    dep.__name__ = f"require_{permission.replace(':', '_')}"
    dep.gridplan_permission = permission  # type: ignore[attr-defined]  # read by the AuthGuard
    return Depends(dep)
