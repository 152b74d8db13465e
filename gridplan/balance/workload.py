"""Workload per atomic unit and base grid from configurable weights."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import yaml

from gridplan.errors import InputError

log = logging.getLogger(__name__)

#: Top-level keys a weights file may contain.
WEIGHT_KEYS: tuple[str, ...] = (
    "unit",
    "households",
    "residents",
    "floating_residents",
    "rental_rooms",
    "businesses",
    "cases_per_year",
    "hazards_per_year",
    "area_km2",
    "road_km",
)

_SCALAR_KEYS = ("households", "residents", "floating_residents", "rental_rooms", "area_km2", "road_km")

_CATEGORY_KEYS = ("businesses", "cases_per_year", "hazards_per_year")

#: Component columns of :func:`unit_workload` (hours per month each), in output order.
COMPONENTS: tuple[str, ...] = (
    "wl_households",
    "wl_residents",
    "wl_floating_residents",
    "wl_rental_rooms",
    "wl_businesses",
    "wl_cases",
    "wl_hazards",
    "wl_area",
    "wl_roads",
)

_COUNT_FIELDS = ("households", "residents", "floating_residents", "rental_rooms")

def default_weights_path() -> Path:
    """Path of the packaged default weights file ``gridplan/data/workload.yml``."""
    return Path(str(resources.files("gridplan") / "data" / "workload.yml"))

def _number(value: Any, *, file: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(f"weight must be a finite number, got {value!r}", file=file, field=field)
    if value < 0:
        raise InputError(f"weight must be >= 0, got {value}", file=file, field=field)
    return float(value)

def _check_weights(raw: Mapping[str, Any], *, file: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in WEIGHT_KEYS:
            raise InputError(
                f"unknown weight key {key!r}; known keys: {', '.join(WEIGHT_KEYS)}", file=file, field=key
            )
        if key == "unit":
            out[key] = str(value)
        elif key in _SCALAR_KEYS:
            out[key] = _number(value, file=file, field=key)
        else:
            if not isinstance(value, Mapping):
                raise InputError("must be a mapping with 'default' and 'categories'", file=file, field=key)
            sub: dict[str, Any] = {}
            for k2, v2 in value.items():
                if k2 == "default":
                    sub["default"] = _number(v2, file=file, field=f"{key}.default")
                elif k2 == "categories":
                    if v2 is None:
                        v2 = {}
                    if not isinstance(v2, Mapping):
                        raise InputError(
                            "must be a mapping category: weight", file=file, field=f"{key}.categories"
                        )
                    sub["categories"] = {
                        str(c): _number(w, file=file, field=f"{key}.categories.{c}") for c, w in v2.items()
                    }
                else:
                    raise InputError(
                        f"unknown weight key {k2!r} under {key!r}; known keys: default, categories",
                        file=file,
                        field=f"{key}.{k2}",
                    )
            out[key] = sub
    return out

def load_weights(path: str | Path | None = None) -> dict[str, Any]:
    """Load workload weights: the packaged defaults, overridden by the keys of *path*.

    Parameters
    ----------
    path
        A YAML file with any subset of :data:`WEIGHT_KEYS` (see ``gridplan/data/workload.yml`` for
        their meaning: hours of a worker's time per month per household, per event a year …).
        ``None`` returns the defaults.

    Returns
    -------
    dict
        Complete weights: scalar keys → float, ``businesses``/``cases_per_year``/``hazards_per_year``
        → ``{"default": float, "categories": {name: float}}``.

    Raises
    ------
    InputError
        Unknown key (named), negative or non-numeric weight, unreadable YAML.

    Examples
    --------
    >>> w = load_weights()
    >>> w["unit"], w["households"] > 0, "治安" in w["cases_per_year"]["categories"]
    ('hours per month', True, True)

    """
    default_file = default_weights_path()
    weights = _check_weights(yaml.safe_load(default_file.read_text(encoding="utf-8")), file=str(default_file))
    if path is None:
        return weights
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML ({exc.__class__.__name__})", file=path) from None
    if raw is None:
        return weights
    if not isinstance(raw, Mapping):
        raise InputError("a weights file must be a mapping of key: weight", file=path)
    user = _check_weights(raw, file=str(path))
    for key, value in user.items():
        if key in _CATEGORY_KEYS:
            merged = dict(weights[key])
            merged["categories"] = {**weights[key].get("categories", {}), **value.get("categories", {})}
            if "default" in value:
                merged["default"] = value["default"]
            weights[key] = merged
        else:
            weights[key] = value
    return weights

def _category_weights(categories: pd.Series, spec: Mapping[str, Any]) -> np.ndarray:
    table = spec.get("categories", {})
    default = float(spec.get("default", 0.0))
    cats = categories.astype("string").fillna("")
    return cats.map(lambda c: table.get(c, default)).to_numpy(dtype=float)

def _points_of(obj: Any) -> gpd.GeoDataFrame:
    """Accept a GeoDataFrame of points or an EventTable-like object with ``.gdf``."""
    gdf = getattr(obj, "gdf", obj)
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise InputError(f"expected a point GeoDataFrame of events or units, got {type(obj).__name__}")
    return gdf

def _assign_points(unit_geoms: np.ndarray, tree: shapely.STRtree, points: np.ndarray) -> np.ndarray:
    """Index of the atomic unit containing each point (-1 outside every unit)."""
    out = np.full(len(points), -1, dtype=np.int64)
    if len(points) == 0:
        return out
    pidx, uidx = tree.query(points, predicate="intersects")
    # first hit per point (points on a shared edge go to the lowest unit index: deterministic)
    order = np.lexsort((uidx, pidx))
    pidx, uidx = pidx[order], uidx[order]
    first = np.r_[True, pidx[1:] != pidx[:-1]] if len(pidx) else np.zeros(0, bool)
    out[pidx[first]] = uidx[first]
    return out

def _years_spanned(times: pd.Series) -> float:
    t = pd.to_datetime(times, errors="coerce", utc=True).dropna()
    if t.empty:
        return 1.0
    days = (t.max() - t.min()).total_seconds() / 86400.0 + 1.0
    return max(days, 30.4375) / 365.25

def unit_workload(
    plan: Any,
    *,
    units: gpd.GeoDataFrame | None = None,
    events: Mapping[str, Any] | None = None,
    roads: gpd.GeoDataFrame | None = None,
    weights: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Workload of every atomic unit of *plan*, with its breakdown by component.

    Parameters
    ----------
    plan
        A :class:`gridplan.plans.Plan` (or any object with an ``atomic_units`` GeoDataFrame having
        ``unit_id``, ``base_grid_code``, ``community_code``, ``households``, ``residents``,
        ``floating_residents``, ``rental_rooms``; missing count fields count as 0).
    units
        The ``units`` (businesses) point layer with a ``category`` field, in the plan's CRS.
    events
        ``{"cases": …, "hazards": …}``: located events (point GeoDataFrame or
        :class:`gridplan.layers.EventTable`) with ``category`` and ``reported_at``.  Counts are turned
        into events per year over each table's span (first to last ``reported_at``, ≥ one month).
    roads
        Road lines; their length inside each unit (km) feeds ``road_km``.
    weights
        Output of :func:`load_weights` (default: the packaged defaults).

    Returns
    -------
    pandas.DataFrame
        One row per atomic unit (plan order): ``unit_id``, ``base_grid_code``, ``community_code``,
        the drivers ``businesses``, ``cases_per_year``, ``hazards_per_year``, ``area_km2``,
        ``road_km``, one ``wl_<component>`` column per component (hours per month) and ``workload``
        (their sum).

    """
    w = dict(weights) if weights is not None else load_weights()
    au = plan.atomic_units
    n = len(au)
    geoms = au.geometry.to_numpy()
    out = pd.DataFrame(
        {
            "unit_id": au["unit_id"].astype(str).to_numpy(),
            "base_grid_code": au["base_grid_code"].astype("string").fillna("").to_numpy(dtype=object),
            "community_code": au["community_code"].astype("string").fillna("").to_numpy(dtype=object),
        }
    )
    for f in _COUNT_FIELDS:
        vals = pd.to_numeric(au[f], errors="coerce").fillna(0).to_numpy(float) if f in au else np.zeros(n)
        out[f] = vals
    area_m2 = shapely.area(geoms)
    out["area_km2"] = np.nan_to_num(area_m2) / 1e6
    tree = shapely.STRtree(geoms)

    bus: np.ndarray = np.zeros(n)
    wl_bus: np.ndarray = np.zeros(n)
    if units is not None and len(units):
        ug = _points_of(units)
        idx = _assign_points(geoms, tree, ug.geometry.to_numpy())
        cat = ug["category"] if "category" in ug else pd.Series([""] * len(ug))
        wts = _category_weights(cat.reset_index(drop=True), w["businesses"])
        ok = idx >= 0
        bus = np.bincount(idx[ok], minlength=n).astype(np.float64)
        wl_bus = np.bincount(idx[ok], weights=wts[ok], minlength=n)
    out["businesses"] = bus

    per_year: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for kind, key in (("cases", "cases_per_year"), ("hazards", "hazards_per_year")):
        cnt, wl = np.zeros(n), np.zeros(n)
        src = (events or {}).get(kind)
        if src is not None:
            eg = _points_of(src)
            if len(eg):
                years = _years_spanned(eg["reported_at"]) if "reported_at" in eg else 1.0
                idx = _assign_points(geoms, tree, eg.geometry.to_numpy())
                cat = eg["category"] if "category" in eg else pd.Series([""] * len(eg))
                wts = _category_weights(cat.reset_index(drop=True), w[key])
                ok = idx >= 0
                cnt = np.bincount(idx[ok], minlength=n) / years
                wl = np.bincount(idx[ok], weights=wts[ok], minlength=n) / years
        per_year[kind] = (cnt, wl)
    out["cases_per_year"] = per_year["cases"][0]
    out["hazards_per_year"] = per_year["hazards"][0]

    road_km = np.zeros(n)
    if roads is not None and len(roads):
        lines = roads.geometry.to_numpy()
        li, ui = tree.query(lines, predicate="intersects")
        if len(li):
            lengths = shapely.length(shapely.intersection(lines[li], geoms[ui]))
            road_km = np.bincount(ui, weights=np.nan_to_num(lengths), minlength=n) / 1000.0
    out["road_km"] = road_km

    out["wl_households"] = w["households"] * out["households"]
    out["wl_residents"] = w["residents"] * out["residents"]
    out["wl_floating_residents"] = w["floating_residents"] * out["floating_residents"]
    out["wl_rental_rooms"] = w["rental_rooms"] * out["rental_rooms"]
    out["wl_businesses"] = wl_bus
    out["wl_cases"] = per_year["cases"][1]
    out["wl_hazards"] = per_year["hazards"][1]
    out["wl_area"] = w["area_km2"] * out["area_km2"]
    out["wl_roads"] = w["road_km"] * out["road_km"]
    out["workload"] = out[list(COMPONENTS)].sum(axis=1)
    log.info(
        "workload of %d atomic units: %.0f hours/month (%s)",
        n,
        out["workload"].sum(),
        ", ".join(f"{c[3:]} {out[c].sum():.0f}" for c in COMPONENTS if out[c].sum() > 0),
    )
    return out

def grid_workload(unit_wl: pd.DataFrame) -> pd.DataFrame:
    """Sum a :func:`unit_workload` table per base grid, keeping the component breakdown.

    Parameters
    ----------
    unit_wl
        Output of :func:`unit_workload` (units with an empty ``base_grid_code`` are left out).

    Returns
    -------
    pandas.DataFrame
        One row per ``grid_code`` (sorted): ``community_code``, ``units``, the summed drivers and
        ``wl_*`` components, ``workload`` and ``share_<component>`` (fraction of the grid's workload).

    Examples
    --------
    >>> t = pd.DataFrame({"unit_id": ["a", "b", "c"], "base_grid_code": ["g1", "g1", "g2"],
    ...                   "community_code": ["c", "c", "c"], "wl_households": [1.0, 2.0, 4.0],
    ...                   "workload": [1.0, 2.0, 4.0]})
    >>> grid_workload(t)[["grid_code", "units", "workload"]].to_dict("records")
    [{'grid_code': 'g1', 'units': 2, 'workload': 3.0}, {'grid_code': 'g2', 'units': 1, 'workload': 4.0}]

    """
    t = unit_wl[unit_wl["base_grid_code"].astype(str) != ""]
    num = [
        c
        for c in t.columns
        if c not in ("unit_id", "base_grid_code", "community_code") and pd.api.types.is_numeric_dtype(t[c])
    ]
    g = t.groupby("base_grid_code", sort=True)
    out = g[num].sum()
    out.insert(0, "units", g.size().astype(int))
    out.insert(0, "community_code", g["community_code"].first())
    for c in COMPONENTS:
        if c in out:
            out[f"share_{c[3:]}"] = np.where(
                out["workload"] > 0, out[c] / out["workload"].where(out["workload"] > 0, 1.0), 0.0
            )
    out = out.reset_index().rename(columns={"base_grid_code": "grid_code"})
    return out
