"""The one atomic writer: every output file of gridplan goes through :func:`atomic_path`.

A reader never sees a half-written file and a killed process never leaves the old one damaged:

1. the content is written to a temporary file **in the target's folder** (same file system, so the
   rename is atomic), named ``.<target name>.gptmp-<pid>-<random><suffix>`` — the suffix is kept so
   GDAL and rasterio pick the right driver;
2. the temporary file is flushed to disk (``fsync``), given the mode every output gets (0666 minus
   the umask, i.e. 0644 under the usual umask 022 — ``mkstemp`` would give 0600), then renamed over
   the target with :func:`os.replace`, and the folder is fsynced so the rename itself survives a
   power loss;
3. on any failure the temporary file and its SQLite sidecars (``-journal``, ``-wal``, ``-shm``) are
   removed and the target is untouched.

A process killed with ``SIGKILL`` cannot clean up; its temporary files are *stale*: the next write
to the same target removes every ``.<target name>.gptmp-*`` whose process is gone (or that is older
than :data:`STALE_AFTER_S`).  Files of a live writer are left alone.

The policy for a missing folder is one for all writers: the folder must exist (``InputError``
naming it), as ArcGIS and GDAL do; commands whose output *is* a folder create it themselves.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from gridplan.errors import InputError

logger = logging.getLogger(__name__)

__all__ = [
    "STALE_AFTER_S",
    "TEMP_TAG",
    "atomic_path",
    "check_output_path",
    "clean_stale",
    "concat_files",
    "fsync_dir",
    "output_mode",
    "staged_bytes",
    "temp_name",
    "write_bytes",
    "write_text",
]

#: Marker in every temporary name (what :func:`clean_stale` looks for).
TEMP_TAG = ".gptmp-"
#: A temporary file older than this is stale even if its process id is alive again (pid reuse).
STALE_AFTER_S = 24 * 3600.0
#: SQLite files that may stand beside a GeoPackage being written.
_SIDECARS = ("-journal", "-wal", "-shm")
_TEMP_RE = re.compile(r"\.gptmp-(\d+)-[0-9a-f]+")


def output_mode() -> int:
    """Return the mode of every output file: ``0o666`` minus the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def temp_name(target: str | os.PathLike[str]) -> Path:
    """Return a fresh temporary name beside *target* (same folder, same suffix).

    Examples
    --------
    >>> p = temp_name("/data/plan.gpkg")
    >>> p.parent.as_posix(), p.name.startswith(".plan.gpkg.gptmp-"), p.suffix
    ('/data', True, '.gpkg')

    """
    t = Path(target)
    return t.with_name(f".{t.name}{TEMP_TAG}{os.getpid()}-{secrets.token_hex(4)}{t.suffix}")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _remove_with_sidecars(path: Path) -> None:
    for p in (path, *(path.with_name(path.name + s) for s in _SIDECARS)):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def clean_stale(target: str | os.PathLike[str]) -> list[Path]:
    """Remove the stale temporary files of earlier writes to *target*; return what was removed.

    A temporary file is stale when the process that made it is gone, or when it is older than
    :data:`STALE_AFTER_S`.  Only files named for this target are considered.
    """
    t = Path(target)
    folder = t.parent if str(t.parent) else Path(".")
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    prefix = f".{t.name}{TEMP_TAG}"
    now = time.time()
    for p in folder.iterdir():
        name = p.name
        if not name.startswith(prefix):
            continue
        m = _TEMP_RE.search(name, len(t.name) + 1)
        if m is None:
            continue
        try:
            age = now - p.lstat().st_mtime
        except FileNotFoundError:
            continue
        if _pid_alive(int(m.group(1))) and age < STALE_AFTER_S:
            continue
        base = p
        for s in _SIDECARS:  # a sidecar: remove it with its database
            if name.endswith(s):
                base = p.with_name(name[: -len(s)])
        if base not in removed:
            _remove_with_sidecars(base)
            removed.append(base)
    if removed:
        logger.info("removed %d stale temporary file(s) of %s", len(removed), t)
    return removed


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (a rename in it) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # pragma: no cover - some file systems refuse fsync on folders
        if exc.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def check_output_path(target: str | os.PathLike[str]) -> Path:
    """Return *target* as a Path after checking it can be an output file (not a folder, folder exists)."""
    t = Path(target)
    if t.is_dir():
        raise InputError("is a folder; give the name of a file to write", file=t)
    folder = t.parent if str(t.parent) else Path(".")
    if not folder.is_dir():
        raise InputError("folder does not exist; create it first", file=folder)
    if not os.access(folder, os.W_OK):
        raise InputError("folder is not writable", file=folder)
    return t


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces *target* atomically.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with atomic_path(folder / "a.txt") as tmp:
    ...     _ = tmp.write_text("done")
    >>> (folder / "a.txt").read_text(), sorted(p.name for p in folder.iterdir())
    ('done', ['a.txt'])

    """
    t = check_output_path(target)
    clean_stale(t)
    tmp = temp_name(t)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to {tmp}")
        _fsync_file(tmp)
        os.chmod(tmp, output_mode())
        os.replace(tmp, t)
        fsync_dir(t.parent if str(t.parent) else ".")
    finally:
        _remove_with_sidecars(tmp)


def staged_bytes(data: bytes, target: str | os.PathLike[str]) -> Path:
    """Write *data* to a fsynced temporary file beside *target* and return it, not yet renamed.

    For commits of several files (a map, its manifest and the index): stage each, then
    ``os.replace`` them in order and :func:`fsync_dir` the folder.  The caller removes a staged file
    it does not rename.
    """
    t = check_output_path(target)
    tmp = temp_name(t)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, output_mode())
    except BaseException:
        _remove_with_sidecars(tmp)
        raise
    return tmp


def write_bytes(data: bytes, target: str | os.PathLike[str]) -> Path:
    """Write *data* to *target* atomically; return the target."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text(text: str, target: str | os.PathLike[str], *, encoding: str = "utf-8") -> Path:
    """Write *text* to *target* atomically; return the target."""
    return write_bytes(text.encode(encoding), target)


def concat_files(parts: Sequence[str | os.PathLike[str]], target: str | os.PathLike[str]) -> Path:
    """Write the bytes of *parts*, in order, to *target* atomically (streamed, never all in memory).

    Each part is removed once it has been copied; on failure *target* is untouched and the parts
    that were not copied yet are left to the caller.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> parts = [folder / "a", folder / "b"]
    >>> _ = parts[0].write_bytes(b"head,"), parts[1].write_bytes(b"tail")
    >>> concat_files(parts, folder / "out.txt").read_bytes(), sorted(p.name for p in folder.iterdir())
    (b'head,tail', ['out.txt'])

    """
    with atomic_path(target) as tmp, open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 20)
            os.unlink(part)
    return Path(target)
