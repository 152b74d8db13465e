"""Fixed posts: maximal covering and set covering within a radius in metres (PRODUCT §3.6).

Owns the choice of duty posts (police–civilian points, screening points …) among candidate sites:

* :func:`maximal_covering` — choose ``p`` posts that cover the most demand weight (MCLP);
* :func:`set_covering` — the fewest posts that cover every coverable demand point (LSCP);
* :func:`generated_candidates` — a regular lattice of candidate sites near the demand;
* :func:`coverage_layers` — ``posts``, ``uncovered`` and ``summary`` layers (written with
  :func:`gridplan.layers.write_layers`).

Why not spopt's ``MCLP.from_cost_matrix``/``LSCP.from_cost_matrix`` directly: they take a *dense*
sites × demand cost matrix and build the PuLP model cell by cell — measured 109 s of 114 s just
building the model for 2,000 sites × 10,000 demand points at 1 km, where only ~25,000 pairs are within
1 km.  Here the coverage pairs come from ``STRtree.query(predicate="dwithin")`` (sparse), demand
points with the same set of covering sites are aggregated into one row, and the same MILP is written
in PuLP over those pairs only and solved with CBC (shipped with PuLP).  The LP relaxation gives an
upper (MCLP) / lower (LSCP) bound, so the reported optimality gap is proven, and a lazy greedy (the
(1 − 1/e) approximation for MCLP) provides the warm start and the fallback when CBC is unavailable.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridplan.errors import InputError

log = logging.getLogger(__name__)

__all__ = [
    "CoverageResult",
    "coverage_layers",
    "coverage_pairs",
    "generated_candidates",
    "maximal_covering",
    "set_covering",
]


@dataclass(frozen=True)
class CoverageResult:
    """Outcome of a covering model.

    Attributes
    ----------
    selected
        Indices (into the candidate sites) of the chosen posts, sorted.
    covered
        Per demand point: within ``radius_m`` of a chosen post.
    coverable
        Per demand point: within ``radius_m`` of *some* candidate site.
    covered_weight, total_weight
        Demand weight covered by the posts / of all demand points.
    bound
        Proven bound on the optimum: an upper bound on covered weight (MCLP) or a lower bound on the
        number of posts (LSCP), from the LP relaxation (or the MILP when solved to optimality).
    gap
        Relative optimality gap ``|bound − objective| / |bound|`` (0 = proven optimal).
    model, solver, status
        ``"mclp"``/``"lscp"``; ``"cbc"``/``"greedy"``; solver status text.
    n_pairs
        Site–demand pairs within the radius (the size of the sparse model).
    seconds
        Wall time.

    """

    selected: np.ndarray
    covered: np.ndarray
    coverable: np.ndarray
    covered_weight: float
    total_weight: float
    bound: float
    gap: float
    model: str
    solver: str
    status: str
    n_pairs: int
    seconds: float


def _points(obj: Any, what: str) -> np.ndarray:
    if isinstance(obj, gpd.GeoDataFrame | gpd.GeoSeries):
        geoms = np.asarray(obj.geometry.to_numpy() if isinstance(obj, gpd.GeoDataFrame) else obj.to_numpy())
    else:
        arr = np.asarray(obj)
        geoms = shapely.points(arr) if arr.ndim == 2 and arr.shape[1] == 2 and arr.dtype.kind == "f" else arr
    if len(geoms) and not (shapely.get_type_id(geoms) == 0).all():
        geoms = shapely.point_on_surface(geoms)
    if len(geoms) and shapely.is_missing(geoms).any():
        raise InputError(f"{what} has missing geometries", field=what)
    return geoms


def _check_radius(radius_m: float) -> None:
    if not (math.isfinite(radius_m) and radius_m > 0):
        raise InputError(f"the coverage radius must be > 0 m and finite, got {radius_m:g}", field="radius_m")


def coverage_pairs(sites: Any, demand: Any, *, radius_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Every (site, demand) index pair within *radius_m* metres (sparse, via STRtree ``dwithin``).

    Examples
    --------
    >>> s, d = coverage_pairs(np.array([[0.0, 0.0]]), np.array([[0.0, 900.0], [0.0, 1100.0]]),
    ...                       radius_m=1000)
    >>> s.tolist(), d.tolist()
    ([0], [0])

    """
    _check_radius(radius_m)
    sg, dg = _points(sites, "sites"), _points(demand, "demand")
    if len(sg) == 0 or len(dg) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    tree = shapely.STRtree(sg)
    d_idx, s_idx = tree.query(dg, predicate="dwithin", distance=float(radius_m))
    order = np.lexsort((s_idx, d_idx))
    return s_idx[order].astype(np.int64), d_idx[order].astype(np.int64)


def _groups(
    s_idx: np.ndarray, d_idx: np.ndarray, n_demand: int, weights: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Aggregate demand points with identical covering-site sets: (sets, group weights, group per point)."""
    group_of = np.full(n_demand, -1, dtype=np.int64)
    if len(d_idx) == 0:
        return [], np.zeros(0), group_of
    bounds = np.flatnonzero(np.r_[True, d_idx[1:] != d_idx[:-1], True])
    keys: dict[bytes, int] = {}
    sets: list[np.ndarray] = []
    for a, b in itertools.pairwise(bounds):
        sites = s_idx[a:b]
        k = sites.tobytes()
        g = keys.get(k)
        if g is None:
            g = keys[k] = len(sets)
            sets.append(sites)
        group_of[d_idx[a]] = g
    gw = np.bincount(group_of[group_of >= 0], weights=weights[group_of >= 0], minlength=len(sets))
    return sets, gw, group_of


def _greedy_mclp(sets: list[np.ndarray], gw: np.ndarray, n_sites: int, p: int) -> np.ndarray:
    """Lazy greedy max coverage: the (1 − 1/e) approximation."""
    site_groups: list[list[int]] = [[] for _ in range(n_sites)]
    for g, s in enumerate(sets):
        for i in s:
            site_groups[int(i)].append(g)
    gain = np.array([gw[gs].sum() if gs else 0.0 for gs in site_groups])
    heap = [(-gain[i], i) for i in range(n_sites) if gain[i] > 0]
    heapq.heapify(heap)
    done = np.zeros(len(sets), dtype=bool)
    chosen: list[int] = []
    while heap and len(chosen) < p:
        _neg, i = heapq.heappop(heap)
        g_now = float(gw[[g for g in site_groups[i] if not done[g]]].sum()) if site_groups[i] else 0.0
        if g_now <= 0:
            continue
        if heap and g_now < -heap[0][0] - 1e-12:
            heapq.heappush(heap, (-g_now, i))
            continue
        chosen.append(i)
        done[site_groups[i]] = True
    return np.array(sorted(chosen), dtype=np.int64)


def _solve(prob: Any, time_limit_s: float, warm: bool = False) -> tuple[int, int]:
    import pulp

    solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s, warmStart=warm)
    prob.solve(solver)
    return int(prob.status), int(getattr(prob, "sol_status", prob.status))


@dataclass(frozen=True)
class _Problem:
    """One covering problem: the model, the site → demand pairs within reach, weights, start time."""

    model: str
    s_idx: np.ndarray
    d_idx: np.ndarray
    n_demand: int
    w: np.ndarray
    t0: float


def _finish(prob: _Problem, selected: np.ndarray, bound: float, solver: str, status: str) -> CoverageResult:
    """Score the selected sites (coverage, bound, gap) and log the result."""
    model, s_idx, d_idx, n_demand, w, t0 = prob.model, prob.s_idx, prob.d_idx, prob.n_demand, prob.w, prob.t0
    coverable = np.zeros(n_demand, dtype=bool)
    coverable[d_idx] = True
    covered = np.zeros(n_demand, dtype=bool)
    if len(selected):
        is_sel = np.zeros(int(max(s_idx.max(initial=0), selected.max())) + 1, dtype=bool)
        is_sel[selected] = True
        covered[d_idx[is_sel[s_idx]]] = True
    cw = float(w[covered].sum())
    obj = cw if model == "mclp" else float(len(selected))
    gap = abs(bound - obj) / abs(bound) if bound not in (0.0,) and math.isfinite(bound) else 0.0
    res = CoverageResult(
        selected=np.sort(selected).astype(np.int64),
        covered=covered,
        coverable=coverable,
        covered_weight=cw,
        total_weight=float(w.sum()),
        bound=float(bound),
        gap=float(max(gap, 0.0)),
        model=model,
        solver=solver,
        status=status,
        n_pairs=len(s_idx),
        seconds=time.perf_counter() - t0,
    )
    log.info(
        "%s: %d posts cover %.1f of %.1f demand weight (%d of %d points; bound %.1f, gap %.2f %%) "
        "with %s in %.1f s",
        model,
        len(selected),
        cw,
        res.total_weight,
        int(covered.sum()),
        n_demand,
        bound,
        100 * res.gap,
        solver,
        res.seconds,
    )
    return res


def _weights(weights: Any, n: int) -> np.ndarray:
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (n,):
        raise InputError(
            f"weights must have one value per demand point ({n}), got {w.shape}", field="weights"
        )
    if not np.isfinite(w).all() or (w < 0).any():
        raise InputError("demand weights must be finite and >= 0", field="weights")
    return w


def maximal_covering(
    sites: Any,
    demand: Any,
    *,
    radius_m: float,
    p: int,
    weights: Any = None,
    method: Literal["milp", "greedy"] = "milp",
    time_limit_s: float = 60.0,
) -> CoverageResult:
    """Choose *p* posts among *sites* that cover the most demand weight within *radius_m*.

    Parameters
    ----------
    sites, demand
        Points (GeoDataFrame/GeoSeries, shapely array or ``(n, 2)`` x/y array) in a metric CRS;
        polygons are replaced by a point on their surface.
    radius_m
        Coverage radius in metres (straight-line).
    p
        Number of posts (≥ 1; capped at the number of sites that cover anything).
    weights
        Demand weight per point (hazards, residents …); default 1.
    method
        ``"milp"`` (exact MILP with CBC over the sparse pairs, greedy warm start, LP bound) or
        ``"greedy"`` (lazy greedy; bound from the LP relaxation).
    time_limit_s
        CBC time limit; the gap says how far from proven optimal a time-limited answer is.

    Returns
    -------
    CoverageResult

    Examples
    --------
    >>> sites = np.array([[0.0, 0.0], [1000.0, 0.0], [2000.0, 0.0]])
    >>> demand = np.array([[0.0, 100.0], [1000.0, 100.0], [1100.0, 0.0], [2000.0, 50.0]])
    >>> r = maximal_covering(sites, demand, radius_m=200, p=1)
    >>> r.selected.tolist(), r.covered_weight, r.gap
    ([1], 2.0, 0.0)

    """
    import pulp

    t0 = time.perf_counter()
    sg, dg = _points(sites, "sites"), _points(demand, "demand")
    if int(p) < 1:
        raise InputError("number of posts must be >= 1", field="posts")
    w = _weights(weights, len(dg))
    s_idx, d_idx = coverage_pairs(sg, dg, radius_m=radius_m)
    problem = _Problem("mclp", s_idx, d_idx, len(dg), w, t0)
    sets, gw, _ = _groups(s_idx, d_idx, len(dg), w)
    useful = np.unique(s_idx)
    p_eff = min(int(p), len(useful))
    if p_eff == 0:
        return _finish(problem, np.zeros(0, np.int64), 0.0, "none", "nothing coverable")
    greedy = _greedy_mclp(sets, gw, len(sg), p_eff)
    # LP/MILP over the useful sites and the demand groups only
    prob = pulp.LpProblem("mclp", pulp.LpMaximize)
    x = {int(i): pulp.LpVariable(f"x{i}", cat="Binary") for i in useful}
    y = [pulp.LpVariable(f"y{g}", lowBound=0, upBound=1) for g in range(len(sets))]
    prob += pulp.LpAffineExpression([(y[g], float(gw[g])) for g in range(len(sets))])
    for g, s in enumerate(sets):
        prob += pulp.LpAffineExpression([(x[int(i)], 1.0) for i in s] + [(y[g], -1.0)]) >= 0
    prob += pulp.LpAffineExpression([(v, 1.0) for v in x.values()]) == p_eff
    greedy_obj = float(gw[[g for g, s in enumerate(sets) if np.isin(s, greedy).any()]].sum())

    def lp_bound() -> float:
        """Solve the LP relaxation (a proven upper bound on the covered weight)."""
        for v in x.values():
            v.cat = pulp.LpContinuous
        _solve(prob, time_limit_s)
        return float(pulp.value(prob.objective) or 0.0)

    if method == "greedy":
        return _finish(problem, greedy, lp_bound(), "greedy", "greedy")
    gset = set(greedy.tolist())
    for i, v in x.items():
        v.setInitialValue(1 if i in gset else 0)
    status, sol = _solve(prob, time_limit_s, warm=True)
    chosen = np.array([i for i, v in x.items() if (v.value() or 0) > 0.5], dtype=np.int64)
    milp_obj = float(pulp.value(prob.objective) or 0.0)
    proven = sol == pulp.LpSolutionOptimal
    if len(chosen) != p_eff or milp_obj < greedy_obj - 1e-9:
        chosen, text, proven = greedy, "greedy (CBC found nothing better)", False
    else:
        text = pulp.LpStatus.get(status, str(status)) + (
            "" if proven else f" ({pulp.LpSolution.get(sol, sol)})"
        )
    # CBC proved optimality: the bound is the optimum; otherwise bound by the LP relaxation
    bound = milp_obj if proven else lp_bound()
    return _finish(problem, chosen, bound, "cbc", text)


def _greedy_lscp(sets: list[np.ndarray], n_sites: int) -> np.ndarray:
    """Greedy set cover: the site covering the most uncovered demand groups, until all are covered."""
    return _greedy_mclp(sets, np.ones(len(sets)), n_sites, n_sites)


def set_covering(
    sites: Any,
    demand: Any,
    *,
    radius_m: float,
    method: Literal["milp", "greedy"] = "milp",
    time_limit_s: float = 60.0,
) -> CoverageResult:
    """Choose the fewest posts among *sites* covering every demand point that some site can cover.

    Demand points with no candidate site within *radius_m* are *uncoverable*: they are reported
    (``coverable`` is False) instead of making the model infeasible.

    Examples
    --------
    >>> sites = np.array([[0.0, 0.0], [500.0, 0.0], [1000.0, 0.0]])
    >>> demand = np.array([[0.0, 0.0], [1000.0, 0.0], [5000.0, 0.0]])
    >>> r = set_covering(sites, demand, radius_m=600)
    >>> r.selected.tolist(), int(r.coverable.sum()), r.gap
    ([1], 2, 0.0)

    """
    import pulp

    t0 = time.perf_counter()
    sg, dg = _points(sites, "sites"), _points(demand, "demand")
    w = np.ones(len(dg))
    s_idx, d_idx = coverage_pairs(sg, dg, radius_m=radius_m)
    problem = _Problem("lscp", s_idx, d_idx, len(dg), w, t0)
    sets, _, _ = _groups(s_idx, d_idx, len(dg), w)
    if not sets:
        return _finish(problem, np.zeros(0, np.int64), 0.0, "none", "nothing coverable")
    greedy = _greedy_lscp(sets, len(sg))
    useful = np.unique(s_idx)
    prob = pulp.LpProblem("lscp", pulp.LpMinimize)
    x = {int(i): pulp.LpVariable(f"x{i}", lowBound=0, upBound=1) for i in useful}
    prob += pulp.LpAffineExpression([(v, 1.0) for v in x.values()])
    for s in sets:
        prob += pulp.LpAffineExpression([(x[int(i)], 1.0) for i in s]) >= 1
    _solve(prob, time_limit_s)
    lp_bound = float(math.ceil((pulp.value(prob.objective) or 0.0) - 1e-6))
    if method == "greedy" or len(greedy) <= lp_bound:
        return _finish(
            problem,
            greedy,
            lp_bound,
            "greedy" if method == "greedy" else "cbc",
            "greedy (meets LP bound)" if len(greedy) <= lp_bound else "greedy",
        )
    gset = set(greedy.tolist())
    for i, v in x.items():
        v.cat = pulp.LpInteger
        v.setInitialValue(1 if i in gset else 0)
    status, sol = _solve(prob, time_limit_s, warm=True)
    chosen = np.array([i for i, v in x.items() if (v.value() or 0) > 0.5], dtype=np.int64)
    if sol not in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible) or len(chosen) > len(greedy):
        chosen, text = greedy, "greedy (CBC found nothing better)"
    else:
        text = pulp.LpStatus.get(status, str(status))
    bound = float(len(chosen)) if sol == pulp.LpSolutionOptimal and text == "Optimal" else lp_bound
    return _finish(problem, chosen, bound, "cbc", text)


def generated_candidates(
    demand: Any, *, spacing_m: float, radius_m: float, boundary: Any = None
) -> np.ndarray:
    """Generate a square lattice of candidate sites within *radius_m* of some demand point.

    Parameters
    ----------
    demand
        Demand points (metric CRS).
    spacing_m
        Lattice step in metres (``radius_m / 2`` is a good default: every place is within
        0.36 × radius of a candidate).
    radius_m
        Lattice points farther than this from every demand point are dropped (they cover nothing).
    boundary
        Optional polygon: candidates outside it are dropped.

    Returns
    -------
    numpy.ndarray
        Shapely points.

    """
    _check_radius(radius_m)
    if not spacing_m > 0:
        raise InputError(f"the candidate spacing must be > 0 m, got {spacing_m:g}", field="spacing_m")
    dg = _points(demand, "demand")
    if len(dg) == 0:
        return np.zeros(0, dtype=object)
    x0, y0, x1, y1 = shapely.total_bounds(dg)
    xs = np.arange(math.floor(x0 / spacing_m) * spacing_m, x1 + spacing_m, spacing_m)
    ys = np.arange(math.floor(y0 / spacing_m) * spacing_m, y1 + spacing_m, spacing_m)
    if len(xs) * len(ys) > 5_000_000:
        raise InputError(f"{len(xs) * len(ys):,} lattice points: raise the spacing", field="spacing_m")
    gx, gy = np.meshgrid(xs, ys)
    pts = shapely.points(gx.ravel(), gy.ravel())
    tree = shapely.STRtree(dg)
    near = np.unique(tree.query(pts, predicate="dwithin", distance=float(radius_m))[0])
    pts = pts[near]
    if boundary is not None:
        pts = pts[shapely.contains_xy(boundary, shapely.get_x(pts), shapely.get_y(pts))]
    return pts


def coverage_layers(
    sites: gpd.GeoDataFrame,
    demand: gpd.GeoDataFrame,
    result: CoverageResult,
    *,
    radius_m: float,
    weights: Any = None,
) -> dict[str, pd.DataFrame]:
    """Map layers for a result: ``posts``, ``uncovered`` (demand points) and a ``summary`` table.

    ``posts`` carries ``covered_weight``/``covered_points`` (demand within the radius, each point
    counted for its nearest post); ``uncovered`` says whether a point was coverable at all.
    """
    w = _weights(weights, len(demand))
    posts = sites.iloc[result.selected].copy()
    posts["post_rank"] = np.arange(1, len(posts) + 1)
    pg, dg = _points(posts, "posts"), _points(demand, "demand")
    cw: np.ndarray = np.zeros(len(posts))
    cn: np.ndarray = np.zeros(len(posts), dtype=np.int64)
    if len(posts) and result.covered.any():
        tree = shapely.STRtree(pg)
        di = np.flatnonzero(result.covered)
        d_q, p_q = tree.query_nearest(dg[di], max_distance=float(radius_m) * (1 + 1e-9), all_matches=False)
        cw = np.bincount(p_q, weights=w[di[d_q]], minlength=len(posts))
        cn = np.bincount(p_q, minlength=len(posts)).astype(np.int64)
    posts["covered_weight"] = cw
    posts["covered_points"] = cn
    unc = demand[~result.covered].copy()
    unc["weight"] = w[~result.covered]
    unc["reason"] = np.where(
        result.coverable[~result.covered],
        f"no post within {radius_m:g} m",
        f"no candidate site within {radius_m:g} m",
    )
    summary = pd.DataFrame(
        {
            "metric": [
                "model",
                "radius_m",
                "posts",
                "candidates",
                "demand_points",
                "demand_weight",
                "covered_points",
                "covered_weight",
                "covered_share",
                "uncovered_points",
                "uncovered_weight",
                "uncoverable_points",
                "bound",
                "gap",
                "solver",
                "status",
                "pairs",
                "seconds",
            ],
            "value": [
                result.model,
                f"{radius_m:g}",
                str(len(posts)),
                str(len(sites)),
                str(len(demand)),
                f"{result.total_weight:.3f}",
                str(int(result.covered.sum())),
                f"{result.covered_weight:.3f}",
                f"{result.covered_weight / result.total_weight if result.total_weight else 0:.4f}",
                str(int((~result.covered).sum())),
                f"{float(w[~result.covered].sum()):.3f}",
                str(int((~result.coverable).sum())),
                f"{result.bound:.3f}",
                f"{result.gap:.6f}",
                result.solver,
                result.status,
                str(result.n_pairs),
                f"{result.seconds:.2f}",
            ],
        }
    )
    return {"posts": posts, "uncovered": unc, "summary": summary}
