"""Point → base grid assignment: our ``GridLookup.assign_xy`` vs ``geopandas.sjoin(predicate="within")``.

Same base grid (the sample city merged with default parameters; a 3,000-cell Voronoi grid over a
Dongguan-sized box if the merge is not available), same points, same run.  Points: 10 M uniform
random points over the grid's bounding box plus every boundary vertex and segment midpoint of the
grid (points *on* edges).  "Identical" compares our answer with sjoin on the random points (sjoin's
``within`` leaves points on an edge unassigned, so edge points are compared with the exact
``covers`` + smallest-code rule instead).  Ours is timed cold (label raster built from the plan's
base grids inside the timing) and warm; the H3 path (``method="h3"``) is reported for 1 M points +
the edge points, checked against exact point-in-polygon.  Cold runs are paired with sjoin runs
(``benchmarks._common.paired``, each cold run on a new lookup built from fresh geometry objects),
warm runs repeated; both ratios are of CPU time, recorded for ``--check``.  Memory is the peak
RSS growth of the process during the timed block (the largest over the runs).
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from benchmarks import _common
from benchmarks._common import Measure, Runs, _rss_mib, city_plan, measure, paired, repeated

N_POINTS = {"small": 1_000_000, "city": 10_000_000}
N_SJOIN = {"small": 1_000_000, "city": 10_000_000}


def _voronoi_grid(n: int = 3000, seed: int = 0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    x0, y0, w, h = 400_000.0, 2_500_000.0, 70_000.0, 55_000.0
    pts = shapely.multipoints(np.column_stack([x0 + rng.random(n) * w, y0 + rng.random(n) * h]))
    env = shapely.box(x0, y0, x0 + w, y0 + h)
    vor = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=env)), env)
    return gpd.GeoDataFrame({"grid_code": [f"44190011900{i:04d}" for i in range(n)]}, geometry=vor, crs=4547)


def _plan_grids(scale: str) -> tuple[Any, str]:
    """The merged sample city's plan (cached next to the sample), or a Voronoi stand-in."""
    from gridplan.plans import read_plan

    try:
        return read_plan(city_plan(scale)), f"{scale} sample city merged"
    except Exception as exc:
        from gridplan.hexindex import build_h3_index
        from gridplan.plans import Plan, PlanMeta

        grids = _voronoi_grid()
        empty = pd.DataFrame()
        plan = Plan(
            atomic_units=gpd.GeoDataFrame(geometry=[], crs=4547),
            base_grids=grids,
            crosswalk=empty,
            dept_fit=empty,
            h3_cells=build_h3_index(grids),
            qa_issues=empty,
            meta=PlanMeta("voronoi", None, ""),
        )
        return plan, f"3,000 Voronoi grids (merge unavailable: {type(exc).__name__})"


def _edge_points(grids: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    coords = shapely.get_coordinates(shapely.boundary(np.asarray(grids.geometry.values, dtype=object)))
    both = np.vstack([coords, (coords[:-1] + coords[1:]) / 2])
    return both[:, 0], both[:, 1]


def _same(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(pd.Series(a).fillna("").to_numpy() == pd.Series(b).fillna("").to_numpy()))


@contextmanager
def _timed() -> Iterator[Measure]:
    """:func:`measure` plus the CPU seconds of this process (``extra["cpu"]``): with 2 cores shared by
    several jobs, wall time depends on the neighbours; CPU time of a single-threaded job does not."""
    c0 = time.process_time()
    base = _rss_mib()
    with measure() as m:
        yield m
    m.extra["cpu"] = time.process_time() - c0
    m.extra["mib"] = m.peak_mib - base


def _fmt(m: Measure, n: int) -> str:
    return f"{m.extra['cpu']:.1f} s CPU ({m.seconds:.1f} s wall), {n / m.extra['cpu'] / 1e6:.2f} M pts/s"


def _cpu_ratio(ours: Runs, anchor: Runs) -> float:
    """Median over paired runs of anchor CPU / ours CPU (CPU: the 2 cores are shared)."""
    import statistics

    return float(statistics.median(a / max(o, 1e-12) for o, a in zip(ours.cpu, anchor.cpu, strict=True)))


def _cpu_text(r: Runs, per: float = 1.0, digits: int = 2) -> str:
    """``a s CPU min / b s median of n (wall c–d s, load e–f)``; *per* scales the seconds."""
    lo, hi = r.load_range
    cpu = [c * per for c in r.cpu]
    return (f"{min(cpu):.{digits}f} s CPU min / {statistics.median(cpu):.{digits}f} s median of {len(cpu)} "
            f"(wall {r.min * per:.{digits}f}–{max(r.seconds) * per:.{digits}f} s, load {lo:.1f}–{hi:.1f})")


def _profile_row(lookup: Any, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Warm path by stage against the memory-speed limit, each the min CPU of repeated runs.

    The limit is issue 21's: numpy ``labels[iy, ix]`` over the same raster with the indices given;
    the tighter one, ``labels.ravel().take(flat)`` with the flat index given, is reported beside it.
    """
    ras = lookup._raster
    lab = ras.labels
    iy = ((ras.y1 - y) / ras.cell_m).astype(np.intp)
    ix = ((x - ras.x0) / ras.cell_m).astype(np.intp)
    limit, _ = repeated(lambda: lab[iy, ix])
    flat = lab.ravel()
    fidx = iy * ras.width + ix
    flat_limit, _ = repeated(lambda: flat.take(fidx))
    warm, _ = repeated(lambda: lookup.assign_xy(x, y))
    rank = np.empty(len(x), dtype=lab.dtype)
    look, (pos, cells) = repeated(lambda: ras.lookup(x, y, rank))
    rx, ry = x[pos], y[pos]
    refine, r = repeated(lambda: ras.refine(rx, ry, cells))
    rank[pos] = r
    codes, _ = repeated(lambda: lookup._codes(rank))
    stages: dict[str, Runs] = {"raster lookup (index + gather, in 64 k chunks)": look,
                               f"exact refinement of {len(pos):,} points in mixed cells": refine,
                               "rank → code objects": codes}
    total = min(warm.cpu)
    parts = "; ".join(f"{k} {min(v.cpu):.2f} s ({min(v.cpu) / total:.0%})" for k, v in stages.items())
    rest = total - sum(min(v.cpu) for v in stages.values())
    parts += f"; the rest (gathering the mixed points, writing their ranks) {rest:.2f} s ({rest / total:.0%})"
    binds = max(stages, key=lambda k: min(stages[k].cpu))
    lim, flim = min(limit.cpu), min(flat_limit.cpu)
    return {
        "task": "profile of the warm path vs the memory-speed limit (min CPU of repeated runs)",
        "ours": f"{_cpu_text(warm)} warm",
        "anchor_name": "numpy labels[iy, ix], indices given (issue 21's limit)",
        "anchor": _cpu_text(limit),
        "ratio": f"ours warm = {total / lim:.1f}× the limit (goal ≤ 2×)",
        "speedup": lim / total, "runs": [warm, limit],
        "notes": f"{parts}; what binds: {binds}; the flat gather labels.ravel().take(iy * width + ix), "
                 f"index given, takes {flim:.2f} s CPU: ours warm = {total / flim:.1f}× that tighter limit",
    }


def run(scale: str) -> list[dict[str, Any]]:
    from gridplan.hexindex import GridLookup

    plan, what = _plan_grids(scale)
    grids = plan.base_grids[["grid_code", "geometry"]]
    n = N_POINTS.get(scale, 10_000_000)
    rng = np.random.default_rng(0)
    minx, miny, maxx, maxy = grids.total_bounds
    x = minx + rng.random(n) * (maxx - minx)
    y = miny + rng.random(n) * (maxy - miny)
    ex, ey = _edge_points(grids)
    ns = min(n, N_SJOIN.get(scale, n))
    rows: list[dict[str, Any]] = []

    # cold: a new lookup from the plan's base grids per run, on fresh geometry objects (GEOS keeps
    # prepared indexes on the objects, so reusing them would warm the later runs)
    fresh = [grids.set_geometry(shapely.from_wkb(shapely.to_wkb(grids.geometry.values)), crs=grids.crs)
             for _ in range(_common.RUNS)]
    cold_mib: list[float] = []
    lookups: list[Any] = []

    def cold() -> np.ndarray:
        with _timed() as m:
            lookup = GridLookup(fresh.pop(), plan.h3_cells, res=plan.meta.h3_res)
            out = lookup.assign_xy(x, y)
        cold_mib.append(m.extra["mib"])
        lookups[:] = [lookup]
        return out

    sj_mib: list[float] = []

    def anchor() -> np.ndarray:
        with _timed() as m:
            pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x[:ns], y[:ns]), crs=grids.crs)
            joined = gpd.sjoin(pts, grids, how="left", predicate="within")
        sj_mib.append(m.extra["mib"])
        joined = joined[~joined.index.duplicated(keep="first")].sort_index()
        return joined["grid_code"].astype(object).where(joined["grid_code"].notna(), None).to_numpy()

    r_cold, r_sj, _, ours, sj = paired(cold, anchor)
    same_sj = _same(ours[:ns], sj)
    del sj
    gc.collect()
    lookup = lookups[0]
    warm_mib: list[float] = []

    def warm() -> np.ndarray:
        with _timed() as m:
            out = lookup.assign_xy(x, y)
        warm_mib.append(m.extra["mib"])
        return out

    r_warm, ours = repeated(warm)
    raster = lookup._raster
    assert raster is not None
    ours_edge = lookup.assign_xy(ex, ey)

    # exact reference (STRtree covers + smallest code) on every point
    with _timed() as m_exact:
        exact = lookup.assign_exact(x, y)
    exact_edge = lookup.assign_exact(ex, ey)
    same_exact = _same(ours, exact)
    same_edge = _same(ours_edge, exact_edge)

    # the H3 path on 1 M random points + the edge points
    m1 = min(n, 1_000_000)
    hx, hy = np.concatenate([x[:m1], ex]), np.concatenate([y[:m1], ey])
    with _timed() as m_h3:
        h3_ans = lookup.assign_xy(hx, hy, method="h3")
    same_h3 = _same(h3_ans, np.concatenate([exact[:m1], exact_edge]))
    del exact
    gc.collect()

    per = n / ns  # sjoin runs on the first ns points; its time is scaled to n
    sj_cpu = [c * per for c in r_sj.cpu]
    scale_note = "" if ns == n else f"; sjoin on the first {ns:,}, ratio per point"
    anchor_txt = f"{_cpu_text(r_sj, per, 1)}, +{max(sj_mib):,.0f} MiB{scale_note}"
    cold_x = _cpu_ratio(r_cold, r_sj) * per
    warm_x = float(statistics.median(sj_cpu)) / float(statistics.median(r_warm.cpu))
    rows.append(
        {
            "task": f"assign {n / 1e6:.0f} M points to {len(grids):,} base grids, cold "
            "(label raster built from the plan inside the timing)",
            "ours": f"{_cpu_text(r_cold)}, "
            f"{n / min(r_cold.cpu) / 1e6:.1f} M pts/s, +{max(cold_mib):,.0f} MiB",
            "anchor_name": "geopandas.sjoin(within)",
            "anchor": anchor_txt,
            "ratio": f"{cold_x:.1f}× faster (CPU, median of paired runs; goal ≥ 20×)",
            "speedup": cold_x, "runs": [r_cold, r_sj],
            "notes": f"{what}; each run builds a new GridLookup on fresh geometry objects; identical to "
            f"sjoin on {100 * same_sj:.4f} % of points, to exact point-in-polygon on "
            f"{100 * same_exact:.4f} %",
        }
    )
    rows.append(
        {
            "task": "same, warm (label raster cached per plan)",
            "ours": f"{_cpu_text(r_warm)}, "
            f"{n / min(r_warm.cpu) / 1e6:.1f} M pts/s, +{max(warm_mib):,.0f} MiB",
            "anchor_name": "geopandas.sjoin(within)",
            "anchor": anchor_txt,
            "ratio": f"{warm_x:.1f}× faster (CPU medians; the sjoin runs are the cold row's)",
            "speedup": warm_x, "runs": [r_warm, r_sj],
            "notes": f"{raster.cell_m:.0f} m cells, {raster.width:,} × {raster.height:,}, "
            f"{100 * raster.mixed_share:.2f} % of cells refined exactly; {len(ex):,} points on grid "
            f"edges/vertices: {100 * same_edge:.4f} % equal to the exact covers + smallest-code rule "
            "(sjoin within leaves them unassigned)",
        }
    )
    rows.append(
        {
            "task": f"H3 path (res {plan.meta.h3_res}): {m1 / 1e6:.0f} M random + {len(ex):,} edge points",
            "ours": _fmt(m_h3, len(hx)),
            "anchor_name": "exact STRtree point-in-polygon (10 M points)",
            "anchor": _fmt(m_exact, n),
            "ratio": f"{(len(hx) / m_h3.extra['cpu']) / (n / m_exact.extra['cpu']):.1f}x the exact rate",
            "notes": f"H3 answers equal exact point-in-polygon for {100 * same_h3:.4f} % of these points; "
            f"{len(plan.h3_cells):,} compacted H3 rows",
        }
    )
    rows.append(_profile_row(lookup, x, y))
    return rows


if __name__ == "__main__":
    for row in run(sys.argv[1] if len(sys.argv) > 1 else "city"):
        row.pop("runs", None)
        print(row)
