"""Year-on-year change per town, community and grid, by category: the ``yoy`` table."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from gridplan.errors import InputError
from gridplan.hotspots.aggregate import UNCATEGORISED, _base_grids, assign_events, filter_events

logger = logging.getLogger(__name__)


#: Category value of the all-categories rows of :func:`year_on_year`.
ALL_CATEGORIES = "全部"

def year_on_year(
    events: Any,
    plan: Any,
    *,
    levels: Iterable[str] = ("town", "community", "grid"),
    category: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """Count events per area, category and year, with last year's count and the change in percent.

    Parameters
    ----------
    events
        Located events with ``reported_at`` and ``category``.
    plan
        A Plan or its ``base_grids``.
    levels
        Any of ``"town"``, ``"community"``, ``"grid"``.
    category
        Keep only these categories.

    Returns
    -------
    pandas.DataFrame
        ``level``, ``code``, ``name``, ``category`` (one row per category plus ``"全部"`` = all),
        ``year``, ``count``, ``count_prev`` (NA for the first year), ``change_pct``
        (``100 · (count − count_prev) / count_prev``, rounded to 0.1; NA when last year had none).
        Every area appears for every year between the first and last year with events.

    """
    df = filter_events(events, category=category)
    if "reported_at" not in df.columns or "category" not in df.columns:
        raise InputError("year-on-year needs reported_at and category columns", field="reported_at")
    levels = list(levels)
    bad = [lv for lv in levels if lv not in ("town", "community", "grid")]
    if bad:
        raise InputError(f"unknown level {bad[0]!r}; use town, community or grid", field="levels")
    grids = _base_grids(plan)
    if not {"grid_code", "community_code", "town_code"} <= set(df.columns) or df["grid_code"].isna().all():
        df = assign_events(df, plan)
    df = df.loc[df["grid_code"].notna() & df["reported_at"].notna()]
    if df.empty:
        raise InputError("no dated events fall inside the plan's grids")
    df = df.assign(category=df["category"].astype(object).where(df["category"].notna(), UNCATEGORISED))
    years = np.arange(int(df["reported_at"].dt.year.min()), int(df["reported_at"].dt.year.max()) + 1)
    cats = [*sorted(df["category"].astype(str).unique()), ALL_CATEGORIES]
    both = pd.concat([df.assign(category=df["category"].astype(str)), df.assign(category=ALL_CATEGORIES)])
    year = both["reported_at"].dt.year.rename("year")
    frames = []
    for lv in levels:
        key = f"{lv}_code"
        name_col = {"town": "town_name", "community": "community_name"}.get(lv)
        if name_col and name_col in grids.columns:
            names = grids.groupby(key)[name_col].first()
        elif lv == "grid" and "community_name" in grids.columns:
            names = grids.set_index("grid_code")["community_name"].astype(str) + \
                grids["grid_code"].astype(str).str[-3:].to_numpy() + "网格"
        else:
            names = pd.Series(dtype=object)
        codes = sorted(grids[key].astype(str).unique())
        counts = both.groupby([both[key].astype(str).rename("code"), both["category"], year]).size()
        full = pd.MultiIndex.from_product([codes, cats, years], names=["code", "category", "year"])
        c = counts.reindex(full, fill_value=0).rename("count").reset_index()
        c["count_prev"] = c.groupby(["code", "category"])["count"].shift(1).astype("Int64")
        c.insert(0, "level", lv)
        c.insert(2, "name", c["code"].map(names.astype(str)).fillna(""))
        frames.append(c)
    out = pd.concat(frames, ignore_index=True)
    prev = out["count_prev"].astype("Float64")
    out["change_pct"] = ((out["count"] - prev) * 100.0 / prev.where(prev > 0)).round(1)
    out["count"] = out["count"].astype(np.int64)
    out["year"] = out["year"].astype(np.int64)
    logger.info("year-on-year table: %s rows over %d–%d for %s", f"{len(out):,}", years[0], years[-1],
                ", ".join(levels))
    return out
