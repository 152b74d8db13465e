"""Geocoding file to file on a dask.distributed cluster: wall time and the client's peak memory.

The whole ``gridplan geocode CASES.csv --layers … --plan … -o OUT.csv`` command runs in a fresh
process each time, so its peak resident memory (``ru_maxrss`` of that process alone) is the
client's: once without ``--scheduler`` (the one-process run: the table, the index and the output in
memory), then with ``--scheduler ADDRESS`` against a ``LocalCluster`` started by the benchmark
with 1 and with 2 worker processes of one thread (``--chunk-rows 200000``: 5 partitions at city
scale).  With a scheduler the client only streams the input once to find the parts' byte ranges
and concatenates the workers' part files; a worker builds the index once and the others load it.
The workers' peak memory is given in the notes.  "Identical" compares the output files byte for
byte.  Goal (issue 20): the client's peak below half of the one-process run's.  The ratios are
client peak / one-process peak and wall / one-process wall (on 2 cores shared with other work, a
second worker rarely shortens the wall).
"""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._common import city_data, city_plan, cpu_count, load_average

CHUNK_ROWS = 200_000

_RUN = (
    "import resource, runpy, sys\n"
    "sys.argv = ['gridplan', *sys.argv[1:]]\n"
    "code = 0\n"
    "try:\n"
    "    runpy.run_module('gridplan', run_name='__main__')\n"
    "except SystemExit as exc:\n"
    "    code = exc.code or 0\n"
    "print('MAXRSS_KIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)\n"
    "sys.exit(code)\n"
)


def _run_cli(args: list[str]) -> tuple[float, float]:
    """Run ``gridplan *args`` in a fresh process; return (wall seconds, its peak RSS in MiB)."""
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", _RUN, *args], capture_output=True, text=True, check=False,
                         env={**os.environ, "COLUMNS": "200"})
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"gridplan {' '.join(args)} failed: {res.stderr[-2000:]}{res.stdout[-2000:]}")
    kib = next(int(line.split()[1]) for line in res.stdout.splitlines() if line.startswith("MAXRSS_KIB"))
    return wall, kib / 1024


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _worker_peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _on_cluster(n_workers: int, base: list[str], out: Path) -> tuple[float, float, float]:
    """(wall s, client peak MiB, largest worker peak MiB) of the command on a fresh LocalCluster."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        wall, client_mib = _run_cli([*base, "-o", str(out), "--scheduler", cluster.scheduler_address])
        with Client(cluster.scheduler_address) as c:
            worker_mib = max(c.run(_worker_peak_mib).values())
    return wall, client_mib, worker_mib


def run(scale: str) -> list[dict[str, Any]]:
    folder = city_data(scale)
    plan = city_plan(scale)
    cases = folder / "cases.csv"
    with open(cases, "rb") as fh:
        rows = sum(1 for _ in fh) - 1
    work = folder / "_dask_bench"
    work.mkdir(exist_ok=True)
    base = ["geocode", str(cases), "--layers", str(folder / "layers.gpkg"), "--plan", str(plan),
            "--chunk-rows", str(CHUNK_ROWS)]
    one = work / "local.csv"
    wall1, mib1 = _run_cli([*base, "-o", str(one)])
    want = _digest(one)
    load = [load_average()]
    out: list[dict[str, Any]] = [{
        "task": f"gridplan geocode {rows:,} cases ({scale} sample), 1 process",
        "ours": f"{wall1:.1f} s wall, client peak {mib1:,.0f} MiB",
        "anchor_name": "", "anchor": "", "ratio": "",
        "notes": f"reads the table, builds the index, geocodes in chunks of {CHUNK_ROWS:,}, writes; "
                 f"{cpu_count()} cores shared; output {one.stat().st_size / 2**20:,.0f} MiB",
    }]
    for n in (1, 2):
        dst = work / f"dask_{n}.csv"
        wall, client_mib, worker_mib = _on_cluster(n, base, dst)
        load.append(load_average())
        same = _digest(dst) == want
        dst.unlink()
        share = client_mib / mib1
        out.append({
            "task": f"same, --scheduler on a LocalCluster of {n} worker{'s' if n > 1 else ''}",
            "ours": f"{wall:.1f} s wall, client peak {client_mib:,.0f} MiB",
            "anchor_name": "1 process",
            "anchor": f"{wall1:.1f} s, {mib1:,.0f} MiB",
            "ratio": f"client memory {share:.2f}×, wall {wall / wall1:.2f}×",
            "notes": f"output identical byte for byte: {'yes' if same else 'NO'}; "
                     f"{-(-rows // CHUNK_ROWS)} partitions; largest worker peak {worker_mib:,.0f} MiB; "
                     f"wall includes starting the client and building the index on a worker; "
                     f"goal client < 0.5× the 1-process peak: {'meets' if share < 0.5 else 'misses'}",
        })
    one.unlink()
    out[-1]["notes"] += f"; load average {min(load):.1f}–{max(load):.1f} over the runs"
    return out


if __name__ == "__main__":
    for r in run(sys.argv[1] if len(sys.argv) > 1 else "city"):
        print(r)
