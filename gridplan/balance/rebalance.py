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
   Webster or Hamilton).  The best staffing of the unchanged grids is the honest "before" (below).
   The moves start from staff chosen for the state they aim at: moves never leave a community, so
   once its grids are balanced each of its k_c grids carries W_c / S_c per worker; the community
   totals S_c start proportional (the named method) and single workers move between communities
   while Σ_c k_c (W_c/S_c − mean)² drops (the CV over grids counts a community once per grid);
   each total is then apportioned to the community's grids and refined inside it.  Judged on
   today's uneven grids instead, a worker is never moved into a community none of whose grids
   alone gains enough, and the moves can then not bring it to the city mean.
2. **Boundary moves only where integer staffing cannot balance** — a lazy greedy
   (:mod:`gridplan.balance.search`) repeatedly applies the move of one boundary atomic unit to an
   adjacent grid of the same community with the best reduction of Σ(workload/worker − mean)² per
   household (+ addresses) moved, keeping both grids contiguous (no articulation point leaves),
   inside the household band (or not further out) and above a compactness floor (Polsby–Popper, or
   not worse), until the city-wide CV of workload per worker reaches the target or the budget of
   households moved is spent.
3. **Re-staff and repeat** — single workers move between grids of a community (its total kept) on
   the new workloads, and moves resume, for at most ``rounds`` rounds or until the staffing no
   longer changes.  The proposal's staff are then refined between any two grids of the city while
   that lowers Σ(workload/worker − mean)² on the grids as they turned out.

4. **Split and merge** (:mod:`gridplan.balance.restructure`) where integer staffing of a grid is off
   whatever its boundary: overloaded grids (more workload than ``max_staff`` workers, or far from a
   whole number of workers) are bisected along atomic units, underloaded neighbours of one community
   merged, before the unit moves run on the new grids.  New codes never reuse a retired one.
5. **The trade-off** (:mod:`gridplan.balance.frontier`): steps 1–4 run under a ladder of households
   budgets, with and without split/merge; every candidate is a row of the ``proposals`` table
   (households moved %, CV, grids changed, on the Pareto front or not) and the one written is the
   least disruptive reaching ``target_cv`` within ``max_moved_share``.

"Before" is honest: the unchanged plan with its best integer staffing (community-first, Webster or
largest remainder, whichever balances best) — staffing the current plan well is free, so the moves
must beat that.  The ``metrics`` table also gives the plan as staffed today (its own ``staff`` column
when it fits the budget, otherwise the budget spread evenly), staffing + moves and staffing + moves +
split/merge, each the best candidate of its kind within the budget.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import shapely

from gridplan.balance.frontier import Candidate, binding_note, choose, proposals_table
from gridplan.balance.graph import grid_components, polsby_popper, unit_adjacency
from gridplan.balance.options import RebalanceOptions
from gridplan.balance.proposal import ProposalChange, build_proposal_plan
from gridplan.balance.report import Baselines, _Outcome, metrics_table
from gridplan.balance.runs import Context, Run, candidates, moves_table
from gridplan.balance.search import _cv
from gridplan.balance.staffing import Method, apportion, apportion_by_community
from gridplan.balance.units import Units
from gridplan.plans import Plan

log = logging.getLogger(__name__)

__all__ = ["Proposal", "RebalanceOptions", "apportion_by_community", "metrics_table", "rebalance"]

#: plan parameter listing every grid code retired by a split/merge proposal (never handed out again)
RETIRED_KEY = "retired_grid_codes"


@dataclass(frozen=True)
class Proposal:
    """Result of :func:`rebalance`.

    Attributes
    ----------
    plan
        The proposed plan version (write it with :func:`gridplan.plans.write_plan`); its
        ``extra_tables`` hold ``moves``, ``metrics`` and ``proposals``.
    moves
        ``unit_id``, ``from_grid``, ``to_grid``, ``households``, ``residents``, ``addresses``,
        ``workload``, ``reason`` (one row per atomic unit that changed grid).
    metrics
        ``metric``, ``scope`` (``city`` or a community code), ``before``, ``after``.
    staffing
        Per grid: ``grid_code``, ``community_code``, ``workload``, ``staff_before``, ``staff``,
        ``workload_per_staff_before``, ``workload_per_staff``, ``load_ratio``.
    proposals
        The candidate proposals and their costs (:func:`gridplan.balance.frontier.proposals_table`).
    summary
        Headline figures (``cv_before`` — best staffing of the unchanged plan —, ``cv_moves``,
        ``cv_split_merge``, ``cv_after``, ``households_moved_share``, ``grids_split`` …).

    """

    plan: Any
    moves: pd.DataFrame
    metrics: pd.DataFrame
    staffing: pd.DataFrame
    proposals: pd.DataFrame
    summary: dict[str, float]


def _baseline_staff(
    base_grids: pd.DataFrame, order: np.ndarray, total: int, lo: int, hi: int | None, method: Method
) -> np.ndarray:
    if "staff" in base_grids:
        st = pd.to_numeric(base_grids["staff"], errors="coerce")
        staff = st.set_axis(base_grids["grid_code"].astype(str)).reindex(order)
        if staff.notna().all() and int(staff.sum()) == total:
            return staff.to_numpy(np.int64)
    return apportion(np.ones(len(order)), total, min_staff=lo, max_staff=hi, method=method)


def _codes_used(plan: Plan, u: Units) -> frozenset[str]:
    params = plan.meta.params or {}
    retired = [str(c) for c in params.get(RETIRED_KEY, []) or []]
    return frozenset({*map(str, u.codes), *plan.base_grids["grid_code"].astype(str), *retired})


def _best_of(cands: list[Candidate], kind: str, max_share: float, fallback: float) -> float:
    cvs = [c.cv for c in cands if c.kind == kind and c.households_moved_share <= max_share + 1e-12]
    return min(cvs, default=fallback)


def rebalance(
    plan: Plan,
    workload_units: pd.DataFrame | pd.Series,
    *,
    total_staff: int,
    options: RebalanceOptions | None = None,
) -> Proposal:
    """Propose staff per grid, boundary moves and split/merge that even out workload per worker.

    Parameters
    ----------
    plan
        The current :class:`gridplan.plans.Plan`.
    workload_units
        Workload per atomic unit: the output of :func:`gridplan.balance.workload.unit_workload` (columns
        ``unit_id``, ``workload``) or a Series indexed by ``unit_id``; hours per month.
    total_staff
        Grid workers to apportion (exactly this many are assigned).
    options
        Staffing bounds, targets, constraints, budgets and seed (:class:`RebalanceOptions`).

    Returns
    -------
    Proposal

    Raises
    ------
    InputError
        Workload missing for some unit, negative workload, infeasible staff budget, bad parameters.

    """
    t0 = time.perf_counter()
    o = options or RebalanceOptions()
    o.check()
    band = o.band(plan)
    u = Units.of(plan, workload_units)
    ctx = Context(u, unit_adjacency(u.geoms, u.comm_u), o, int(total_staff), band, _codes_used(plan, u))
    cands = candidates(ctx)
    k = choose(cands, target_cv=o.target_cv, max_moved_share=o.max_moved_share)
    run: Run = cands[k].result  # type: ignore[assignment]
    table = proposals_table(cands, k)
    W0 = u.per_grid(u.wl)
    S_staffing: np.ndarray = cands[0].result.S  # type: ignore[attr-defined]
    cv_a = cands[0].cv
    baselines = Baselines(
        as_staffed=_cv(
            W0 / _baseline_staff(plan.base_grids, u.codes, total_staff, o.min_staff, o.max_staff, o.method)
        ),
        staffing=cv_a,
        moves=_best_of(cands, "moves", o.max_moved_share, cv_a),
        split_merge=_best_of(cands, "moves+split/merge", o.max_moved_share, cv_a),
    )
    m = ctx.mean_wpw
    hi = o.max_staff if o.max_staff is not None else np.inf
    over = run.st.W / m > hi + 0.5 if m > 0 else np.zeros(len(run.st.W), dtype=bool)
    note = binding_note(
        cands,
        k,
        target_cv=o.target_cv,
        max_moved_share=o.max_moved_share,
        capped=(int(over.sum()), float((run.st.W[over] / run.S[over]).max() / m) if over.any() else 0.0),
    )
    if note:
        log.warning("%s", note)
    return _assemble(plan, ctx, run, S_staffing, baselines, table, t0, note)


def _assemble(
    plan: Plan,
    ctx: Context,
    run: Run,
    S_staffing: np.ndarray,
    baselines: Baselines,
    table: pd.DataFrame,
    t0: float,
    note: str,
) -> Proposal:
    """Build the proposed plan version and its tables from the chosen run."""
    u, o, band = ctx.units, ctx.options, ctx.band
    st, grids = run.st, run.grids
    moved = run.moved(u)
    moves = moves_table(run, u)
    structure = run.structure
    retired = sorted(set(u.codes) - set(grids.codes))
    origin = {op.other: op.keep for op in structure.ops if op.kind == "split"} if structure else {}
    for new, src in list(origin.items()):
        while src in origin:  # a split of a split: copy the attributes of the input grid
            src = origin[src]
        origin[new] = src
    prior = list((plan.meta.params or {}).get(RETIRED_KEY, []) or [])
    out_plan, _, pp_after = build_proposal_plan(
        plan,
        ProposalChange(
            grid_of_new=st.grid_of,
            codes=grids.codes,
            unit_workload=u.wl,
            staff=run.S,
            grid_workload=st.W,
            moved=moved,
            origin=origin,
        ),
        households_band=band,
        rebuild_h3=o.rebuild_h3,
        params={**o.record(ctx.total_staff, band), "note": note},
        extra_params={RETIRED_KEY: sorted({*map(str, prior), *retired})} if (prior or retired) else {},
    )
    g0 = plan.base_grids.geometry.to_numpy()
    pp_before = polsby_popper(shapely.area(g0), shapely.length(g0))
    outcome = _Outcome(
        u=u,
        grids=grids,
        W0=u.per_grid(u.wl),
        S_as_staffed=_baseline_staff(
            plan.base_grids, u.codes, ctx.total_staff, o.min_staff, o.max_staff, o.method
        ),
        S_staffing=S_staffing,
        W1=st.W,
        S=run.S,
        H_after=st.H,
        moved=moved,
        parts_before=grid_components(ctx.graph, u.grid_of),
        parts_after=grid_components(ctx.graph, st.grid_of),
        baselines=baselines,
        splits=structure.splits if structure else 0,
        merges=structure.merges if structure else 0,
        redraws=structure.redraws if structure else 0,
    )
    metrics = outcome.metrics(ctx.total_staff, band, (pp_before, pp_after))
    out_plan = replace(out_plan, extra_tables={"moves": moves, "metrics": metrics, "proposals": table})
    summary = outcome.summary(time.perf_counter() - t0)
    log.info(
        "rebalanced %d grids with %d staff: CV %.3f (best staffing of the unchanged plan) → %.3f; "
        "moves alone %.3f, with split/merge %.3f; %d households moved (%.1f %%), %d splits, %d merges "
        "in %.1f s",
        len(u.codes),
        ctx.total_staff,
        summary["cv_before"],
        summary["cv_after"],
        summary["cv_moves"],
        summary["cv_split_merge"],
        summary["households_moved"],
        100 * summary["households_moved_share"],
        summary["grids_split"],
        summary["grids_merged"],
        summary["seconds"],
    )
    return Proposal(
        plan=out_plan,
        moves=moves,
        metrics=metrics,
        staffing=outcome.staffing(ctx.total_staff),
        proposals=table,
        summary=summary,
    )
