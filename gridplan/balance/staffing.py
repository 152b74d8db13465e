"""Staffing: integer workers per grid under a budget, by a named apportionment method."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from gridplan.balance.workload import log
from gridplan.errors import InputError

Method = Literal["webster", "hamilton"]

def _bounds(
    n: int, min_staff: int | np.ndarray, max_staff: int | np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    lo = np.broadcast_to(np.asarray(min_staff, dtype=np.int64), (n,)).copy()
    hi = (
        np.full(n, 10**12, dtype=np.int64)
        if max_staff is None
        else np.broadcast_to(np.asarray(max_staff, dtype=np.int64), (n,)).copy()
    )
    if (lo < 0).any():
        raise InputError("min staff per grid must be >= 0", field="min_staff")
    if (hi < lo).any():
        raise InputError("max staff per grid is below min staff", field="max_staff")
    return lo, hi

def _webster(w: np.ndarray, total: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Sainte-Laguë/Webster with bounds: a_i = clip(round(w_i / d), lo_i, hi_i), sum a = total."""
    if w.sum() <= 0:
        w = np.ones_like(w)

    def alloc(d: float) -> np.ndarray:
        return np.clip(np.floor(w / d + 0.5), lo, hi).astype(np.int64)

    # d_hi: allocation within budget (a huge divisor gives the minimums); d_lo: allocation over it
    d_hi, a = float(w.max()) * 4 + 1.0, lo.copy()
    d_lo = float(w.sum()) / max(total, 1)
    while d_lo > 1e-300:
        am = alloc(d_lo)
        if am.sum() > total:
            break
        d_hi, a = d_lo, am
        d_lo /= 2
    for _ in range(200):  # bisection on the divisor
        mid = 0.5 * (d_lo + d_hi)
        if a.sum() == total or mid in (d_lo, d_hi):
            break
        am = alloc(mid)
        if am.sum() <= total:
            d_hi, a = mid, am
        else:
            d_lo = mid
    # seats left by exact ties go one at a time by the Sainte-Laguë priority w / (a + 0.5)
    while a.sum() < total:
        i = int(np.argmax(np.where(a < hi, w / (a + 0.5), -np.inf)))  # ties: lowest index
        a[i] += 1
    return a

def _hamilton(w: np.ndarray, total: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Largest remainders with bounds: bounded quotas by iterative redistribution, then remainders."""
    n = len(w)
    if w.sum() <= 0:
        w = np.ones_like(w)
    # bounded quotas q_i = clip(λ·w_i, lo_i, hi_i) with Σ q_i = total (λ by bisection; monotone)
    lam_lo, lam_hi = 0.0, float(total) / float(w[w > 0].min())
    while np.clip(lam_hi * w, lo, hi).sum() < total and lam_hi < 1e300:
        lam_hi *= 2
    for _ in range(200):
        mid = 0.5 * (lam_lo + lam_hi)
        if np.clip(mid * w, lo, hi).sum() < total:
            lam_lo = mid
        else:
            lam_hi = mid
    q = np.clip(lam_hi * w, lo, hi)
    a = np.clip(np.floor(q + 1e-9), lo, hi).astype(np.int64)
    left = int(total - a.sum())
    rem = np.where(a < hi, q - a, -np.inf)
    order = np.lexsort((np.arange(n), -rem))  # largest remainder first, ties: lowest index
    a[order[:left]] += 1
    return a

def apportion(
    workload: np.ndarray | pd.Series,
    total: int,
    *,
    min_staff: int | np.ndarray = 1,
    max_staff: int | np.ndarray | None = None,
    method: Method = "webster",
) -> np.ndarray:
    """Integer workers per grid under a total budget, proportional to workload, within bounds.

    Parameters
    ----------
    workload
        Workload per grid (hours per month, ≥ 0).
    total
        Workers to hand out; the result sums to exactly this.
    min_staff, max_staff
        Per-grid bounds (scalars or arrays); ``max_staff=None`` means unbounded.
    method
        ``"webster"`` (Sainte-Laguë divisor method: staff = workload / d rounded half up, for the
        divisor d that hits the budget; unbiased between large and small grids) or ``"hamilton"``
        (largest remainders of the exact quotas; subject to the Alabama paradox).

    Returns
    -------
    numpy.ndarray
        ``int64`` staff per grid.

    Raises
    ------
    InputError
        Unknown method, negative workload, or an infeasible budget (below the sum of the minimums or
        above the sum of the maximums).

    Examples
    --------
    >>> apportion([100_000, 80_000, 30_000, 20_000], 8, min_staff=0).tolist()
    [3, 3, 1, 1]
    >>> apportion([6, 6, 2], 11, min_staff=0, method="hamilton").tolist()
    [5, 5, 1]

    """
    w = np.asarray(workload, dtype=float)
    if method not in ("webster", "hamilton"):
        raise InputError(f"unknown apportionment method {method!r}; use webster or hamilton", field="method")
    if w.ndim != 1 or len(w) == 0:
        raise InputError("workload must be a non-empty 1-d array", field="workload")
    if not np.isfinite(w).all() or (w < 0).any():
        raise InputError("workload must be finite and >= 0", field="workload")
    total = int(total)
    lo, hi = _bounds(len(w), min_staff, max_staff)
    if total < lo.sum():
        raise InputError(
            f"staff budget {total} is below the sum of per-grid minimums {int(lo.sum())} "
            f"({len(w)} grids); raise --staff or lower --min-staff",
            field="staff",
        )
    if total > hi.sum():
        raise InputError(
            f"staff budget {total} is above the sum of per-grid maximums {int(hi.sum())} "
            f"({len(w)} grids); lower --staff or raise --max-staff",
            field="staff",
        )
    a = _webster(w, total, lo, hi) if method == "webster" else _hamilton(w, total, lo, hi)
    log.debug("apportioned %d staff over %d grids (%s)", total, len(w), method)
    return a

def staffing_table(
    grid_wl: pd.DataFrame,
    total: int,
    *,
    min_staff: int = 1,
    max_staff: int | None = None,
    method: Method = "webster",
) -> pd.DataFrame:
    """Staff per grid and workload per worker for a :func:`grid_workload` table.

    Returns
    -------
    pandas.DataFrame
        ``grid_code``, ``community_code``, ``workload``, ``staff``, ``workload_per_staff`` and
        ``load_ratio`` (workload per worker ÷ city-wide workload per worker).

    """
    staff = apportion(
        grid_wl["workload"].to_numpy(float), total, min_staff=min_staff, max_staff=max_staff, method=method
    )
    out = grid_wl[["grid_code", "community_code", "workload"]].copy()
    out["staff"] = staff
    out["workload_per_staff"] = np.where(staff > 0, out["workload"] / np.maximum(staff, 1), np.inf)
    mean = out["workload"].sum() / max(total, 1)
    out["load_ratio"] = out["workload_per_staff"] / mean if mean > 0 else 0.0
    return out


def apportion_by_community(
    grid_workload: np.ndarray,
    grid_community: np.ndarray,
    total: int,
    *,
    min_staff: int = 1,
    max_staff: int | None = None,
    method: Method = "webster",
    community_totals: np.ndarray | None = None,
) -> np.ndarray:
    """Two-level apportionment: staff to communities by workload, then to the grids of each community.

    *community_totals* (one per community, in sorted code order) replaces the first level.

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
    s_c = (
        apportion(
            w_c,
            total,
            min_staff=n_c * min_staff,
            max_staff=None if max_staff is None else n_c * max_staff,
            method=method,
        )
        if community_totals is None
        else np.asarray(community_totals, dtype=np.int64)
    )
    if len(s_c) != len(codes) or int(s_c.sum()) != int(total):
        raise InputError(
            f"community totals must give one figure per community ({len(codes)}) summing to {total}",
            field="community_totals",
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
