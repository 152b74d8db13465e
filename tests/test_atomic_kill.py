"""kill -9 in the middle of merge, geocode and publish, then run again: no temporary file is left.

Each command runs as a real process; it is killed with SIGKILL the moment its first temporary file
appears in the output folder (mid-write, the case that matters), and again after a few fixed delays
(reading, computing).  The next run of the same command must remove what the killed ones left,
finish, and leave only its outputs, each with the one output mode (0666 minus the umask).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gridplan._atomic import TEMP_TAG, output_mode

SCRIPT = "import sys; sys.argv[0] = 'gridplan'; from gridplan.cli import main; main()"
#: Fixed delays (s) after the start at which a run is killed, besides "at its first temporary file".
DELAYS = (1.0, 2.5)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if TEMP_TAG in p.name or p.name.endswith("-journal"))


def _start(argv: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, *argv], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _kill_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool], limit_s: float = 120.0) -> bool:
    """SIGKILL *proc* as soon as *ready()*; return False if it ended first."""
    end = time.monotonic() + limit_s
    while proc.poll() is None and time.monotonic() < end:
        if ready():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.005)
    proc.wait()
    return False


def _commands(small_city: Path, small_plan: Path, out: Path) -> dict[str, tuple[list[str], list[Path]]]:
    layers = str(small_city / "layers.gpkg")
    return {
        "merge": (["merge", layers, "--out", str(out / "plan.gpkg"), "--overwrite"], [out / "plan.gpkg"]),
        "geocode": (
            ["geocode", str(small_city / "cases.csv"), "--layers", layers, "--plan", str(small_plan),
             "--out", str(out / "cases.csv")],
            [out / "cases.csv"],
        ),
        "publish": (
            ["publish", "--plan", str(small_plan), "--out", str(out / "maps")],
            [out / "maps" / "index.html", out / "maps" / "manifest.json"],
        ),
    }


@pytest.mark.parametrize("command", ["merge", "geocode", "publish"])
def test_kill_9_mid_write_then_rerun_leaves_no_temporary_file(
    command: str, small_city: Path, small_plan: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    argv, outputs = _commands(small_city, small_plan, out)[command]
    left_by_kill = []
    # killed at its first temporary file: the write is under way
    killed = _kill_when(_start(argv, tmp_path), lambda: bool(_leftovers(out)))
    assert killed, f"{command} ended before writing a temporary file"
    left_by_kill += _leftovers(out)
    # killed at fixed moments (reading, computing or writing, whatever it is doing then)
    for delay in DELAYS:
        t0 = time.monotonic()
        _kill_when(_start(argv, tmp_path), lambda t0=t0, d=delay: time.monotonic() - t0 >= d)
        left_by_kill += _leftovers(out)
    assert left_by_kill, "no kill left a temporary file: the test did not test the clean-up"
    # the next run removes them and finishes
    res = subprocess.run([sys.executable, "-c", SCRIPT, *argv], cwd=tmp_path, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    assert _leftovers(out) == []
    mode = output_mode()
    for p in outputs:
        assert p.exists(), p
        assert p.stat().st_mode & 0o777 == mode, (p, oct(p.stat().st_mode))
