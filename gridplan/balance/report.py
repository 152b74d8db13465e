"""What a rebalancing proposal reports: the ``metrics`` and staffing tables and the summary figures.

Workload per worker is compared against honest baselines: "before" is the unchanged plan with its
best integer staffing (free to do, so the moves must beat it); rows also give the plan as staffed
today, staffing + unit moves and staffing + moves + split/merge, city-wide and per community
(coefficient of variation and p90/p10 ratio).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gridplan.balance.frontier import p90_p10
from gridplan.balance.units import Units

__all__ = ["Baselines", "metrics_table"]


def _cv(x: np.ndarray) -> float:
    x = np.asarray(x, float)
    mu = x.mean() if len(x) else 0.0
    return float(x.std() / mu) if mu > 0 else 0.0


def metrics_table(
    comm_before: np.ndarray,
    wpw_before: np.ndarray,
    comm_after: np.ndarray | None = None,
    wpw_after: np.ndarray | None = None,
    *,
    extra_city: Sequence[tuple[str, float, float]] = (),
) -> pd.DataFrame:
    """Before/after CV and p90/p10 ratio of workload per worker, city-wide and per community.

    The grids before and after may differ (split/merge): each side has its own community labels
    (*comm_after* defaults to *comm_before*).  p90/p10 replaces max/min, which grids with next to no
    workload make meaningless.

    Examples
    --------
    >>> t = metrics_table(np.array(["c", "c"]), np.array([1.0, 3.0]), None, np.array([2.0, 2.0]))
    >>> t[t.metric == "cv_workload_per_staff"][["scope", "before", "after"]].to_dict("records")[0]
    {'scope': 'city', 'before': 0.5, 'after': 0.0}

    """
    comm_after = comm_before if comm_after is None else comm_after
    wpw_after = wpw_before if wpw_after is None else wpw_after
    rows: list[tuple[str, str, float, float]] = [
        ("cv_workload_per_staff", "city", _cv(wpw_before), _cv(wpw_after)),
        ("p90_p10_ratio", "city", p90_p10(wpw_before), p90_p10(wpw_after)),
    ]
    rows += [(m, "city", b, a) for m, b, a in extra_city]
    before = pd.Series(wpw_before).groupby(np.asarray(comm_before).astype(str))
    after = pd.Series(wpw_after).groupby(np.asarray(comm_after).astype(str))
    b_groups, a_groups = dict(list(before)), dict(list(after))
    for code in sorted(set(b_groups) | set(a_groups)):
        b = b_groups.get(code, pd.Series(dtype=float)).to_numpy()
        a = a_groups.get(code, pd.Series(dtype=float)).to_numpy()
        rows.append(("cv_workload_per_staff", code, _cv(b), _cv(a)))
        rows.append(("p90_p10_ratio", code, p90_p10(b), p90_p10(a)))
    return pd.DataFrame(rows, columns=["metric", "scope", "before", "after"])


@dataclass(frozen=True)
class Baselines:
    """CV of workload per worker of the honest baselines (each the best within the budget)."""

    as_staffed: float  # the input plan as staffed today (its staff column, else even)
    staffing: float  # (a) unchanged plan, best integer staffing
    moves: float  # (b) staffing + unit moves
    split_merge: float  # (c) staffing + moves + split/merge


@dataclass(frozen=True)
class _Outcome:
    """Input grids (best staffing) against the proposed grids: the tables reported."""

    u: Units  # the input plan's units and grids
    grids: Units  # the proposal's grids (after any split/merge)
    W0: np.ndarray
    S_as_staffed: np.ndarray
    S_staffing: np.ndarray
    W1: np.ndarray
    S: np.ndarray
    H_after: np.ndarray
    moved: np.ndarray
    parts_before: np.ndarray
    parts_after: np.ndarray
    baselines: Baselines
    splits: int = 0
    merges: int = 0
    redraws: int = 0

    @property
    def total_hh(self) -> float:
        return float(self.u.per_grid(self.u.hh).sum())

    def _moved(self, values: np.ndarray) -> float:
        return float(values[self.moved].sum())

    def metrics(
        self, total_staff: int, band: tuple[float, float], pp: tuple[np.ndarray, np.ndarray]
    ) -> pd.DataFrame:
        """Build the ``metrics`` table: "before" is the unchanged plan with its best integer staffing."""
        u, hmin, hmax, b = self.u, band[0], band[1], self.baselines
        wpw_before, wpw_after = self.W0 / self.S_staffing, self.W1 / self.S
        hh_moved, total_hh = self._moved(u.hh), self.total_hh

        def band_out(h: np.ndarray) -> float:
            return float(((h < hmin) | (h > hmax)).sum())

        extra = [
            ("cv_workload_per_staff_as_staffed", b.as_staffed, _cv(wpw_after)),
            ("cv_workload_per_staff_staffing_only", b.as_staffed, b.staffing),
            ("cv_workload_per_staff_moves", b.staffing, b.moves),
            ("cv_workload_per_staff_moves_split_merge", b.staffing, b.split_merge),
            ("households_moved", 0.0, hh_moved),
            ("households_moved_share", 0.0, hh_moved / total_hh if total_hh else 0.0),
            ("addresses_moved", 0.0, self._moved(u.addr)),
            ("units_moved", 0.0, float(self.moved.sum())),
            ("grids", float(len(u.codes)), float(len(self.grids.codes))),
            ("grids_split", 0.0, float(self.splits)),
            ("grids_merged", 0.0, float(self.merges)),
            ("boundaries_redrawn", 0.0, float(self.redraws)),
            ("compactness_mean", float(np.mean(pp[0])), float(np.mean(pp[1]))),
            ("compactness_min", float(np.min(pp[0])), float(np.min(pp[1]))),
            ("grids_out_of_band", band_out(u.per_grid(u.hh)), band_out(self.H_after)),
            (
                "grids_not_contiguous",
                float((self.parts_before > 1).sum()),
                float((self.parts_after > 1).sum()),
            ),
            (
                "workload_per_staff_mean",
                float(self.W0.sum() / total_staff),
                float(self.W1.sum() / total_staff),
            ),
            ("staff_total", float(self.S_staffing.sum()), float(self.S.sum())),
        ]
        return metrics_table(u.comm_g, wpw_before, self.grids.comm_g, wpw_after, extra_city=extra)

    def staffing(self, total_staff: int) -> pd.DataFrame:
        """Per proposed grid: workload, staff before (input grids) and proposed, workload per worker."""
        mean = self.W0.sum() / total_staff
        wpw_after = self.W1 / self.S
        before = pd.Series(self.S_as_staffed, index=self.u.codes).reindex(self.grids.codes)
        w_before = pd.Series(self.W0 / self.S_as_staffed, index=self.u.codes).reindex(self.grids.codes)
        return pd.DataFrame(
            {
                "grid_code": self.grids.codes,
                "community_code": self.grids.comm_g,
                "workload": self.W1,
                "staff_before": before.fillna(0).to_numpy(np.int64),
                "staff": self.S,
                "workload_per_staff_before": w_before.to_numpy(float),
                "workload_per_staff": wpw_after,
                "load_ratio": wpw_after / mean if mean > 0 else 0.0,
            }
        )

    def summary(self, seconds: float) -> dict[str, float]:
        """Headline figures of the proposal ("before": the unchanged plan, best integer staffing)."""
        wpw_before, wpw_after = self.W0 / self.S_staffing, self.W1 / self.S
        hh_moved, total_hh = self._moved(self.u.hh), self.total_hh
        b = self.baselines
        return {
            "cv_as_staffed": b.as_staffed,
            "cv_before": b.staffing,
            "cv_staffing_only": b.staffing,
            "cv_moves": b.moves,
            "cv_split_merge": b.split_merge,
            "cv_after": _cv(wpw_after),
            "p90_p10_before": p90_p10(wpw_before),
            "p90_p10_after": p90_p10(wpw_after),
            "households_moved": hh_moved,
            "households_moved_share": hh_moved / total_hh if total_hh else 0.0,
            "addresses_moved": self._moved(self.u.addr),
            "units_moved": float(self.moved.sum()),
            "grids_before": float(len(self.u.codes)),
            "grids": float(len(self.grids.codes)),
            "grids_split": float(self.splits),
            "grids_merged": float(self.merges),
            "boundaries_redrawn": float(self.redraws),
            "grids_not_contiguous_after": float((self.parts_after > 1).sum()),
            "grids_not_contiguous_before": float((self.parts_before > 1).sum()),
            "seconds": seconds,
        }
