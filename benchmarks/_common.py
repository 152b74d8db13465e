"""Shared benchmark plumbing: the cached city-scale sample and timing/memory helpers."""

from __future__ import annotations

import fcntl
import os
import resource
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "_data"


def city_data(scale: str = "city", seed: int = 0) -> Path:
    """Folder with the sample city at *scale*, generated once and cached under benchmarks/_data."""
    out = DATA_DIR / f"{scale}-{seed}"
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with open(DATA_DIR / f".{scale}-{seed}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "manifest.json").exists():
            from gridplan.sample import write_sample

            write_sample(out, scale=scale, seed=seed)
    return out


def _rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Measure:
    """Wall time and peak RSS growth of one timed block."""

    seconds: float = 0.0
    peak_mib: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@contextmanager
def measure() -> Iterator[Measure]:
    """Time a block and sample its peak resident memory (MiB, whole process) every 50 ms."""
    m = Measure()
    stop = threading.Event()
    peak = [_rss_mib()]

    def sample() -> None:
        while not stop.wait(0.05):
            peak[0] = max(peak[0], _rss_mib())

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    t0 = time.perf_counter()
    try:
        yield m
    finally:
        m.seconds = time.perf_counter() - t0
        stop.set()
        t.join()
        m.peak_mib = max(peak[0], _rss_mib())


def timed(fn: Callable[[], Any]) -> tuple[Any, Measure]:
    """Run *fn* once under :func:`measure`; return its result and the measurement."""
    with measure() as m:
        result = fn()
    return result, m


def maxrss_mib() -> float:
    """Peak resident memory of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_count() -> int:
    """Cores available to this process."""
    return len(os.sched_getaffinity(0))


def city_plan(scale: str = "city", seed: int = 0) -> Path:
    """``plan.gpkg``: the default merge of the sample city, built once (file lock) and shared."""
    folder = city_data(scale, seed)
    path = folder / "plan.gpkg"
    with open(DATA_DIR / f".{scale}-{seed}-plan.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            from gridplan.layers import read_layers
            from gridplan.merge import merge_layers
            from gridplan.plans import write_plan

            write_plan(merge_layers(read_layers(folder / "layers.gpkg")), path)
    return path


# ---- repeated figures: min and median of ≥ 3 runs, the load average beside each ----------------

#: Runs per figure (``python -m benchmarks --runs N`` changes it for the whole run).
RUNS = 3

#: A figure is *noise-bound* when its runs spread by more than this (max / min − 1) …
NOISE_SPREAD = 0.20


def load_average() -> float:
    """The machine's 1-minute load average (the 2 cores are shared: say it beside every figure)."""
    return os.getloadavg()[0]


def commit() -> str:
    """Short commit of the benchmarked tree, ``+dirty`` when tracked files differ from it."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


@dataclass
class Runs:
    """Wall seconds of repeated runs of one figure, with the load average before and after each."""

    seconds: list[float] = field(default_factory=list)
    loads: list[tuple[float, float]] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def min(self) -> float:
        """Fastest run (the least disturbed by other work on the shared cores)."""
        return min(self.seconds)

    @property
    def median(self) -> float:
        """Median run."""
        import statistics

        return float(statistics.median(self.seconds))

    @property
    def spread(self) -> float:
        """Slowest / fastest − 1."""
        return max(self.seconds) / max(self.min, 1e-12) - 1.0

    @property
    def load_range(self) -> tuple[float, float]:
        """Lowest and highest load average seen before/after the runs."""
        flat = [v for pair in self.loads for v in pair]
        return min(flat), max(flat)

    def noise_bound(self) -> bool:
        """Runs spread > :data:`NOISE_SPREAD`, or the load exceeded the cores during a run."""
        return self.spread > NOISE_SPREAD or self.load_range[1] > cpu_count()

    def text(self, fmt: Callable[[float], str]) -> str:
        """``min (median, n runs, load a–b)`` for a table cell."""
        lo, hi = self.load_range
        return (f"{fmt(self.min)} min / {fmt(self.median)} median of {len(self.seconds)} "
                f"(load {lo:.1f}–{hi:.1f})")


def _children_cpu() -> float:
    """User + system seconds of the child processes that ended and were waited for."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_once(fn: Callable[[], Any], runs: Runs) -> Any:
    """Run *fn*, appending its wall/CPU seconds and the load average around it to *runs*.

    CPU counts this process and the worker processes *fn* started and joined (a process pool's
    workers are waited for when it shuts down), so work handed to processes is not lost.
    """
    before = load_average()
    cpu0 = time.process_time() + _children_cpu()
    t0 = time.perf_counter()
    out = fn()
    runs.seconds.append(time.perf_counter() - t0)
    runs.cpu.append(time.process_time() + _children_cpu() - cpu0)
    runs.loads.append((before, load_average()))
    return out


def paired(ours: Callable[[], Any], anchor: Callable[[], Any], n: int | None = None
           ) -> tuple[Runs, Runs, float, Any, Any]:
    """Ours and the anchor back to back, *n* times (default :data:`RUNS`), interleaved.

    Returns both :class:`Runs`, the median of the per-pair speed-ups (anchor / ours: each pair ran
    under nearly the same load, so this ratio is steadier than either time) and the last results.
    """
    import statistics

    ro, ra = Runs(), Runs()
    res_o = res_a = None
    for _ in range(n or RUNS):
        res_o = run_once(ours, ro)
        res_a = run_once(anchor, ra)
    ratios = [a / max(o, 1e-12) for o, a in zip(ro.seconds, ra.seconds, strict=True)]
    return ro, ra, float(statistics.median(ratios)), res_o, res_a


def repeated(fn: Callable[[], Any], n: int | None = None) -> tuple[Runs, Any]:
    """*fn* run *n* times (default :data:`RUNS`); its :class:`Runs` and last result."""
    r = Runs()
    out = None
    for _ in range(n or RUNS):
        out = run_once(fn, r)
    return r, out


def noise_text(*runs: Runs) -> str:
    """``noise-bound: …`` when any of *runs* is (:meth:`Runs.noise_bound`), else ``steady``."""
    bad = [r for r in runs if r.noise_bound()]
    if not bad:
        return "steady (runs within 20 %, load ≤ cores)"
    worst = max(bad, key=lambda r: r.spread)
    peak = max(r.load_range[1] for r in runs)
    return f"noise-bound (runs spread {worst.spread:.0%}, load up to {peak:.1f} on {cpu_count()} cores)"
