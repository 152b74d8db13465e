"""Plan files: one GeoPackage per plan version, written atomically, read back exactly."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from gridplan._atomic import atomic_path, check_output_path
from gridplan.errors import InputError
from gridplan.layers.styles import style_geopackage
from gridplan.layers.write import geometry_kwargs
from gridplan.plans.model import _PLACEHOLDER, _SPATIAL, META_LAYER, PLAN_LAYERS, Plan, PlanMeta

logger = logging.getLogger(__name__)


def _write_layer(path: Path, name: str, frame: pd.DataFrame, *, crs: str) -> None:
    """Write one layer into the (temporary) GeoPackage *path*."""
    if isinstance(frame, gpd.GeoDataFrame) or name in _SPATIAL:
        gdf = _as_geodataframe(frame, crs=crs, name=name)
        # one geometry type per layer (qa_issues mixes Polygon and MultiPolygon → MultiPolygon)
        pyogrio.write_dataframe(gdf, path, layer=name, driver="GPKG", **geometry_kwargs(gdf, name=name))
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
    All layers go to a temporary file next to *path*, which then replaces *path*
    (:func:`gridplan._atomic.atomic_path`); on any failure the temporary file is removed and *path*
    is untouched.  Each layer has one geometry type and a default QGIS style with Chinese field
    aliases (:func:`gridplan.layers.styles.style_geopackage`).

    """
    path = Path(path)
    if path.suffix.lower() != ".gpkg":
        raise InputError("a plan must be written to a .gpkg file", file=path)
    check_output_path(path)
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
    # SQLite syncs after every layer by default (~5x slower); the temp file is synced once instead
    previous = pyogrio.get_gdal_config_option("OGR_SQLITE_SYNCHRONOUS")
    pyogrio.set_gdal_config_options({"OGR_SQLITE_SYNCHRONOUS": "OFF"})
    try:
        with atomic_path(path) as tmp:
            for name, frame in layers.items():
                _write_layer(tmp, name, frame, crs=plan.meta.crs)
            _write_layer(tmp, META_LAYER, plan.meta.to_table(extra_tables=extra), crs=plan.meta.crs)
            style_geopackage(tmp)  # QGIS default styles and Chinese field aliases
    finally:
        pyogrio.set_gdal_config_options({"OGR_SQLITE_SYNCHRONOUS": previous})
    logger.info(
        "wrote plan %s (%s, %d base grids, %d atomic units) to %s",
        plan.meta.plan_id,
        plan.meta.kind,
        len(plan.base_grids),
        len(plan.atomic_units),
        path,
    )
    return path

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
