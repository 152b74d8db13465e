"""Every CLI failure is one line on stderr with the right exit code; a bug leaves its traceback in a log."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridplan.cli import app


def _gridplan(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user's script would: a real process, stdout and stderr piped."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("gridplan")), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_bad_input_piped_is_exactly_one_line(tmp_path: Path) -> None:
    res = _gridplan("merge", str(tmp_path / "missing.gpkg"), "--out", str(tmp_path / "p.gpkg"), cwd=tmp_path)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert lines == [f"error: {tmp_path / 'missing.gpkg'}: file not found; check the path"]
    assert not (tmp_path / "p.gpkg").exists()


def test_progress_logs_stay_off_a_piped_stderr(small_city: Path, tmp_path: Path) -> None:
    """A failing run after real work: only the error line, no INFO or progress lines before it."""
    out = tmp_path / "sub" / "p.gpkg"  # folder does not exist: refused when writing
    res = _gridplan("merge", str(small_city / "layers.gpkg"), "--out", str(out), cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert str(out.parent) in lines[0]


def test_a_bug_is_one_line_and_a_log_with_the_traceback(
    monkeypatch: pytest.MonkeyPatch, small_city: Path, tmp_path: Path
) -> None:
    def broken(*_a: object, **_k: object) -> None:
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr("gridplan.validate.validate_layers", broken)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    res = CliRunner().invoke(app, ["validate", str(small_city / "layers.gpkg")])
    assert res.exit_code == 1, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    m = re.fullmatch(
        r"error: internal error \(ZeroDivisionError: float division by zero\); "
        r"the traceback is in (\S+\.log); please report it",
        lines[0],
    )
    assert m, lines[0]
    log = Path(m.group(1))
    assert log.parent == tmp_path
    assert "Traceback (most recent call last)" in log.read_text(encoding="utf-8")
    assert "ZeroDivisionError" in log.read_text(encoding="utf-8")


def test_household_band_edges(small_city: Path, tmp_path: Path) -> None:
    """A band without a lower end merges; an empty band is refused before any work, naming the field."""
    layers = str(small_city / "layers.gpkg")
    args = ["merge", layers, "--out", str(tmp_path / "a.gpkg"), "--households-min", "0"]
    ok = CliRunner().invoke(app, args)
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(
        app,
        [
            "merge",
            str(small_city / "layers.gpkg"),
            "--out",
            str(tmp_path / "b.gpkg"),
            "--households-min",
            "0",
            "--households-max",
            "0",
        ],
    )
    assert bad.exit_code == 2
    assert bad.stderr.strip().splitlines() == [
        "error: field households_max: must be at least 10 households, got 0 (the band counts households "
        "per base grid; the guidance is 300-500)"
    ]
    assert not (tmp_path / "b.gpkg").exists()


def test_geocode_csv_opens_in_excel_by_default(small_city: Path, small_plan: Path, tmp_path: Path) -> None:
    """People open the geocoded CSV in Excel: a UTF-8 BOM by default, none with --no-bom."""
    base = ["geocode", str(small_city / "cases.csv"), "--layers", str(small_city / "layers.gpkg")]
    base += ["--plan", str(small_plan)]
    res = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "a.csv")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "a.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    res = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "b.csv"), "--no-bom"])
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "b.csv").read_bytes().startswith(b"\xef\xbb\xbf")
