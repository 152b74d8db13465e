"""Plan files: the versioned, immutable output of a merge (PRODUCT §3.3, §4).

A plan is a GeoPackage with the layers ``atomic_units``, ``base_grids``, ``dept_crosswalk``,
``dept_fit``, ``h3_cells``, ``qa_issues`` and the key/value table ``plan_meta``; a proposal (from
``balance``) adds tables such as ``moves`` and ``metrics`` (``Plan.extra_tables``).

What this module owns
---------------------
* :func:`write_plan` / :func:`read_plan`: one GeoPackage per plan version, written to a temporary
  file in the target folder and moved into place with ``os.replace`` (a killed process leaves the
  previous file intact).  Plans are immutable: a file holding another ``plan_id`` is never
  overwritten unless asked to.  The file opens in QGIS/GDAL like any GeoPackage.
* :func:`new_plan_id`, :func:`diff_plans` (grids added/removed/reshaped/recoded/unchanged and the
  households/addresses that changed grid) and :func:`reimport_base_grids` (a base-grid layer
  edited in QGIS becomes a new, re-validated version).  Diff and re-import live in
  :mod:`gridplan._plan_edit`; they are re-exported here.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio

from gridplan.errors import InputError

logger = logging.getLogger(__name__)

__all__ = [
    "PLAN_LAYERS",
    "Plan",
    "PlanDiff",
    "PlanMeta",
    "crosswalk_from_units",
    "diff_plans",
    "new_plan_id",
    "read_plan",
    "read_plan_meta",
    "reimport_base_grids",
    "utc_now",
    "write_plan",
]

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
    kind: str = "merge"

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
            kind=kv.get("kind") or "merge",
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


def new_plan_id() -> str:
    """Return a fresh, unique plan id: UTC time (sortable) + 8 random hex digits.

    Examples
    --------
    >>> a, b = new_plan_id(), new_plan_id()
    >>> a != b and len(a) == 24 and a[8] == "T"
    True

    """
    return f"{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"


def utc_now() -> str:
    """Return the current UTC time as ISO 8601 (seconds), e.g. ``2025-06-01T08:00:00Z``."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def _write_layer(path: Path, name: str, frame: pd.DataFrame, *, crs: str) -> None:
    """Write one layer into the (temporary) GeoPackage *path*."""
    if isinstance(frame, gpd.GeoDataFrame) or name in _SPATIAL:
        gdf = _as_geodataframe(frame, crs=crs, name=name)
        pyogrio.write_dataframe(
            gdf,
            path,
            layer=name,
            driver="GPKG",
            geometry_type="Unknown" if name == "qa_issues" or len(gdf) == 0 else None,
            promote_to_multi=False,
        )
    else:
        table = pd.DataFrame(frame)
        if len(table.columns) == 0:  # GDAL needs a field: a column-less table gets a placeholder
            table = pd.DataFrame({_PLACEHOLDER: pd.Series([None] * len(table), dtype=object)})
        pyogrio.write_dataframe(table, path, layer=name, driver="GPKG")


def _as_geodataframe(frame: pd.DataFrame, *, crs: str, name: str) -> gpd.GeoDataFrame:
    if isinstance(frame, gpd.GeoDataFrame):
        gdf = frame
        if gdf.crs is None:
            gdf = gdf.set_crs(crs)
    elif "geometry" in frame.columns:
        gdf = gpd.GeoDataFrame(frame, geometry="geometry", crs=crs)
    else:
        gdf = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([None] * len(frame), index=frame.index), crs=crs)
    if gdf.geometry.name != "geometry":
        gdf = gdf.rename_geometry("geometry")
    return gdf


def write_plan(plan: Plan, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write *plan* to one GeoPackage, atomically.

    Parameters
    ----------
    plan
        The plan to save.
    path
        Target ``.gpkg`` file.  Its folder must exist.
    overwrite
        Replace a file that holds a *different* plan (or is not a plan).  Rewriting the same
        ``plan_id`` is always allowed.

    Returns
    -------
    pathlib.Path
        *path*.

    Raises
    ------
    InputError
        *path* is not a ``.gpkg``, its folder is missing, it holds another plan and *overwrite* is
        false, or an extra table's name clashes with a plan layer.

    Notes
    -----
    All layers go to ``.<name>.<random>.tmp.gpkg`` next to *path*, which then replaces *path*
    with ``os.replace``; on any failure the temporary file is removed and *path* is untouched.

    """
    path = Path(path)
    if path.suffix.lower() != ".gpkg":
        raise InputError("a plan must be written to a .gpkg file", file=path)
    if not path.parent.is_dir():
        raise InputError("folder does not exist; create it first", file=path.parent)
    if path.exists() and not overwrite:
        try:
            existing = read_plan_meta(path).plan_id
        except InputError:
            raise InputError(
                "exists and is not a gridplan plan; choose another name or pass overwrite", file=path
            ) from None
        if existing != plan.meta.plan_id:
            raise InputError(
                f"holds plan {existing}, plans are immutable: write plan {plan.meta.plan_id} to "
                "a new file (or pass overwrite)",
                file=path,
            )
    layers = plan.layers()
    extra = tuple(plan.extra_tables)
    for name in extra:
        if name in PLAN_LAYERS or name == META_LAYER or not name.isidentifier():
            raise InputError(f"extra table name {name!r} clashes with a plan layer or is not a valid name")
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp.gpkg")
    # SQLite syncs after every layer by default (~5x slower); the temp file is synced once instead
    previous = pyogrio.get_gdal_config_option("OGR_SQLITE_SYNCHRONOUS")
    pyogrio.set_gdal_config_options({"OGR_SQLITE_SYNCHRONOUS": "OFF"})
    try:
        for name, frame in layers.items():
            _write_layer(tmp, name, frame, crs=plan.meta.crs)
        _write_layer(tmp, META_LAYER, plan.meta.to_table(extra_tables=extra), crs=plan.meta.crs)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        pyogrio.set_gdal_config_options({"OGR_SQLITE_SYNCHRONOUS": previous})
        for leftover in (
            tmp,
            tmp.with_name(tmp.name + "-journal"),
            tmp.with_name(tmp.name + "-wal"),
            tmp.with_name(tmp.name + "-shm"),
        ):
            leftover.unlink(missing_ok=True)
    logger.info(
        "wrote plan %s (%s, %d base grids, %d atomic units) to %s",
        plan.meta.plan_id,
        plan.meta.kind,
        len(plan.base_grids),
        len(plan.atomic_units),
        path,
    )
    return path


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


def _list_layers(path: Path) -> list[str]:
    if not path.exists():
        raise InputError("plan file does not exist", file=path)
    if path.is_dir():
        raise InputError("is a folder, not a plan GeoPackage", file=path)
    try:
        return [str(name) for name in pyogrio.list_layers(path)[:, 0]]
    except Exception as exc:  # GDAL: not a dataset it can open
        raise InputError(
            f"cannot be opened as a GeoPackage ({exc}); is this a plan file?", file=path
        ) from None


def read_plan_meta(path: str | Path) -> PlanMeta:
    """Read only the ``plan_meta`` of a plan file (cheap; used to check identity).

    Raises
    ------
    InputError
        Missing file, not a GeoPackage, or no ``plan_meta`` layer.

    """
    path = Path(path)
    names = _list_layers(path)
    if META_LAYER not in names:
        raise InputError(
            "not a gridplan plan (no plan_meta layer); make plans with gridplan merge", file=path
        )
    return PlanMeta.from_table(pyogrio.read_dataframe(path, layer=META_LAYER), file=path)


def read_plan(path: str | Path) -> Plan:
    """Read a plan GeoPackage written by :func:`write_plan`.

    Parameters
    ----------
    path
        The plan file.

    Returns
    -------
    Plan
        Layers as GeoDataFrames (``atomic_units``, ``base_grids``, ``qa_issues``) and DataFrames,
        plus ``extra_tables`` listed in ``plan_meta`` (e.g. a proposal's ``moves``, ``metrics``).

    Raises
    ------
    InputError
        Missing file, not a GeoPackage, no ``plan_meta`` (not a plan), or a missing layer (named).

    """
    path = Path(path)
    names = _list_layers(path)
    if META_LAYER not in names:
        raise InputError(
            "not a gridplan plan (no plan_meta layer); make plans with gridplan merge", file=path
        )
    meta_table = pyogrio.read_dataframe(path, layer=META_LAYER)
    meta = PlanMeta.from_table(meta_table, file=path)
    kv = dict(zip(meta_table["key"].astype(str), meta_table["value"], strict=True))
    try:
        extra_names = [str(n) for n in json.loads(kv.get("extra_tables") or "[]")]
    except ValueError:
        raise InputError("plan_meta extra_tables is damaged", file=path, layer=META_LAYER) from None
    for name in (*PLAN_LAYERS, *extra_names):
        if name not in names:
            raise InputError(
                "missing layer; the plan file is incomplete, re-create it", file=path, layer=name
            )
    frames: dict[str, pd.DataFrame] = {}
    for name in (*PLAN_LAYERS, *extra_names):
        frame = pyogrio.read_dataframe(path, layer=name)
        if list(frame.columns) == [_PLACEHOLDER]:
            frame = pd.DataFrame(index=frame.index)
        if isinstance(frame, gpd.GeoDataFrame) and frame.crs is None and len(frame):
            frame = frame.set_crs(meta.crs)
        frames[name] = frame
    for name in ("atomic_units", "base_grids", "qa_issues"):
        frames[name] = _as_geodataframe(frames[name], crs=meta.crs, name=name)
    plan = Plan.from_layers(frames, meta)
    logger.info(
        "read plan %s (%s, %d base grids) from %s", meta.plan_id, meta.kind, len(plan.base_grids), path
    )
    return plan


# Diff and re-import live in a private module (file size); imported last because they use Plan.
from gridplan._plan_edit import PlanDiff, crosswalk_from_units, diff_plans, reimport_base_grids  # noqa: E402
