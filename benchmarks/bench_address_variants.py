"""Geocoding by address class: messy variants made from each city's own library (issue 13).

`benchmarks/address_variants.py` rewrites library rows the way people write addresses, 25 named
classes, apart from the sample generator's own messy cases, and scores the geocoder per class:
right / wrong place / coarser than right / tied / unmatched (shares of the class's rows).  Run on the
sample city at the bench scale and on the independent city `../shared/cities/chancheng` when it is
there (no plan for that one: grid codes are not scored here).  Goal: every class ≥ 90 % right,
wrong ≤ 0.5 % overall, not-in-library houses never placed at house level.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd

from benchmarks._common import city_data, city_plan

N_PER_CLASS = 200
#: The independent test city (``GRIDPLAN_OTHER_CITY`` overrides; skipped when absent).
OTHER_CITY = Path(os.environ.get(
    "GRIDPLAN_OTHER_CITY", Path(__file__).resolve().parents[1].parent / "shared" / "cities" / "chancheng"
))


def _cell(t: pd.DataFrame, cls: str) -> str:
    if cls not in t.index:
        return "—"
    r = t.loc[cls]
    return f"{100 * r['right']:.1f} %"


def run(scale: str) -> list[dict[str, str]]:
    from benchmarks.address_variants import CLASSES, evaluate

    folder = city_data(scale)
    tables = {f"sample {scale}": evaluate(folder / "layers.gpkg", city_plan(scale), N_PER_CLASS)}
    if (OTHER_CITY / "layers.gpkg").exists():
        tables["chancheng"] = evaluate(OTHER_CITY / "layers.gpkg", None, N_PER_CLASS)
    names = list(tables)
    rows = []
    for vc in CLASSES:
        first = tables[names[0]]
        notes = []
        for name, t in tables.items():
            if vc.name in t.index:
                r = t.loc[vc.name]
                notes.append(f"{name}: wrong {100 * r['wrong']:.1f} %, coarse {100 * r['coarse']:.1f} %, "
                             f"tied {100 * r['tied']:.1f} %, U {100 * r['unmatched']:.1f} %")
        rows.append({
            "task": f"class {vc.name} (right answer: {vc.expect}; {N_PER_CLASS} rows)",
            "ours": f"{names[0]}: {_cell(first, vc.name)}",
            "anchor_name": names[1] if len(names) > 1 else "",
            "anchor": _cell(tables[names[1]], vc.name) if len(names) > 1 else "",
            "ratio": "",
            "notes": "; ".join(notes),
        })
    for name, t in tables.items():
        wrong = (t["wrong"] * t["rows"]).sum() / t["rows"].sum()
        rows.append({"task": f"all classes, {name}", "ours": f"min class {100 * t['right'].min():.1f} % "
                     f"({t['right'].idxmin()})", "anchor_name": "", "anchor": "", "ratio": "",
                     "notes": f"wrong place {100 * wrong:.2f} % of all rows"})
    return rows


if __name__ == "__main__":
    for row in run(sys.argv[1] if len(sys.argv) > 1 else "city"):
        print(row)
