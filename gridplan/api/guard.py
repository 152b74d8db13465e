"""Authenticate before reading: a pure ASGI guard ahead of routing, body parsing and the size cap.

:class:`AuthGuard` runs before FastAPI sees the request.  It looks only at the request line and the
headers — never at the body — so an anonymous 150 MB upload is refused with 401 without a byte of
it being read, and malformed JSON to an admin route is 401 for an anonymous caller, not 422.

* Credentials: ``Authorization: Bearer <token>`` (scripts) or the ``gp_session`` cookie set by the
  browser sign-in (:mod:`gridplan.api.routes.web`).  A header wins over a cookie.
* A cookie is a credential a browser sends on its own, so every state-changing request made with
  it (anything but GET/HEAD/OPTIONS) must prove it comes from our pages: an ``X-CSRF-Token`` header
  equal to the ``gp_csrf`` cookie (double submit), or an ``Origin`` header naming this server.
  Otherwise 403.
* Browsers (``Accept: text/html``) asking for ``/`` or ``/maps/…`` without a valid session are
  redirected to ``/signin``; everything else gets a 401 JSON body with ``WWW-Authenticate: Bearer``.
* A caller whose role lacks the route's permission gets 403 here too, before its body is parsed.
* ``OPTIONS`` answers 204 with the ``Allow`` header of the path (no authentication: it reveals only
  what ``/openapi.json`` already says).

The verified :class:`~gridplan.api.auth.Principal` is left in ``scope["state"]`` for
:func:`gridplan.api.deps.current_principal`.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote

import anyio.to_thread
from starlette.routing import BaseRoute, compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from gridplan.api.auth import Principal
from gridplan.errors import AuthError

__all__ = [
    "CSRF_COOKIE",
    "PRINCIPAL_KEY",
    "SESSION_COOKIE",
    "AuthGuard",
    "is_https",
    "own_origin",
]

SESSION_COOKIE = "gp_session"
CSRF_COOKIE = "gp_csrf"
CSRF_HEADER = "x-csrf-token"
PRINCIPAL_KEY = "gridplan_principal"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}


def _cookies(headers: dict[str, str]) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # a malformed Cookie header is no credential
        return {}
    return {k: m.value for k, m in jar.items()}


def is_https(scope: Scope) -> bool:
    """Whether the client talks HTTPS to us (directly, or to a proxy saying ``X-Forwarded-Proto``)."""
    proto = _headers(scope).get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return proto == "https" or scope.get("scheme") == "https"


def own_origin(scope: Scope) -> str:
    """``scheme://host[:port]`` of this server as the browser sees it (from ``Host``)."""
    host = _headers(scope).get("host", "")
    return f"{'https' if is_https(scope) else 'http'}://{host}"


def csrf_ok(scope: Scope, headers: dict[str, str], cookies: dict[str, str]) -> bool:
    """Double-submit token, or an ``Origin`` naming this server."""
    token, cookie = headers.get(CSRF_HEADER, ""), cookies.get(CSRF_COOKIE, "")
    if token and cookie and hmac.compare_digest(token.encode(), cookie.encode()):
        return True
    origin = headers.get("origin", "")
    return bool(origin) and origin != "null" and hmac.compare_digest(origin, own_origin(scope))


async def _json(
    send: Send, status: int, body: dict[str, Any], headers: Iterable[tuple[str, str]] = ()
) -> None:
    raw = json.dumps(body, ensure_ascii=False).encode()
    hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    hdrs += [(k.encode(), v.encode("latin-1")) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": raw})


async def _empty(send: Send, status: int, headers: Iterable[tuple[str, str]]) -> None:
    hdrs = [(k.encode(), v.encode("latin-1")) for k, v in headers] + [(b"content-length", b"0")]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": b""})


@dataclass(frozen=True)
class RouteRule:
    """One route as the guard sees it: its path pattern, methods and the permission it requires."""

    pattern: re.Pattern[str]
    methods: frozenset[str]
    permission: str | None


def _permission_of(dependant: Any) -> str | None:
    """Return the permission a route's ``require(...)`` dependency declares, if any."""
    for dep in getattr(dependant, "dependencies", []):
        found = getattr(dep.call, "gridplan_permission", None) or _permission_of(dep)
        if found:
            return str(found)
    return None


def route_rules(routes: Sequence[BaseRoute]) -> list[RouteRule]:
    """Every route of the app (routes of included routers too) as a :class:`RouteRule`."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI < 0.137 copies included routes into app.routes
        flat: list[Any] = list(routes)
    else:
        flat = list(iter_route_contexts(routes))
    rules = []
    for r in flat:
        original = getattr(r, "original_route", r)
        methods = getattr(r, "methods", None) or getattr(original, "methods", None)
        path = getattr(r, "path", None)
        if not methods or not path:
            continue
        regex, _, _ = compile_path(path)
        rules.append(
            RouteRule(regex, frozenset(methods), _permission_of(getattr(original, "dependant", None)))
        )
    return rules


def allowed_methods(rules: Sequence[RouteRule], path: str) -> list[str]:
    """Methods some route answers on *path* (HEAD with GET, OPTIONS always; none if no route)."""
    found = set().union(*[r.methods for r in rules if r.pattern.match(path)])
    if "GET" in found:
        found.add("HEAD")
    allowed = [m for m in _METHODS if m in found]
    return [*allowed, "OPTIONS"] if allowed else []


def required_permission(rules: Sequence[RouteRule], path: str, method: str) -> str | None:
    """Return the permission of the first route matching *path* and *method* (routing order)."""
    for r in rules:
        if method in r.methods and r.pattern.match(path):
            return r.permission
    return None


class AuthGuard:
    """Check the caller's identity from the headers alone, before anything reads the body.

    Parameters
    ----------
    app
        The rest of the ASGI stack.
    public
        Paths anyone may reach (``/health``, ``/login``, ``/signin``, the API description).
    public_prefixes
        Path prefixes anyone may reach (the offline Swagger UI's static files).

    """

    def __init__(
        self, app: ASGIApp, *, public: frozenset[str], public_prefixes: tuple[str, ...] = ()
    ) -> None:
        self.app = app
        self.public = public
        self.public_prefixes = public_prefixes
        self._rules: list[RouteRule] | None = None

    def rules(self, scope: Scope) -> list[RouteRule]:
        """Return the app's routes (read at the first request, when every router is included)."""
        if self._rules is None:
            self._rules = route_rules(scope["app"].router.routes)
        return self._rules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass an authenticated (or public) request on; answer every other one from its headers."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if method == "OPTIONS":
            allow = allowed_methods(self.rules(scope), path)
            if not allow:
                await _json(send, 404, {"detail": "no such resource", "error": "NotFound"})
                return
            await _empty(send, 204, [("allow", ", ".join(allow))])
            return
        if path in self.public or path.startswith(self.public_prefixes):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        cookies = _cookies(headers)
        scheme, _, bearer = headers.get("authorization", "").partition(" ")
        token = bearer.strip() if scheme.lower() == "bearer" else ""
        by_cookie = not token and bool(cookies.get(SESSION_COOKIE))
        token = token or cookies.get(SESSION_COOKIE, "")
        if not token:
            await self._deny(
                scope,
                send,
                headers,
                "authentication required: send Authorization: Bearer "
                "<token> (POST /login) or sign in at /signin",
            )
            return
        service = scope["app"].state.service
        try:
            principal: Principal = await anyio.to_thread.run_sync(service.verifier.verify, token)
        except AuthError as exc:
            await self._deny(scope, send, headers, f"not authenticated: {exc}")
            return
        if by_cookie and method not in SAFE_METHODS and not csrf_ok(scope, headers, cookies):
            await _json(
                send,
                403,
                {
                    "detail": "cross-site request refused: send the X-CSRF-Token header "
                    "(the gp_csrf cookie) with a cookie session",
                    "error": "CSRFRefused",
                },
            )
            return
        needed = required_permission(self.rules(scope), path, method)
        if needed is not None and not principal.can(needed):  # type: ignore[arg-type]
            await _json(
                send,
                403,
                {"detail": f"role {principal.role} may not do this (needs {needed})", "error": "Forbidden"},
            )
            return
        scope.setdefault("state", {})[PRINCIPAL_KEY] = principal
        await self.app(scope, receive, send)

    @staticmethod
    async def _deny(scope: Scope, send: Send, headers: dict[str, str], detail: str) -> None:
        """Redirect a browser asking for a page to sign in; 401 JSON for everything else."""
        path = scope["path"]
        page = path == "/" or path == "/maps" or path.startswith("/maps/")
        if page and scope["method"] in ("GET", "HEAD") and "text/html" in headers.get("accept", ""):
            target = path + (
                "?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else ""
            )
            await _empty(send, 303, [("location", "/signin?next=" + quote(target, safe="/"))])
            return
        await _json(
            send, 401, {"detail": detail, "error": "NotAuthenticated"}, [("www-authenticate", "Bearer")]
        )
