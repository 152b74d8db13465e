"""Planner edits: the live-consequence call of the editor engine on the city plan (issue 18).

`gridplan.balance.edit.EditSession` applies one operation and reports what it does (households,
band status, contiguity and community nesting of each affected grid, departmental grids newly cut,
units and households moved, violations).  Target: p95 ≤ 300 ms per edit on the city sample (≈ 3,200
grids).  The edits are random legal-looking ones: a unit on a grid's boundary given to the
neighbouring grid across it (as a planner's click does), a merge of two neighbours, and undo.  Vertex
moves are timed on their own: a vertex shared by two units of different grids moved 25 m towards the
neighbouring unit's centre (the cut of the units it sweeps, the new pieces' adjacency, then the
consequences), and undo; then again on a session holding the city's buildings and standard addresses,
as the service opens it (cut units divided by the buildings in each part, addresses and buildings
changing grid listed).  No anchor: QGIS and ArcGIS do not compute these consequences.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from benchmarks._common import city_data, city_plan, measure

N_EDITS = 60
N_MOVES = 40
MOVE_M = 25.0


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
    move_ms, undo_ms, refused = _vertex_moves(plan, session.fresh(), a, b, cross, rng)
    from gridplan.layers import read_layer

    layers = city_data(scale) / "layers.gpkg"
    buildings, addresses = read_layer(layers, "buildings"), read_layer(layers, "std_addresses")
    with measure() as m_points:
        with_points = EditSession(plan, buildings=buildings, addresses=addresses)
    pts_ms, pts_undo_ms, pts_refused = _vertex_moves(plan, with_points, a, b, cross, np.random.default_rng(0))
    return [{
        "task": f"edit + consequences ({len(plan.base_grids):,} grids, {len(units):,} units, "
                f"{len(ms)} edits)",
        "ours": f"p95 {np.percentile(ms, 95):.0f} ms (median {np.median(ms):.0f} ms, max {ms.max():.0f} ms)",
        "anchor_name": "target p95",
        "anchor": "300 ms",
        "ratio": f"{np.percentile(ms, 95) / 300:.2f}",
        "notes": f"session open {m_open.seconds:.1f} s (adjacency of all units, once); "
                 f"peak {m_open.peak_mib:.0f} MiB",
    }, {
        "task": f"move_vertex + consequences ({len(move_ms)} moves of {MOVE_M:.0f} m, each undone)",
        "ours": f"p95 {np.percentile(move_ms, 95):.0f} ms (median {np.median(move_ms):.0f} ms, "
                f"max {move_ms.max():.0f} ms)",
        "anchor_name": "target p95",
        "anchor": "300 ms",
        "ratio": f"{np.percentile(move_ms, 95) / 300:.2f}",
        "notes": f"undo p95 {np.percentile(undo_ms, 95):.0f} ms; {refused} of {len(move_ms) + refused} "
                 "moves refused by the engine (outline would cross itself …) and not timed",
    }, {
        "task": f"move_vertex + consequences with {len(buildings):,} buildings and {len(addresses):,} "
                f"addresses ({len(pts_ms)} moves)",
        "ours": f"p95 {np.percentile(pts_ms, 95):.0f} ms (median {np.median(pts_ms):.0f} ms, "
                f"max {pts_ms.max():.0f} ms)",
        "anchor_name": "target p95",
        "anchor": "300 ms",
        "ratio": f"{np.percentile(pts_ms, 95) / 300:.2f}",
        "notes": f"undo p95 {np.percentile(pts_undo_ms, 95):.0f} ms; {pts_refused} refused; session open "
                 f"{m_points.seconds:.1f} s (points located in units), peak {m_points.peak_mib:.0f} MiB",
    }]


def _vertex_moves(plan: Any, session: Any, a: np.ndarray, b: np.ndarray, cross: np.ndarray,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """Time vertex moves on vertices shared by units of two grids, and the undo of each (ms)."""
    import shapely

    from gridplan.balance.edit import MoveVertex
    from gridplan.errors import InputError

    geoms = np.asarray(plan.atomic_units.geometry.values, dtype=object)
    times: list[float] = []
    undos: list[float] = []
    refused = 0
    for k in rng.permutation(cross):
        if len(times) >= N_MOVES:
            break
        i, j = int(a[k]), int(b[k])
        ci, cj = shapely.get_coordinates(geoms[i]), shapely.get_coordinates(geoms[j])
        shared = ci[(ci[:, None, :] == cj[None, :, :]).all(axis=2).any(axis=1)]
        if not len(shared):
            continue
        v = shared[0]
        towards = shapely.get_coordinates(shapely.centroid(geoms[j]))[0] - v
        to = v + MOVE_M * towards / max(float(np.hypot(*towards)), 1e-9)
        op = MoveVertex(str(session.assignment[i]), (float(v[0]), float(v[1])), (float(to[0]), float(to[1])))
        t0 = time.perf_counter()
        try:
            session.apply(op)
        except InputError:
            refused += 1
            continue
        times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        session.undo()
        undos.append(time.perf_counter() - t0)
    return np.array(times) * 1000, np.array(undos) * 1000, refused


def op_is_noop(op: object) -> bool:
    from gridplan.balance.edit import MergeGrids

    return isinstance(op, MergeGrids) and op.keep == op.absorb


if __name__ == "__main__":
    for row in run(sys.argv[1] if len(sys.argv) > 1 else "city"):
        print(row)
