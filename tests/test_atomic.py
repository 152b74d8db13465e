"""gridplan._atomic: the one atomic writer (temp beside the target, fsync, rename, stale clean-up)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gridplan._atomic import TEMP_TAG, atomic_path, clean_stale, staged_bytes, temp_name, write_bytes
from gridplan.errors import InputError


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_success_replaces_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old")
    write_bytes(b"new", target)
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_failure_keeps_the_old_file_and_removes_the_temp(tmp_path: Path) -> None:
    target = tmp_path / "plan.gpkg"
    target.write_text("old")

    def half_write() -> None:
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            Path(str(tmp) + "-journal").write_text("j")  # a SQLite sidecar
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        half_write()
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["plan.gpkg"]


def test_mode_follows_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        out = write_bytes(b"x", tmp_path / "a.csv")
        staged = staged_bytes(b"y", tmp_path / "b.html")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert stat.S_IMODE(staged.stat().st_mode) == 0o644  # not mkstemp's 0600


def test_stale_temps_of_dead_writers_are_removed_live_ones_kept(tmp_path: Path) -> None:
    target = tmp_path / "plan.gpkg"
    dead = tmp_path / f".plan.gpkg{TEMP_TAG}{_dead_pid()}-0123abcd.gpkg"
    dead.write_text("half")
    Path(str(dead) + "-journal").write_text("j")
    live = temp_name(target)  # this process: alive
    live.write_text("in progress")
    other = tmp_path / f".other.gpkg{TEMP_TAG}{_dead_pid()}-0123abcd.gpkg"  # another target's
    other.write_text("x")
    removed = clean_stale(target)
    assert dead in removed
    assert not dead.exists()
    assert not Path(str(dead) + "-journal").exists()
    assert live.exists()
    assert other.exists()


def test_next_write_cleans_up_after_a_killed_one(tmp_path: Path) -> None:
    target = tmp_path / "geo.csv"
    dead = tmp_path / f".geo.csv{TEMP_TAG}{_dead_pid()}-00ff00ff.csv"
    dead.write_text("half")
    write_bytes(b"a,b\n", target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["geo.csv"]


def test_bad_targets_are_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="folder does not exist") as exc:
        write_bytes(b"x", tmp_path / "missing" / "a.csv")
    assert "missing" in str(exc.value)
    with pytest.raises(InputError, match="is a folder"):
        write_bytes(b"x", tmp_path)
