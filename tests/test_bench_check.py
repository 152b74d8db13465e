"""Benchmark plumbing: repeated figures (min/median/load), the noise verdict and ``--check``."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from benchmarks import __main__ as bench
from benchmarks import _common
from benchmarks._common import Runs, noise_text, paired, repeated


def test_runs_report_min_median_and_load() -> None:
    r = Runs(seconds=[2.0, 1.0, 4.0], loads=[(0.5, 0.7), (0.6, 0.9), (0.4, 0.5)])
    assert (r.min, r.median) == (1.0, 2.0)
    assert r.load_range == (0.4, 0.9)
    assert r.spread == pytest.approx(3.0)
    assert r.noise_bound()  # 4 s vs 1 s
    assert "min / 2.0 median of 3 (load 0.4–0.9)" in r.text(lambda s: f"{s:.1f}")
    steady = Runs(seconds=[1.0, 1.1, 1.05], loads=[(0.1, 0.2)] * 3)
    assert not steady.noise_bound()
    assert noise_text(steady).startswith("steady")
    assert noise_text(steady, r).startswith("noise-bound (runs spread 300%")
    loaded = Runs(seconds=[1.0, 1.0, 1.0], loads=[(9.0, 9.0)] * 3)  # more load than cores
    assert loaded.noise_bound()


def test_paired_interleaves_and_counts_runs() -> None:
    calls: list[str] = []
    ro, ra, ratio, o, a = paired(lambda: calls.append("o") or "O", lambda: calls.append("a") or "A", 3)
    assert calls == ["o", "a"] * 3
    assert (o, a) == ("O", "A")
    assert len(ro.seconds) == len(ra.seconds) == len(ro.loads) == 3
    assert ratio > 0
    r, out = repeated(lambda: 5, 4)
    assert out == 5
    assert len(r.seconds) == 4


def _fake_bench(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, speedup: float, task: str = "t1") -> None:
    (tmp_path / "bench_fake.py").write_text("")
    mod = types.ModuleType("benchmarks.bench_fake")
    mod.__doc__ = "A fake section."

    def run(scale: str) -> list[dict[str, object]]:
        runs = Runs(seconds=[1.0, 1.0, 1.0], loads=[(0.1, 0.1)] * 3)
        return [{"task": task, "ours": "1 s", "anchor": "x", "anchor_name": "a", "ratio": "r", "notes": "n",
                 "speedup": speedup, "runs": [runs, runs]}]

    mod.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "benchmarks.bench_fake", mod)
    monkeypatch.setattr(bench, "HERE", tmp_path)
    monkeypatch.setattr(bench, "RECORD", tmp_path / "RESULTS.json")
    monkeypatch.setattr(_common, "RUNS", 3)


def test_record_then_check(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_bench(monkeypatch, tmp_path, 10.0)
    assert bench.main(["--only", "fake"]) == 0
    md = (tmp_path / "RESULTS.md").read_text()
    assert "## fake" in md
    assert "steady" in md
    assert "at commit" in md
    rec = json.loads((tmp_path / "RESULTS.json").read_text())
    assert rec[0]["speedup"] == 10.0
    assert rec[0]["runs"] == 3
    assert rec[0]["load"] == [0.1, 0.1]
    _fake_bench(monkeypatch, tmp_path, 8.5)  # 15 % slower: within the 20 % floor
    assert bench.main(["--check", "--only", "fake"]) == 0
    _fake_bench(monkeypatch, tmp_path, 7.5)  # 25 % slower: fails
    assert bench.main(["--check", "--only", "fake"]) == 1
    _fake_bench(monkeypatch, tmp_path, 10.0, task="renamed")  # a recorded row no longer measured
    assert bench.main(["--check", "--only", "fake"]) == 1
    assert json.loads((tmp_path / "RESULTS.json").read_text()) == rec  # --check writes nothing


def test_check_without_record_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_bench(monkeypatch, tmp_path, 10.0)
    assert bench.main(["--check", "--only", "fake"]) == 1
