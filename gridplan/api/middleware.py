"""ASGI middleware of the service: the request-body cap and the security headers.

* :class:`BodyLimit` answers 413 for a body over the upload limit, by ``Content-Length`` and while
  streaming (a client may lie about the length or send none);
* :class:`SecurityHeaders` adds a Content-Security-Policy without remote sources (:func:`csp_for`
  allows the one tile host of ``tile_url``, if any), ``nosniff``, ``frame-ancestors 'none'``,
  a same-origin referrer policy (nothing leaves for other sites; our own forms keep their
  ``Origin``, which the CSRF check reads) and no-store to every response.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CSP", "BodyLimit", "SecurityHeaders", "csp_for"]

CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:{tiles}; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def csp_for(tile_url: str | None) -> str:
    """Return the service's CSP, with the host of an http(s) *tile_url* allowed as an image source.

    >>> "https://t*.example.org" in csp_for("https://t{s}.example.org/{z}/{x}/{y}.png")
    True
    >>> "http" in csp_for(None)
    False
    """
    tiles = ""
    if tile_url:
        parts = urlsplit(tile_url)
        if parts.scheme in ("http", "https") and parts.netloc:
            tiles = f" {parts.scheme}://{parts.netloc.replace('{s}', '*')}"
    return CSP.format(tiles=tiles)


class BodyLimit:
    """Refuse request bodies over the cap with 413, by header and while streaming.

    File uploads (``multipart/form-data``) may carry *max_bytes*; every other body (JSON, a
    sign-in form) at most *small_bytes*, so nothing large is parsed as JSON.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, small_bytes: int = 1 << 20) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.small_bytes = min(small_bytes, max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 413 before the app runs, or pass a *receive* that stops at the cap."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        multipart = headers.get(b"content-type", b"").lower().startswith(b"multipart/form-data")
        cap = self.max_bytes if multipart else self.small_bytes
        what = "the upload limit" if multipart else "the limit for a non-file body"
        too_big = JSONResponse(
            {"detail": f"request body over {what} of {cap} bytes (max_upload_mb)", "error": "UploadTooLarge"},
            status_code=413,
        )
        if length is not None and length.isdigit() and int(length) > cap:
            await too_big(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > cap:
                    # FastAPI turns errors while reading a body into 400, except HTTPException
                    raise HTTPException(413, f"request body over {what} of {cap} bytes (max_upload_mb)")
            return msg

        await self.app(scope, limited, send)


class SecurityHeaders:
    """Add CSP (no remote sources), ``nosniff``, frame denial, same-origin referrer, no-store."""

    def __init__(self, app: ASGIApp, *, csp: str) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),  # no-referrer would make Origin "null"
            (b"cache-control", b"no-store"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app with a *send* that adds the headers the response does not set itself."""
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
