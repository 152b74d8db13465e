"""Options of :func:`gridplan.balance.rebalance` (staff bounds, targets, constraints, budgets, seed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from gridplan.balance.staffing import Method
from gridplan.errors import InputError
from gridplan.plans import Plan

__all__ = ["RebalanceOptions"]


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
        ``"community"`` (default): each community's staff total is chosen for the state the moves
        aim at, its grids balanced (Webster, then single workers moved between communities while
        Σ_c grids_c·(W_c/S_c − mean)² drops), and apportioned to its grids; between rounds of
        moves single workers move only inside a community, so the totals the moves work towards
        hold; the proposal's staff are then refined between any two grids while that lowers
        Σ(workload/worker − mean)².  ``"grid"``: one apportionment over all grids, redone after
        each round of moves.  The ``staffing_only`` metric row is the best staffing of the input
        grids before any unit moves (community-first, Webster or largest remainder, refined).
    split_merge
        Also propose splitting overloaded grids and merging underloaded neighbours
        (:mod:`gridplan.balance.restructure`).
    budget_ladder
        Budgets of households moved tried for the trade-off, as fractions of ``max_moved_share``
        (each run gives a candidate per pass: moves alone, then split/merge + moves twice;
        :mod:`gridplan.balance.frontier`).
    band_slack
        Candidates are also built with the household band stretched by this share on each side
        (0.5: 300–500 → 150–750); one within the strict band is written when it reaches the target.
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
    split_merge: bool = True
    budget_ladder: tuple[float, ...] = (1.0,)
    band_slack: float = 0.5
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
        if self.band_slack < 0:
            raise InputError("must be >= 0", field="band_slack")
        if any(not 0 < f <= 1 for f in self.budget_ladder):
            raise InputError("budget fractions must be in (0, 1]", field="budget_ladder")
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
            "split_merge": bool(self.split_merge),
            "budget_ladder": [float(f) for f in self.budget_ladder],
            "band_slack": float(self.band_slack),
            "workload_unit": "hours per month",
        }
