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
from gridplan.balance.proposal import ProposalChange, build_proposal_plan
from gridplan.balance.report import _cv, _Outcome, metrics_table
from gridplan.balance.search import SearchParams, SearchState, refine_staff, run_round
from gridplan.balance.staffing import Method, apportion
from gridplan.balance.units import Units
from gridplan.errors import InputError
from gridplan.plans import Plan

log = logging.getLogger(__name__)

__all__ = ["Proposal", "RebalanceOptions", "apportion_by_community", "metrics_table", "rebalance"]


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


_Move = tuple[int, int, int, float, float, str]  # unit, from grid, to grid, load ratios, note


def _reason(move: _Move, codes: np.ndarray, hh: np.ndarray, wl: np.ndarray, unit_ids: np.ndarray) -> str:
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


@dataclass(frozen=True)
class RebalanceOptions:
    """How :func:`rebalance` staffs and moves.

    Attributes
    ----------
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


    """

    min_staff: int = 1
    max_staff: int | None = None
    method: Method = "webster"
    target_cv: float = 0.10
    max_moved_share: float = 0.15
    min_compactness: float = 0.2
    max_compactness_loss: float = 0.5
    households_min: int | None = None
    households_max: int | None = None
    address_weight: float = 0.2
    rounds: int = 4
    seed: int = 0
    staffing: Literal["community", "grid"] = "community"
    rebuild_h3: bool = True

    def check(self) -> None:
        """Refuse parameters outside their range (the field is named)."""
        if self.min_staff < 1:
            raise InputError(
                "min staff per grid must be >= 1 to compute workload per worker", field="min_staff"
            )
        if not 0 <= self.max_moved_share <= 1:
            raise InputError("must be between 0 and 1", field="max_moved_share")
        if self.target_cv < 0:
            raise InputError("must be >= 0", field="target_cv")
        if not 0 <= self.max_compactness_loss <= 1:
            raise InputError("must be between 0 and 1", field="max_compactness_loss")

    def band(self, plan: Plan) -> tuple[float, float]:
        """Return the household band: these options, else the plan's parameters, else 300–500."""
        params = plan.meta.params or {}
        lo = self.households_min if self.households_min is not None else params.get("households_min", 300)
        hi = self.households_max if self.households_max is not None else params.get("households_max", 500)
        if float(hi) < float(lo):
            raise InputError("households_max is below households_min", field="households_max")
        return float(lo), float(hi)

    def record(self, total_staff: int, band: tuple[float, float]) -> dict[str, Any]:
        """Return the parameters recorded in the proposal's ``plan_meta``."""
        return {
            "total_staff": int(total_staff),
            "min_staff": int(self.min_staff),
            "max_staff": None if self.max_staff is None else int(self.max_staff),
            "method": self.method,
            "target_cv": float(self.target_cv),
            "max_moved_share": float(self.max_moved_share),
            "min_compactness": float(self.min_compactness),
            "max_compactness_loss": float(self.max_compactness_loss),
            "households_min": band[0],
            "households_max": band[1],
            "seed": int(self.seed),
            "workload_unit": "hours per month",
        }


@dataclass(frozen=True)
class _Staffer:
    """Integer staff per grid for a workload, by community (refined) or over all grids."""

    units: Units
    total: int
    options: RebalanceOptions
    mean_wpw: float

    def apportion(self, W: np.ndarray) -> np.ndarray:
        o = self.options
        return apportion(W, self.total, min_staff=o.min_staff, max_staff=o.max_staff, method=o.method)

    def refine(self, W: np.ndarray, S: np.ndarray) -> np.ndarray:
        o, n = self.options, len(W)
        lo = np.full(n, o.min_staff, dtype=np.int64)
        hi = np.full(n, o.max_staff if o.max_staff is not None else 10**9, dtype=np.int64)
        return refine_staff(W, S, self.units.comm_g, lo, hi, self.mean_wpw)

    def staff_for(self, W: np.ndarray, S_prev: np.ndarray | None = None) -> np.ndarray:
        o = self.options
        if o.staffing == "grid":
            return self.apportion(W)
        S_new = (
            S_prev
            if S_prev is not None
            else apportion_by_community(
                W,
                self.units.comm_g,
                self.total,
                min_staff=o.min_staff,
                max_staff=o.max_staff,
                method=o.method,
            )
        )
        return self.refine(W, S_new)

    def staffing_only(self, W0: np.ndarray) -> np.ndarray:
        """Community-first staffing, unless one grid-level apportionment balances better."""
        S = self.staff_for(W0)
        S_grid = self.apportion(W0)
        if _cv(W0 / S_grid) < _cv(W0 / S) - 1e-12:
            S = self.refine(W0, S_grid)
        return S


def _search_state(u: Units, seed: int) -> tuple[SearchState, np.ndarray, np.ndarray]:
    """Start the search on the plan's grids; also return the grids' starting area and perimeter."""
    area, perim = shapely.area(u.geoms), shapely.length(u.geoms)
    graph = unit_adjacency(u.geoms, u.comm_u)
    n_g = len(u.codes)
    P0 = grid_perimeters(graph, u.grid_of, perim, n_g)
    A0 = u.per_grid(area)
    members: list[set[int]] = [set() for _ in range(n_g)]
    for k in np.flatnonzero(u.grid_of >= 0):
        members[u.grid_of[k]].add(int(k))
    st = SearchState(
        graph=graph,
        grid_of=u.grid_of.copy(),
        wl=u.wl,
        hh=u.hh,
        addr=u.addr,
        area=area,
        perim=perim,
        W=u.per_grid(u.wl),
        H=u.per_grid(u.hh),
        A=A0.copy(),
        P=P0.copy(),
        members=members,
        locked=np.zeros(len(u.ids), dtype=bool),
        tiebreak=np.random.default_rng(seed).random(len(u.ids)),
    )
    return st, A0, P0


def _search(st: SearchState, S: np.ndarray, prm: SearchParams, staffer: _Staffer, rounds: int) -> np.ndarray:
    """Move units, re-staffing between rounds until the staff no longer change; return the staff."""
    n_rounds = max(rounds, 1)
    for r in range(n_rounds):
        run_round(st, S, prm)
        if r == n_rounds - 1:
            break  # the staff the last round balanced against are the ones proposed
        S_new = staffer.staff_for(st.W, S)
        if np.array_equal(S_new, S):
            break
        S = S_new
    return S


def _moves_table(st: SearchState, u: Units) -> pd.DataFrame:
    """One row per moved atomic unit, in the order applied, with the reason."""
    mv = np.array([m[0] for m in st.moves], dtype=np.int64)
    none = len(mv) == 0
    return pd.DataFrame(
        {
            "unit_id": np.array([], dtype=object) if none else u.ids[mv],
            "from_grid": np.array([], dtype=object) if none else u.codes[[m[1] for m in st.moves]],
            "to_grid": np.array([], dtype=object) if none else u.codes[[m[2] for m in st.moves]],
            "households": np.array([], dtype=np.int64) if none else u.hh[mv].astype(np.int64),
            "residents": np.array([], dtype=np.int64) if none else u.res[mv].astype(np.int64),
            "addresses": np.array([], dtype=np.int64) if none else u.addr[mv].astype(np.int64),
            "workload": np.array([], dtype=float) if none else u.wl[mv],
            "reason": [_reason(m, u.codes, u.hh, u.wl, u.ids) for m in st.moves],
        }
    )


def rebalance(
    plan: Plan,
    workload_units: pd.DataFrame | pd.Series,
    *,
    total_staff: int,
    options: RebalanceOptions | None = None,
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
    options
        Staffing bounds, targets, constraints and seed (:class:`RebalanceOptions`; default: its
        defaults).

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
    hmin, hmax = o.band(plan)
    u = Units.of(plan, workload_units)
    W0 = u.per_grid(u.wl)
    S_before = _baseline_staff(plan.base_grids, u.codes, total_staff, o.min_staff, o.max_staff, o.method)
    staffer = _Staffer(u, total_staff, o, float(W0.sum() / total_staff))
    S_staff_only = staffer.staffing_only(W0)
    st, A0, P0 = _search_state(u, o.seed)
    parts_before = grid_components(st.graph, u.grid_of)
    total_hh = float(u.per_grid(u.hh).sum())
    prm = SearchParams(
        households_min=hmin,
        households_max=hmax,
        min_compactness=o.min_compactness,
        pp_floor=np.maximum(o.min_compactness, (1 - o.max_compactness_loss) * polsby_popper(A0, P0)),
        target_cv=o.target_cv,
        max_households_moved=o.max_moved_share * total_hh,
        address_weight=o.address_weight,
    )
    S = _search(st, S_staff_only.copy(), prm, staffer, o.rounds)
    if _cv(st.W / S) > _cv(W0 / S_staff_only) + 1e-12:
        # The moves did not beat staffing alone (the re-apportioning between rounds can cost more
        # than the moves gained): never propose moving households for a worse balance.
        log.info("boundary moves did not improve on staffing alone; proposing staffing only")
        st.grid_of, st.W, st.H = u.grid_of.copy(), u.per_grid(u.wl), u.per_grid(u.hh)
        st.A, st.P = A0.copy(), P0.copy()
        st.moves.clear()
        S = S_staff_only.copy()
    moves = _moves_table(st, u)
    moved = np.zeros(len(u.ids), dtype=bool)
    moved[[m[0] for m in st.moves]] = True
    out_plan, pp_before, pp_after = build_proposal_plan(
        plan,
        ProposalChange(
            grid_of_new=st.grid_of,
            codes=u.codes,
            unit_workload=u.wl,
            staff=S,
            grid_workload=st.W,
            moved=moved,
        ),
        households_band=(hmin, hmax),
        rebuild_h3=o.rebuild_h3,
        params=o.record(total_staff, (hmin, hmax)),
    )
    pp_before = polsby_popper(A0, P0) if pp_before is None else pp_before
    outcome = _Outcome(
        u,
        W0,
        st.W,
        S_before,
        S_staff_only,
        S,
        moved,
        st.H,
        parts_before,
        grid_components(st.graph, st.grid_of),
    )
    metrics = outcome.metrics(total_staff, (hmin, hmax), (pp_before, pp_after))
    out_plan = replace(out_plan, extra_tables={"moves": moves, "metrics": metrics})
    summary = outcome.summary(time.perf_counter() - t0)
    log.info(
        "rebalanced %d grids with %d staff: CV %.3f → %.3f (staffing alone %.3f), %d units / %d households "
        "moved (%.1f %%) in %.1f s",
        len(u.codes),
        total_staff,
        summary["cv_before"],
        summary["cv_after"],
        summary["cv_staffing_only"],
        moved.sum(),
        summary["households_moved"],
        100 * summary["households_moved_share"],
        summary["seconds"],
    )
    return Proposal(
        plan=out_plan, moves=moves, metrics=metrics, staffing=outcome.staffing(total_staff), summary=summary
    )
