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
