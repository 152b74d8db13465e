"""The trade-off of a rebalancing proposal: candidate proposals, their Pareto set, the one chosen, a plot.

:func:`gridplan.balance.rebalance` builds several candidate proposals — best staffing of the unchanged
plan, staffing + unit moves and staffing + moves + split/merge, each under a ladder of budgets of
households moved — and describes each by three costs: the share of households that change grid, the
CV of workload per worker, and the number of grids changed.  A candidate is on the Pareto front when
no other is at least as good on all three and better on one.  The proposal written as the plan is
the one reaching ``target_cv`` within ``max_moved_share`` with the least stretch of the household band,
then the fewest households moved (ties: fewer grids changed, then lower CV); when none reaches the
target, the lowest CV within the budget.  A fourth cost, grids out of the household band, counts
for the front: candidates may stretch the band by ``band_slack`` when the band itself is what keeps
integer staffing off (a 300–500 band with ~275 households per worker admits no whole number of
workers per grid).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["Candidate", "choose", "pareto_front", "plot_proposals", "proposals_table"]


def p90_p10(x: np.ndarray) -> float:
    """Ratio of the 90th to the 10th percentile (``inf`` when the 10th is 0): max/min without outliers.

    Examples
    --------
    >>> round(p90_p10(np.arange(1.0, 12.0)), 3)
    5.0

    """
    x = np.asarray(x, float)
    if not len(x):
        return 1.0
    lo, hi = np.percentile(x, [10, 90])
    return float(hi / lo) if lo > 0 else float("inf")


@dataclass(frozen=True)
class Candidate:
    """One candidate proposal and its costs (``result`` is what :func:`rebalance` needs to write it)."""

    name: str
    kind: str  # "staffing", "moves", "moves+split/merge"
    budget_share: float
    households_moved: float
    households_moved_share: float
    cv: float
    p90_p10: float
    grids_changed: int
    grids: int
    splits: int
    merges: int
    units_moved: int
    band_slack: float = 0.0
    grids_out_of_band: int = 0
    result: object = None


def _dominates(a: Candidate, b: Candidate) -> bool:
    ka = (a.households_moved_share, a.cv, a.grids_changed, a.grids_out_of_band)
    kb = (b.households_moved_share, b.cv, b.grids_changed, b.grids_out_of_band)
    return all(x <= y + 1e-12 for x, y in zip(ka, kb, strict=True)) and any(
        x < y - 1e-12 for x, y in zip(ka, kb, strict=True)
    )


def pareto_front(cands: Sequence[Candidate]) -> list[bool]:
    """Flag the non-dominated candidates (households moved, CV, grids changed, grids off the band)."""
    return [not any(_dominates(o, c) for o in cands if o is not c) for c in cands]


def choose(cands: Sequence[Candidate], *, target_cv: float, max_moved_share: float) -> int:
    """Index of the candidate written as the proposal (see the module doc)."""
    feasible = [i for i, c in enumerate(cands) if c.households_moved_share <= max_moved_share + 1e-12]
    if not feasible:
        feasible = list(range(len(cands)))
    reach = [i for i in feasible if cands[i].cv <= target_cv + 1e-12]
    if reach:
        return min(
            reach,
            key=lambda i: (
                cands[i].band_slack,
                cands[i].households_moved,
                cands[i].grids_changed,
                cands[i].cv,
                i,
            ),
        )
    return min(feasible, key=lambda i: (round(cands[i].cv, 12), cands[i].households_moved, i))


def proposals_table(cands: Sequence[Candidate], chosen: int) -> pd.DataFrame:
    """One row per candidate proposal, with ``pareto`` (on the front) and ``chosen`` flags."""
    front = pareto_front(cands)
    return pd.DataFrame(
        {
            "proposal": [c.name for c in cands],
            "kind": [c.kind for c in cands],
            "budget_moved_pct": [100 * c.budget_share for c in cands],
            "households_moved": [float(c.households_moved) for c in cands],
            "households_moved_pct": [100 * c.households_moved_share for c in cands],
            "cv_workload_per_staff": [c.cv for c in cands],
            "p90_p10_ratio": [c.p90_p10 for c in cands],
            "grids_changed": [int(c.grids_changed) for c in cands],
            "grids": [int(c.grids) for c in cands],
            "splits": [int(c.splits) for c in cands],
            "merges": [int(c.merges) for c in cands],
            "units_moved": [int(c.units_moved) for c in cands],
            "band_slack_pct": [100 * c.band_slack for c in cands],
            "grids_out_of_band": [int(c.grids_out_of_band) for c in cands],
            "pareto": front,
            "chosen": [i == chosen for i in range(len(cands))],
        }
    )


def plot_proposals(table: pd.DataFrame, path: Path, *, target_cv: float, max_moved_pct: float) -> Path:
    """Write a PNG of the trade-off: households moved (%) against CV, grids changed as marker size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5), dpi=120)
    colours = {"staffing": "#555555", "moves": "#1f77b4", "moves+split/merge": "#d62728"}
    for kind, part in table.groupby("kind", sort=False):
        ax.scatter(
            part["households_moved_pct"],
            part["cv_workload_per_staff"],
            s=20 + 4 * part["grids_changed"].clip(upper=200),
            c=colours.get(str(kind), "#2ca02c"),
            alpha=0.75,
            label=str(kind),
        )
    front = table[table["pareto"]].sort_values("households_moved_pct")
    ax.step(front["households_moved_pct"], front["cv_workload_per_staff"], where="post", c="#999", lw=1)
    chosen = table[table["chosen"]]
    ax.scatter(
        chosen["households_moved_pct"],
        chosen["cv_workload_per_staff"],
        s=260,
        facecolors="none",
        edgecolors="black",
        lw=1.5,
        label="written as the proposal",
    )
    ax.axhline(target_cv, ls="--", c="#2ca02c", lw=1, label=f"target CV {target_cv:g}")
    ax.axvline(max_moved_pct, ls=":", c="#ff7f0e", lw=1, label=f"max moved {max_moved_pct:g} %")
    ax.set_xlabel("households moved (%)")
    ax.set_ylabel("CV of workload per worker")
    ax.set_title("Rebalancing proposals (marker size: grids changed)")
    ax.set_ylim(bottom=0)
    ax.set_xlim(left=-0.5)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    tmp.replace(path)
    return path


def binding_note(
    cands: Sequence[Candidate],
    chosen: int,
    *,
    target_cv: float,
    max_moved_share: float,
    capped: tuple[int, float],
) -> str:
    """Say which constraint keeps the chosen proposal from *target_cv* (``""`` when it is reached).

    *capped*: grids of the chosen proposal whose workload needs more than ``max_staff`` workers, and
    the worst of their workload per worker as a multiple of the city mean.
    """
    c = cands[chosen]
    if c.cv <= target_cv + 1e-12:
        return ""
    parts = [f"target CV {target_cv:g} not reached: best {c.cv:.3f} ({c.name})"]
    strict = [
        x.cv for x in cands if x.band_slack == 0 and x.households_moved_share <= max_moved_share + 1e-12
    ]
    loose = [x for x in cands if x.band_slack > 0 and x.households_moved_share <= max_moved_share + 1e-12]
    if strict and loose:
        best_loose = min(loose, key=lambda x: x.cv)
        parts.append(
            f"household band: {min(strict):.3f} inside it, {best_loose.cv:.3f} with it stretched "
            f"±{100 * best_loose.band_slack:.0f} % ({best_loose.grids_out_of_band} grids out of it)"
        )
    if c.households_moved_share >= 0.9 * max_moved_share and max_moved_share > 0:
        parts.append(
            f"households budget: {100 * c.households_moved_share:.1f} % moved of "
            f"{100 * max_moved_share:g} % allowed"
        )
    if capped[0]:
        parts.append(
            f"max staff per grid: {capped[0]} grids need more workers than allowed and cannot be split "
            f"further along atomic units (worst {capped[1]:.2f}× the mean workload per worker)"
        )
    return "; ".join(parts)
