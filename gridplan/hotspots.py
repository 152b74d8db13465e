"""Hot spots: events aggregated to areas, Getis-Ord Gi* with FDR bins, year-on-year tables (§3.5).

What this module owns
---------------------
* :func:`assign_events` — every located event gets its base grid, community and town (through
  :class:`gridplan.hexindex.GridLookup`, exact at grid edges).
* :func:`analysis_units` / :func:`aggregate_events` — counts per base grid, community, town or H3 cell
  (any resolution; cells covering the plan, residents and households apportioned from grids by
  area), with rates per 1,000 residents and per 100 households and densities per km², optionally by
  category and by time step (a full cross product, zeros included, ready for a space-time cube).
* :func:`spatial_weights` — the neighbourhood: queen contiguity for polygons (grids share edges, so
  an STRtree ``dwithin`` query with a 0.5 m tolerance replaces libpysal's slower
  ``Queen.from_dataframe``/``fuzzy_contiguity``), the H3 k-ring (``grid_disk``) for cells, or a fixed
  distance band between centroids when the user sets one.  Islands (no neighbour) are kept and
  reported through ``n_neighbors = 0``; their Gi* compares the area with the mean on its own.
* :func:`gi_star` — Getis-Ord Gi* through ``esda.G_Local(star=True, transform="B")`` (binary weights
  with the area itself included, as ArcGIS's Hot Spot Analysis), and :func:`fdr_bins`.
* :func:`hotspot_analysis` — the ``hotspots`` layer of HOT.gpkg.
* :func:`year_on_year` — the ``yoy`` table; :func:`write_table` (CSV utf-8-sig / .xlsx) and
  :func:`write_gpkg` (atomic GeoPackage with several layers and plain tables).

Output fields (ArcGIS users will recognise them)
-----------------------------------------------
``count`` events in the area; ``density`` events per km²; ``rate`` events per 1,000 residents;
``rate_hh`` events per 100 households; ``gi_z`` the Gi* z-score (ArcGIS ``GiZScore``); ``gi_p`` its
two-sided p-value from the normal approximation (ArcGIS ``GiPValue``); ``gi_p_sim`` the two-sided
permutation pseudo p-value (conditional randomisation, ``2 · (k + 1) / (permutations + 1)``);
``gi_bin`` ∈ −3..3 (ArcGIS ``Gi_Bin``): ±3/±2/±1 = hot/cold spot at 99/95/90 % confidence, 0 = not
significant.  As in ArcGIS, **z and p are raw; only ``gi_bin`` is FDR-corrected** (Benjamini-
Hochberg at each confidence level over all areas, ``esda.fdr``).  By default the bins use ``gi_p``
(the analytic p, as ArcGIS): with 999 permutations the smallest permutation p is 0.002, and a
99 % FDR bin would then need at least 20 % of all areas at that floor, so permutation bins can
hardly ever reach ±3; ``inference="permutation"`` bins on ``gi_p_sim`` instead.
``n_neighbors`` counts the neighbours (the area itself not included).

esda and libpysal are imported inside the functions that use them (≈1.5 s import).
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike, NDArray

from gridplan.errors import InputError

logger = logging.getLogger(__name__)

Level = Literal["grid", "community", "town", "h3"]
TimeStep = Literal["week", "month", "quarter", "year"]
Value = Literal["auto", "count", "density", "rate"]

LEVELS: tuple[str, ...] = ("grid", "community", "town", "h3")
TIME_STEPS: tuple[str, ...] = ("week", "month", "quarter", "year")
VALUES: tuple[str, ...] = ("auto", "count", "density", "rate")
#: pandas period frequency of each time step.
_FREQ = {"week": "W-SUN", "month": "M", "quarter": "Q", "year": "Y"}
#: Confidence levels of ``gi_bin``: (alpha, bin).
BIN_LEVELS: tuple[tuple[float, int], ...] = ((0.10, 1), (0.05, 2), (0.01, 3))
#: Category value of the all-categories rows of :func:`year_on_year`.
ALL_CATEGORIES = "全部"
#: Category value of events without one.
UNCATEGORISED = "未分类"
#: Tolerance (m) for two polygons to count as neighbours (hand-drawn edges rarely match exactly).
CONTIGUITY_TOLERANCE_M = 0.5

__all__ = [
    "ALL_CATEGORIES",
    "aggregate_events",
    "analysis_units",
    "assign_events",
    "fdr_bins",
    "gi_star",
    "gi_star_analytic",
    "hotspot_analysis",
    "neighbour_matrix",
    "resolve_value",
    "spatial_weights",
    "write_gpkg",
    "write_table",
    "year_on_year",
]


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# analysis units
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# neighbourhoods and Gi*
# --------------------------------------------------------------------------------------------


def _pairs(units: gpd.GeoDataFrame, by: str, distance_band_m: float | None) -> tuple[NDArray, NDArray]:
    if distance_band_m is not None:
        if not distance_band_m > 0:
            raise InputError(f"distance band must be positive, got {distance_band_m}",
                             field="distance_band_m")
        from scipy.spatial import cKDTree

        c = shapely.centroid(units.geometry.to_numpy())
        xy = np.column_stack([shapely.get_x(c), shapely.get_y(c)])
        pr = cKDTree(xy).query_pairs(float(distance_band_m), output_type="ndarray")
        i = np.concatenate([pr[:, 0], pr[:, 1]]) if len(pr) else np.zeros(0, np.int64)
        j = np.concatenate([pr[:, 1], pr[:, 0]]) if len(pr) else np.zeros(0, np.int64)
        return i.astype(np.int64), j.astype(np.int64)
    if by == "h3" and "h3" in units.columns:
        import h3

        pos = {c: k for k, c in enumerate(units["h3"])}
        ii: list[int] = []
        jj: list[int] = []
        for k, c in enumerate(units["h3"]):
            for nb in h3.grid_ring(c, 1):
                m = pos.get(nb)
                if m is not None:
                    ii.append(k)
                    jj.append(m)
        return np.asarray(ii, dtype=np.int64), np.asarray(jj, dtype=np.int64)
    geoms = units.geometry.to_numpy()
    tree = shapely.STRtree(geoms)
    i, j = tree.query(geoms, predicate="dwithin", distance=CONTIGUITY_TOLERANCE_M)
    keep = i != j
    return i[keep].astype(np.int64), j[keep].astype(np.int64)


def spatial_weights(
    units: gpd.GeoDataFrame, *, by: Level = "grid", distance_band_m: float | None = None
) -> tuple[Any, NDArray[np.int64]]:
    """Binary neighbourhood graph of the areas (the area itself not included).

    Parameters
    ----------
    units
        Areas from :func:`analysis_units` (an ``h3`` column selects the k-ring for ``by="h3"``).
    by
        Level of the areas: polygons use queen contiguity (shared edge or corner within 0.5 m),
        ``"h3"`` the first k-ring (6 neighbours).
    distance_band_m
        If set, neighbours are areas whose centroids lie within this distance (metres) instead.

    Returns
    -------
    (libpysal.graph.Graph, numpy.ndarray)
        The graph (islands carry a zero self-weight, libpysal's convention) and the neighbour count
        of each area.

    """
    from libpysal.graph import Graph

    n = len(units)
    i, j = _pairs(units, by, distance_band_m)
    n_nb = np.bincount(i, minlength=n).astype(np.int64)
    isl = np.flatnonzero(n_nb == 0)
    focal = np.concatenate([i, isl])
    neigh = np.concatenate([j, isl])
    w = np.concatenate([np.ones(len(i)), np.zeros(len(isl))])
    order = np.lexsort((neigh, focal))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = Graph.from_arrays(focal[order], neigh[order], w[order])
    if len(isl):
        logger.info("%d of %d areas have no neighbour (islands)", len(isl), n)
    return graph, n_nb


def neighbour_matrix(
    units: gpd.GeoDataFrame, *, by: Level = "grid", distance_band_m: float | None = None
) -> Any:
    """Return the neighbourhood of :func:`spatial_weights` as an ``(n, n)`` CSR 0/1 matrix (no diagonal)."""
    from scipy import sparse

    i, j = _pairs(units, by, distance_band_m)
    n = len(units)
    m = sparse.csr_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    m.data[:] = 1.0
    return m


def gi_star_analytic(values: ArrayLike, neighbours: Any) -> NDArray[np.float64]:
    """Gi* z-scores (Getis & Ord 1992; Ord & Getis 1995) with binary weights and the area itself.

    ``z_i = (Σ_j w_ij x_j − x̄ W_i) / (S · sqrt((n Σ_j w_ij² − W_i²) / (n − 1)))`` with ``w_ii = 1``,
    ``W_i = Σ_j w_ij``, ``S`` the population standard deviation — the z of ArcGIS's Hot Spot Analysis
    and of ``esda.G_Local(star=True, transform="B")`` (tested equal).  Vectorised over many columns:
    *values* may be ``(n,)`` or ``(n, k)`` (one column per time step).

    Parameters
    ----------
    values
        Analysis values per area.
    neighbours
        ``(n, n)`` scipy sparse binary matrix of neighbours without the diagonal.

    Examples
    --------
    >>> from scipy import sparse
    >>> nb = sparse.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]]))
    >>> gi_star_analytic([1.0, 2.0, 9.0], nb).round(3).tolist()   # first: (3 - 4·2) / (3.559 · 1)
    [-1.405, 0.0, 0.843]

    """
    x = np.asarray(values, dtype=np.float64)
    one = x.ndim == 1
    x2 = x[:, None] if one else x
    n = x2.shape[0]
    wi = np.asarray(neighbours.sum(axis=1)).ravel() + 1.0  # binary: Σw = Σw² = neighbours + self
    local = neighbours @ x2 + x2
    mean = x2.mean(axis=0)
    s = np.sqrt(np.maximum((x2**2).mean(axis=0) - mean**2, 0.0))
    den = np.sqrt(np.maximum(n * wi - wi**2, 0.0) / max(n - 1, 1))[:, None] * s[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(den > 0, (local - mean[None, :] * wi[:, None]) / den, 0.0)
    return z[:, 0] if one else z


def fdr_bins(z: ArrayLike, p: ArrayLike, *, fdr: bool = True) -> NDArray[np.int8]:
    """``gi_bin`` ∈ −3..3: sign of z times the highest confidence level (90/95/99 %) passed.

    With ``fdr=True`` (default) each level α uses the Benjamini-Hochberg cut-off of ``esda.fdr(p,
    α)`` over all areas; otherwise ``p ≤ α``.

    Examples
    --------
    >>> fdr_bins([4.0, -2.0, 0.1], [0.00006, 0.045, 0.92], fdr=False).tolist()
    [3, -2, 0]

    """
    za = np.asarray(z, dtype=np.float64)
    pa = np.asarray(p, dtype=np.float64)
    bins = np.zeros(za.shape, dtype=np.int8)
    ok = np.isfinite(pa) & np.isfinite(za)
    if not ok.any():
        return bins
    if fdr:
        from esda import fdr as esda_fdr
    for alpha, level in BIN_LEVELS:  # 90 % first, then overwrite with 95 % and 99 %
        cut = float(esda_fdr(pa[ok], alpha)) if fdr else alpha
        sig = ok & (pa <= cut)
        bins[sig] = level
    return (np.sign(za) * bins).astype(np.int8)


def _p_two_sided(z: NDArray[np.float64]) -> NDArray[np.float64]:
    from scipy.stats import norm

    return np.minimum(1.0, 2.0 * norm.sf(np.abs(z)))


def gi_star(
    values: ArrayLike,
    graph: Any,
    *,
    permutations: int = 999,
    seed: int | None = 0,
    inference: Literal["analytic", "permutation"] = "analytic",
    fdr: bool = True,
) -> pd.DataFrame:
    """Getis-Ord Gi* of *values* on *graph* through ``esda.G_Local``, with ArcGIS-style bins.

    Parameters
    ----------
    values
        One analysis value per area.
    graph
        Neighbourhood from :func:`spatial_weights`.
    permutations
        Conditional permutations for ``gi_p_sim`` (0 = analytic only).
    seed
        Random seed of the permutations (reproducible output).
    inference
        Which p-value the FDR bins use: ``"analytic"`` (``gi_p``, ArcGIS) or ``"permutation"``.
    fdr
        Apply the FDR correction to the bins.

    Returns
    -------
    pandas.DataFrame
        ``gi_z``, ``gi_p``, ``gi_p_sim`` (NaN without permutations), ``gi_bin``.

    """
    import esda

    y = np.asarray(values, dtype=np.float64)
    if not np.isfinite(y).all():
        raise InputError("the Gi* analysis values contain NaN or infinite values", field="value")
    n = len(y)
    if inference not in ("analytic", "permutation"):
        raise InputError(f"unknown inference {inference!r}; use analytic or permutation", field="inference")
    if inference == "permutation" and permutations < 1:
        raise InputError("permutation inference needs permutations ≥ 1", field="permutations")
    if n < 3 or float(np.ptp(y)) == 0.0:
        # no variation: nothing can be a hot or cold spot
        zeros = np.zeros(n)
        return pd.DataFrame({"gi_z": zeros, "gi_p": np.ones(n), "gi_p_sim": np.ones(n) if permutations else
                             np.full(n, np.nan), "gi_bin": np.zeros(n, dtype=np.int8)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lg = esda.G_Local(y, graph, transform="B", star=True, permutations=int(permutations),
                          seed=seed, n_jobs=1, keep_simulations=False)
    z = np.asarray(lg.Zs, dtype=np.float64)
    z = np.where(np.isfinite(z), z, 0.0)
    p = _p_two_sided(z)
    p_sim = np.full(n, np.nan)
    if permutations:
        p_sim = np.minimum(1.0, 2.0 * np.asarray(lg.p_sim, dtype=np.float64))
    bins = fdr_bins(z, p if inference == "analytic" else p_sim, fdr=fdr)
    return pd.DataFrame({"gi_z": z, "gi_p": p, "gi_p_sim": p_sim, "gi_bin": bins})


def resolve_value(value: str, by: str, units: pd.DataFrame) -> str:
    """Resolve ``"auto"``: ``rate`` for plan polygons with residents, else ``density``.

    Base grids are drawn to a household band (300–500 households), so events per 1,000 residents is
    the comparison leaders make and the fair one between grids of very different size; H3 cells are
    equal-area, and their apportioned residents are often zero, so they use density.

    Examples
    --------
    >>> resolve_value("auto", "grid", pd.DataFrame({"residents": [900]})), resolve_value("auto", "h3", None)
    ('rate', 'density')

    """
    if value not in VALUES:
        raise InputError(f"unknown analysis value {value!r}; use one of {', '.join(VALUES)}", field="value")
    if value != "auto":
        return value
    has_res = units is not None and "residents" in units.columns and bool((units["residents"] > 0).all())
    return "rate" if by != "h3" and has_res else "density"


def _analysis_value(agg: pd.DataFrame, value: str) -> NDArray[np.float64]:
    v = agg[value].to_numpy(np.float64)
    return np.where(np.isfinite(v), v, 0.0)


def hotspot_analysis(
    events: Any,
    plan: Any,
    *,
    by: Level = "grid",
    h3_res: int = 9,
    value: Value = "auto",
    category: str | Sequence[str] | None = None,
    distance_band_m: float | None = None,
    permutations: int = 999,
    seed: int | None = 0,
    inference: Literal["analytic", "permutation"] = "analytic",
    units: gpd.GeoDataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Build the ``hotspots`` layer: one feature per grid/community/town/H3 cell with Gi* and its bin.

    Parameters
    ----------
    events, plan, by, h3_res, category, units
        As :func:`aggregate_events`.
    value
        What Gi* analyses: ``"rate"`` (events per 1,000 residents; areas without residents count 0),
        ``"density"`` (events per km²), ``"count"``, or ``"auto"`` (default, :func:`resolve_value`:
        rate for grids/communities/towns, density for H3 cells).  Raw counts on grids of unequal
        size flag large grids for their size alone (3 % of grids at 99 % on a uniform control of
        the sample city, against 0 % for density and 1.6 % for rate).
    distance_band_m
        Fixed distance band (m) between centroids instead of contiguity / k-ring.
    permutations, seed, inference
        As :func:`gi_star`.

    Returns
    -------
    geopandas.GeoDataFrame
        Unit columns, ``count``, ``density``, ``rate``, ``rate_hh``, ``gi_z``, ``gi_p``,
        ``gi_p_sim``, ``gi_bin``, ``n_neighbors``; ``attrs`` carries the settings used.

    """
    t0 = time.perf_counter()
    agg = aggregate_events(events, plan, by=by, h3_res=h3_res, category=category, units=units)
    if int(agg["count"].sum()) == 0:
        raise InputError("no located events fall inside the plan's grids")
    used = resolve_value(value, by, agg)
    graph, n_nb = spatial_weights(agg, by=by, distance_band_m=distance_band_m)
    gi = gi_star(_analysis_value(agg, used), graph, permutations=permutations, seed=seed,
                 inference=inference)
    out = agg.copy()
    for col in gi.columns:
        out[col] = gi[col].to_numpy()
    out["n_neighbors"] = n_nb
    out.attrs.update({
        "by": by, "value": used, "permutations": permutations, "inference": inference,
        "neighbourhood": f"distance band {distance_band_m:g} m" if distance_band_m else
        ("H3 k-ring 1" if by == "h3" else "queen contiguity"), "n_outside": agg.attrs.get("n_outside", 0),
    })
    counts = {b: int((out["gi_bin"] == b).sum()) for b in (3, 2, 1, -1, -2, -3)}
    logger.info("Gi* on %s %s areas (%s): hot 99/95/90 %% = %d/%d/%d, cold = %d/%d/%d in %.2f s",
                f"{len(out):,}", by, out.attrs["neighbourhood"], counts[3], counts[2], counts[1],
                counts[-3], counts[-2], counts[-1], time.perf_counter() - t0)
    return out


# --------------------------------------------------------------------------------------------
# year on year
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# writers
# --------------------------------------------------------------------------------------------


def _tmp_for(path: Path) -> Path:
    if not path.parent.exists():
        raise InputError(f"output folder {path.parent} does not exist", file=path)
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


def write_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    r"""Write a table as CSV (UTF-8 with BOM so Excel shows Chinese) or .xlsx (openpyxl), atomically.

    Examples
    --------
    >>> import codecs, tempfile
    >>> p = write_table(pd.DataFrame({"名称": ["长安镇"]}), Path(tempfile.mkdtemp()) / "t.csv")
    >>> p.read_bytes().startswith(codecs.BOM_UTF8)
    True

    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise InputError("table output must end in .csv or .xlsx", file=target)
    tmp = _tmp_for(target)
    try:
        if suffix == ".csv":
            df.to_csv(tmp, index=False, encoding="utf-8-sig")
        else:
            plain = df.copy()
            for col in plain.columns:  # openpyxl cannot write pandas NA
                if str(plain[col].dtype) in ("Int64", "Float64", "boolean"):
                    plain[col] = plain[col].astype(object).where(plain[col].notna(), None)
            plain.to_excel(tmp, index=False, engine="openpyxl", sheet_name=target.stem[:31] or "table")
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target


def write_gpkg(path: str | os.PathLike[str], layers: dict[str, pd.DataFrame]) -> Path:
    """Write layers (GeoDataFrames) and tables (DataFrames) into one new GeoPackage, atomically."""
    import pyogrio

    target = Path(path)
    tmp = _tmp_for(target)
    try:
        for k, (name, frame) in enumerate(layers.items()):
            data = frame
            if not isinstance(frame, gpd.GeoDataFrame):
                data = frame.copy()
                for col in data.columns:
                    if str(data[col].dtype) in ("Int64", "Float64"):
                        data[col] = data[col].astype("float64")
            pyogrio.write_dataframe(data, tmp, layer=name, driver="GPKG", append=k > 0)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target

