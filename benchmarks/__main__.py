"""Run every ``benchmarks/bench_*.py`` and write ``benchmarks/RESULTS.md``; ``--check`` the recorded ratios.

Each bench module exposes ``run(scale: str) -> list[dict]``; every dict is one table row with the
keys ``task``, ``ours``, ``anchor``, ``anchor_name``, ``ratio``, ``notes`` (strings, already
formatted).  A row measured over repeated runs (``benchmarks._common.paired``/``repeated``) also
carries ``speedup`` (anchor / ours, a float) and ``runs`` (its :class:`~benchmarks._common.Runs`):
those rows get a steady/noise-bound verdict in their notes and are recorded in
``benchmarks/RESULTS.json`` with the commit and load, for ``--check``.

``python -m benchmarks [--scale city] [--only merge,geocode] [--runs 3]`` writes RESULTS.md/.json;
``python -m benchmarks --check [--only gistar]`` re-runs the sections with recorded ratios and exits
1 when a ratio falls more than 20 % below the recorded one (it writes nothing).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import _common
from benchmarks._common import commit, cpu_count, load_average, noise_text

HERE = Path(__file__).resolve().parent
RECORD = HERE / "RESULTS.json"

#: ``--check`` fails when a re-measured speed-up is below this share of the recorded one.
CHECK_FLOOR = 0.80


def _rows(name: str, scale: str) -> tuple[Any, list[dict[str, Any]], float]:
    mod = importlib.import_module(f"benchmarks.bench_{name}")
    t0 = time.perf_counter()
    print(f"== {name} ({scale}, load {load_average():.1f})", flush=True)
    rows = mod.run(scale)
    return mod, rows, time.perf_counter() - t0


def _record_of(name: str, r: dict[str, Any]) -> dict[str, Any]:
    runs = r.get("runs") or []
    return {
        "section": name, "task": r["task"], "speedup": round(float(r["speedup"]), 3),
        "ours_min_s": round(runs[0].min, 3) if runs else None,
        "ours_median_s": round(runs[0].median, 3) if runs else None,
        "anchor_min_s": round(runs[1].min, 3) if len(runs) > 1 else None,
        "anchor_median_s": round(runs[1].median, 3) if len(runs) > 1 else None,
        "ours_cpu_min_s": round(min(runs[0].cpu), 3) if runs and runs[0].cpu else None,
        "runs": len(runs[0].seconds) if runs else 0,
        "load": [round(v, 2) for v in runs[0].load_range] if runs else None,
        "noise_bound": any(x.noise_bound() for x in runs),
        "commit": commit(),
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _section(name: str, mod: Any, rows: list[dict[str, Any]], wall: float) -> str:
    lines = [
        f"## {name}\n",
        (mod.__doc__ or "").strip() + "\n",
        "| task | ours | anchor | anchor time | ours vs anchor | notes |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        notes = r.get("notes", "")
        if r.get("runs"):
            notes = f"{noise_text(*r['runs'])}; {notes}"
        line = (f"| {r['task']} | {r['ours']} | {r.get('anchor_name', '')} | {r.get('anchor', '')} "
                f"| {r.get('ratio', '')} | {notes} |")
        lines.append(line)
        print(line, flush=True)
    lines.append(
        f"\n_{name}: {wall:.0f} s wall for this section, run "
        f"{dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')} at commit {commit()}, load average "
        f"{load_average():.1f} at the end._\n"
    )
    return "\n".join(lines)


def _check(names: list[str], scale: str) -> int:
    """Re-run the recorded ratios of *names*; 1 when one fell > 20 % below its record."""
    if not RECORD.exists():
        print(f"no recorded ratios: {RECORD.name} is missing (run python -m benchmarks first)")
        return 1
    recorded = json.loads(RECORD.read_text())
    wanted = [n for n in names if any(r["section"] == n for r in recorded)]
    failed = 0
    for name in wanted:
        _mod, rows, _wall = _rows(name, scale)
        new = {r["task"]: r for r in rows if "speedup" in r}
        for rec in (r for r in recorded if r["section"] == name):
            row = new.get(rec["task"])
            if row is None:
                print(f"FAIL {name}: {rec['task']!r} is no longer measured")
                failed += 1
                continue
            now, was = float(row["speedup"]), float(rec["speedup"])
            ok = now >= CHECK_FLOOR * was
            failed += not ok
            noise = noise_text(*row["runs"]) if row.get("runs") else ""
            print(f"{'ok  ' if ok else 'FAIL'} {name}: {rec['task']}: {now:.2f}× now vs {was:.2f}× recorded "
                  f"({now / was:.0%}; floor {CHECK_FLOOR:.0%}); {noise}", flush=True)
    print(f"--check: {len(wanted)} section(s), {failed} ratio(s) below the floor")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks and write RESULTS.md (or ``--check`` the recorded ratios)."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks")
    ap.add_argument("--scale", default="city", choices=["small", "city"])
    ap.add_argument("--only", default="", help="comma-separated bench names (merge, geocode, gistar, …)")
    ap.add_argument("--runs", type=int, default=_common.RUNS, help="runs per repeated figure (≥ 3)")
    ap.add_argument("--check", action="store_true",
                    help="re-run the recorded ratios; exit 1 if one fell > 20 %% below RESULTS.json")
    args = ap.parse_args(argv)
    _common.RUNS = max(1, args.runs)
    names = sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    if args.only:
        wanted = set(args.only.split(","))
        names = [n for n in names if n in wanted]
    if args.check:
        return _check(names, args.scale)
    sections: dict[str, str] = _previous_sections() if args.only else {}
    records = [r for r in _previous_records() if r["section"] not in names] if args.only else []
    for name in names:
        mod, rows, wall = _rows(name, args.scale)
        sections[name] = _section(name, mod, rows, wall)
        records += [_record_of(name, r) for r in rows if "speedup" in r]
    header = (
        "# Benchmark results\n\n"
        f"Written by `make bench` (`python -m benchmarks --scale {args.scale}`) on "
        f"{dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}, {cpu_count()} cores, "
        f"Python {platform.python_version()}. Ours and the anchor run in the same process on the same "
        "data. Sections re-run alone (`--only`) carry their own date, commit and load. Rows measured "
        "over repeated runs give min / median of the runs and the load average around them, and say "
        "whether they are **steady** or **noise-bound** (runs spread > 20 % or load above the cores); "
        "their ratios are recorded in `RESULTS.json` for `python -m benchmarks --check`. Rows without "
        "min / median are single runs: on this shared 2-core machine treat them as noise-bound.\n"
    )
    body = "\n".join(sections[k] for k in sorted(sections))
    (HERE / "RESULTS.md").write_text(header + "\n" + body)
    RECORD.write_text(json.dumps(sorted(records, key=lambda r: (r["section"], r["task"])),
                                 ensure_ascii=False, indent=1) + "\n")
    return 0


def _previous_records() -> list[dict[str, Any]]:
    return list(json.loads(RECORD.read_text())) if RECORD.exists() else []


def _previous_sections() -> dict[str, str]:
    """Sections of an existing RESULTS.md, so ``--only`` re-runs replace just their own."""
    path = HERE / "RESULTS.md"
    if not path.exists():
        return {}
    out: dict[str, str] = {}
    for chunk in path.read_text().split("\n## ")[1:]:
        name = chunk.split("\n", 1)[0].strip()
        out[name] = "## " + chunk.rstrip() + "\n"
    return out


if __name__ == "__main__":
    sys.exit(main())
