"""Private engine of :mod:`gridplan.balance`: one candidate proposal per (budget, move kinds).

A *run* staffs the grids, optionally splits and merges them first (:mod:`~gridplan.balance.restructure`),
then moves boundary units (:mod:`~gridplan.balance.search`), re-staffing between rounds.  The runs of a
:func:`~gridplan.balance.rebalance` call share the unit graph and differ in the households budget and
in whether split/merge is allowed; each becomes a :class:`~gridplan.balance.frontier.Candidate`.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import shapely

from gridplan.balance.frontier import Candidate, p90_p10
from gridplan.balance.graph import UnitGraph, grid_perimeters, polsby_popper
from gridplan.balance.options import RebalanceOptions
from gridplan.balance.restructure import CodeBook, StructParams, Structure, restructure
from gridplan.balance.search import SearchParams, SearchState, _cv, refine_staff, run_round
from gridplan.balance.staffing import apportion, apportion_by_community
from gridplan.balance.units import Units

log = logging.getLogger(__name__)

_Move = tuple[int, int, int, float, float, str]  # unit, from grid, to grid, load ratios, note


@dataclass(frozen=True)
class Staffer:
    """Integer staff per grid for a workload, by community (refined) or over all grids."""

    units: Units
    total: int
    options: RebalanceOptions
    mean_wpw: float

    def apportion(self, W: np.ndarray, method: str | None = None) -> np.ndarray:
        """Apportion *W* over all grids (the options' method unless *method* is given)."""
        o = self.options
        return apportion(
            W,
            self.total,
            min_staff=o.min_staff,
            max_staff=o.max_staff,
            method=method or o.method,  # type: ignore[arg-type]
        )

    def _bounds(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        o = self.options
        lo = np.full(n, o.min_staff, dtype=np.int64)
        hi = np.full(n, o.max_staff if o.max_staff is not None else 10**9, dtype=np.int64)
        return lo, hi

    def refine(self, W: np.ndarray, S: np.ndarray) -> np.ndarray:
        """Move single workers between grids while that balances better: inside communities, then city-wide.

        The city-wide pass may change a community's staff total: the community apportionment is the
        fair start, but the goal is the CV of workload per worker over all grids, and a community
        whose grids are all just under a whole number of workers is better served by one more.
        """
        n = len(W)
        lo, hi = self._bounds(n)
        S = refine_staff(W, S, self.units.comm_g, lo, hi, self.mean_wpw)
        return refine_staff(W, S, np.zeros(n, dtype=np.int64), lo, hi, self.mean_wpw)

    def community_targets(self, W: np.ndarray) -> np.ndarray:
        """Staff per grid whose community totals suit grids that moves will balance inside each community.

        Moves never cross a community line, so a community's workload W_c is fixed and, once its
        grids are balanced, each of its k_c grids carries W_c / S_c per worker.  The totals S_c are
        chosen for that end state: proportional (Webster) first, then single workers moved between
        communities while Σ_c k_c (W_c/S_c − m)² drops — the CV over grids counts a community once
        per grid.  Judged on today's grids instead, a worker is not moved into a community whose
        grids are uneven, because no single grid of it gains enough; the moves then cannot bring the
        community to the city mean.  Each community's total is then apportioned over its grids.
        """
        o = self.options
        comm = np.asarray(self.units.comm_g).astype(str)
        _, inv = np.unique(comm, return_inverse=True)
        k_c = np.bincount(inv)
        W_c = np.bincount(inv, weights=W, minlength=len(k_c))
        lo, hi = self._bounds(len(k_c))
        lo, hi = lo * k_c, np.minimum(hi * k_c, 10**12)
        S_c = apportion(W_c, self.total, min_staff=lo, max_staff=hi, method=o.method)
        S_c = refine_staff(W_c, S_c, np.zeros(len(k_c), dtype=np.int64), lo, hi, self.mean_wpw, weight=k_c)
        S = apportion_by_community(
            W, comm, self.total, min_staff=o.min_staff, max_staff=o.max_staff, method=o.method,
            community_totals=S_c,
        )
        g_lo, g_hi = self._bounds(len(W))
        return refine_staff(W, S, self.units.comm_g, g_lo, g_hi, self.mean_wpw)

    def staff_for(self, W: np.ndarray, S_prev: np.ndarray | None = None) -> np.ndarray:
        """Staff for workload *W* before or between rounds of moves.

        By community (:meth:`community_targets`; with *S_prev*, single workers moved inside each
        community, its total kept, so the moves keep the target they work towards), or over all grids.
        """
        o = self.options
        if o.staffing == "grid":
            return self.apportion(W)
        if S_prev is None:
            return self.community_targets(W)
        lo, hi = self._bounds(len(W))
        return refine_staff(W, S_prev, self.units.comm_g, lo, hi, self.mean_wpw)

    def final(self, W: np.ndarray, S: np.ndarray) -> np.ndarray:
        """Staff proposed with the moved grids: *S* refined inside communities, then city-wide."""
        if self.options.staffing == "grid":
            return self.apportion(W)
        return self.refine(W, S)

    def staffing_only(self, W0: np.ndarray) -> np.ndarray:
        """Return the best staffing of unchanged grids: community-first, Webster or largest remainder."""
        o = self.options
        grid = o.staffing == "grid"
        starts = [self.apportion(W0), self.apportion(W0, "webster"), self.apportion(W0, "hamilton")]
        if not grid:
            starts = [
                self.community_targets(W0),
                apportion_by_community(
                    W0, self.units.comm_g, self.total, min_staff=o.min_staff, max_staff=o.max_staff,
                    method=o.method,
                ),
                *starts[1:],
            ]
        tried = [start if grid else self.refine(W0, start) for start in starts]
        best = tried[0]
        for S in tried[1:]:
            if _cv(W0 / S) < _cv(W0 / best) - 1e-12:
                best = S
        return best


def search_state(u: Units, graph: UnitGraph, seed: int) -> tuple[SearchState, np.ndarray, np.ndarray]:
    """Start the search on the grids of *u*; also return the grids' starting area and perimeter."""
    area, perim = shapely.area(u.geoms), shapely.length(u.geoms)
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


def _search(st: SearchState, S: np.ndarray, prm: SearchParams, staffer: Staffer, rounds: int) -> np.ndarray:
    """Move units, re-staffing inside communities between rounds until the staff settle; return the staff."""
    n_rounds = max(rounds, 1)
    for r in range(n_rounds):
        run_round(st, S, prm)
        if r == n_rounds - 1:
            break
        S_new = staffer.staff_for(st.W, S)
        if np.array_equal(S_new, S):
            break
        S = S_new
    # the rounds kept each community's staff total (the end state they worked towards); a single
    # worker moved across a community line may still balance the grids as they turned out
    return staffer.final(st.W, S)


@dataclass(frozen=True)
class Context:
    """What every run of one :func:`rebalance` call shares."""

    units: Units
    graph: UnitGraph
    options: RebalanceOptions
    total_staff: int
    band: tuple[float, float]
    codes_used: frozenset[str]

    @property
    def mean_wpw(self) -> float:
        """City-wide workload per worker."""
        return float(self.units.wl[self.units.grid_of >= 0].sum() / self.total_staff)

    @property
    def total_hh(self) -> float:
        """Households in grids."""
        return float(self.units.hh[self.units.grid_of >= 0].sum())

    def staffer(self, u: Units) -> Staffer:
        """Return a :class:`Staffer` for the grids of *u*."""
        return Staffer(u, self.total_staff, self.options, self.mean_wpw)


@dataclass
class Run:
    """A candidate proposal: its grids (*grids*), final assignment, staff and what changed."""

    grids: Units
    st: SearchState
    S: np.ndarray
    structure: Structure | None
    A0: np.ndarray
    P0: np.ndarray
    slack: float = 0.0
    reasons: dict[int, str] = field(default_factory=dict)  # unit → why it changed grid (last reason)

    def final_code(self) -> np.ndarray:
        """Grid code of every unit at the end of the run (``""``: in no grid)."""
        g = self.st.grid_of
        return np.where(g >= 0, self.grids.codes[np.maximum(g, 0)], "").astype(object)

    def moved(self, u: Units) -> np.ndarray:
        """Units whose grid code differs from the input plan's."""
        orig = np.where(u.grid_of >= 0, u.codes[np.maximum(u.grid_of, 0)], "").astype(object)
        return (orig != self.final_code()) & (u.grid_of >= 0)


def widened(band: tuple[float, float], slack: float) -> tuple[float, float]:
    """Return the household band stretched by *slack* on each side (0.5: 300–500 → 150–750)."""
    return band[0] * max(1.0 - slack, 0.0), band[1] * (1.0 + slack)


#: passes of a run with split/merge, from the input plan: split/merge + moves, twice (moves can empty
#: a grid towards zero, opening a merge); every pass is a candidate, as are moves alone and moves
#: followed by one split/merge + moves pass
_STRUCTURAL_PASSES = (True, True)


def run(ctx: Context, share: float, structural: bool, slack: float = 0.0) -> Run:
    """Staff, optionally split/merge, then move units with *share* of households as the budget.

    Returns the pass with the lowest CV (:func:`passes` gives them all).
    """
    out = passes(ctx, share, structural, slack)
    return min(out, key=lambda r: _cv(r.st.W / r.S))


def passes(ctx: Context, share: float, structural: bool, slack: float = 0.0) -> list[Run]:
    """Return moves alone, then (*structural*) every split/merge + moves pass, in order."""
    if not structural:
        return _chain(ctx, share, (False,), slack)
    # moves alone then split/merge on its result; and split/merge first: neither order always wins
    return _chain(ctx, share, (False, True), slack) + _chain(ctx, share, _STRUCTURAL_PASSES, slack)


def _chain(ctx: Context, share: float, kinds: tuple[bool, ...], slack: float) -> list[Run]:
    budget = share * ctx.total_hh
    band = widened(ctx.band, slack)
    structure: Structure | None = None
    grids, used = ctx.units, 0.0
    book = CodeBook(ctx.codes_used)
    reasons: dict[int, str] = {}
    out: list[Run] = []
    for with_structure in kinds:
        n_ops = 0
        if with_structure:
            step = restructure(grids, ctx.graph, _struct_params(ctx, band, budget - used), book)
            used += step.households_moved
            n_ops = len(step.ops)
            structure = step if structure is None else structure.then(step)
            grids = step.units
            reasons.update(step.reason_of)
        st, S, A0, P0 = _moves(ctx, grids, band, budget - used, share)
        used += st.hh_moved
        for mv in st.moves:
            reasons[mv[0]] = _reason(mv, grids.codes, grids.hh, grids.wl, grids.ids)
        out.append(Run(grids, st, S, structure, A0, P0, slack, dict(reasons)))
        if with_structure and n_ops == 0 and not st.moves:
            break
        grids = replace(grids, grid_of=st.grid_of.copy())
    return out


def _struct_params(ctx: Context, band: tuple[float, float], budget: float) -> StructParams:
    o = ctx.options
    return StructParams(
        m=ctx.mean_wpw,
        min_staff=o.min_staff,
        max_staff=o.max_staff,
        households_min=band[0],
        households_max=band[1],
        max_households_moved=budget,
        max_grids=ctx.total_staff // max(o.min_staff, 1),
        min_grids=-(-ctx.total_staff // o.max_staff) if o.max_staff else 1,
    )


def _moves(
    ctx: Context, grids: Units, band: tuple[float, float], budget: float, share: float
) -> tuple[SearchState, np.ndarray, np.ndarray, np.ndarray]:
    """Staff *grids* and move boundary units within *budget* households; return state and staff."""
    o = ctx.options
    staffer = ctx.staffer(grids)
    W1 = grids.per_grid(grids.wl)
    S1 = staffer.staffing_only(W1)
    st, A0, P0 = search_state(grids, ctx.graph, o.seed)
    prm = SearchParams(
        households_min=band[0],
        households_max=band[1],
        min_compactness=o.min_compactness,
        pp_floor=np.maximum(o.min_compactness, (1 - o.max_compactness_loss) * polsby_popper(A0, P0)),
        target_cv=o.target_cv,
        max_households_moved=max(budget, 0.0),
        address_weight=o.address_weight,
    )
    S = S1.copy()
    if share > 0 and _cv(W1 / S1) > o.target_cv:
        S = _search(st, staffer.staff_for(W1), prm, staffer, o.rounds)
        if _cv(st.W / S) > _cv(W1 / S1) + 1e-12:
            # re-apportioning between rounds cost more than the moves gained: never propose moving
            # households for a worse balance
            st, A0, P0 = search_state(grids, ctx.graph, o.seed)
            S = S1.copy()
    return st, S, A0, P0


def candidate(ctx: Context, name: str, kind: str, share: float, r: Run) -> Candidate:
    """Describe run *r* by its costs (households moved, CV, grids changed)."""
    u = ctx.units
    moved = r.moved(u)
    orig = u.codes[np.maximum(u.grid_of, 0)]
    final = r.final_code()
    hh = float(u.hh[moved].sum())
    wpw = r.st.W / r.S
    lo, hi = ctx.band
    return Candidate(
        name=name,
        kind=kind,
        budget_share=share,
        households_moved=hh,
        households_moved_share=hh / ctx.total_hh if ctx.total_hh else 0.0,
        cv=_cv(wpw),
        p90_p10=p90_p10(wpw),
        grids_changed=len(set(orig[moved]) | set(final[moved])),
        grids=len(r.grids.codes),
        splits=r.structure.splits if r.structure else 0,
        merges=r.structure.merges if r.structure else 0,
        units_moved=int(moved.sum()),
        band_slack=r.slack,
        grids_out_of_band=int(((lo > r.st.H) | (hi < r.st.H)).sum()),
        result=r,
    )


def candidates(ctx: Context) -> list[Candidate]:
    """Staffing alone, then moves and moves + split/merge per budget of the ladder and band slack."""
    o = ctx.options
    out = [candidate(ctx, "staffing only", "staffing", 0.0, run(ctx, 0.0, False))]
    shares = sorted({round(min(f, 1.0) * o.max_moved_share, 12) for f in o.budget_ladder} - {0.0})
    slacks = sorted({0.0, float(o.band_slack)})
    seen: set[tuple[str, float, float, int]] = set()
    runs = [
        (slack, share, r)
        for slack, share in itertools.product(slacks, shares)
        for r in passes(ctx, share, o.split_merge, slack)
    ]
    for slack, share, r in runs:
        kind = "moves+split/merge" if r.structure is not None else "moves"
        label = f"{kind} ≤ {100 * share:.3g} %" + (f", band ±{100 * slack:.0f} %" if slack else "")
        c = candidate(ctx, label, kind, share, r)
        key = (c.kind, round(c.households_moved, 6), round(c.cv, 9), c.grids_changed)
        if key in seen:
            continue
        seen.add(key)
        out.append(c)
        log.info(
            "candidate %s: CV %.3f, %.1f %% households moved, %d grids changed (%d splits, %d merges)",
            c.name,
            c.cv,
            100 * c.households_moved_share,
            c.grids_changed,
            c.splits,
            c.merges,
        )
    return out


def _reason(move: _Move, codes: np.ndarray, hh: np.ndarray, wl: np.ndarray, unit_ids: np.ndarray) -> str:
    u, a, b, ra, rb, note = move
    text = (
        f"grid {codes[a]} workload/worker {ra:.2f}× city mean; {codes[b]} {rb:.2f}× "
        f"(same community, adjacent): moving {int(hh[u])} households, {wl[u]:.1f} h/month"
    )
    if note.startswith("swap:"):
        text += f"; swapped with unit {unit_ids[int(note[5:])]} to keep both grids in the household band"
    return text


def moves_table(r: Run, u: Units) -> pd.DataFrame:
    """One row per atomic unit whose grid changed, in the order first changed, with the last reason."""
    moved = r.moved(u)
    idx = np.array([k for k in r.reasons if moved[k]], dtype=np.int64)
    orig = u.codes[np.maximum(u.grid_of, 0)]
    final = r.final_code()
    return pd.DataFrame(
        {
            "unit_id": u.ids[idx].astype(object),
            "from_grid": orig[idx].astype(object),
            "to_grid": final[idx].astype(object),
            "households": u.hh[idx].astype(np.int64),
            "residents": u.res[idx].astype(np.int64),
            "addresses": u.addr[idx].astype(np.int64),
            "workload": u.wl[idx].astype(float),
            "reason": [r.reasons[int(k)] for k in idx],
        }
    )
