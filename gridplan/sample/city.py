"""The sample city: a deterministic Dongguan-like city with every layer of PRODUCT §4.

Owns :func:`write_sample` (and :func:`build_sample`, its in-memory half).  Real town/street names
and plausible codes (``gridplan/data/dongguan_towns.csv``), synthetic geometry over Dongguan's real
extent in EPSG:4547, population aggregated to buildings, five departmental layers with the defects
of hand-drawn data, and three years of cases and hazards with planted hotspots, trends and messy
addresses.  ``manifest.json`` records every planted thing so tests can check later stages find it.

Two scales: ``small`` (3 towns, seconds; tests) and ``city`` (32 towns, ~600 communities, ~1 M
addresses, 10.5 M residents, ~1 M cases).  A numpy ``Generator`` seeded from ``seed`` drives
everything (one child stream per part), so one seed gives byte-identical CSVs.

Helpers live in ``sample.names`` (towns, name pools, numerals), ``sample.geo`` (outline,
partitions, streets, buildings), ``sample.dept`` (departmental layers and defects) and
``sample.events`` (cases, hazards, address variants).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyogrio
import shapely

from gridplan._atomic import atomic_path, write_text
from gridplan.errors import InputError
from gridplan.sample import dept as dept_mod
from gridplan.sample import events as ev_mod
from gridplan.sample import geo, names, variants
from gridplan.sample._frames import CRS, lpad, norm, pa_str, ser
from gridplan.sample._frames import gdf as _gdf
from gridplan.sample.features import facilities_layer, plant_building_defects, roads_layer, units_layer

logger = logging.getLogger(__name__)

Scale = Literal["small", "city"]
LAYER_ORDER = (
    "city", "towns", "communities", "roads", "buildings", "units", "facilities", "std_addresses",
    "dept_police", "dept_fire", "dept_urban", "dept_civil", "dept_safety",
)
DEPARTMENTS = ("police", "fire", "urban", "civil", "safety")


@dataclass(frozen=True)
class ScaleSpec:
    """Sizes of one scale of the sample city."""

    towns: tuple[str, ...] | None
    communities_per_town: int | None
    buildings: int
    households: int
    residents: int
    units: int
    cases: int
    hazards: int
    dept_grids: dict[str, int]
    defect_factor: int
    floating_share: float = 0.70
    area_km2: float | None = None
    extra_facilities: dict[str, int] = field(default_factory=dict)


SCALES: dict[str, ScaleSpec] = {
    "small": ScaleSpec(
        towns=("441900003", "441900006", "441900101"), communities_per_town=6, buildings=5_000,
        households=25_000, residents=207_000, units=1_500, cases=8_000, hazards=2_000,
        dept_grids={"police": 60, "fire": 36, "urban": 110, "civil": 90, "safety": 45}, defect_factor=1,
        extra_facilities={"治安岗亭": 30, "视频监控点": 50, "学校": 10}, area_km2=40.0,
    ),
    "city": ScaleSpec(
        towns=None, communities_per_town=None, buildings=1_000_000, households=1_270_000,
        residents=10_500_000, units=200_000, cases=1_000_000, hazards=250_000,
        dept_grids={"police": 2_600, "fire": 1_600, "urban": 3_400, "civil": 3_000, "safety": 2_000},
        defect_factor=3, extra_facilities={"治安岗亭": 3_000, "视频监控点": 5_000, "学校": 600},
    ),
}

_USES = np.array(["住宅", "出租屋", "厂房", "商铺", "公共"], dtype=object)
_USE_P = np.array([0.42, 0.28, 0.14, 0.11, 0.05])
_W_HOUSEHOLDS = np.array([3.0, 1.0, 0.05, 0.6, 0.0])
_W_FLOATING = np.array([1.0, 12.0, 10.0, 1.5, 0.2])
_W_RENTAL = np.array([0.8, 10.0, 0.0, 0.5, 0.0])


@dataclass
class SampleCity:
    """The sample city in memory: layers, event tables, truth tables and the manifest."""

    layers: dict[str, gpd.GeoDataFrame]
    cases: pd.DataFrame
    hazards: pd.DataFrame
    truth_cases: pd.DataFrame
    truth_hazards: pd.DataFrame
    manifest: dict[str, Any]


def _streams(seed: int, n: int) -> list[np.random.Generator]:
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


def _towns_and_communities(
    spec: ScaleSpec, rng: np.random.Generator
) -> tuple[shapely.Geometry, pd.DataFrame, np.ndarray, np.ndarray, pd.DataFrame, list[np.ndarray]]:
    table = names.town_table()
    full_city, cells, all_centres = geo.town_cells()
    cx, cy = all_centres[:, 0], all_centres[:, 1]
    sel = np.ones(len(table), bool) if spec.towns is None else table["town_code"].isin(spec.towns).to_numpy()
    towns = table[sel].reset_index(drop=True)
    town_geoms = cells[sel]
    if spec.area_km2 is not None:
        town_geoms = shapely.intersection(town_geoms, _sub_area(town_geoms, spec.area_km2 * 1e6))
    city = full_city if spec.towns is None else shapely.union_all(town_geoms)
    centres = np.c_[cx[sel], cy[sel]]
    inside = shapely.contains_xy(town_geoms, centres[:, 0], centres[:, 1])
    centres[~inside] = shapely.get_coordinates(shapely.point_on_surface(town_geoms[~inside]))
    pool = names.community_cores()
    perm = rng.permutation(len(pool))
    cursor = 0
    rows = []
    seeds_of: list[np.ndarray] = []
    for t in range(len(towns)):
        k = spec.communities_per_town or int(towns["communities"].iloc[t])
        c_geoms, seeds = geo.relaxed_partition(town_geoms[t], k, rng)
        order = np.lexsort((seeds[:, 0], -np.round(seeds[:, 1], -2)))
        c_geoms, seeds = c_geoms[order], seeds[order]
        cores = [pool[i] for i in perm[cursor:cursor + k]]
        cursor += k
        village_p = 0.3 if towns["kind"].iloc[t] == "街道" else 0.55
        is_village = rng.random(k) < village_p
        for j in range(k):
            rows.append({
                "community_code": f"{towns['town_code'].iloc[t]}{j + 1:03d}",
                "core": cores[j], "suffix": "村" if is_village[j] else "社区",
                "town_code": towns["town_code"].iloc[t], "town_name": towns["town_name"].iloc[t],
                "town_idx": t, "geometry": c_geoms[j],
            })
        seeds_of.append(seeds)
    comm = pd.DataFrame(rows)
    # numeral cores and a few names repeated across towns (adversarial for geocoding)
    n_num = max(2, len(comm) // 40)
    for i, core in zip(rng.choice(len(comm), n_num, replace=False), names.NUMERAL_CORES, strict=False):
        if core not in set(comm.loc[comm.town_idx == comm.town_idx[i], "core"]):
            comm.loc[i, "core"] = core
    n_rep = max(2, len(comm) // 50)
    for i in rng.choice(len(comm), n_rep, replace=False):
        others = comm.index[comm.town_idx != comm.town_idx[i]].to_numpy()
        j = int(rng.choice(others))
        if comm.core[i] not in set(comm.loc[comm.town_idx == comm.town_idx[j], "core"]):
            comm.loc[j, ["core", "suffix"]] = comm.loc[i, ["core", "suffix"]].to_numpy()
    comm["community_name"] = comm["core"] + comm["suffix"]
    return city, towns, town_geoms, centres, comm, seeds_of


def _share_road_names(roads_t: pd.DataFrame, rng: np.random.Generator, per_town: int = 2) -> pd.DataFrame:
    """Give a few roads of each town the name of a road in the previous town (same class)."""
    out = roads_t.copy()
    names_col = out["road_name"].to_numpy().copy()
    for t in range(1, int(out["town"].max()) + 1):
        mine = np.flatnonzero(out["town"].to_numpy() == t)
        prev = np.flatnonzero(out["town"].to_numpy() == t - 1)
        taken = set(names_col[mine])
        for i in rng.permutation(mine)[:per_town]:
            same = [j for j in prev if out["road_class"].iat[j] == out["road_class"].iat[i]
                    and names_col[j] not in taken]
            if same:
                names_col[i] = names_col[same[int(rng.integers(0, len(same)))]]
                taken.add(names_col[i])
    out["road_name"] = names_col
    return out


def _sub_area(town_geoms: np.ndarray, area_m2: float) -> shapely.Polygon:
    """Return a wavy disc of *area_m2* centred where the towns meet (a downtown piece of them)."""
    meet = shapely.boundary(town_geoms[0])
    for g in town_geoms[1:]:
        meet = shapely.intersection(meet, shapely.boundary(g))
    if shapely.is_empty(meet):
        meet = shapely.union_all(town_geoms)
    cx, cy = shapely.get_coordinates(shapely.centroid(meet))[0]
    ang = np.linspace(0, 2 * np.pi, 181)[:-1]
    rad = 1.0 + 0.06 * np.sin(3 * ang + 0.7) + 0.03 * np.sin(7 * ang + 2.1)
    radius = float(np.sqrt(area_m2 / np.pi))
    for _ in range(3):
        ring = np.column_stack([cx + radius * rad * np.cos(ang), cy + radius * rad * np.sin(ang)]).round(3)
        disc = shapely.Polygon(np.r_[ring, ring[:1]])
        covered = float(shapely.area(shapely.intersection(disc, shapely.union_all(town_geoms))))
        radius = radius * float(np.sqrt(area_m2 / covered))
    return disc


def build_sample(*, scale: Scale = "small", seed: int = 0, variant: str = "base") -> SampleCity:
    """Generate the sample city in memory (see :func:`write_sample`)."""
    if scale not in SCALES:
        raise InputError(f"unknown scale {scale!r}; use one of {', '.join(SCALES)}", field="scale")
    var = variants.get(variant)
    spec = variants.adjust_spec(SCALES[scale], var)
    r = _streams(int(seed), 12)
    vr = variants.stream(int(seed), var)
    city, towns, town_geoms, centres, comm, seeds_of = _towns_and_communities(spec, r[0])
    comm_geoms = comm["geometry"].to_numpy()
    roads_t, b, frames = _streets_and_buildings(spec, towns, town_geoms, centres, seeds_of, r)
    b, keep_whole = variants.before_locate(var, b, frames, town_geoms, comm_geoms, vr)
    b = _locate(b, comm_geoms, roads_t)
    b, roads_t, zones = variants.after_locate(var, b, comm, city, roads_t, keep_whole, vr)
    pop = _population(spec, len(b), r[3])
    variants.adjust_population(var, b, pop, vr, zones)
    addr = _addresses(b, comm, towns)
    places = _Places(city, towns, town_geoms, comm)
    layers, b_defects = _reference_layers(spec, places, b, pop, addr, roads_t, r)
    comm_households = np.bincount(b["comm"].to_numpy(), weights=pop.households, minlength=len(comm))
    inputs = dept_mod.DeptInputs(
        city=city, towns=layers["towns"], communities=layers["communities"],
        community_households=comm_households, pop_xy=np.c_[addr.xs, addr.ys], pop_w=pop.weight(),
        keep_whole=keep_whole,
    )
    defects = _dept_layers(spec, int(seed), inputs, layers)
    defects.extend(b_defects)
    ev = _events(_EventInputs(scale, spec, var, b, addr, pop, city), r)
    manifest = {
        "scale": scale, "seed": int(seed), "county_code": names.COUNTY_CODE, "crs": CRS,
        "counts": {**{k: len(v) for k, v in layers.items()}, "cases": len(ev.tables["cases"]),
                   "hazards": len(ev.tables["hazards"])},
        "defects": defects, "hotspots": ev.hotspots,
        "address_variants": dict(sorted(ev.text_variants.items())),
        "coord_variants": dict(sorted(ev.cvariants.items())),
        "trends": ev.trends,
        "totals": {"households": int(pop.households.sum()), "residents": int(pop.residents().sum()),
                   "floating_residents": int(pop.floating.sum()), "rental_rooms": int(pop.rental.sum()),
                   "area_km2": round(float(shapely.area(city)) / 1e6, 3)},
        "towns": towns["town_code"].tolist(),
    }
    if var.name != "base":
        manifest["variant"] = {"name": var.name, "description": var.description, "zones": zones}
    return SampleCity(layers, ev.tables["cases"], ev.tables["hazards"], ev.truths["cases"],
                      ev.truths["hazards"], manifest)


def _streets_and_buildings(spec: ScaleSpec, towns: pd.DataFrame, town_geoms: np.ndarray,
                           centres: np.ndarray, seeds_of: list[np.ndarray], r: list[np.random.Generator],
                           ) -> tuple[pd.DataFrame, pd.DataFrame, list[geo.TownFrame]]:
    """Street grid and building lots, town by town; return (roads, buildings, town frames)."""
    pops = towns["population_10k"].to_numpy(float)
    n_b = np.round(spec.buildings * pops / pops.sum()).astype(int)
    cores = names.road_cores()
    road_frames, bld_frames, frames = [], [], []
    for t in range(len(towns)):
        frame = geo.TownFrame(origin=(round(float(centres[t, 0]), -1), round(float(centres[t, 1]), -1)),
                              theta=float(r[1].uniform(-0.35, 0.35)))
        frames.append(frame)
        rd = geo.town_roads(town_geoms[t], frame, r[1], cores)
        rd["town"] = t
        road_frames.append(rd)
        bd = geo.town_buildings(town_geoms[t], frame, np.r_[centres[t:t + 1], seeds_of[t]], int(n_b[t]), r[2])
        bd["town"] = t
        bd["theta"] = frame.theta
        bld_frames.append(bd)
    roads_t = _share_road_names(pd.concat(road_frames, ignore_index=True), r[1])
    return roads_t, pd.concat(bld_frames, ignore_index=True), frames


def _locate(b: pd.DataFrame, comm_geoms: np.ndarray, roads_t: pd.DataFrame) -> pd.DataFrame:
    """Give each building its community (the one holding its lot centre) and its street's name."""
    tree = shapely.STRtree(comm_geoms)
    pi, ci = tree.query(shapely.points(b["x"].to_numpy(), b["y"].to_numpy()), predicate="within")
    pi, first = np.unique(pi, return_index=True)
    b = b.iloc[pi].reset_index(drop=True)
    b["comm"] = ci[first]
    key = roads_t.set_index(["town", "orient", "index"])["road_name"]
    b = b.join(key, on=["town", "orient", "index"])
    return b[b["road_name"].notna()].reset_index(drop=True)


@dataclass
class Population:
    """People per building: use, households, local and floating residents, rental rooms."""

    use_i: np.ndarray
    households: np.ndarray
    floating: np.ndarray
    locals_: np.ndarray
    rental: np.ndarray

    def residents(self) -> np.ndarray:
        """Residents per building (local + floating)."""
        return self.locals_ + self.floating

    def weight(self) -> np.ndarray:
        """Where people are, for seeds and events: residents + 1 per building."""
        return self.residents().astype(float) + 1.0


def _population(spec: ScaleSpec, n: int, rng: np.random.Generator) -> Population:
    use_i = rng.choice(len(_USES), size=n, p=_USE_P)
    jitter = rng.lognormal(0.0, 0.5, n)
    households = rng.multinomial(spec.households, norm(_W_HOUSEHOLDS[use_i] * jitter))
    floating_total = round(spec.residents * spec.floating_share)
    floating = rng.multinomial(floating_total, norm(_W_FLOATING[use_i] * jitter))
    locals_ = rng.multinomial(spec.residents - floating_total, norm(households.astype(float) + 1e-9))
    rental = rng.multinomial(int(floating_total / 2.2), norm(_W_RENTAL[use_i] * jitter))
    return Population(use_i, households, floating, locals_, rental)


@dataclass(frozen=True)
class _Addresses:
    """The standard address of every building, as arrow strings (no Python objects per row)."""

    comm_code: pa.Array
    town_code: pa.Array
    town_name: pa.Array
    comm_name: pa.Array
    road_name: pa.Array
    address_id: pa.Array
    building_id: pa.Array
    hn_text: pa.Array
    bno: pa.Array
    full: pa.Array
    number: np.ndarray
    xs: np.ndarray
    ys: np.ndarray


def _addresses(b: pd.DataFrame, comm: pd.DataFrame, towns: pd.DataFrame) -> _Addresses:
    number, ordinal, lot_size = geo.house_numbers(b)
    n = len(b)
    t_idx = pa.array(b["town"].to_numpy())
    c_idx = pa.array(b["comm"].to_numpy())
    comm_code = pc.take(pa_str(comm["community_code"]), c_idx)
    town_name = pc.take(pa_str(towns["town_name"]), t_idx)
    comm_name = pc.take(pa_str(comm["community_name"]), c_idx)
    road_name = pa_str(b["road_name"])
    seq = b.groupby("comm").cumcount().to_numpy() + 1
    hn_text = pc.binary_join_element_wise(pc.cast(pa.array(number), pa.string()), "号", "")
    bno = pc.if_else(pa.array(lot_size > 1),
                     pc.binary_join_element_wise(pc.cast(pa.array(ordinal), pa.string()), "栋", ""), "")
    return _Addresses(
        comm_code=comm_code, town_code=pc.take(pa_str(towns["town_code"]), t_idx), town_name=town_name,
        comm_name=comm_name, road_name=road_name,
        address_id=pc.binary_join_element_wise(comm_code, lpad(seq, 6), ""),
        building_id=pc.binary_join_element_wise("BLD", lpad(np.arange(1, n + 1), 8), ""),
        hn_text=hn_text, bno=bno,
        full=pc.binary_join_element_wise(
            names.PROVINCE + names.CITY, town_name, comm_name, road_name, hn_text, bno, ""),
        number=number, xs=np.round(b["x"].to_numpy(), 3), ys=np.round(b["y"].to_numpy(), 3),
    )


@dataclass(frozen=True)
class _Places:
    """The city, its towns (table and polygons) and its communities (table with polygons)."""

    city: shapely.Geometry
    towns: pd.DataFrame
    town_geoms: np.ndarray
    comm: pd.DataFrame


def _reference_layers(
    spec: ScaleSpec, places: _Places, b: pd.DataFrame, pop: Population, addr: _Addresses,
    roads_t: pd.DataFrame, r: list[np.random.Generator],
) -> tuple[dict[str, gpd.GeoDataFrame], list[dict[str, Any]]]:
    """Build the layers every department shares (city … std_addresses); plant the buildings' defects."""
    city, towns, town_geoms, comm = places.city, places.towns, places.town_geoms, places.comm
    comm_geoms = comm["geometry"].to_numpy()
    xs, ys = addr.xs, addr.ys
    half = b["half"].to_numpy() if "half" in b else None
    buildings = _gdf({
        "building_id": ser(addr.building_id), "address_id": ser(addr.address_id),
        "households": pop.households, "residents": pop.residents(), "floating_residents": pop.floating,
        "rental_rooms": pop.rental, "use": _USES[pop.use_i], "community_code": ser(addr.comm_code),
        "town_code": ser(addr.town_code), "_x": xs, "_y": ys,
    }, geo.building_polygons(xs, ys, b["theta"].to_numpy(), half))
    buildings, b_defects = plant_building_defects(buildings, spec.defect_factor, r[4])
    buildings = buildings.drop(columns=["_x", "_y"])
    std = _gdf({
        "address_id": ser(addr.address_id), "town_name": ser(addr.town_name),
        "community_name": ser(addr.comm_name), "road_name": ser(addr.road_name),
        "house_number": ser(addr.hn_text), "building_no": ser(addr.bno), "full_address": ser(addr.full),
        "community_code": ser(addr.comm_code), "town_code": ser(addr.town_code),
    }, shapely.points(xs, ys))
    layers: dict[str, gpd.GeoDataFrame] = {
        "city": _gdf({"name": [names.CITY_NAME], "county_code": [names.COUNTY_CODE]}, [city]),
        "towns": _gdf({"town_code": towns["town_code"].to_numpy(),
                       "town_name": towns["town_name"].to_numpy()},
                      town_geoms),
        "communities": _gdf({
            "community_code": comm["community_code"].to_numpy(),
            "community_name": comm["community_name"].to_numpy(),
            "town_code": comm["town_code"].to_numpy(), "town_name": comm["town_name"].to_numpy(),
        }, comm_geoms),
        "roads": roads_layer(roads_t, towns, comm, comm_geoms), "buildings": buildings,
        "units": units_layer(spec, r[5], xs, ys, pop.use_i, addr.address_id, addr.town_name),
        "facilities": facilities_layer(spec, r[6], xs, ys, b["comm"].to_numpy(), comm, towns),
        "std_addresses": std,
    }
    return layers, b_defects


def _dept_layers(spec: ScaleSpec, seed: int, inputs: dept_mod.DeptInputs,
                 layers: dict[str, gpd.GeoDataFrame]) -> list[dict[str, Any]]:
    """Add the five departmental layers to *layers*; return the defects planted in them."""
    defects: list[dict[str, Any]] = []
    for k, d in enumerate(DEPARTMENTS):
        gdf, planted = dept_mod.dept_layer(
            d, inputs, n=spec.dept_grids[d], rng=np.random.default_rng([seed, 100 + k]),
            salt=seed * 7919 + k, defect_factor=spec.defect_factor,
        )
        layers[f"dept_{d}"] = gdf
        defects.extend(planted)
    return defects


@dataclass(frozen=True)
class _EventInputs:
    scale: str
    spec: ScaleSpec
    variant: variants.Variant
    b: pd.DataFrame
    addr: _Addresses
    pop: Population
    city: shapely.Geometry


@dataclass
class _Events:
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    truths: dict[str, pd.DataFrame] = field(default_factory=dict)
    hotspots: list[dict[str, Any]] = field(default_factory=list)
    trends: dict[str, Any] = field(default_factory=dict)
    text_variants: dict[str, int] = field(default_factory=dict)
    cvariants: dict[str, int] = field(default_factory=dict)

    def count(self, text_variants: pd.Series, coord_variants: np.ndarray) -> None:
        for key_, val in text_variants.value_counts().items():
            self.text_variants[str(key_)] = self.text_variants.get(str(key_), 0) + int(val)
        for key_, val in pd.Series(coord_variants).value_counts().items():
            self.cvariants[str(key_)] = self.cvariants.get(str(key_), 0) + int(val)


def _address_book(inp: _EventInputs) -> ev_mod.AddressBook:
    b, addr = inp.b, inp.addr
    road_max = pd.Series(addr.number).groupby(
        [b["town"].to_numpy(), b["orient"].to_numpy(), b["index"].to_numpy(), b["side"].to_numpy()]
    ).transform("max").to_numpy()
    lon, lat = geo.xy_to_lonlat(addr.xs, addr.ys)
    return ev_mod.AddressBook(
        address_id=addr.address_id, town_name=addr.town_name, community_name=addr.comm_name,
        road_name=addr.road_name, house_no=addr.number, building_no=addr.bno, full_address=addr.full,
        x=addr.xs, y=addr.ys, lon=lon, lat=lat, weight=inp.pop.weight(),
        households=inp.pop.households.astype(float), road_max_no=road_max,
    )


def _events(inp: _EventInputs, r: list[np.random.Generator]) -> _Events:
    """Cases and hazards with their truth tables, planted hotspots and trends."""
    book = _address_book(inp)
    spots = inp.variant.spots
    per_source = [len(spots[s]) if spots else len(ev_mod.HOTSPOTS[inp.scale][s])
                  for s in ("cases", "hazards")]
    centres_idx, tree_pts = ev_mod.pick_hotspot_centres(book, per_source, inp.city, r[7])
    out = _Events()
    offset = 0
    sources = (("cases", inp.spec.cases, "C"), ("hazards", inp.spec.hazards, "HZ"))
    for s, (source, count, prefix) in enumerate(sources):
        k = per_source[s]
        hot_ids = [f"H{offset + i + 1}" for i in range(k)]
        if spots:
            ev, meta = ev_mod.make_spot_events(source, count, book, centres_idx[s], tree_pts,
                                               list(spots[source]), hot_ids, r[8 + s])
        else:
            ev, meta = ev_mod.make_events(source, count, book, centres_idx[s], tree_pts, hot_ids, r[8 + s],
                                          scale=inp.scale)
        offset += k
        out.hotspots.extend(meta)
        out.trends[source] = ev_mod.trends_table(ev, source)
        text = ev_mod.address_text(ev, book, r[10])
        lon_e, lat_e, sys_, cv = ev_mod.coordinates(ev, book, r[11])
        id_col = "case_id" if source == "cases" else "hazard_id"
        ids = ser(pc.binary_join_element_wise(prefix, lpad(np.arange(1, len(ev) + 1), 7), ""))
        a = ev["addr"].to_numpy()
        out.tables[source] = pd.DataFrame({
            id_col: ids, "category": ev["category"].to_numpy(),
            "reported_at": np.datetime_as_string(ev["reported_at"].to_numpy(), unit="s"),
            "address": ser(text["address"]), "lon": lon_e, "lat": lat_e, "coord_sys": sys_,
        })
        out.truths[source] = pd.DataFrame({
            id_col: ids, "address_id": ser(text["address_id"]),
            "x": book.x[a], "y": book.y[a], "lon": np.round(book.lon[a], 8), "lat": np.round(book.lat[a], 8),
            "in_library": text["in_library"], "variant": ser(text["variant"]),
            "coord_variant": cv, "hotspot_id": ev["hotspot_id"].to_numpy(),
        })
        out.count(out.truths[source]["variant"], cv)
    return out


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    """Write *df* as UTF-8 CSV atomically (arrow's writer: ~5x faster than pandas at 1 M rows).

    Text is quoted, empty cells are NULLs, booleans are written ``True``/``False`` as pandas does.
    """
    table = pa.Table.from_pandas(df, preserve_index=False)
    for i, name in enumerate(table.column_names):
        if pa.types.is_boolean(table.schema.field(name).type):
            text = pc.if_else(table.column(name), "True", "False")
            table = table.set_column(i, name, text)
    with atomic_path(path) as tmp:
        pcsv.write_csv(table, tmp, write_options=pcsv.WriteOptions(quoting_style="needed"))


def write_sample(
    out_dir: str | os.PathLike[str], *, scale: Scale = "small", seed: int = 0, variant: str = "base"
) -> Path:
    """Generate the sample city and write it to *out_dir*.

    Parameters
    ----------
    out_dir
        Folder to write (created if missing).  Files: ``layers.gpkg`` (every layer of PRODUCT §4,
        EPSG:4547), ``cases.csv``, ``hazards.csv``, ``truth_cases.csv``, ``truth_hazards.csv``,
        ``manifest.json``.  Each file is written to a temporary name and renamed.
    scale
        ``"small"`` (3 towns, ~5k addresses; seconds) or ``"city"`` (Dongguan scale; minutes).
    seed
        Seed of the random generator; one seed always gives the same files.
    variant
        ``"base"`` (the sample city) or a city unlike it (:mod:`gridplan.sample.variants`):
        ``"coarse"``, ``"compounds"``, ``"villages"``, ``"industrial"``.

    Returns
    -------
    Path
        *out_dir*.

    Raises
    ------
    InputError
        Unknown *scale* or *variant*, negative *seed*, or *out_dir* is an existing file.

    """
    out = Path(out_dir)
    if scale not in SCALES:
        raise InputError(f"unknown scale {scale!r}; use one of {', '.join(SCALES)}", field="scale")
    if int(seed) < 0:
        raise InputError(f"seed must be >= 0, got {seed}", field="seed")
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a folder; give a folder for --out", file=out)
    variants.get(variant)
    t0 = time.perf_counter()
    sample = build_sample(scale=scale, seed=seed, variant=variant)
    out.mkdir(parents=True, exist_ok=True)
    gpkg = out / "layers.gpkg"
    with atomic_path(gpkg) as tmp:
        for name in LAYER_ORDER:
            pyogrio.write_dataframe(sample.layers[name], tmp, layer=name, driver="GPKG", use_arrow=True)
    _write_csv(sample.cases, out / "cases.csv")
    _write_csv(sample.hazards, out / "hazards.csv")
    _write_csv(sample.truth_cases, out / "truth_cases.csv")
    _write_csv(sample.truth_hazards, out / "truth_hazards.csv")
    write_text(json.dumps(sample.manifest, ensure_ascii=False, indent=1), out / "manifest.json")
    c = sample.manifest["counts"]
    logger.info(
        "wrote sample city %s/%s (seed %d) to %s: %d towns, %d communities, %d addresses, %d cases, "
        "%d defects in %.1f s",
        scale, variant, seed, out, c["towns"], c["communities"], c["std_addresses"], c["cases"],
        len(sample.manifest["defects"]), time.perf_counter() - t0,
    )
    return out
