"""Browser sign-in: ``GET/POST /signin``, ``POST /signout`` and ``GET /`` (to the maps home).

A browser signs in with a user name + password or an API token (the same checks and back-off as
``POST /login``, :func:`gridplan.api.routes.session.open_session`) and gets a server-side session
(a row in the token table, bound to its grant) in an ``HttpOnly; SameSite=Strict`` cookie —
``Secure`` when the client reached us over HTTPS, directly or through a proxy setting
``X-Forwarded-Proto``.  A second, script-readable ``gp_csrf`` cookie carries the double-submit
token; :class:`~gridplan.api.guard.AuthGuard` refuses any cookie-authenticated state-changing
request that sends neither it (``X-CSRF-Token``) nor this server's ``Origin``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gridplan._clock import utc_now
from gridplan.api.auth import Principal
from gridplan.api.deps import ServiceDep, current_principal
from gridplan.api.guard import CSRF_COOKIE, SESSION_COOKIE, is_https, own_origin
from gridplan.api.routes.session import open_session
from gridplan.api.schemas import errors, html_pages
from gridplan.api.web import safe_next, signin_page
from gridplan.errors import NotFoundError

__all__ = ["router"]

router = APIRouter(tags=["browser"])


@router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    """Send a browser to the maps home (which sends it on to sign in when needed)."""
    return RedirectResponse("/maps/", status_code=303)


@router.get(
    "/signin", response_class=HTMLResponse, summary="Sign-in page (Chinese, English)", responses=errors(422)
)
def signin_form(next: str = "/maps/") -> HTMLResponse:
    """Serve the sign-in page: user name + password, or an access token."""
    return HTMLResponse(signin_page(next_url=next))


def _set_session_cookies(response: Response, request: Request, token: str, expires: dt.datetime) -> None:
    secure = is_https(request.scope)
    max_age = max(1, int((expires - utc_now()).total_seconds()))
    response.set_cookie(
        SESSION_COOKIE, token, max_age=max_age, path="/", secure=secure, httponly=True, samesite="strict"
    )
    response.set_cookie(
        CSRF_COOKIE, secrets.token_urlsafe(24), max_age=max_age, path="/", secure=secure, samesite="strict"
    )


@router.post(
    "/signin",
    response_class=HTMLResponse,
    status_code=303,
    responses={**html_pages(401, 422, 429), **errors(403, 413)},
)
def signin(
    request: Request,
    service: ServiceDep,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    token: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/maps/",
) -> Response:
    """Check the credentials, start a cookie session and go to *next* (the maps home by default)."""
    origin = request.headers.get("origin")
    if origin is not None and not hmac.compare_digest(origin, own_origin(request.scope)):
        raise HTTPException(403, "sign-in from another site refused")
    address = request.client.host if request.client else "-"
    try:
        session, expires, _, _ = open_session(
            service, address, username=username.strip(), password=password, token=token.strip()
        )
    except HTTPException as exc:
        message = {
            401: "用户名、密码或令牌不正确。 Wrong user name, password or token.",
            422: "请输入用户名和密码，或令牌。 Enter a user name and password, or a token.",
        }.get(exc.status_code, f"请稍后再试。 Please wait: {exc.detail}")
        return HTMLResponse(
            signin_page(next_url=next, message=message), status_code=exc.status_code, headers=exc.headers
        )
    response = RedirectResponse(safe_next(next), status_code=303)
    _set_session_cookies(response, request, session, expires)
    return response


@router.post("/signout", status_code=303, response_class=RedirectResponse, responses=errors(401, 403))
def signout(p: Annotated[Principal, Depends(current_principal)], service: ServiceDep) -> Response:
    """End the session (revoked at once) and clear its cookies; an API token is left as it is."""
    if p.kind == "session":
        with contextlib.suppress(NotFoundError):
            service.meta.revoke_token(p.token_id)
        service.verifier.forget(p.token_id)
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    response.delete_cookie(CSRF_COOKIE, path="/", samesite="strict")
    return response
