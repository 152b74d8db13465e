"""Emerging hot spots: a space-time cube, Gi* per time step, Mann-Kendall trends, 17 patterns (§3.5).

What this module owns
---------------------
* :func:`space_time_cube` — events counted per location (grid, community, town or H3 cell) × time
  step (week, month, quarter), every bin present (zeros included).
* :func:`space_time_gi` — Gi* z-scores for every bin of the cube, vectorised over locations and steps
  (a sparse product per step instead of one ``esda.G_Local`` per step).  The neighbourhood of a bin
  is its spatial neighbours and itself in the current and the previous ``time_window_steps`` steps
  (default 0: Gi* per step), compared with the mean of the whole cube (ArcGIS's default *global
  window = entire cube*, which lets a location's trend show in its z series).  With
  ``global_window="step"`` it is exactly the per-step Gi* of ``esda.G_Local(star=True,
  transform="B")`` (tested).  p-values are two-sided (normal), as ArcGIS's; the FDR-corrected bins
  (−3..3) are computed per time step.
* :func:`mann_kendall` — the Mann-Kendall trend test with the tie correction of the variance and a
  continuity correction, vectorised over locations (numpy; no ``pymannkendall`` dependency).
* :func:`pattern_masks` / :func:`classify_patterns` / :func:`classify_pattern` — the 17 labels.
* :func:`emerging_hotspots` — the ``emerging`` layer of HOT.gpkg.

Pattern rules
-------------
From ArcGIS Pro, "How Emerging Hot Spot Analysis works"
(https://pro.arcgis.com/en/pro-app/latest/tool-reference/space-time-pattern-mining/learnmoreemerging.htm)
cross-checked with sfdep's R re-implementation
(https://github.com/JosiahParry/sfdep/blob/main/R/emerging-hostpot-classifications.R).
A bin is a *hot* (*cold*) bin when its FDR-corrected Gi* bin is ≥ +1 (≤ −1), i.e. significant at
90 % or more; the trend is significant when the Mann-Kendall p < ``trend_alpha`` (default 0.05).
With ``n`` steps and "hot share" = hot bins / n (the cold rules mirror the hot ones):

=====================  ========================================================================
New Hot Spot           the final bin is hot and no earlier bin is significant (hot or cold)
Consecutive Hot Spot   a single uninterrupted run of ≥ 2 hot bins ends at the final step, no bin
                       before the run is significant, and the hot share is < 90 %
Intensifying Hot Spot  hot share ≥ 90 %, final bin hot, significant upward trend of Gi* z
Persistent Hot Spot    hot share ≥ 90 %, final bin hot, no significant trend
Diminishing Hot Spot   hot share ≥ 90 %, final bin hot, significant downward trend
Sporadic Hot Spot      final bin hot, hot share < 90 %, never a cold bin, and hot bins before
                       a non-hot step (on-again, off-again; not new or consecutive)
Oscillating Hot Spot   final bin hot, hot share < 90 %, at least one earlier cold bin
Historical Hot Spot    final bin not significant, hot share ≥ 90 %
No Pattern Detected    none of the above
=====================  ========================================================================

Two ambiguities of the published text are resolved as sfdep does: a location that was a cold spot
before turning hot is *oscillating*, not *new*/*consecutive* (both texts say "never a hot spot
before", and oscillating is the more specific statement); a location hot ≥ 90 % of the time whose
final bin is *cold* is an oscillating cold spot, not a historical hot spot (it has a significant
current state; sfdep's order gives the same); and persistent/intensifying/diminishing need the final
bin hot (a location hot ≥ 90 % of the time but not now is historical).  The rules
are mutually exclusive and exhaustive (tested with hypothesis).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from gridplan.errors import InputError
from gridplan.hotspots.aggregate import (
    Areas,
    Level,
    TimeStep,
    aggregate_events,
    analysis_units,
    choose_time_step,
    filter_events,
)
from gridplan.hotspots.gistar import Value, fdr_bins, neighbour_matrix, resolve_value

logger = logging.getLogger(__name__)

HOT_PATTERNS: tuple[str, ...] = (
    "New Hot Spot", "Consecutive Hot Spot", "Intensifying Hot Spot", "Persistent Hot Spot",
    "Diminishing Hot Spot", "Sporadic Hot Spot", "Oscillating Hot Spot", "Historical Hot Spot",
)
COLD_PATTERNS: tuple[str, ...] = tuple(p.replace("Hot", "Cold") for p in HOT_PATTERNS)
NO_PATTERN = "No Pattern Detected"
#: The 17 labels, in ArcGIS's order.
PATTERNS: tuple[str, ...] = (*HOT_PATTERNS, *COLD_PATTERNS, NO_PATTERN)
#: Chinese labels for reports (column ``pattern_zh``).
PATTERNS_ZH: dict[str, str] = {
    **dict(zip(HOT_PATTERNS, ("新增热点", "连续热点", "加强热点", "持续热点", "减弱热点", "零星热点",
                              "振荡热点", "历史热点"), strict=True)),
    **dict(zip(COLD_PATTERNS, ("新增冷点", "连续冷点", "加强冷点", "持续冷点", "减弱冷点", "零星冷点",
                               "振荡冷点", "历史冷点"), strict=True)),
    NO_PATTERN: "未检测到模式",
}

__all__ = [
    "PATTERNS",
    "PATTERNS_ZH",
    "classify_pattern",
    "classify_patterns",
    "emerging_hotspots",
    "mann_kendall",
    "pattern_masks",
    "space_time_cube",
    "space_time_gi",
]


# --------------------------------------------------------------------------------------------
# Mann-Kendall
# --------------------------------------------------------------------------------------------


def mann_kendall(series: ArrayLike, *, decimals: int = 9) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mann-Kendall trend test per row: ``(z, p)`` with tie-corrected variance, two-sided p.

    ``S = Σ_{i<j} sign(x_j − x_i)``; ``Var S = [n(n−1)(2n+5) − Σ_t t(t−1)(2t+5)] / 18`` over tie
    groups of size t; ``z = (S − sign S) / sqrt(Var S)`` (continuity correction); ``p = 2 Φ(−|z|)``.

    Parameters
    ----------
    series
        ``(n_steps,)`` or ``(n_locations, n_steps)`` values in time order.
    decimals
        Values are rounded to this many decimals before comparing, so floating-point noise does not
        break ties.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        z and p per row (scalars as 0-d arrays for a 1-D input); z = 0, p = 1 for constant rows or
        fewer than 3 steps.

    Examples
    --------
    >>> z, p = mann_kendall([1.0, 2.0, 3.0, 4.0, 5.0])
    >>> round(float(z), 4), round(float(p), 4)
    (2.2045, 0.0275)

    """
    x = np.round(np.asarray(series, dtype=np.float64), decimals)
    one = x.ndim == 1
    x2 = x[None, :] if one else x
    m, n = x2.shape
    s = np.zeros(m)
    for d in range(1, n):
        s += np.sign(x2[:, d:] - x2[:, :-d]).sum(axis=1)
    var = np.full(m, n * (n - 1) * (2 * n + 5), dtype=np.float64)
    if n > 1 and m:
        srt = np.sort(x2, axis=1)
        start = np.ones((m, n), dtype=bool)
        start[:, 1:] = srt[:, 1:] != srt[:, :-1]
        gid = np.cumsum(start.ravel()) - 1
        sizes = np.bincount(gid).astype(np.float64)
        row_of_group = np.repeat(np.arange(m), n)[start.ravel()]
        var -= np.bincount(row_of_group, weights=sizes * (sizes - 1) * (2 * sizes + 5), minlength=m)
    var /= 18.0
    from scipy.stats import norm

    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where((var > 0) & (n >= 3), (s - np.sign(s)) / np.sqrt(var), 0.0)
    p = np.minimum(1.0, 2.0 * norm.sf(np.abs(z)))
    return (z[0], p[0]) if one else (z, p)


# --------------------------------------------------------------------------------------------
# pattern rules
# --------------------------------------------------------------------------------------------


def _trailing_run(flags: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Length of the run of True at the end of each row."""
    rev = flags[:, ::-1]
    return np.cumprod(rev, axis=1).sum(axis=1).astype(np.int64)


def _side_masks(
    this: NDArray[np.bool_], other: NDArray[np.bool_], up: NDArray[np.bool_], down: NDArray[np.bool_],
    share: float,
) -> list[NDArray[np.bool_]]:
    """Masks of the 8 patterns of one side (hot: this = hot bins, up = upward trend)."""
    n = this.shape[1]
    frac = this.sum(axis=1) / n
    last = this[:, -1]
    many = frac >= share
    run = _trailing_run(this)
    sig = this | other
    # any significant bin before the final run of `this` bins
    before = np.arange(n)[None, :] < (n - run)[:, None]
    sig_before_run = (sig & before).any(axis=1)
    other_ever = other.any(axis=1)
    new = last & ~many & ~sig_before_run & (run == 1)
    consecutive = last & ~many & ~sig_before_run & (run >= 2)
    intensifying = last & many & up
    persistent = last & many & ~up & ~down
    diminishing = last & many & down
    oscillating = last & ~many & other_ever & sig_before_run
    sporadic = last & ~many & ~other_ever & sig_before_run
    historical = ~last & ~other[:, -1] & many
    return [new, consecutive, intensifying, persistent, diminishing, sporadic, oscillating, historical]


def pattern_masks(
    bins: ArrayLike,
    trend_z: ArrayLike,
    trend_p: ArrayLike,
    *,
    trend_alpha: float = 0.05,
    share: float = 0.9,
) -> dict[str, NDArray[np.bool_]]:
    """Boolean mask of every one of the 17 patterns, each rule evaluated independently.

    Parameters
    ----------
    bins
        ``(n_locations, n_steps)`` FDR-corrected Gi* bins (−3..3) in time order.
    trend_z, trend_p
        Mann-Kendall z and p of each location's Gi* z series.
    trend_alpha
        Significance level of the trend.
    share
        Share of steps for persistent/intensifying/diminishing/historical (ArcGIS: 90 %).

    Returns
    -------
    dict
        Label → ``(n_locations,)`` bool; exactly one label is True per location.

    """
    b = np.atleast_2d(np.asarray(bins))
    tz = np.atleast_1d(np.asarray(trend_z, dtype=np.float64))
    tp = np.atleast_1d(np.asarray(trend_p, dtype=np.float64))
    if b.shape[1] == 0:
        raise InputError("an emerging hot spot series needs at least one time step")
    hot, cold = b > 0, b < 0
    sig_trend = tp < trend_alpha
    up, down = sig_trend & (tz > 0), sig_trend & (tz < 0)
    hot_m = _side_masks(hot, cold, up, down, share)
    cold_m = _side_masks(cold, hot, down, up, share)
    masks = dict(zip(HOT_PATTERNS, hot_m, strict=True)) | dict(zip(COLD_PATTERNS, cold_m, strict=True))
    any_m = np.zeros(b.shape[0], dtype=bool)
    for m in masks.values():
        any_m |= m
    masks[NO_PATTERN] = ~any_m
    return masks


def classify_patterns(
    bins: ArrayLike, trend_z: ArrayLike, trend_p: ArrayLike, *, trend_alpha: float = 0.05, share: float = 0.9
) -> NDArray[np.object_]:
    """Pattern label of every location (vectorised :func:`classify_pattern`)."""
    masks = pattern_masks(bins, trend_z, trend_p, trend_alpha=trend_alpha, share=share)
    stacked = np.column_stack([masks[p] for p in PATTERNS])
    return np.asarray(PATTERNS, dtype=object)[stacked.argmax(axis=1)]


def classify_pattern(
    z_bins_series: Sequence[int] | ArrayLike,
    trend_z: float,
    trend_p: float,
    *,
    trend_alpha: float = 0.05,
    share: float = 0.9,
) -> str:
    """Return the emerging hot spot pattern of one location (rules in the module docstring).

    Parameters
    ----------
    z_bins_series
        Gi* bins (−3..3, FDR-corrected) of the location, oldest first.
    trend_z, trend_p
        Mann-Kendall z and p of the location's Gi* z-score series.
    trend_alpha, share
        As :func:`pattern_masks`.

    Returns
    -------
    str
        One of :data:`PATTERNS`.

    Examples
    --------
    >>> classify_pattern([0, 0, 0, 0, 3], 1.0, 0.3)
    'New Hot Spot'
    >>> classify_pattern([2] * 10, 3.1, 0.002)
    'Intensifying Hot Spot'
    >>> classify_pattern([0, -1, 0, 0, 2], 0.5, 0.6)
    'Oscillating Hot Spot'

    """
    return str(classify_patterns(np.asarray(z_bins_series)[None, :], [trend_z], [trend_p],
                                 trend_alpha=trend_alpha, share=share)[0])


# --------------------------------------------------------------------------------------------
# cube and space-time Gi*
# --------------------------------------------------------------------------------------------


def space_time_cube(
    events: Any,
    plan: Any,
    *,
    by: Level = "grid",
    h3_res: int = 9,
    time_step: TimeStep = "month",
    category: str | Sequence[str] | None = None,
    units: gpd.GeoDataFrame | None = None,
) -> tuple[gpd.GeoDataFrame, NDArray[np.int64], list[str]]:
    """Count events per location × time step.

    Returns
    -------
    (geopandas.GeoDataFrame, numpy.ndarray, list[str])
        The locations (:func:`gridplan.hotspots.analysis_units`), the ``(n_locations, n_steps)``
        count matrix and the period labels (``"2024-03"``, ``"2024Q1"``, ``"2024-03-04/2024-03-10"``).

    """
    if units is None:
        units = analysis_units(plan, by, h3_res=h3_res)
    agg = aggregate_events(events, plan, by=by, h3_res=h3_res, time_step=time_step, category=category,
                           units=units)
    periods = list(dict.fromkeys(agg["period"]))
    pos = pd.Series(np.arange(len(units)), index=units["code"].to_numpy())
    ppos = pd.Series(np.arange(len(periods)), index=periods)
    cube = np.zeros((len(units), len(periods)), dtype=np.int64)
    cube[pos[agg["code"]].to_numpy(), ppos[agg["period"]].to_numpy()] = agg["count"].to_numpy()
    return units, cube, periods


def space_time_gi(
    values: ArrayLike,
    neighbours: Any,
    *,
    time_window_steps: int = 1,
    global_window: Literal["cube", "step"] = "cube",
) -> NDArray[np.float64]:
    """Gi* z-score of every bin of a ``(n_locations, n_steps)`` cube.

    The neighbourhood of bin (i, t) is location i and its spatial neighbours (binary weights) in steps
    ``t − time_window_steps … t``; it is compared with the mean and standard deviation of the whole
    cube (``global_window="cube"``, ArcGIS's default) or of step t alone (``"step"``).

    Examples
    --------
    >>> from scipy import sparse
    >>> nb = sparse.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]]))
    >>> space_time_gi(np.array([[1.0], [2.0], [9.0]]), nb, time_window_steps=0).round(3).ravel().tolist()
    [-1.405, 0.0, 0.843]

    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2:
        raise InputError("the cube must be a 2-D array (locations × steps)")
    n, steps = x.shape
    k = max(0, int(time_window_steps))
    if global_window not in ("cube", "step"):
        raise InputError(f"unknown global window {global_window!r}; use cube or step", field="global_window")
    spatial = neighbours @ x + x  # each location plus its neighbours, per step
    cs = np.cumsum(spatial, axis=1)
    lagged = np.zeros_like(cs)
    if k + 1 < steps:
        lagged[:, k + 1:] = cs[:, : steps - k - 1]
    local = cs - lagged  # sum over the window t-k..t
    n_nb = np.asarray(neighbours.sum(axis=1)).ravel() + 1.0
    width = np.minimum(np.arange(steps) + 1, k + 1).astype(np.float64)  # steps in each window
    w = n_nb[:, None] * width[None, :]
    if global_window == "cube":
        big_n = float(n * steps)
        mean = np.full(steps, x.mean())
        sd = np.full(steps, x.std())
    else:
        big_n = float(n)
        mean = x.mean(axis=0)
        sd = x.std(axis=0)
    den = np.sqrt(np.maximum(big_n * w - w**2, 0.0) / max(big_n - 1.0, 1.0)) * sd[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(den > 0, (local - mean[None, :] * w) / den, 0.0)
    return z


@dataclass(frozen=True)
class TrendOptions:
    """How emerging hot spots read the Gi* series of a location.

    Attributes
    ----------
    time_window_steps
        Previous steps in each bin's neighbourhood (:func:`space_time_gi`).  Default 0 (Gi* per
        step): ArcGIS's default of 1 gives the first step a window half as wide, which lowers its
        |z| and biases every hot location's trend upwards (on the sample city a steady planted
        hotspot came out "intensifying").
    global_window
        ``"cube"`` (default, as ArcGIS) compares each bin with the whole cube, so a location whose
        events rise or fall gets a z trend; ``"step"`` standardises each step on its own, which
        removes city-wide trends and, with them, most local ones.
    trend_alpha
        Significance level of the Mann-Kendall trend.

    """

    time_window_steps: int = 0
    global_window: Literal["cube", "step"] = "cube"
    trend_alpha: float = 0.05


def emerging_hotspots(
    events: Any,
    plan: Any,
    *,
    areas: Areas | None = None,
    time_step: TimeStep | Literal["auto"] = "month",
    value: Value = "auto",
    category: str | Sequence[str] | None = None,
    trend: TrendOptions | None = None,
) -> gpd.GeoDataFrame:
    """Build the ``emerging`` layer: one feature per location with its pattern and Gi* trend.

    Parameters
    ----------
    events, plan, areas, category
        As :func:`gridplan.hotspots.hotspot_analysis`.
    time_step
        ``"week"``, ``"month"`` or ``"quarter"`` (``"year"`` works but gives few steps), or
        ``"auto"``: the coarsest of these giving at least ten steps over the events
        (:func:`gridplan.hotspots.aggregate.choose_time_step`; ``attrs["time_step_reason"]`` says).
    value
        ``"auto"`` (default), ``"rate"``, ``"density"`` or ``"count"`` per bin, as in the hotspots
        layer (:func:`gridplan.hotspots.resolve_value`).
    trend
        Space-time window, global window and trend significance (:class:`TrendOptions`).

    Returns
    -------
    geopandas.GeoDataFrame
        Location columns, ``pattern`` (one of :data:`PATTERNS`), ``pattern_zh``, ``trend_z``,
        ``trend_p`` (Mann-Kendall on the Gi* z series), ``count`` (events in all steps),
        ``count_first``/``count_last`` (events in the first/last step), ``n_steps``, ``n_hot``,
        ``n_cold`` (steps with a significant hot/cold bin), ``last_bin``, ``last_z``,
        ``bin_history`` (the FDR-corrected Gi* bin of every step, oldest first, comma-separated),
        ``first_period``, ``last_period``.  ``attrs["periods"]`` lists the steps.

    """
    t0 = time.perf_counter()
    a, tr = areas or Areas(), trend or TrendOptions()
    by = a.by
    step_reason = f"{time_step}: as asked"
    if time_step == "auto":
        frame = filter_events(events, category=category)
        time_step, step_reason = choose_time_step(pd.to_datetime(frame["reported_at"]))
    units, cube, periods = space_time_cube(
        events, plan, by=by, h3_res=a.h3_res, time_step=time_step, category=category, units=a.units
    )
    if cube.sum() == 0:
        raise InputError("no located, dated events fall inside the plan's grids")
    if len(periods) < 3:
        logger.warning("only %d time steps: trends and patterns need more (use a shorter time step)",
                       len(periods))
    area_km2 = units["area_m2"].to_numpy(np.float64)[:, None] / 1e6
    used = resolve_value(value, by, units)
    if used == "count":
        vals = cube.astype(np.float64)
    elif used == "density":
        vals = cube / area_km2
    elif used == "rate":
        res = units["residents"].to_numpy(np.float64)[:, None] if "residents" in units else None
        if res is None:
            raise InputError("rates need residents in the plan's base grids", field="residents")
        with np.errstate(divide="ignore", invalid="ignore"):
            vals = np.where(res > 0, cube * 1000.0 / res, 0.0)
    else:
        raise InputError(f"unknown analysis value {value!r}; use count, density or rate", field="value")
    nb = neighbour_matrix(units, by=by, distance_band_m=a.distance_band_m, k_ring=a.k_ring)
    z = space_time_gi(vals, nb, time_window_steps=tr.time_window_steps, global_window=tr.global_window)
    from scipy.stats import norm

    p = np.minimum(1.0, 2.0 * norm.sf(np.abs(z)))
    bins = np.column_stack([fdr_bins(z[:, t], p[:, t]) for t in range(z.shape[1])]).astype(np.int8)
    tz, tp = mann_kendall(z)
    labels = classify_patterns(bins, tz, tp, trend_alpha=tr.trend_alpha)
    keep = [c for c in units.columns if c != "geometry"]
    out = gpd.GeoDataFrame(units[keep].copy(), geometry=units.geometry.to_numpy(), crs=units.crs)
    out["pattern"] = labels
    out["pattern_zh"] = [PATTERNS_ZH[lab] for lab in labels]
    out["trend_z"] = tz
    out["trend_p"] = tp
    out["count"] = cube.sum(axis=1)
    out["count_first"] = cube[:, 0]
    out["count_last"] = cube[:, -1]
    out["n_steps"] = len(periods)
    out["n_hot"] = (bins > 0).sum(axis=1)
    out["n_cold"] = (bins < 0).sum(axis=1)
    out["last_bin"] = bins[:, -1]
    out["last_z"] = z[:, -1]
    out["bin_history"] = [",".join(map(str, row)) for row in bins.tolist()]
    out["first_period"] = periods[0]
    out["last_period"] = periods[-1]
    out.attrs.update({"periods": list(periods), "time_step": time_step, "value": used,
                      "time_step_reason": step_reason})
    tally = pd.Series(labels).value_counts()
    logger.info("emerging hot spots on %s %s locations × %d %s steps in %.2f s: %s",
                f"{len(out):,}", by, len(periods), time_step, time.perf_counter() - t0,
                ", ".join(f"{k} {v}" for k, v in tally.items() if k != NO_PATTERN) or "no patterns")
    return out
