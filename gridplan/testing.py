"""Assertions for tests of code that makes or stores plans (as :mod:`geopandas.testing` for frames).

:func:`assert_plan_equal` compares two :class:`~gridplan.plans.Plan` objects table by table and
says which layer, column and row differ.  Geometries are compared as shapes (``shapely.equals``:
a ring that starts at another vertex is the same ring) or within a tolerance in metres, and must
be in the same CRS; the other columns by :func:`pandas.testing.assert_frame_equal`.

Storage round trips change what does not matter and keep what does: a GeoPackage gives nullable
integers back as floats, PostGIS gives rows back in key order.  ``check_dtype=False`` and
``check_row_order=False`` say so explicitly, instead of each test writing its own comparison.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridplan.plans import Plan

__all__ = ["PLAN_KEYS", "assert_plan_equal"]

#: The columns that identify a row of each plan table (row order is compared after sorting by them).
PLAN_KEYS: Mapping[str, Sequence[str]] = {
    "atomic_units": ("unit_id",),
    "base_grids": ("grid_code",),
    "dept_crosswalk": ("department", "dept_grid_id", "grid_code"),
    "dept_fit": ("department", "dept_grid_id"),
    "h3_cells": ("h3", "grid_code"),
    "qa_issues": ("issue", "layer", "feature_id"),
}


def _in_key_order(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    key = [c for c in PLAN_KEYS.get(name, ()) if c in frame.columns] or list(frame.columns[:1])
    if not key or not len(frame):
        return frame.reset_index(drop=True)
    cols = [c for c in key if c != frame.geometry.name] if isinstance(frame, gpd.GeoDataFrame) else key
    order = frame[cols].astype(str).apply(tuple, axis=1).argsort(kind="stable")
    return frame.iloc[order.to_numpy()].reset_index(drop=True)


def _assert_geometry_equal(name: str, left: gpd.GeoDataFrame, right: gpd.GeoDataFrame, atol_m: float) -> None:
    if not (left.crs is None and right.crs is None) and not (
        left.crs is not None and left.crs.equals(right.crs)
    ):
        raise AssertionError(f"plan layer {name}: CRS {left.crs} vs {right.crs}")
    a = np.asarray(left.geometry.values, dtype=object)
    b = np.asarray(right.geometry.values, dtype=object)
    missing = shapely.is_missing(a) | shapely.is_empty(a)
    same = missing == (shapely.is_missing(b) | shapely.is_empty(b))
    have = ~missing & same
    if atol_m > 0:
        same[have] = shapely.equals_exact(
            shapely.normalize(a[have]), shapely.normalize(b[have]), tolerance=atol_m
        )
    else:
        same[have] = shapely.equals(a[have], b[have])
    if not same.all():
        bad = np.flatnonzero(~same)
        raise AssertionError(
            f"plan layer {name}: {len(bad)} of {len(a)} geometries differ"
            f"{f' by more than {atol_m} m' if atol_m > 0 else ''} (first at row {int(bad[0])})"
        )


def _assert_table_equal(
    name: str, left: pd.DataFrame, right: pd.DataFrame, *, check_dtype: bool, atol_m: float
) -> None:
    if list(left.columns) != list(right.columns):
        raise AssertionError(
            f"plan layer {name}: columns differ: {list(left.columns)} vs {list(right.columns)}"
        )
    if len(left) != len(right):
        raise AssertionError(f"plan layer {name}: {len(left)} rows vs {len(right)}")
    spatial = isinstance(left, gpd.GeoDataFrame) and isinstance(right, gpd.GeoDataFrame)
    if isinstance(left, gpd.GeoDataFrame) != isinstance(right, gpd.GeoDataFrame):
        raise AssertionError(f"plan layer {name}: one table has geometry, the other has not")
    if spatial:
        _assert_geometry_equal(name, left, right, atol_m)
        left, right = (
            pd.DataFrame(left.drop(columns=left.geometry.name)),
            pd.DataFrame(right.drop(columns=right.geometry.name)),
        )
    try:
        pd.testing.assert_frame_equal(
            left.reset_index(drop=True), right.reset_index(drop=True), check_dtype=check_dtype
        )
    except AssertionError as exc:
        raise AssertionError(f"plan layer {name}: {exc}") from None


def assert_plan_equal(
    left: Plan,
    right: Plan,
    *,
    check_meta: bool = True,
    check_dtype: bool = True,
    check_row_order: bool = True,
    atol_m: float = 0.0,
) -> None:
    """Raise :class:`AssertionError` unless *left* and *right* hold the same plan.

    Parameters
    ----------
    left, right
        The plans.
    check_meta
        Compare :class:`~gridplan.plans.PlanMeta` too (ids, lineage, parameters, inputs).  Two runs
        of the same merge differ only there (a new ``plan_id`` and ``created_at``).
    check_dtype
        Compare column dtypes (``False`` after a GeoPackage round trip: nullable ints read as float).
    check_row_order
        Compare rows in order (``False``: sort each table by its :data:`PLAN_KEYS` first).
    atol_m
        Vertices may differ by this much (metres, after normalising the geometries); 0 compares
        the shapes (``shapely.equals``, vertex order and repeated vertices do not matter).

    Examples
    --------
    >>> import pandas as pd
    >>> from gridplan.plans import Plan, PlanMeta
    >>> e = pd.DataFrame()
    >>> a = Plan(e, e, e, e, e, pd.DataFrame({"x": [1]}), PlanMeta("p1", None, "2026-01-01T00:00:00Z"))
    >>> assert_plan_equal(a, a)
    >>> b = a.derive(kind="edit", params={}, qa_issues=pd.DataFrame({"x": [2]}))
    >>> assert_plan_equal(a, b, check_meta=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    AssertionError: plan layer qa_issues: DataFrame.iloc[:, 0] (column name="x") are different...

    """
    if check_meta and left.meta != right.meta:
        diff = [
            f"{k}: {getattr(left.meta, k)!r} vs {getattr(right.meta, k)!r}"
            for k in left.meta.__dataclass_fields__
            if getattr(left.meta, k) != getattr(right.meta, k)
        ]
        raise AssertionError("plan meta differs: " + "; ".join(diff))
    ll, rl = left.layers(), right.layers()
    if set(ll) != set(rl):
        raise AssertionError(f"plan layers differ: {sorted(ll)} vs {sorted(rl)}")
    for name in ll:
        a, b = ll[name], rl[name]
        if not check_row_order:
            a, b = _in_key_order(a, name), _in_key_order(b, name)
        _assert_table_equal(name, a, b, check_dtype=check_dtype, atol_m=atol_m)
