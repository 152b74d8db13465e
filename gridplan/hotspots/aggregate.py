"""Events assigned to base grids and aggregated to grids, communities, towns or H3 cells."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridplan.errors import InputError

logger = logging.getLogger(__name__)


Level = Literal["grid", "community", "town", "h3"]

TimeStep = Literal["week", "month", "quarter", "year"]

LEVELS: tuple[str, ...] = ("grid", "community", "town", "h3")

TIME_STEPS: tuple[str, ...] = ("week", "month", "quarter", "year")

#: pandas period frequency of each time step.
_FREQ = {"week": "W-SUN", "month": "M", "quarter": "Q", "year": "Y"}

#: Category value of events without one.
UNCATEGORISED = "未分类"

@dataclass(frozen=True)
class Areas:
    """Which areas events are counted in, and who neighbours whom (Gi*, emerging hot spots).

    Attributes
    ----------
    by
        ``"grid"``, ``"community"``, ``"town"`` or ``"h3"`` (``"auto"`` is resolved to H3 by
        :func:`gridplan.hotspots.optimize.optimized_areas` before analysis).
    h3_res
        H3 resolution when ``by="h3"`` (res 9 ≈ 0.105 km² per cell).
    distance_band_m
        Neighbours = areas whose centroids are within this distance (m), instead of contiguity.
    k_ring
        H3 neighbourhood: the cells within *k_ring* steps (1 = the 6 adjacent cells).
    units
        Pre-built :func:`analysis_units` (saves rebuilding H3 cells).

    """

    by: Level = "grid"
    h3_res: int = 9
    distance_band_m: float | None = None
    k_ring: int = 1
    units: gpd.GeoDataFrame | None = None


def _base_grids(plan: Any) -> gpd.GeoDataFrame:
    """Return the base grids of a Plan (or a base_grids GeoDataFrame passed directly)."""
    grids = plan.base_grids if hasattr(plan, "base_grids") else plan
    if not isinstance(grids, gpd.GeoDataFrame):
        raise InputError("expected a plan (gridplan.plans.Plan) or its base_grids GeoDataFrame")
    missing = [c for c in ("grid_code", "community_code", "town_code") if c not in grids.columns]
    if missing:
        raise InputError(f"base_grids lacks {', '.join(missing)}", layer="base_grids", field=missing[0])
    if grids.crs is None or not grids.crs.is_projected:
        raise InputError("base_grids must be in a projected CRS (metres), e.g. EPSG:4547",
                         layer="base_grids")
    return grids

def _events_frame(events: Any) -> pd.DataFrame:
    """Return x, y (+ reported_at, category) from an EventTable, GeoDataFrame or DataFrame."""
    df = events.gdf if hasattr(events, "gdf") else events
    if not isinstance(df, pd.DataFrame):
        raise InputError("expected located events as a DataFrame with x and y columns")
    if not {"x", "y"} <= set(df.columns):
        if isinstance(df, gpd.GeoDataFrame) and len(df) and df.geom_type.eq("Point").all():
            df = df.assign(x=df.geometry.x.to_numpy(), y=df.geometry.y.to_numpy())
        elif len(df) == 0 and isinstance(df, gpd.GeoDataFrame):
            df = df.assign(x=np.zeros(0), y=np.zeros(0))
        else:
            raise InputError("events need x and y columns (metres, compute CRS)", field="x")
    if "reported_at" in df.columns and not pd.api.types.is_datetime64_any_dtype(df["reported_at"]):
        parsed = pd.to_datetime(df["reported_at"], errors="coerce", format="ISO8601")
        df = df.assign(reported_at=parsed)
    return df

def filter_events(
    events: Any,
    *,
    category: str | Sequence[str] | None = None,
    since: Any = None,
    until: Any = None,
) -> pd.DataFrame:
    """Events of the given categories reported in ``[since, until]`` (dates inclusive).

    Examples
    --------
    >>> ev = pd.DataFrame({"x": [0.0, 1.0], "y": [0.0, 1.0], "category": ["治安", "消防"],
    ...                    "reported_at": ["2024-01-05", "2024-03-01"]})
    >>> len(filter_events(ev, category="治安")), len(filter_events(ev, since="2024-02-01"))
    (1, 1)

    """
    df = _events_frame(events)
    keep = np.ones(len(df), dtype=bool)
    if category is not None:
        cats = [category] if isinstance(category, str) else list(category)
        if "category" not in df.columns:
            raise InputError("events have no category column to filter on", field="category")
        keep &= df["category"].isin(cats).to_numpy()
    if since is not None or until is not None:
        if "reported_at" not in df.columns:
            raise InputError("events have no reported_at column to filter dates on", field="reported_at")
        t = df["reported_at"]
        if since is not None:
            keep &= (t >= pd.Timestamp(since)).to_numpy()
        if until is not None:
            end = pd.Timestamp(until)
            if end == end.normalize():
                end = end + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
            keep &= (t <= end).to_numpy()
    return df.loc[keep]

def assign_events(events: Any, plan: Any) -> pd.DataFrame:
    """Copy of the events with ``grid_code``, ``community_code`` and ``town_code`` from the plan.

    Events outside every base grid get ``None`` codes (see :func:`aggregate_events`, which drops and
    counts them).

    Parameters
    ----------
    events
        Located events (``x``, ``y`` in the plan's CRS), an EventTable or a (Geo)DataFrame.
    plan
        A :class:`gridplan.plans.Plan` or its ``base_grids``.

    Returns
    -------
    pandas.DataFrame

    """
    df = _events_frame(events)
    grids = _base_grids(plan)
    from gridplan.hexindex import GridLookup

    if hasattr(plan, "meta") and hasattr(plan, "h3_cells"):
        lookup = GridLookup.from_plan(plan)
    else:
        lookup = GridLookup(grids)
    codes = lookup.assign_xy(df["x"].to_numpy(np.float64), df["y"].to_numpy(np.float64))
    parent = grids.set_index("grid_code")[["community_code", "town_code"]]
    s = pd.Series(codes, index=df.index, dtype=object)
    out = df.drop(columns=[c for c in ("grid_code", "community_code", "town_code") if c in df.columns])
    return out.assign(
        grid_code=s,
        community_code=s.map(parent["community_code"]),
        town_code=s.map(parent["town_code"]),
    )

def _sum_cols(grids: pd.DataFrame) -> list[str]:
    return [c for c in ("households", "residents", "floating_residents") if c in grids.columns]

def _h3_units(grids: gpd.GeoDataFrame, res: int) -> gpd.GeoDataFrame:
    """H3 cells of resolution *res* touching the plan, with residents/households apportioned by area."""
    import h3

    from gridplan.crs import get_transformer

    to_ll = get_transformer(grids.crs, 4490)
    to_xy = get_transformer(4490, grids.crs)
    cells: set[str] = set()
    for geom in grids.geometry.to_numpy():
        if geom is None or geom.is_empty:
            continue
        ll = shapely.transform(geom, lambda c: np.column_stack(to_ll.transform(c[:, 0], c[:, 1])))
        cells.update(h3.h3shape_to_cells_experimental(h3.geo_to_h3shape(ll), res, contain="overlap"))
    ordered = sorted(cells)
    rings = []
    for c in ordered:
        b = np.asarray(h3.cell_to_boundary(c))  # (lat, lng)
        x, y = to_xy.transform(b[:, 1], b[:, 0])
        rings.append(np.column_stack([x, y]))
    geoms = shapely.polygons(rings) if rings else np.array([], dtype=object)
    units = gpd.GeoDataFrame({"code": ordered, "h3": ordered}, geometry=geoms, crs=grids.crs)
    cols = _sum_cols(grids)
    if cols and len(units):
        gg = grids.geometry.to_numpy()
        tree = shapely.STRtree(gg)
        iu, ig = tree.query(units.geometry.to_numpy(), predicate="intersects")
        inter = shapely.area(shapely.intersection(units.geometry.to_numpy()[iu], gg[ig]))
        share = inter / np.maximum(shapely.area(gg[ig]), 1e-9)
        for col in cols:
            vals = grids[col].to_numpy(np.float64)[ig] * share
            units[col] = np.bincount(iu, weights=vals, minlength=len(units))
    units["area_m2"] = shapely.area(units.geometry.to_numpy())
    return units

def analysis_units(plan: Any, by: Level = "grid", *, h3_res: int = 9) -> gpd.GeoDataFrame:
    """Areas to aggregate to: base grids, communities, towns or H3 cells, with population columns.

    Returns a GeoDataFrame with ``code`` (the grid/community/town code or H3 index), ``name``,
    ``households``, ``residents`` (when the plan has them), ``area_m2`` and geometry, plus the parent
    codes where they apply (``community_code``, ``town_code``).
    """
    if by not in LEVELS:
        raise InputError(f"unknown aggregation level {by!r}; use one of {', '.join(LEVELS)}", field="by")
    grids = _base_grids(plan)
    cols = _sum_cols(grids)
    if by == "grid":
        keep = ["grid_code", "community_code", "town_code", *cols]
        keep += [c for c in ("community_name", "town_name") if c in grids.columns]
        units = grids[[*keep, "geometry"]].copy()
        units.insert(0, "code", units["grid_code"].astype(str))
        units["name"] = units.get("community_name", pd.Series("", index=units.index)).astype(str) + \
            units["grid_code"].astype(str).str[-3:] + "网格"
    elif by in ("community", "town"):
        key = f"{by}_code"
        names = [c for c in (f"{by}_name",) if c in grids.columns]
        agg: dict[str, Any] = dict.fromkeys(cols, "sum")
        agg.update(dict.fromkeys(names, "first"))
        if by == "community":
            agg["town_code"] = "first"
        units = grids[[key, *cols, *names, *(["town_code"] if by == "community" else []), "geometry"]]
        units = units.dissolve(by=key, aggfunc=agg).reset_index()
        units.insert(0, "code", units[key].astype(str))
        units["name"] = units[names[0]].astype(str) if names else units["code"]
    else:
        units = _h3_units(grids, int(h3_res))
        units["name"] = units["code"]
    units["area_m2"] = shapely.area(units.geometry.to_numpy()) if by != "h3" else units["area_m2"]
    return units.reset_index(drop=True)

def _periods(t: pd.Series, time_step: str) -> pd.Series:
    if time_step not in TIME_STEPS:
        raise InputError(f"unknown time step {time_step!r}; use one of {', '.join(TIME_STEPS)}",
                         field="time_step")
    if not pd.api.types.is_datetime64_any_dtype(t):
        raise InputError("events need a parsed reported_at date for time steps", field="reported_at")
    if t.dt.tz is not None:
        t = t.dt.tz_localize(None)
    return t.dt.to_period(_FREQ[time_step])

#: ArcGIS's minimum number of time steps for an emerging hot spot trend.
MIN_TIME_STEPS = 10


def choose_time_step(reported_at: pd.Series) -> tuple[TimeStep, str]:
    """Pick the coarsest step (quarter, month, week) that still gives ``MIN_TIME_STEPS`` steps.

    A coarser step puts more events in every bin of the space-time cube, so the per-step Gi* of a
    sparse source (a few events a month at a hot spot) does not flicker in and out of significance,
    which ArcGIS's rules read as "sporadic"; ten steps is ArcGIS's minimum for a trend.  Three years
    of events give quarters (12 steps), one year months.  Returns the step and a sentence saying why.
    """
    for step in ("quarter", "month", "week"):
        per = _periods(reported_at.dropna(), step)
        n = int((per.max() - per.min()).n) + 1 if len(per) else 0
        if n >= MIN_TIME_STEPS:
            return step, f"{step}: {n} steps, the coarsest with >= {MIN_TIME_STEPS}"
    return "week", f"week: the events span fewer than {MIN_TIME_STEPS} weeks"


def _event_unit_codes(df: pd.DataFrame, units: gpd.GeoDataFrame, by: str, h3_res: int) -> pd.Series:
    if by == "h3":
        import h3

        from gridplan.crs import get_transformer

        res = h3.get_resolution(units["code"].iloc[0]) if len(units) else h3_res
        lon, lat = get_transformer(units.crs, 4490).transform(df["x"].to_numpy(), df["y"].to_numpy())
        codes = [h3.latlng_to_cell(la, lo, res) for la, lo in zip(lat.tolist(), lon.tolist(), strict=True)]
        s = pd.Series(codes, index=df.index, dtype=object)
        inside = s.isin(set(units["code"]))
        if "grid_code" in df.columns:  # same events as the grid layer: those inside the plan's grids
            inside &= df["grid_code"].notna()
        return s.where(inside)
    return df[f"{by}_code"]

def aggregate_events(
    events: Any,
    plan: Any,
    *,
    by: Level = "grid",
    h3_res: int = 9,
    time_step: TimeStep | None = None,
    category: str | Sequence[str] | None = None,
    split_category: bool = False,
    units: gpd.GeoDataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Count events per area (and per category and time step) with rates and densities.

    Parameters
    ----------
    events
        Located events (``x``, ``y`` in the plan's CRS; ``reported_at`` for time steps, ``category``).
    plan
        A :class:`gridplan.plans.Plan` or its ``base_grids``.
    by
        ``"grid"``, ``"community"``, ``"town"`` or ``"h3"``.
    h3_res
        H3 resolution when ``by="h3"`` (res 9 ≈ 0.105 km² per cell).
    time_step
        ``None`` (all time pooled), ``"week"``, ``"month"``, ``"quarter"`` or ``"year"``: one row per
        area and period from the first to the last period with events (zeros included).
    category
        Keep only these categories.
    split_category
        One row per category too (column ``category``).
    units
        Pre-built :func:`analysis_units` (saves rebuilding H3 cells).

    Returns
    -------
    geopandas.GeoDataFrame
        The unit columns of :func:`analysis_units` plus ``count``, ``density`` (events/km²),
        ``rate`` (events per 1,000 residents, NaN without residents), ``rate_hh`` (per 100
        households), and ``period`` / ``category`` when split.  ``attrs["n_outside"]`` counts events
        outside every area (dropped).

    """
    t0 = time.perf_counter()
    df = filter_events(events, category=category)
    if by not in LEVELS:
        raise InputError(f"unknown aggregation level {by!r}; use one of {', '.join(LEVELS)}", field="by")
    if units is None:
        units = analysis_units(plan, by, h3_res=h3_res)
    if by != "h3" and f"{by}_code" not in df.columns:
        df = assign_events(df, plan)
    codes = _event_unit_codes(df, units, by, h3_res)
    inside = codes.notna().to_numpy()
    n_outside = int((~inside).sum())
    df = df.loc[inside]
    keys: dict[str, pd.Series] = {"code": codes.loc[inside].astype(str)}
    index_levels: list[pd.Index] = [pd.Index(units["code"], name="code")]
    if split_category:
        if "category" not in df.columns:
            raise InputError("events have no category column", field="category")
        keys["category"] = df["category"].astype(str)
        cats = sorted(df["category"].astype(str).unique())
        index_levels.append(pd.Index(cats, name="category"))
    if time_step is not None:
        if "reported_at" not in df.columns:
            raise InputError("events need reported_at for time steps", field="reported_at")
        per = _periods(df["reported_at"], time_step)
        ok = per.notna().to_numpy()
        df, per = df.loc[ok], per.loc[ok]
        keys = {k: v.loc[ok] for k, v in keys.items()}
        keys["period"] = per
        prange = pd.period_range(per.min(), per.max(), freq=per.dt.freq) if len(per) else \
            pd.PeriodIndex([], freq=_FREQ[time_step])
        index_levels.append(pd.Index(prange, name="period"))
    counts = pd.Series(1, index=df.index).groupby(list(keys.values())).sum()
    counts.index.names = list(keys)
    full = pd.MultiIndex.from_product(index_levels) if len(index_levels) > 1 else index_levels[0]
    counts = counts.reindex(full, fill_value=0).rename("count").reset_index()
    if "period" in counts.columns:
        counts["period"] = counts["period"].astype(str)
    out = units.merge(counts, on="code", how="right")
    out = gpd.GeoDataFrame(out, geometry="geometry", crs=units.crs)
    out["count"] = out["count"].astype(np.int64)
    out["density"] = out["count"] / (out["area_m2"] / 1e6)
    res = out["residents"].to_numpy(np.float64) if "residents" in out else np.full(len(out), np.nan)
    hh = out["households"].to_numpy(np.float64) if "households" in out else np.full(len(out), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["rate"] = np.where(res > 0, out["count"] * 1000.0 / res, np.nan)
        out["rate_hh"] = np.where(hh > 0, out["count"] * 100.0 / hh, np.nan)
    out.attrs["n_outside"] = n_outside
    logger.info(
        "aggregated %s events to %s %s areas%s in %.2f s (%d outside every area)",
        f"{int(out['count'].sum()):,}", f"{len(units):,}", by,
        f" × {time_step}" if time_step else "", time.perf_counter() - t0, n_outside,
    )
    return out
