"""Rebalancing proposals: staff the base grids, then move as few households as possible (PRODUCT §3.6).

Owns :func:`rebalance`, which turns a plan and the workload of its atomic units into a *proposal*: a
new plan version (``meta.kind = "proposal"``, parent = the input plan) with ``staff`` and
``workload`` on every base grid, each atomic unit's own ``workload``, a ``moves`` table and a
``metrics`` table (before/after CV and max/min ratio of workload per worker, households and addresses
moved, compactness, city-wide and per community).

How (and why not a regionalisation library): spopt's max-p/SKATER/Region-KMeans and ArcGIS's Build
Balanced Zones redraw every boundary from scratch; here the current plan is the starting point and
every moved household is a cost.  So:

1. **Staffing first** — integer workers by a bounded apportionment (:mod:`gridplan.balance.workload`,
   Webster or Hamilton): first to communities by their workload (moves never leave a community, so
   its staff total alone sets its workload per worker), then to the grids of each community by the
   same method, refined by moving single workers between grids of the community while that lowers
   Σ(workload/worker − mean)².  Moving a worker is cheaper than moving households, and staffing
   removes much of the imbalance.
2. **Boundary moves only where integer staffing cannot balance** — a lazy greedy
   (:mod:`gridplan.balance.search`) repeatedly applies the move of one boundary atomic unit to an
   adjacent grid of the same community with the best reduction of Σ(workload/worker − mean)² per
   household (+ addresses) moved, keeping both grids contiguous (no articulation point leaves),
   inside the household band (or not further out) and above a compactness floor (Polsby–Popper, or
   not worse), until the city-wide CV of workload per worker reaches the target or the budget of
   households moved is spent.
3. **Re-staff and repeat** — the within-community refinement runs again on the new workloads, and
   moves resume, for at most ``rounds`` rounds or until the staffing no longer changes.  Community
   staff totals stay those of the named apportionment method.

"Before" metrics describe the input plan as staffed today: its own ``staff`` column when it has one
that fits the budget, otherwise the budget spread evenly over its grids (the one-size rule of thumb
the household band was meant to justify).  A ``staffing_only`` metric row shows what step 1 alone
achieves.  Merging or splitting grids is not proposed (grid codes stay stable).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
import shapely

from gridplan.balance.graph import grid_components, grid_perimeters, polsby_popper, unit_adjacency
from gridplan.balance.proposal import build_proposal_plan
from gridplan.balance.search import SearchParams, SearchState, refine_staff, run_round
from gridplan.balance.staffing import Method, apportion
from gridplan.errors import InputError

log = logging.getLogger(__name__)

__all__ = ["Proposal", "apportion_by_community", "metrics_table", "rebalance"]


@dataclass(frozen=True)
class Proposal:
    """Result of :func:`rebalance`.

    Attributes
    ----------
    plan
        The proposed plan version (write it with :func:`gridplan.plans.write_plan`); its
        ``extra_tables`` hold ``moves`` and ``metrics``.
    moves
        ``unit_id``, ``from_grid``, ``to_grid``, ``households``, ``residents``, ``addresses``,
        ``workload``, ``reason`` (one row per moved atomic unit, in the order applied).
    metrics
        ``metric``, ``scope`` (``city`` or a community code), ``before``, ``after``.
    staffing
        Per grid: ``grid_code``, ``community_code``, ``workload``, ``staff_before``, ``staff``,
        ``workload_per_staff_before``, ``workload_per_staff``, ``load_ratio``.
    summary
        Headline figures (``cv_before``, ``cv_staffing_only``, ``cv_after``, ``households_moved``,
        ``households_moved_share``, ``units_moved``, ``seconds`` …).

    """

    plan: Any
    moves: pd.DataFrame
    metrics: pd.DataFrame
    staffing: pd.DataFrame
    summary: dict[str, float]


def _cv(x: np.ndarray) -> float:
    x = np.asarray(x, float)
    mu = x.mean() if len(x) else 0.0
    return float(x.std() / mu) if mu > 0 else 0.0


def _maxmin(x: np.ndarray) -> float:
    x = np.asarray(x, float)
    return float(x.max() / x.min()) if len(x) and x.min() > 0 else float("inf") if len(x) else 1.0


def _reason(move: tuple, codes: np.ndarray, hh: np.ndarray, wl: np.ndarray, unit_ids: np.ndarray) -> str:
    u, a, b, ra, rb, note = move
    text = (
        f"grid {codes[a]} workload/worker {ra:.2f}× city mean; {codes[b]} {rb:.2f}× "
        f"(same community, adjacent): moving {int(hh[u])} households, {wl[u]:.1f} h/month"
    )
    if note.startswith("swap:"):
        text += f"; swapped with unit {unit_ids[int(note[5:])]} to keep both grids in the household band"
    return text


def _baseline_staff(
    base_grids: pd.DataFrame, order: np.ndarray, total: int, lo: int, hi: int | None, method: Method
) -> np.ndarray:
    if "staff" in base_grids:
        st = pd.to_numeric(base_grids["staff"], errors="coerce")
        staff = st.set_axis(base_grids["grid_code"].astype(str)).reindex(order)
        if staff.notna().all() and int(staff.sum()) == total:
            return staff.to_numpy(np.int64)
    return apportion(np.ones(len(order)), total, min_staff=lo, max_staff=hi, method=method)


def apportion_by_community(
    grid_workload: np.ndarray,
    grid_community: np.ndarray,
    total: int,
    *,
    min_staff: int = 1,
    max_staff: int | None = None,
    method: Method = "webster",
) -> np.ndarray:
    """Two-level apportionment: staff to communities by workload, then to the grids of each community.

    Moves never leave a community, so a community's workload is fixed and only its staff total sets
    its workload per worker; apportioning communities first makes that total as fair as integer
    staffing allows, and moves then even out the grids inside it.  Once the grids of a community are
    balanced, the plain grid-level apportionment gives the same staff.

    Examples
    --------
    >>> apportion_by_community(np.array([10.0, 30.0, 20.0]), np.array(["a", "a", "b"]), 6).tolist()
    [1, 3, 2]

    """
    comm = np.asarray(grid_community).astype(str)
    codes, inv = np.unique(comm, return_inverse=True)
    n_c = np.bincount(inv, minlength=len(codes))
    w_c = np.bincount(inv, weights=grid_workload, minlength=len(codes))
    s_c = apportion(
        w_c,
        total,
        min_staff=n_c * min_staff,
        max_staff=None if max_staff is None else n_c * max_staff,
        method=method,
    )
    out = np.zeros(len(grid_workload), dtype=np.int64)
    order = np.argsort(inv, kind="stable")
    bounds = np.r_[0, np.cumsum(n_c)]
    for c in range(len(codes)):
        idx = order[bounds[c] : bounds[c + 1]]
        out[idx] = apportion(
            grid_workload[idx], int(s_c[c]), min_staff=min_staff, max_staff=max_staff, method=method
        )
    return out


def metrics_table(
    comm: np.ndarray,
    wpw_before: np.ndarray,
    wpw_after: np.ndarray,
    *,
    extra_city: list[tuple[str, float, float]] = (),  # type: ignore[assignment]
) -> pd.DataFrame:
    """Before/after CV and max/min ratio of workload per worker, city-wide and per community.

    Examples
    --------
    >>> t = metrics_table(np.array(["c", "c"]), np.array([1.0, 3.0]), np.array([2.0, 2.0]))
    >>> t[t.metric == "cv_workload_per_staff"][["scope", "before", "after"]].to_dict("records")[0]
    {'scope': 'city', 'before': 0.5, 'after': 0.0}

    """
    rows: list[tuple[str, str, float, float]] = [
        ("cv_workload_per_staff", "city", _cv(wpw_before), _cv(wpw_after)),
        ("max_min_ratio", "city", _maxmin(wpw_before), _maxmin(wpw_after)),
    ]
    rows += [(m, "city", b, a) for m, b, a in extra_city]
    df = pd.DataFrame({"c": comm, "b": wpw_before, "a": wpw_after})
    for code, g in df.groupby("c", sort=True):
        rows.append(("cv_workload_per_staff", str(code), _cv(g["b"].to_numpy()), _cv(g["a"].to_numpy())))
        rows.append(("max_min_ratio", str(code), _maxmin(g["b"].to_numpy()), _maxmin(g["a"].to_numpy())))
    return pd.DataFrame(rows, columns=["metric", "scope", "before", "after"])


def rebalance(
    plan: Any,
    workload_units: pd.DataFrame | pd.Series,
    *,
    total_staff: int,
    min_staff: int = 1,
    max_staff: int | None = None,
    method: Method = "webster",
    target_cv: float = 0.10,
    max_moved_share: float = 0.15,
    min_compactness: float = 0.2,
    max_compactness_loss: float = 0.5,
    households_min: int | None = None,
    households_max: int | None = None,
    address_weight: float = 0.2,
    rounds: int = 4,
    seed: int = 0,
    staffing: Literal["community", "grid"] = "community",
    rebuild_h3: bool = True,
) -> Proposal:
    """Propose staff per grid and the fewest boundary moves that even out workload per worker.

    Parameters
    ----------
    plan
        The current :class:`gridplan.plans.Plan`.
    workload_units
        Workload per atomic unit: the output of :func:`gridplan.balance.workload.unit_workload` (columns
        ``unit_id``, ``workload``) or a Series indexed by ``unit_id``; hours per month.
    total_staff
        Grid workers to apportion (exactly this many are assigned).
    min_staff, max_staff
        Workers per grid (``min_staff`` ≥ 1; ``max_staff=None``: unbounded).
    method
        Apportionment: ``"webster"`` or ``"hamilton"``.
    target_cv
        Stop moving units once the city-wide coefficient of variation of workload per worker
        (over grids) is at or below this.
    max_moved_share
        Most households that may change grid, as a share of all households (0–1).
    min_compactness
        Polsby–Popper floor (4πA/P²) a grid must keep after a move (or not get worse).
    max_compactness_loss
        A changed grid also keeps at least ``1 − max_compactness_loss`` of its own starting
        compactness (or does not get worse), so well-shaped grids stay well-shaped.
    households_min, households_max
        Household band; default: the plan's ``params`` (else 300–500).  A move may not take a grid
        out of the band, or further out of it.
    address_weight
        Cost of moving one standard address, in households (ranks moves; addresses are reported).
    rounds
        Most staff-then-moves rounds.
    seed
        Tie-break seed; equal seeds give equal proposals.
    staffing
        ``"community"`` (default): staff apportioned to communities, then to their grids
        (:func:`apportion_by_community`), then single workers moved between grids of a community
        while that lowers Σ(workload/worker − mean)²; ``"grid"``: one apportionment over all grids,
        redone after each round of moves.  The ``staffing_only`` metric row is this staffing applied
        to the input workload, before any unit moves.
    rebuild_h3
        Rebuild the plan's H3 index for the new grid shapes (only skip in tests).

    Returns
    -------
    Proposal

    Raises
    ------
    InputError
        Workload missing for some unit, negative workload, infeasible staff budget, bad parameters.

    """
    t0 = time.perf_counter()
    if min_staff < 1:
        raise InputError("min staff per grid must be >= 1 to compute workload per worker", field="min_staff")
    if not 0 <= max_moved_share <= 1:
        raise InputError("must be between 0 and 1", field="max_moved_share")
    if target_cv < 0:
        raise InputError("must be >= 0", field="target_cv")
    if not 0 <= max_compactness_loss <= 1:
        raise InputError("must be between 0 and 1", field="max_compactness_loss")
    au = plan.atomic_units
    params = getattr(plan.meta, "params", {}) or {}
    hmin = float(households_min if households_min is not None else params.get("households_min", 300))
    hmax = float(households_max if households_max is not None else params.get("households_max", 500))
    if hmax < hmin:
        raise InputError("households_max is below households_min", field="households_max")

    unit_ids = au["unit_id"].astype(str).to_numpy()
    if isinstance(workload_units, pd.Series):
        wl_series = workload_units.copy()
    else:
        if "unit_id" not in workload_units or "workload" not in workload_units:
            raise InputError("workload table needs unit_id and workload columns", field="workload")
        wl_series = workload_units.set_index(workload_units["unit_id"].astype(str))["workload"]
    wl_series.index = wl_series.index.astype(str)
    wl = wl_series.reindex(unit_ids).to_numpy(float)
    if np.isnan(wl).any():
        missing = unit_ids[np.isnan(wl)][:3]
        raise InputError(f"no workload for atomic unit(s) {', '.join(missing)}", field="workload")
    if (wl < 0).any():
        raise InputError("workload must be >= 0", field="workload")

    grid_code_u = au["base_grid_code"].astype("string").fillna("").to_numpy(dtype=object)
    bg = plan.base_grids
    codes = np.array(sorted(set(bg["grid_code"].astype(str)) | (set(grid_code_u) - {""})), dtype=object)
    code_idx = {c: i for i, c in enumerate(codes)}
    grid_of = np.array([code_idx.get(c, -1) if c else -1 for c in grid_code_u], dtype=np.int64)
    n_g = len(codes)
    if n_g == 0:
        raise InputError("plan has no base grids", layer="base_grids")
    comm_u = au["community_code"].astype("string").fillna("").to_numpy(dtype=object)
    comm_g = np.empty(n_g, dtype=object)
    ok = grid_of >= 0
    comm_g[grid_of[ok]] = comm_u[ok]
    bg_comm = bg.set_index(bg["grid_code"].astype(str))["community_code"].astype(str)
    empty = np.array([c is None for c in comm_g])
    comm_g[empty] = bg_comm.reindex(codes[empty]).to_numpy()

    def num(col: str) -> np.ndarray:
        return (
            pd.to_numeric(au[col], errors="coerce").fillna(0).to_numpy(float)
            if col in au
            else np.zeros(len(au))
        )

    hh, addr, res = num("households"), num("addresses"), num("residents")
    geoms = au.geometry.to_numpy()
    area, perim = shapely.area(geoms), shapely.length(geoms)

    # staffing: before (current), staffing only, then rounds of moves + re-apportioning
    W0 = np.bincount(grid_of[ok], weights=wl[ok], minlength=n_g)
    S_before = _baseline_staff(bg, codes, total_staff, min_staff, max_staff, method)
    lo_arr = np.full(n_g, min_staff, dtype=np.int64)
    hi_arr = np.full(n_g, max_staff if max_staff is not None else 10**9, dtype=np.int64)
    mean_wpw = float(W0.sum() / total_staff)

    def staff_for(W: np.ndarray, S_prev: np.ndarray | None = None) -> np.ndarray:
        if staffing == "grid":
            return apportion(W, total_staff, min_staff=min_staff, max_staff=max_staff, method=method)
        S_new = (
            S_prev
            if S_prev is not None
            else apportion_by_community(
                W, comm_g.astype(str), total_staff, min_staff=min_staff, max_staff=max_staff, method=method
            )
        )
        return refine_staff(W, S_new, comm_g.astype(str), lo_arr, hi_arr, mean_wpw)

    # Staffing alone: the community-first apportionment, unless one grid-level apportionment of
    # the whole budget happens to balance better (then its community totals are kept instead).
    S = staff_for(W0)
    S_grid = apportion(W0, total_staff, min_staff=min_staff, max_staff=max_staff, method=method)
    if _cv(W0 / S_grid) < _cv(W0 / S) - 1e-12:
        S = refine_staff(W0, S_grid, comm_g.astype(str), lo_arr, hi_arr, mean_wpw)
    S_staff_only = S.copy()

    graph = unit_adjacency(geoms, comm_u)
    parts_before = grid_components(graph, grid_of)
    P0 = grid_perimeters(graph, grid_of, perim, n_g)
    A0 = np.bincount(grid_of[ok], weights=area[ok], minlength=n_g)
    members: list[set[int]] = [set() for _ in range(n_g)]
    for u in np.flatnonzero(ok):
        members[grid_of[u]].add(int(u))
    rng = np.random.default_rng(seed)
    st = SearchState(
        graph=graph,
        grid_of=grid_of.copy(),
        wl=wl,
        hh=hh,
        addr=addr,
        area=area,
        perim=perim,
        W=W0.copy(),
        H=np.bincount(grid_of[ok], weights=hh[ok], minlength=n_g),
        A=A0.copy(),
        P=P0.copy(),
        members=members,
        locked=np.zeros(len(au), dtype=bool),
        tiebreak=rng.random(len(au)),
    )
    total_hh = float(hh[ok].sum())
    prm = SearchParams(
        households_min=hmin,
        households_max=hmax,
        min_compactness=min_compactness,
        pp_floor=np.maximum(min_compactness, (1 - max_compactness_loss) * polsby_popper(A0, P0)),
        target_cv=target_cv,
        max_households_moved=max_moved_share * total_hh,
        address_weight=address_weight,
    )
    n_rounds = max(rounds, 1)
    for r in range(n_rounds):
        run_round(st, S, prm)
        if r == n_rounds - 1:
            break  # the staff the last round balanced against are the ones proposed
        S_new = staff_for(st.W, S)
        if np.array_equal(S_new, S):
            break
        S = S_new
    if _cv(st.W / S) > _cv(W0 / S_staff_only) + 1e-12:
        # The moves did not beat staffing alone (the re-apportioning between rounds can cost more
        # than the moves gained): never propose moving households for a worse balance.
        log.info("boundary moves did not improve on staffing alone; proposing staffing only")
        st.grid_of = grid_of.copy()
        st.W = W0.copy()
        st.H = np.bincount(grid_of[ok], weights=hh[ok], minlength=n_g)
        st.A, st.P = A0.copy(), P0.copy()
        st.moves.clear()
        S = S_staff_only.copy()
    W1 = st.W
    parts_after = grid_components(graph, st.grid_of)

    wpw_before, wpw_staff, wpw_after = W0 / S_before, W0 / S_staff_only, W1 / S
    mean = W0.sum() / total_staff
    mv = np.array([m[0] for m in st.moves], dtype=np.int64)
    moves = pd.DataFrame(
        {
            "unit_id": unit_ids[mv] if len(mv) else np.array([], dtype=object),
            "from_grid": codes[[m[1] for m in st.moves]] if len(mv) else np.array([], dtype=object),
            "to_grid": codes[[m[2] for m in st.moves]] if len(mv) else np.array([], dtype=object),
            "households": hh[mv].astype(np.int64) if len(mv) else np.array([], dtype=np.int64),
            "residents": res[mv].astype(np.int64) if len(mv) else np.array([], dtype=np.int64),
            "addresses": addr[mv].astype(np.int64) if len(mv) else np.array([], dtype=np.int64),
            "workload": wl[mv] if len(mv) else np.array([], dtype=float),
            "reason": [_reason(mv_, codes, hh, wl, unit_ids) for mv_ in st.moves],
        }
    )
    moved = np.zeros(len(au), dtype=bool)
    moved[mv] = True
    hh_moved = float(hh[moved].sum())
    addr_moved = float(addr[moved].sum())

    out_plan, pp_before, pp_after = build_proposal_plan(
        plan,
        grid_of_new=st.grid_of,
        codes=codes,
        unit_workload=wl,
        staff=S,
        grid_workload=W1,
        moved=moved,
        households_band=(hmin, hmax),
        rebuild_h3=rebuild_h3,
        params={
            "total_staff": int(total_staff),
            "min_staff": int(min_staff),
            "max_staff": None if max_staff is None else int(max_staff),
            "method": method,
            "target_cv": float(target_cv),
            "max_moved_share": float(max_moved_share),
            "min_compactness": float(min_compactness),
            "max_compactness_loss": float(max_compactness_loss),
            "households_min": hmin,
            "households_max": hmax,
            "seed": int(seed),
            "workload_unit": "hours per month",
        },
    )
    pp_before = polsby_popper(A0, P0) if pp_before is None else pp_before
    H_after = st.H
    band_out = lambda Hs: float(((Hs < hmin) | (Hs > hmax)).sum())  # noqa: E731
    H0 = np.bincount(grid_of[ok], weights=hh[ok], minlength=n_g)
    extra = [
        ("cv_workload_per_staff_staffing_only", _cv(wpw_before), _cv(wpw_staff)),
        ("households_moved", 0.0, hh_moved),
        ("households_moved_share", 0.0, hh_moved / total_hh if total_hh else 0.0),
        ("addresses_moved", 0.0, addr_moved),
        ("units_moved", 0.0, float(moved.sum())),
        ("compactness_mean", float(np.mean(pp_before)), float(np.mean(pp_after))),
        ("compactness_min", float(np.min(pp_before)), float(np.min(pp_after))),
        ("grids_out_of_band", band_out(H0), band_out(H_after)),
        ("grids_not_contiguous", float((parts_before > 1).sum()), float((parts_after > 1).sum())),
        ("workload_per_staff_mean", float(mean), float(W1.sum() / total_staff)),
        ("staff_total", float(S_before.sum()), float(S.sum())),
    ]
    metrics = metrics_table(comm_g.astype(str), wpw_before, wpw_after, extra_city=extra)
    staffing = pd.DataFrame(
        {
            "grid_code": codes,
            "community_code": comm_g.astype(str),
            "workload": W1,
            "staff_before": S_before,
            "staff": S,
            "workload_per_staff_before": wpw_before,
            "workload_per_staff": wpw_after,
            "load_ratio": wpw_after / mean if mean > 0 else 0.0,
        }
    )
    out_plan = replace(out_plan, extra_tables={"moves": moves, "metrics": metrics})
    secs = time.perf_counter() - t0
    summary = {
        "cv_before": _cv(wpw_before),
        "cv_staffing_only": _cv(wpw_staff),
        "cv_after": _cv(wpw_after),
        "max_min_before": _maxmin(wpw_before),
        "max_min_after": _maxmin(wpw_after),
        "households_moved": hh_moved,
        "households_moved_share": hh_moved / total_hh if total_hh else 0.0,
        "addresses_moved": addr_moved,
        "units_moved": float(moved.sum()),
        "grids": float(n_g),
        "grids_not_contiguous_after": float((parts_after > 1).sum()),
        "grids_not_contiguous_before": float((parts_before > 1).sum()),
        "seconds": secs,
    }
    log.info(
        "rebalanced %d grids with %d staff: CV %.3f → %.3f (staffing alone %.3f), %d units / %d households "
        "moved (%.1f %%) in %.1f s",
        n_g,
        total_staff,
        summary["cv_before"],
        summary["cv_after"],
        summary["cv_staffing_only"],
        moved.sum(),
        hh_moved,
        100 * summary["households_moved_share"],
        secs,
    )
    return Proposal(plan=out_plan, moves=moves, metrics=metrics, staffing=staffing, summary=summary)
