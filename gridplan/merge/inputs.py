"""Checked inputs of a merge (private helper of :mod:`gridplan.merge.build`).

Owns the checks before any geometry work: required layers and fields, one projected CRS, code
formats, known departments, and the validated city, community and departmental layers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridplan.errors import CRSError, InputError

__all__ = ["QA_COLUMNS", "MergeInputs", "check_layers", "qa_frame", "read_inputs"]

#: Columns of a QA table (contracts: validate / plans).
QA_COLUMNS = ["layer", "feature_id", "issue", "detail"]


@dataclass
class MergeInputs:
    """Validated layers and lookups a merge works from."""

    depts: list[str]
    used: list[str]
    crs: Any
    county_code: str
    city_geom: Any
    comm_gdf: gpd.GeoDataFrame
    comm_code: np.ndarray
    town_code_of: dict[str, str]
    comm_name_of: dict[str, str]
    town_name_of: dict[str, str]
    dept_gdfs: dict[str, gpd.GeoDataFrame]
    qa_parts: list[pd.DataFrame] = field(default_factory=list)


def qa_frame(rows: list[dict[str, Any]], crs: Any) -> gpd.GeoDataFrame:
    """QA rows (dicts with :data:`QA_COLUMNS` and ``geometry``) as a GeoDataFrame."""
    if not rows:
        return gpd.GeoDataFrame({c: pd.Series([], dtype=object) for c in QA_COLUMNS},
                                geometry=gpd.GeoSeries([], crs=crs), crs=crs)
    df = pd.DataFrame(rows)
    return gpd.GeoDataFrame(df[QA_COLUMNS], geometry=gpd.GeoSeries(df["geometry"].to_numpy(), crs=crs),
                            crs=crs)


def _validate(gdf: gpd.GeoDataFrame, kind: str, name: str, boundary: Any,
              id_field: str | None) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    try:
        from gridplan.validate import QAOptions, validate_layer
    except ImportError:  # pragma: no cover - stand-in until gridplan.validate exists
        geoms = np.asarray(gdf.geometry.array)
        ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        out = gdf.loc[ok].copy()
        out.geometry = shapely.make_valid(geoms[ok])
        return out, qa_frame([], gdf.crs)
    # gaps of the overlaid layers come from the overlay's faces (merge.build._face_gaps): the same
    # rows without a union_all of every layer (9 s of the city merge)
    return validate_layer(gdf, kind, layer_name=name, boundary=boundary, id_field=id_field,
                          options=QAOptions(skip=("gap",)))


def _check_codes(values: pd.Series, digits: int, layer: str, field: str) -> np.ndarray:
    s = values.astype(str).str.strip()
    bad = ~s.str.fullmatch(rf"\d{{{digits}}}")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"must be {digits} digits, got {values.iloc[row]!r}", layer=layer, row=row,
                         field=field)
    return s.to_numpy(dtype=object)


def _require(gdf: pd.DataFrame, layer: str, fields: Sequence[str]) -> None:
    for f in fields:
        if f not in gdf.columns:
            raise InputError(f"missing required field; add a column {f!r}", layer=layer, field=f)


def _departments(layers: Mapping[str, gpd.GeoDataFrame], departments: Sequence[str] | None) -> list[str]:
    available = sorted(n.removeprefix("dept_") for n in layers if n.startswith("dept_"))
    if departments is None:
        depts = available
    else:
        depts = [d.strip().removeprefix("dept_") for d in departments if d.strip()]
        unknown = [d for d in depts if d not in available]
        if unknown:
            raise InputError(f"unknown department(s) {', '.join(unknown)}; available: "
                             f"{', '.join(available) or 'none'}", field="departments")
        depts = list(dict.fromkeys(depts))
    if not depts:
        raise InputError("no departmental layers (dept_*) to merge", layer="dept_*")
    return depts


def check_layers(layers: Mapping[str, gpd.GeoDataFrame],
                 departments: Sequence[str] | None) -> tuple[list[str], list[str], Any]:
    """Check required layers and fields and one projected CRS; return depts, used layers, CRS."""
    for name in ("city", "communities"):
        if name not in layers:
            raise InputError("required layer is missing", layer=name)
    depts = _departments(layers, departments)
    used = ["city", "communities", *[f"dept_{d}" for d in depts]]
    crs = layers["city"].crs
    from gridplan.crs import require_projected

    for name in [*used, *[n for n in ("towns", "buildings", "std_addresses") if n in layers]]:
        require_projected(layers[name], what=f"layer {name}")
        if not layers[name].crs.equals(crs):
            raise CRSError(f"layer {name} is in {layers[name].crs.to_string()} but city is in "
                           f"{crs.to_string()}; reproject every layer to one CRS")
    _require(layers["city"], "city", ["county_code"])
    _require(layers["communities"], "communities", ["community_code", "community_name", "town_code"])
    for d in depts:
        _require(layers[f"dept_{d}"], f"dept_{d}", ["dept_grid_id"])
    return depts, used, crs


def read_inputs(layers: Mapping[str, gpd.GeoDataFrame], depts: list[str], used: list[str],
                crs: Any) -> MergeInputs:
    """Validate the city, communities and departmental layers (QA rows kept in ``qa_parts``)."""
    qa_parts: list[pd.DataFrame] = []
    city_gdf, qa = _validate(layers["city"], "city", "city", None, None)
    qa_parts.append(qa)
    if city_gdf.empty:
        raise InputError("has no valid polygon", layer="city")
    county = _check_codes(city_gdf["county_code"], 6, "city", "county_code")
    city_geom = shapely.union_all(np.asarray(city_gdf.geometry.array))
    comm_gdf, qa = _validate(layers["communities"], "communities", "communities", city_geom,
                             "community_code")
    qa_parts.append(qa)
    comm_code = _check_codes(comm_gdf["community_code"], 12, "communities", "community_code")
    town_code_of = dict(zip(comm_code, _check_codes(comm_gdf["town_code"], 9, "communities", "town_code"),
                            strict=True))
    comm_name_of = dict(zip(comm_code, comm_gdf["community_name"].astype(str), strict=True))
    town_name_of: dict[str, str] = {}
    if "towns" in layers and {"town_code", "town_name"} <= set(layers["towns"].columns):
        t = layers["towns"]
        town_name_of = dict(zip(t["town_code"].astype(str), t["town_name"].astype(str), strict=True))
    dept_gdfs: dict[str, gpd.GeoDataFrame] = {}
    for d in depts:
        g, qa = _validate(layers[f"dept_{d}"], "dept", f"dept_{d}", city_geom, "dept_grid_id")
        qa_parts.append(qa)
        dept_gdfs[d] = g
    return MergeInputs(depts=depts, used=used, crs=crs, county_code=str(county[0]), city_geom=city_geom,
                       comm_gdf=comm_gdf, comm_code=comm_code, town_code_of=town_code_of,
                       comm_name_of=comm_name_of, town_name_of=town_name_of, dept_gdfs=dept_gdfs,
                       qa_parts=qa_parts)
