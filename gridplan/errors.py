"""Exception hierarchy and the one table that maps it to CLI exit codes and HTTP statuses.

Ground floor: imports nothing of ours.  Every user-facing failure is a :class:`GridplanError`;
bad user data is an :class:`InputError` (also a :class:`ValueError`, as h3-py's errors are) whose
message names the file, row and field so the user can fix it without reading a traceback.
"""

from __future__ import annotations

from pathlib import Path


class GridplanError(Exception):
    """Root of every error gridplan raises on purpose."""


class InputError(GridplanError, ValueError):
    """Bad user input: a file, layer, row, field or parameter that cannot be used.

    Parameters
    ----------
    message
        What is wrong and, where possible, what to do about it.
    file, layer, row, field
        Where it is wrong; each given part is prefixed to the message.

    Examples
    --------
    >>> str(InputError("must be 12 digits", file="layers.gpkg", layer="communities", row=7,
    ...                field="community_code"))
    'layers.gpkg: layer communities: row 7: field community_code: must be 12 digits'
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        layer: str | None = None,
        row: int | str | None = None,
        field: str | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.layer = layer
        self.row = row
        self.field = field
        self.reason = message
        parts = []
        if file is not None:
            parts.append(f"{file}")
        if layer is not None:
            parts.append(f"layer {layer}")
        if row is not None:
            parts.append(f"row {row}")
        if field is not None:
            parts.append(f"field {field}")
        parts.append(message)
        super().__init__(": ".join(parts))


class CRSError(InputError):
    """A missing, unknown or mismatched coordinate reference system."""


class NotFoundError(GridplanError, LookupError):
    """A plan, layer, map or job that does not exist."""


class StoreError(GridplanError):
    """The workspace or database could not complete a transactional write or read."""


class AuthError(GridplanError, PermissionError):
    """Missing or insufficient credentials for the requested action."""


#: Exception class → CLI exit code (checked in order; first ``isinstance`` match wins).
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (InputError, 2),
    (NotFoundError, 2),
    (AuthError, 3),
    (StoreError, 4),
    (GridplanError, 1),
)

#: Exception class → HTTP status code for the service.
HTTP_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (InputError, 422),
    (NotFoundError, 404),
    (AuthError, 403),
    (StoreError, 503),
    (GridplanError, 500),
)


def exit_code_for(exc: BaseException) -> int:
    """Return the CLI exit code for *exc* (1 when it is not one of ours)."""
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return 1


def http_status_for(exc: BaseException) -> int:
    """Return the HTTP status for *exc* (500 when it is not one of ours)."""
    for cls, code in HTTP_STATUS:
        if isinstance(exc, cls):
            return code
    return 500
