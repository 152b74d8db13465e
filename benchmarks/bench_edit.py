"""Planner edits: the live-consequence call of the editor engine on the city plan (issue 18).

`gridplan.balance.edit.EditSession` applies one operation and reports what it does (households,
band status, contiguity and community nesting of each affected grid, departmental grids newly cut,
units and households moved, violations).  Target: p95 ≤ 300 ms per edit on the city sample (≈ 3,200
grids).  The edits are random legal-looking ones: a unit on a grid's boundary given to the
neighbouring grid across it (as a planner's click does), a merge of two neighbours, and undo.  No
anchor: QGIS and ArcGIS do not compute these consequences.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from benchmarks._common import city_plan, measure

N_EDITS = 60


def run(scale: str) -> list[dict[str, str]]:
    from gridplan.balance.edit import EditSession, MergeGrids, Reassign
    from gridplan.balance.graph import unit_adjacency
    from gridplan.plans import read_plan, text_column

    plan = read_plan(city_plan(scale))
    with measure() as m_open:
        session = EditSession(plan)
    units = plan.atomic_units
    ids, grid = text_column(units, "unit_id"), text_column(units, "base_grid_code")
    graph = unit_adjacency(np.asarray(units.geometry.values, dtype=object),
                           np.zeros(len(units), dtype=np.int64))
    rng = np.random.default_rng(0)
    a = np.repeat(np.arange(graph.n), np.diff(graph.indptr))
    b = graph.indices
    cross = np.flatnonzero(grid[a] != grid[b])
    times: list[float] = []
    for k in rng.choice(cross, size=N_EDITS, replace=False):
        i, j = int(a[k]), int(b[k])
        if k % 3 == 0:
            op: Reassign | MergeGrids = MergeGrids(keep=str(session.assignment[j]),
                                                   absorb=str(session.assignment[i]))
        else:
            op = Reassign(units=(str(ids[i]),), to_grid=str(session.assignment[j]))
        if op_is_noop(op):
            continue
        t0 = time.perf_counter()
        session.apply(op)
        times.append(time.perf_counter() - t0)
        if k % 5 == 0:
            t0 = time.perf_counter()
            session.undo()
            times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1000
    return [{
        "task": f"edit + consequences ({len(plan.base_grids):,} grids, {len(units):,} units, "
                f"{len(ms)} edits)",
        "ours": f"p95 {np.percentile(ms, 95):.0f} ms (median {np.median(ms):.0f} ms, max {ms.max():.0f} ms)",
        "anchor_name": "target p95",
        "anchor": "300 ms",
        "ratio": f"{np.percentile(ms, 95) / 300:.2f}",
        "notes": f"session open {m_open.seconds:.1f} s (adjacency of all units, once); "
                 f"peak {m_open.peak_mib:.0f} MiB",
    }]


def op_is_noop(op: object) -> bool:
    from gridplan.balance.edit import MergeGrids

    return isinstance(op, MergeGrids) and op.keep == op.absorb


if __name__ == "__main__":
    for row in run(sys.argv[1] if len(sys.argv) > 1 else "city"):
        print(row)
