"""The plan model: :class:`Plan` (layers + metadata) and :class:`PlanMeta` (versions, lineage)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast, get_args

import geopandas as gpd
import numpy as np
import pandas as pd

from gridplan._clock import compact_stamp, iso_utc
from gridplan.errors import InputError

#: What made a plan version: a fresh merge, a re-imported planner edit, a ``balance`` proposal.
PlanKind = Literal["merge", "edit", "proposal"]

#: Layers every plan file holds (besides ``plan_meta``), in file order.
PLAN_LAYERS: tuple[str, ...] = (
    "atomic_units",
    "base_grids",
    "dept_crosswalk",
    "dept_fit",
    "h3_cells",
    "qa_issues",
)

#: Layers with geometry.
_SPATIAL = ("atomic_units", "base_grids", "qa_issues")

META_LAYER = "plan_meta"

#: Version of the plan file layout, stored in ``plan_meta`` under ``format``.
PLAN_FORMAT = "gridplan-plan/1"

#: Column written for a table without columns (GDAL cannot store a layer without fields).
_PLACEHOLDER = "_no_columns"

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
    kind: PlanKind = "merge"

    def to_table(self, *, extra_tables: tuple[str, ...] = ()) -> pd.DataFrame:
        """Return the ``plan_meta`` key/value table (all values text; dicts and lists as JSON).

        Examples
        --------
        >>> m = PlanMeta("p1", None, "2025-01-01T00:00:00Z", params={"households_min": 300})
        >>> t = m.to_table()
        >>> dict(zip(t["key"], t["value"]))["params"]
        '{"households_min": 300}'
        >>> PlanMeta.from_table(t) == m
        True

        """
        rows = {
            "format": PLAN_FORMAT,
            "plan_id": self.plan_id,
            "parent_id": self.parent_id or "",
            "created_at": self.created_at,
            "kind": self.kind,
            "county_code": self.county_code,
            "crs": self.crs,
            "h3_res": str(int(self.h3_res)),
            "params": _to_json(self.params),
            "inputs": _to_json(self.inputs),
            "departments": _to_json(list(self.departments)),
            "extra_tables": _to_json(list(extra_tables)),
        }
        return pd.DataFrame({"key": list(rows), "value": list(rows.values())}, dtype=object)

    @classmethod
    def from_table(cls, table: pd.DataFrame, *, file: str | Path | None = None) -> PlanMeta:
        """Parse a ``plan_meta`` key/value table (inverse of :meth:`to_table`)."""
        if not {"key", "value"} <= set(table.columns):
            raise InputError("plan_meta needs the columns key and value", file=file, layer=META_LAYER)
        kv = {
            str(k): ("" if pd.isna(v) else str(v)) for k, v in zip(table["key"], table["value"], strict=True)
        }
        if not kv.get("plan_id"):
            raise InputError("plan_meta has no plan_id; not a gridplan plan", file=file, layer=META_LAYER)
        try:
            params = json.loads(kv.get("params") or "{}")
            inputs = json.loads(kv.get("inputs") or "{}")
            departments = tuple(json.loads(kv.get("departments") or "[]"))
            h3_res = int(kv.get("h3_res") or 10)
        except (ValueError, TypeError) as exc:
            raise InputError(f"plan_meta is damaged ({exc})", file=file, layer=META_LAYER) from None
        return cls(
            plan_id=kv["plan_id"],
            parent_id=kv.get("parent_id") or None,
            created_at=kv.get("created_at", ""),
            params=params,
            inputs=inputs,
            county_code=kv.get("county_code", ""),
            crs=kv.get("crs") or "EPSG:4547",
            h3_res=h3_res,
            departments=departments,
            kind=_plan_kind(kv.get("kind") or "merge", file),
        )

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

    def layers(self) -> dict[str, pd.DataFrame]:
        """Every table of the plan keyed by its GeoPackage layer name (without ``plan_meta``)."""
        out: dict[str, pd.DataFrame] = {
            "atomic_units": self.atomic_units,
            "base_grids": self.base_grids,
            "dept_crosswalk": self.crosswalk,
            "dept_fit": self.dept_fit,
            "h3_cells": self.h3_cells,
            "qa_issues": self.qa_issues,
        }
        out.update(self.extra_tables)
        return out

    @classmethod
    def from_layers(cls, frames: dict[str, pd.DataFrame], meta: PlanMeta) -> Plan:
        """Inverse of :meth:`layers`: a plan from tables keyed by layer name (extra tables kept).

        ``h3_cells`` columns read back from a file or database get their integer/boolean types.
        """
        h3_cells = frames["h3_cells"]
        if len(h3_cells):
            h3_cells = h3_cells.astype({"res": "int64", "edge": "bool"})
        return cls(
            atomic_units=frames["atomic_units"],
            base_grids=frames["base_grids"],
            crosswalk=frames["dept_crosswalk"],
            dept_fit=frames["dept_fit"],
            h3_cells=h3_cells,
            qa_issues=frames["qa_issues"],
            meta=meta,
            extra_tables={n: f for n, f in frames.items() if n not in PLAN_LAYERS},
        )

    def with_meta(self, **changes: Any) -> Plan:
        """Return a copy with some :class:`PlanMeta` fields replaced (tables shared, not copied)."""
        return replace(self, meta=replace(self.meta, **changes))

    def derive(
        self,
        *,
        kind: PlanKind,
        params: dict[str, Any],
        inputs: dict[str, str] | None = None,
        crs: str | None = None,
        **tables: pd.DataFrame,
    ) -> Plan:
        """Return a child version of this plan: new tables, a fresh ``plan_id``, this plan as parent.

        Parameters
        ----------
        kind
            What made the child (``"edit"`` for a re-imported edit, ``"proposal"`` for ``balance``).
        params
            The child's parameters (the parent's are not carried over: pass what should stay).
        inputs
            Input fingerprints (default: the parent's).
        crs
            The child's CRS (default: the parent's).
        **tables
            Replaced tables by field name (``atomic_units``, ``base_grids``, ``crosswalk``,
            ``dept_fit``, ``h3_cells``, ``qa_issues``); the others are the parent's.

        Examples
        --------
        >>> import pandas as pd
        >>> empty = pd.DataFrame()
        >>> meta = PlanMeta("p1", None, "2026-01-01T00:00:00Z")
        >>> parent = Plan(empty, empty, empty, empty, empty, empty, meta)
        >>> child = parent.derive(kind="edit", params={"why": "test"}, qa_issues=pd.DataFrame({"a": [1]}))
        >>> (child.meta.parent_id, child.meta.kind, len(child.qa_issues), child.meta.plan_id != "p1")
        ('p1', 'edit', 1, True)

        """
        meta = replace(
            self.meta,
            plan_id=new_plan_id(),
            parent_id=self.meta.plan_id,
            created_at=iso_utc(),
            params=dict(params),
            inputs=dict(self.meta.inputs if inputs is None else inputs),
            crs=self.meta.crs if crs is None else crs,
            kind=kind,
        )
        return replace(self, meta=meta, extra_tables={}, **tables)

#: Per-unit counts that a diff reports as moved.
UNIT_STATS = ("households", "residents", "floating_residents", "rental_rooms", "addresses")


def numeric_column(df: pd.DataFrame, col: str) -> np.ndarray:
    """Return column *col* as float64 (missing column or values: 0)."""
    if col not in df.columns:
        return np.zeros(len(df))
    return pd.to_numeric(df[col], errors="coerce").fillna(0).to_numpy(dtype=np.float64)

def text_column(df: pd.DataFrame, col: str) -> np.ndarray:
    """Return column *col* as an object array of text (missing values: ``""``)."""
    return df[col].astype(object).where(df[col].notna(), "").astype(str).to_numpy(dtype=object)


def _plan_kind(value: str, file: str | Path | None) -> PlanKind:
    if value not in get_args(PlanKind):
        raise InputError(
            f"plan_meta: unknown plan kind {value!r} (expected one of {', '.join(get_args(PlanKind))})",
            file=file,
            layer=META_LAYER,
            field="kind",
        )
    return cast(PlanKind, value)


def new_plan_id() -> str:
    """Return a fresh, unique plan id: UTC time (sortable) + 8 random hex digits.

    Examples
    --------
    >>> a, b = new_plan_id(), new_plan_id()
    >>> a != b and len(a) == 24 and a[8] == "T"
    True

    """
    return f"{compact_stamp()}-{uuid.uuid4().hex[:8]}"

def _to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
