"""The one clock: UTC now (seconds), its ISO 8601 text, and the compact stamp in plan ids.

Every timestamp gridplan writes (plan ``created_at``, map ``published_at``, token and job times)
comes from here, so they compare and sort the same way everywhere.
"""

from __future__ import annotations

import datetime as dt

__all__ = ["compact_stamp", "iso_utc", "utc_now"]


def utc_now() -> dt.datetime:
    """Return the current time, timezone-aware UTC, to the second."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def iso_utc(t: dt.datetime | None = None) -> str:
    """Return *t* (default now) as ISO 8601 UTC text to the second, e.g. ``2025-06-01T08:00:00Z``.

    Examples
    --------
    >>> iso_utc(dt.datetime(2025, 6, 1, 16, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))))
    '2025-06-01T08:00:00Z'

    """
    t = utc_now() if t is None else t.astimezone(dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def compact_stamp(t: dt.datetime | None = None) -> str:
    """Return *t* (default now) as ``YYYYMMDDTHHMMSS`` UTC, the sortable head of a plan id."""
    t = utc_now() if t is None else t.astimezone(dt.UTC)
    return t.strftime("%Y%m%dT%H%M%S")
