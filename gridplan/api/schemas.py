"""What every error answer looks like, and which error statuses each route documents in OpenAPI.

Every 4xx/5xx body of the service is an :class:`ErrorBody`: a one-line ``detail``, the ``error``
class name, and the ``file``/``layer``/``row``/``field`` the message names when there is one
(FastAPI's own validation errors are turned into the same shape by
:func:`gridplan.api.app.validation_error`).  Messages never carry a server path:
:func:`scrub_paths` keeps only the file name.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field

__all__ = ["ERROR_STATUSES", "ErrorBody", "content", "errors", "html_pages", "scrub_paths"]


class ErrorBody(BaseModel):
    """The body of every error answer."""

    detail: str = Field(..., description="one line saying what is wrong")
    error: str = Field(..., description="error class, e.g. InputError, NotAuthenticated, PlanConflictError")
    file: str | None = Field(None, description="file the error is about (a name, never a server path)")
    layer: str | None = None
    row: int | None = None
    field: str | None = None


ERROR_STATUSES: dict[int, str] = {
    400: "malformed request (e.g. an unsafe file name)",
    401: "not authenticated: no, an invalid, a revoked or an expired token or session",
    403: "authenticated, but the role lacks the permission (or a cookie write without CSRF proof)",
    404: "no such resource (or not yours)",
    409: "conflict: the plan already has a newer version (send branch=true to branch on purpose), "
    "or the job has already finished",
    413: "request body over the size limit",
    422: "invalid input: the message names the file, layer, row or field",
    429: "too many failed logins from this address: wait Retry-After seconds",
    503: "the store is unavailable",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for *codes*, each with the :class:`ErrorBody` model."""
    return {code: {"model": ErrorBody, "description": ERROR_STATUSES[code]} for code in codes}


def html_pages(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for *codes* answered with an HTML page (the sign-in form) or JSON."""
    ref = {"$ref": "#/components/schemas/ErrorBody"}
    return {
        code: {
            "description": ERROR_STATUSES[code],
            "content": {"text/html": {"schema": {"type": "string"}}, "application/json": {"schema": ref}},
        }
        for code in codes
    }


def content(media_type: str, description: str, code: int = 200) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entry: *code* answers with *media_type* (not JSON)."""
    return {code: {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}}


_ABS_PATH = re.compile(r"(?<![\w.:/])(?:/[^\s/'\"<>|]+)+/([^\s/'\"<>|]+)")


def scrub_paths(text: str) -> str:
    """Return *text* with every absolute path cut to its last part (the file name).

    >>> scrub_paths("cannot read /srv/ws/uploads/ab12/incoming.zip: bad zip")
    'cannot read incoming.zip: bad zip'
    >>> scrub_paths("layer towns of data/x.gpkg")
    'layer towns of data/x.gpkg'
    """
    return _ABS_PATH.sub(r"\1", text)
