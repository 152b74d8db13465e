"""Plan files: the versioned, immutable output of a merge (PRODUCT §3.3, §4).

A plan is a GeoPackage with the layers ``atomic_units``, ``base_grids``, ``dept_crosswalk``,
``dept_fit``, ``h3_cells``, ``qa_issues`` and the key/value table ``plan_meta``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import pandas as pd


@dataclass(frozen=True)
class PlanMeta:
    """Identity and provenance of a plan version.

    Attributes
    ----------
    plan_id
        Unique id of this version (content-derived hash prefix or uuid).
    parent_id
        ``plan_id`` of the version this one was derived from (``None`` for a fresh merge).
    created_at
        ISO 8601 UTC timestamp.
    params
        Parameters the plan was built with (``min_area_m2``, household band, ``h3_res`` …).
    inputs
        Fingerprints (sha256) of the input layers, keyed by layer name.
    county_code
        6-digit county-level code prefixing every grid code.
    crs
        The compute CRS of the geometries, e.g. ``"EPSG:4547"``.
    h3_res
        Resolution of ``h3_cells``.
    departments
        Department names (``police`` for layer ``dept_police``) in the lineage columns.
    kind
        ``"merge"``, ``"edit"`` (re-imported planner edit) or ``"proposal"`` (from ``balance``).
    """

    plan_id: str
    parent_id: str | None
    created_at: str
    params: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    county_code: str = ""
    crs: str = "EPSG:4547"
    h3_res: int = 10
    departments: tuple[str, ...] = ()
    kind: str = "merge"


@dataclass(frozen=True)
class Plan:
    """A base-grid plan: its layers and its metadata (geometries in ``meta.crs``)."""

    atomic_units: gpd.GeoDataFrame
    base_grids: gpd.GeoDataFrame
    crosswalk: pd.DataFrame
    dept_fit: pd.DataFrame
    h3_cells: pd.DataFrame
    qa_issues: pd.DataFrame
    meta: PlanMeta
    extra_tables: dict[str, pd.DataFrame] = field(default_factory=dict)
