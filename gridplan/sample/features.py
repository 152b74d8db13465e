"""Layers of the sample city built from its buildings (private to :mod:`gridplan.sample`).

Owns the units (实有单位) and facilities (实有设施) layers, the roads layer cut per community, and
the defects planted in buildings (NULL and empty geometries, NULL households).
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from gridplan.sample import names
from gridplan.sample._frames import CRS, norm, pa_str, ser
from gridplan.sample._frames import gdf as _gdf

#: weight of each use (住宅, 出租屋, 厂房, 商铺, 公共) when units are placed on buildings
_W_UNITS = np.array([0.3, 0.3, 6.0, 6.0, 0.2])


def plant_building_defects(
    b: gpd.GeoDataFrame, factor: int, rng: np.random.Generator
) -> tuple[gpd.GeoDataFrame, list[dict[str, Any]]]:
    """Plant 4 × *factor* defects in buildings (NULL / empty geometry, NULL households); list them."""
    defects = []
    pick = rng.choice(len(b), size=4 * factor, replace=False)
    xs, ys = b["_x"].to_numpy(), b["_y"].to_numpy()
    geoms = b.geometry.to_numpy().copy()
    households = pd.array(b["households"].to_numpy(), dtype="Int64").copy()
    for k, i in enumerate(pick):
        kind = ("null_geometry", "empty_geometry", "missing_value", "missing_value")[k % 4]
        if kind == "null_geometry":
            geoms[i] = None
        elif kind == "empty_geometry":
            geoms[i] = shapely.Polygon()
        else:
            households[i] = pd.NA
        d = {"layer": "buildings", "feature_id": b["building_id"].iloc[i], "issue": kind,
             "x": round(float(xs[i]), 3), "y": round(float(ys[i]), 3)}
        if kind == "missing_value":
            d["detail"] = "households is NULL"
        defects.append(d)
    out = b.copy()
    out["households"] = pd.array(households, dtype="Int64")
    out = out.set_geometry(gpd.GeoSeries(geoms, crs=CRS, index=out.index))
    return out, defects


def units_layer(spec: Any, rng: np.random.Generator, xs: np.ndarray, ys: np.ndarray, use_i: np.ndarray,
                address_id: pa.Array, town_name: pa.Array) -> gpd.GeoDataFrame:
    """Businesses (实有单位) at building addresses, mostly factories and shops."""
    w = _W_UNITS[use_i]
    at = np.sort(rng.choice(len(xs), size=spec.units, p=norm(w)))
    cats, suffix = names.unit_name_parts(rng, spec.units)
    cores = np.asarray(names.road_cores(), dtype=object)[rng.integers(0, len(names.road_cores()), spec.units)]
    short = pc.replace_substring_regex(pc.take(town_name, pa.array(at)), "(镇|街道)$", "")
    unit_name = ser(pc.binary_join_element_wise(names.CITY, short, pa_str(cores), pa_str(suffix), ""))
    employees = np.where(cats == "工业企业", rng.lognormal(3.8, 0.9, spec.units),
                         rng.lognormal(1.3, 0.7, spec.units))
    px = np.round(xs[at] + rng.uniform(-6, 6, spec.units), 3)
    py = np.round(ys[at] + rng.uniform(-6, 6, spec.units), 3)
    return _gdf({
        "unit_id": np.array([f"U{i + 1:08d}" for i in range(spec.units)], dtype=object),
        "unit_name": unit_name, "category": cats,
        "employees": np.maximum(1, employees.round()).astype(np.int64),
        "address_id": ser(pc.take(address_id, pa.array(at))),
    }, shapely.points(px, py))


def facilities_layer(spec: Any, rng: np.random.Generator, xs: np.ndarray, ys: np.ndarray, comm_of: np.ndarray,
                     comm: pd.DataFrame, towns: pd.DataFrame) -> gpd.GeoDataFrame:
    """Facilities (实有设施): a police room, service centre and micro fire station per community, and more."""
    kinds, where = [], []
    n_comm = len(comm)
    # one police room, service centre and micro fire station per community; a fire station per town
    by_comm = pd.Series(np.arange(len(xs))).groupby(comm_of)
    first_b = by_comm.first()
    for kind in ("警务室", "社区服务中心", "微型消防站"):
        for c in range(n_comm):
            if c in first_b.index:
                kinds.append(kind)
                where.append(int(rng.choice(by_comm.get_group(c).to_numpy())))
    comm_town = comm["town_idx"].to_numpy()
    for t in range(len(towns)):
        cand = np.flatnonzero(comm_town[comm_of] == t)
        if len(cand):
            kinds.extend(["消防站", "医院"])
            where.extend(int(v) for v in rng.choice(cand, 2))
    for kind, k in spec.extra_facilities.items():
        kinds.extend([kind] * k)
        where.extend(int(v) for v in rng.choice(len(xs), k))
    where_a = np.asarray(where)
    m = len(kinds)
    ang = rng.uniform(0, 2 * np.pi, m)
    px = np.round(xs[where_a] + 14 * np.cos(ang), 3)
    py = np.round(ys[where_a] + 14 * np.sin(ang), 3)
    return _gdf({
        "facility_id": np.array([f"FAC{i + 1:06d}" for i in range(m)], dtype=object),
        "kind": np.asarray(kinds, dtype=object),
        "community_code": comm["community_code"].to_numpy()[comm_of[where_a]],
    }, shapely.points(px, py))


def roads_layer(
    roads_t: pd.DataFrame, towns: pd.DataFrame, comm: pd.DataFrame, comm_geoms: np.ndarray
) -> gpd.GeoDataFrame:
    """Cut the street lines per community of their own town (a road spanning two is two features)."""
    lines = roads_t["geometry"].to_numpy()
    tree = shapely.STRtree(comm_geoms)
    li, ci = tree.query(lines, predicate="intersects")
    same = roads_t["town"].to_numpy()[li] == comm["town_idx"].to_numpy()[ci]
    li, ci = li[same], ci[same]
    pieces = shapely.intersection(lines[li], comm_geoms[ci])
    parts, idx = shapely.get_parts(pieces, return_index=True)
    keep = (shapely.get_type_id(parts) == 1) & (shapely.length(parts) > 1.0)
    parts, idx = parts[keep], idx[keep]
    src = li[idx]
    return _gdf({
        "road_name": roads_t["road_name"].to_numpy()[src],
        "road_class": roads_t["road_class"].to_numpy()[src],
        "town_code": towns["town_code"].to_numpy()[roads_t["town"].to_numpy()[src]],
        "community_code": comm["community_code"].to_numpy()[ci[idx]],
    }, shapely.set_precision(parts, 0.001))
