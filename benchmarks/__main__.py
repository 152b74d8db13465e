"""Run every ``benchmarks/bench_*.py`` and write ``benchmarks/RESULTS.md``.

Each bench module exposes ``run(scale: str) -> list[dict]``; every dict is one table row with the
keys ``task``, ``ours``, ``anchor``, ``anchor_name``, ``ratio``, ``notes`` (strings, already
formatted).  ``python -m benchmarks [--scale city] [--only merge,geocode]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import platform
import sys
import time
from pathlib import Path

from benchmarks._common import cpu_count

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks and write RESULTS.md."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks")
    ap.add_argument("--scale", default="city", choices=["small", "city"])
    ap.add_argument("--only", default="", help="comma-separated bench names (merge, geocode, …)")
    args = ap.parse_args(argv)
    names = sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    if args.only:
        wanted = set(args.only.split(","))
        names = [n for n in names if n in wanted]
    sections: dict[str, str] = _previous_sections() if args.only else {}
    for name in names:
        mod = importlib.import_module(f"benchmarks.bench_{name}")
        t0 = time.perf_counter()
        print(f"== {name} ({args.scale})", flush=True)
        rows = mod.run(args.scale)
        lines = [
            f"## {name}\n",
            (mod.__doc__ or "").strip() + "\n",
            "| task | ours | anchor | anchor time | ours vs anchor | notes |",
            "|---|---|---|---|---|---|",
        ]
        for r in rows:
            line = (
                f"| {r['task']} | {r['ours']} | {r.get('anchor_name', '')} | {r.get('anchor', '')} "
                f"| {r.get('ratio', '')} | {r.get('notes', '')} |"
            )
            lines.append(line)
            print(line, flush=True)
        lines.append(
            f"\n_{name}: {time.perf_counter() - t0:.0f} s wall for this section, run "
            f"{dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}._\n"
        )
        sections[name] = "\n".join(lines)
    header = (
        "# Benchmark results\n\n"
        f"Written by `make bench` (`python -m benchmarks --scale {args.scale}`) on "
        f"{dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}, {cpu_count()} cores, "
        f"Python {platform.python_version()}. Ours and the anchor run in the same process on the same "
        "data. Sections re-run alone (`--only`) carry their own date.\n"
    )
    body = "\n".join(sections[k] for k in sorted(sections))
    (HERE / "RESULTS.md").write_text(header + "\n" + body)
    return 0


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
