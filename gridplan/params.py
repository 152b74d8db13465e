"""Parameter checks made before any work starts, shared by the CLI (exit 2) and the service (422).

Every check raises :class:`~gridplan.errors.InputError` with one line naming the parameter (by its
library/API name, ``households_max``; the CLI option is the same word with dashes), the value and
what would be accepted, so ``gridplan merge --households-max 1`` and ``POST /jobs/merge`` with
``{"households_max": 1}`` answer in the same words.

Paths are checked the same way for every command: an output file must not be a folder and its folder
must exist and be writable (:func:`output_file`); a folder (workspace, maps) must not be a file
(:func:`folder`).  Ground floor apart from :mod:`gridplan.errors` and :mod:`gridplan._atomic`.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

from gridplan._atomic import check_output_path
from gridplan.errors import InputError

__all__ = [
    "BAND_TOP_MIN",
    "USER_NAME",
    "folder",
    "h3_resolution",
    "households_band",
    "merge_params",
    "non_negative",
    "output_file",
    "positive_int",
    "radius",
    "staff_band",
    "user_name",
]

#: The smallest upper end of a household band: a "grid" of fewer households is a typo (the
#: guidance is 300–500 households per base grid; a band of 3–5 was meant as hundreds).
BAND_TOP_MIN = 10
#: User names the service accepts (also for ``gridplan token create --name``): no spaces, no paths.
USER_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


def _finite(value: float, field: str) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise InputError(f"must be a finite number, got {value}", field=field)
    return v


def households_band(households_min: int, households_max: int) -> tuple[int, int]:
    """Check the household band of a base grid; return ``(min, max)``.

    Examples
    --------
    >>> households_band(300, 500)
    (300, 500)
    >>> households_band(0, 1)
    Traceback (most recent call last):
    ...
    gridplan.errors.InputError: field households_max: must be at least 10 households, got 1 ...

    """
    lo, hi = int(households_min), int(households_max)
    if lo < 0:
        raise InputError(f"must be 0 or more, got {lo}", field="households_min")
    if hi < BAND_TOP_MIN:
        raise InputError(
            f"must be at least {BAND_TOP_MIN} households, got {hi} (the band counts households per base "
            "grid; the guidance is 300-500)",
            field="households_max",
        )
    if lo > hi:
        raise InputError(f"{lo} is above households_max {hi}; give min <= max (e.g. 300 and 500)",
                         field="households_min")
    return lo, hi


def h3_resolution(res: int, field: str = "h3_res") -> int:
    """Check an H3 resolution (0–15)."""
    if not 0 <= int(res) <= 15:
        raise InputError(f"must be an H3 resolution from 0 to 15, got {res}", field=field)
    return int(res)


def non_negative(value: float, field: str, unit: str = "") -> float:
    """Check a finite value >= 0 (an area, a tolerance)."""
    v = _finite(value, field)
    if v < 0:
        raise InputError(f"must be 0 or more{unit and ' ' + unit}, got {value}", field=field)
    return v


def radius(value: float, field: str = "radius_m") -> float:
    """Check a distance in metres: finite and > 0."""
    v = _finite(value, field)
    if v <= 0:
        raise InputError(f"must be more than 0 m, got {value:g}", field=field)
    return v


def positive_int(value: int, field: str) -> int:
    """Check a count that must be at least 1 (posts, staff)."""
    if int(value) < 1:
        raise InputError(f"must be at least 1, got {value}", field=field)
    return int(value)


def staff_band(min_staff: int, max_staff: int, total: int | None = None) -> tuple[int, int]:
    """Check workers per grid (``min_staff`` >= 0, ``max_staff`` >= max(1, min)) and a total >= 1."""
    if total is not None:
        positive_int(total, "staff")
    if int(min_staff) < 0:
        raise InputError(f"must be 0 or more, got {min_staff}", field="min_staff")
    if int(max_staff) < max(1, int(min_staff)):
        raise InputError(f"must be at least min_staff ({min_staff}) and 1, got {max_staff}",
                         field="max_staff")
    return int(min_staff), int(max_staff)


def merge_params(
    *, households_min: int, households_max: int, min_area_m2: float, h3_res: int, **_: Any
) -> dict[str, Any]:
    """Check the parameters of a merge (CLI ``gridplan merge`` and ``POST /jobs/merge``)."""
    lo, hi = households_band(households_min, households_max)
    return {
        "households_min": lo,
        "households_max": hi,
        "min_area_m2": non_negative(min_area_m2, "min_area_m2", "m²"),
        "h3_res": h3_resolution(h3_res),
    }


def output_file(path: str | os.PathLike[str], *, suffixes: tuple[str, ...] = ()) -> Path:
    """Check an output file before work: not a folder, its folder exists and is writable, a known suffix."""
    p = check_output_path(path)
    if suffixes and p.suffix.lower() not in suffixes:
        raise InputError(f"must end in {' or '.join(suffixes)}", file=p)
    return p


def folder(path: str | os.PathLike[str], *, what: str = "folder") -> Path:
    """Check a folder to use or create: not an existing file, its nearest existing parent writable.

    Examples
    --------
    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "notes.txt"
    >>> _ = f.write_text("x")
    >>> folder(f, what="workspace")
    Traceback (most recent call last):
    ...
    gridplan.errors.InputError: ...notes.txt: is a file, not a folder; give a workspace folder ...

    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"is a file, not a folder; give a {what} folder (new or existing)", file=p)
    probe = p
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise InputError(f"is a file, so {p} cannot be a folder inside it", file=probe)
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise InputError("folder is not writable", file=probe)
    return p


def user_name(name: str, field: str = "name") -> str:
    """Check a user name as the service does (letters, digits, ``_ . @ -``; 1–64 characters)."""
    if not USER_NAME.fullmatch(name):
        raise InputError(
            f"{name!r} is not a user name: use 1-64 letters, digits, _ . @ or - (no spaces or slashes)",
            field=field,
        )
    return name
