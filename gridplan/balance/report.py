"""What a rebalancing proposal reports: the ``metrics`` and staffing tables and the summary figures.

Workload per worker is compared before (the plan as staffed today), with staffing alone, and after
the moves, city-wide and per community (coefficient of variation and max/min ratio).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gridplan.balance.units import Units

__all__ = ["metrics_table"]


def _cv(x: np.ndarray) -> float:
    x = np.asarray(x, float)
    mu = x.mean() if len(x) else 0.0
    return float(x.std() / mu) if mu > 0 else 0.0


def _maxmin(x: np.ndarray) -> float:
    x = np.asarray(x, float)
    return float(x.max() / x.min()) if len(x) and x.min() > 0 else float("inf") if len(x) else 1.0


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


@dataclass(frozen=True)
class _Outcome:
    """Workload and staff before, with staffing only and after the moves: the tables reported."""

    u: Units
    W0: np.ndarray
    W1: np.ndarray
    S_before: np.ndarray
    S_staff_only: np.ndarray
    S: np.ndarray
    moved: np.ndarray
    H_after: np.ndarray
    parts_before: np.ndarray
    parts_after: np.ndarray

    @property
    def total_hh(self) -> float:
        return float(self.u.per_grid(self.u.hh).sum())

    def _moved(self, values: np.ndarray) -> float:
        return float(values[self.moved].sum())

    def metrics(
        self, total_staff: int, band: tuple[float, float], pp: tuple[np.ndarray, np.ndarray]
    ) -> pd.DataFrame:
        """Build the ``metrics`` table (city and per community, before/after)."""
        u, hmin, hmax = self.u, band[0], band[1]
        wpw_before, wpw_staff, wpw_after = (
            self.W0 / self.S_before,
            self.W0 / self.S_staff_only,
            self.W1 / self.S,
        )
        hh_moved, total_hh = self._moved(u.hh), self.total_hh

        def band_out(h: np.ndarray) -> float:
            return float(((h < hmin) | (h > hmax)).sum())

        extra = [
            ("cv_workload_per_staff_staffing_only", _cv(wpw_before), _cv(wpw_staff)),
            ("households_moved", 0.0, hh_moved),
            ("households_moved_share", 0.0, hh_moved / total_hh if total_hh else 0.0),
            ("addresses_moved", 0.0, self._moved(u.addr)),
            ("units_moved", 0.0, float(self.moved.sum())),
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
            ("staff_total", float(self.S_before.sum()), float(self.S.sum())),
        ]
        return metrics_table(u.comm_g, wpw_before, wpw_after, extra_city=extra)

    def staffing(self, total_staff: int) -> pd.DataFrame:
        """Per grid: workload, staff before and proposed, workload per worker, load ratio."""
        mean = self.W0.sum() / total_staff
        wpw_after = self.W1 / self.S
        return pd.DataFrame(
            {
                "grid_code": self.u.codes,
                "community_code": self.u.comm_g,
                "workload": self.W1,
                "staff_before": self.S_before,
                "staff": self.S,
                "workload_per_staff_before": self.W0 / self.S_before,
                "workload_per_staff": wpw_after,
                "load_ratio": wpw_after / mean if mean > 0 else 0.0,
            }
        )

    def summary(self, seconds: float) -> dict[str, float]:
        """Headline figures of the proposal."""
        wpw_before, wpw_after = self.W0 / self.S_before, self.W1 / self.S
        hh_moved, total_hh = self._moved(self.u.hh), self.total_hh
        return {
            "cv_before": _cv(wpw_before),
            "cv_staffing_only": _cv(self.W0 / self.S_staff_only),
            "cv_after": _cv(wpw_after),
            "max_min_before": _maxmin(wpw_before),
            "max_min_after": _maxmin(wpw_after),
            "households_moved": hh_moved,
            "households_moved_share": hh_moved / total_hh if total_hh else 0.0,
            "addresses_moved": self._moved(self.u.addr),
            "units_moved": float(self.moved.sum()),
            "grids": float(len(self.u.codes)),
            "grids_not_contiguous_after": float((self.parts_after > 1).sum()),
            "grids_not_contiguous_before": float((self.parts_before > 1).sum()),
            "seconds": seconds,
        }
