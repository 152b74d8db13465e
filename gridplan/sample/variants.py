"""Generated cities unlike the sample (issue 12/14): the same data contract, another character.

Owns the variants of :func:`gridplan.sample.build_sample` (``gridplan sample --variant``):

* ``base`` — the sample city itself (byte-identical to what it always was for a seed);
* ``coarse`` — departmental layers of few big grids (a fifth of the base counts);
* ``compounds`` — big compounds: street blocks filled with buildings holding 600–2,000 households,
  which no departmental line crosses (each department's grid takes the block whole);
* ``villages`` — villages of dense rental buildings (城中村): small buildings packed along
  irregular lanes, many households per building;
* ``industrial`` — an industrial belt across the city: few, big factory buildings, few households.

Every variant also plants hotspots of different sizes (200–800 m radius) and background densities
with a trend each (rising, falling, steady, new, sporadic; :class:`~gridplan.sample.events.Spot`),
recorded in ``manifest.json`` (``hotspots``) and the truth tables, and describes what it built under
``manifest["variant"]["zones"]`` (kind, id, community, buildings, households, WKT geometry), so
tests can score the merge and the hot spot analysis on it.  A variant draws from its own random
stream, so the base city's draws stay untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import shapely

from gridplan.errors import InputError
from gridplan.sample import geo, names
from gridplan.sample.events import Spot

VARIANT_NAMES = ("base", "coarse", "compounds", "villages", "industrial")
_HOUSE, _RENTAL, _FACTORY = 0, 1, 2  # indexes into city._USES (住宅, 出租屋, 厂房)
LANE_M = 30.0
VILLAGE_COLUMN_M = 10.0
INDUSTRIAL_HALF_M = 11.0


@dataclass(frozen=True)
class Variant:
    """What a variant changes: department grid counts, compounds, villages, a belt, events, hotspots."""

    name: str
    description: str
    dept_factor: float = 1.0
    compounds: int = 0
    villages: int = 0
    industrial: bool = False
    cases: int | None = None
    hazards: int | None = None
    spots: dict[str, tuple[Spot, ...]] | None = None


VARIANTS: dict[str, Variant] = {
    "base": Variant("base", "the sample city"),
    "coarse": Variant(
        "coarse", "coarse departmental layers (a fifth of the grids)", dept_factor=0.2,
        spots={"cases": (Spot("治安", "rising", 250.0, 0.05), Spot("城市管理", "steady", 650.0, 0.12)),
               "hazards": (Spot("消防", "falling", 450.0, 0.10), Spot("安全生产", "new", 300.0, 0.05))},
    ),
    "compounds": Variant(
        "compounds", "big compounds: street blocks of 600-2,000 households no department line crosses",
        compounds=10, cases=12_000, hazards=3_000,
        spots={"cases": (Spot("矛盾纠纷", "steady", 400.0, 0.08), Spot("治安", "falling", 800.0, 0.14)),
               "hazards": (Spot("消防", "rising", 600.0, 0.12), Spot("城市管理", "sporadic", 250.0, 0.06))},
    ),
    "villages": Variant(
        "villages", "villages of dense rental buildings along irregular lanes (城中村)",
        villages=2, cases=6_000, hazards=2_500,
        spots={"cases": (Spot("治安", "rising", 200.0, 0.05), Spot("城市管理", "falling", 500.0, 0.09)),
               "hazards": (Spot("消防", "steady", 350.0, 0.08), Spot("安全生产", "rising", 750.0, 0.13))},
    ),
    "industrial": Variant(
        "industrial", "an industrial belt across the city: big factories, few households",
        industrial=True, cases=5_000, hazards=1_500,
        spots={"cases": (Spot("安全生产", "rising", 700.0, 0.12), Spot("治安", "steady", 300.0, 0.06)),
               "hazards": (Spot("安全生产", "falling", 800.0, 0.14), Spot("消防", "new", 200.0, 0.05))},
    ),
}


def get(name: str) -> Variant:
    """Return the variant called *name* (InputError naming the choices otherwise)."""
    if name not in VARIANTS:
        raise InputError(f"unknown variant {name!r}; use one of {', '.join(VARIANTS)}", field="variant")
    return VARIANTS[name]


def adjust_spec(spec: Any, var: Variant) -> Any:
    """Return the scale's sizes as *var* changes them (the base variant returns *spec* itself)."""
    if var.name == "base":
        return spec
    grids = {k: max(3, round(v * var.dept_factor)) for k, v in spec.dept_grids.items()}
    return replace(spec, dept_grids=grids, cases=var.cases or spec.cases, hazards=var.hazards or spec.hazards)


def stream(seed: int, var: Variant) -> np.random.Generator:
    """Return the variant's own random stream (the base city's streams stay as they were)."""
    return np.random.default_rng([seed, 500, VARIANT_NAMES.index(var.name)])


def _zone_columns(b: pd.DataFrame) -> pd.DataFrame:
    if "zone" in b:
        return b
    b = b.copy()
    b["zone"] = ""
    b["zone_id"] = -1
    b["half"] = geo.BUILDING_HALF_M
    return b


# --------------------------------------------------------------------------------------------
# compounds: street blocks filled with buildings, taken whole by every department
# --------------------------------------------------------------------------------------------


def before_locate(var: Variant, b: pd.DataFrame, frames: list[geo.TownFrame], town_geoms: np.ndarray,
                  comm_geoms: np.ndarray, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    """Fill the compounds' blocks with buildings; return the buildings and the compound polygons."""
    if not var.compounds:
        return b, np.empty(0, dtype=object)
    b = _zone_columns(b)
    blocks = _compound_blocks(var.compounds, b, frames, comm_geoms, rng)
    added, polys = [], []
    for k, (t, bu, bv) in enumerate(blocks):
        lots = geo.block_lots(town_geoms[t], frames[t], bu, bv)
        mine = b["town"].to_numpy() == t
        xy = np.round(b[["x", "y"]].to_numpy()[mine], 2)
        have = set(zip(xy[:, 0], xy[:, 1], strict=True))
        new = [(round(x, 2), round(y, 2)) not in have for x, y in zip(lots["x"], lots["y"], strict=True)]
        lots = lots[np.asarray(new, dtype=bool)].assign(town=t, theta=frames[t].theta)
        added.append(lots)
        ou, ov = geo.block_of(b["x"].to_numpy(), b["y"].to_numpy(), frames[t])
        inside = mine & (ou == bu) & (ov == bv)
        b.loc[inside, ["zone", "zone_id"]] = ["compound", k]
        added[-1] = added[-1].assign(zone="compound", zone_id=k, half=geo.BUILDING_HALF_M)
        polys.append(geo.block_polygon(frames[t], bu, bv))
    b = pd.concat([b, *added], ignore_index=True)
    return b, np.asarray(polys, dtype=object)


def _compound_blocks(k: int, b: pd.DataFrame, frames: list[geo.TownFrame], comm_geoms: np.ndarray,
                     rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """*k* busy street blocks, each inside one community, at least 600 m apart."""
    cand = []
    for t, frame in enumerate(frames):
        sel = b["town"].to_numpy() == t
        bu, bv = geo.block_of(b["x"].to_numpy()[sel], b["y"].to_numpy()[sel], frame)
        counts = pd.DataFrame({"u": bu, "v": bv}).value_counts()
        for (u, v), c in counts.items():
            if c >= 12:
                cand.append((int(c) + float(rng.random()), t, int(u), int(v)))
    cand.sort(reverse=True)
    tree = shapely.STRtree(comm_geoms)
    chosen: list[tuple[int, int, int]] = []
    centres: list[tuple[float, float]] = []
    for _, t, u, v in cand:
        poly = geo.block_polygon(frames[t], u, v)
        hit = tree.query(shapely.buffer(poly, -2.0), predicate="intersects")
        if len(hit) != 1 or not shapely.contains(shapely.buffer(comm_geoms[hit[0]], 1.0), poly):
            continue
        c = shapely.centroid(poly)
        if any((c.x - x) ** 2 + (c.y - y) ** 2 < 600.0**2 for x, y in centres):
            continue
        chosen.append((t, u, v))
        centres.append((c.x, c.y))
        if len(chosen) == k:
            break
    return chosen


# --------------------------------------------------------------------------------------------
# villages (城中村) and the industrial belt
# --------------------------------------------------------------------------------------------


def after_locate(var: Variant, b: pd.DataFrame, comm: pd.DataFrame, city: shapely.Geometry,
                 roads_t: pd.DataFrame, compounds: np.ndarray, rng: np.random.Generator,
                 ) -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, Any]]]:
    """Villages and the industrial belt on the located buildings; return (buildings, roads, zones)."""
    zones: list[dict[str, Any]] = []
    if var.name == "base":
        return b, roads_t, zones
    b = _zone_columns(b)
    if var.compounds:
        for k in sorted(set(b.loc[b["zone"] == "compound", "zone_id"])):
            rows = b[(b["zone"] == "compound") & (b["zone_id"] == k)]
            zones.append({"kind": "compound", "id": f"CP{k + 1:02d}",
                          "community_code": str(comm["community_code"].iat[int(rows["comm"].mode().iat[0])]),
                          "geometry": shapely.to_wkt(compounds[int(k)], rounding_precision=3)})
    for v in range(var.villages):
        got = _village(v, b, comm, roads_t, rng)
        if got is None:
            continue
        b, roads_t, zone = got
        zones.append(zone)
    if var.industrial:
        b, zone = _industrial_belt(b, city, rng)
        zones.append(zone)
    return b, roads_t, zones


def _village(v: int, b: pd.DataFrame, comm: pd.DataFrame, roads_t: pd.DataFrame,
             rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]] | None:
    """Replace the buildings of a disc inside a village community by a dense rental village."""
    radius = float(rng.uniform(130.0, 170.0))
    taken = set(b.loc[b["zone"] == "village", "comm"])
    order = [int(c) for c in rng.permutation(len(comm))
             if comm["suffix"].iat[int(c)] == "村" and int(c) not in taken]
    for c in order:
        inner = shapely.buffer(comm["geometry"].iat[c], -(radius + 30.0))
        if shapely.is_empty(inner):
            continue
        mine = np.flatnonzero((b["comm"].to_numpy() == c)
                              & shapely.contains_xy(inner, b["x"].to_numpy(), b["y"].to_numpy()))
        if len(mine) < 5:
            continue
        i = int(rng.choice(mine))
        centre = (float(b["x"].iat[i]), float(b["y"].iat[i]))
        rows, lanes = _village_layout(v, c, centre, radius, b, comm, rng)
        d = np.hypot(b["x"].to_numpy() - centre[0], b["y"].to_numpy() - centre[1])
        b = pd.concat([b[d > radius + 12.0], rows], ignore_index=True)
        disc = shapely.buffer(shapely.Point(centre), radius + 4.0)
        cut = roads_t.copy()
        cut["geometry"] = shapely.difference(cut["geometry"].to_numpy(), disc)
        cut = cut[~shapely.is_empty(cut["geometry"].to_numpy())]
        roads_t = pd.concat([cut, lanes], ignore_index=True)
        zone = {"kind": "village", "id": f"VL{v + 1:02d}",
                "community_code": str(comm["community_code"].iat[c]),
                "geometry": shapely.to_wkt(shapely.buffer(shapely.Point(centre), radius),
                                           rounding_precision=3)}
        return b, roads_t, zone
    return None


def _village_layout(v: int, c: int, centre: tuple[float, float], radius: float, b: pd.DataFrame,
                    comm: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Small buildings in two rows between wavy lanes LANE_M apart; return (buildings, lanes)."""
    phi = float(rng.uniform(0.0, np.pi))
    n_l = int(np.ceil(radius / LANE_M)) + 1
    n_c = int(np.ceil(radius / VILLAGE_COLUMN_M)) + 1
    lane_k, col = np.meshgrid(np.arange(-n_l, n_l + 1), np.arange(-n_c, n_c + 1), indexing="ij")
    rows = []
    for side, off in ((0, 9.5), (1, 20.5)):  # row 0 faces lane k, row 1 faces lane k + 1
        u = col.ravel() * VILLAGE_COLUMN_M + rng.uniform(-0.8, 0.8, col.size)
        w = lane_k.ravel() * LANE_M + off + rng.uniform(-0.6, 0.6, col.size)
        rows.append(pd.DataFrame({"u": u, "w": w, "lane": lane_k.ravel() + side, "side": side,
                                  "along": col.ravel() + n_c}))
    df = pd.concat(rows, ignore_index=True)
    df = df[np.hypot(df["u"], df["w"]) < radius - 8.0].reset_index(drop=True)
    cos, sin = np.cos(phi), np.sin(phi)
    x = centre[0] + df["u"].to_numpy() * cos - df["w"].to_numpy() * sin
    y = centre[1] + df["u"].to_numpy() * sin + df["w"].to_numpy() * cos
    town = int(comm["town_idx"].iat[c])
    core = str(comm["core"].iat[c])
    used = np.unique(df["lane"].to_numpy())
    lane_name = {k: f"{core}{names.int_to_chinese(j + 1)}巷" for j, k in enumerate(used)}
    index = 200_000 + v * 1_000 + df["lane"].to_numpy() - int(used.min())
    out = pd.DataFrame({
        "x": x, "y": y, "orient": 1, "index": index.astype(np.int64), "side": df["side"].to_numpy(),
        "along": df["along"].to_numpy(), "depth": 0, "town": town,
        "theta": phi + rng.normal(0.0, 0.06, len(df)), "comm": c,
        "road_name": [lane_name[k] for k in df["lane"]], "zone": "village", "zone_id": v,
        "half": rng.uniform(3.4, 4.0, len(df)),
    })
    lines = []
    # the lanes reach to where the old buildings were cleared, so every row faces its lane
    clip = shapely.intersection(shapely.buffer(shapely.Point(centre), radius + 12.0), comm["geometry"].iat[c])
    for k in used:
        u = np.arange(-radius - 15.0, radius + 15.0, 3.0)
        w = k * LANE_M + 2.5 * np.sin(u / 9.0 + float(rng.uniform(0, 2 * np.pi)))
        xy = np.c_[centre[0] + u * cos - w * sin, centre[1] + u * sin + w * cos]
        line = shapely.linestrings(np.round(xy, 3))
        lines.append({"orient": 1, "index": 200_000 + v * 1_000 + int(k - used.min()),
                      "geometry": shapely.intersection(line, clip), "road_name": lane_name[k],
                      "road_class": names.ROAD_KINDS[3][0], "town": town})
    lanes = pd.DataFrame(lines)
    lanes = lanes[~shapely.is_empty(lanes["geometry"].to_numpy())]
    del b
    return out, lanes.reset_index(drop=True)


def _industrial_belt(b: pd.DataFrame, city: shapely.Geometry,
                     rng: np.random.Generator) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Lay a 1.5 km wide belt across the city: 3 in 10 of its lots keep a factory, the rest go."""
    c = shapely.centroid(city)
    x0, y0, x1, y1 = shapely.bounds(city)
    span = float(np.hypot(x1 - x0, y1 - y0))
    ang = float(rng.uniform(0.0, np.pi))
    off = float(rng.uniform(-0.25, 0.25)) * min(x1 - x0, y1 - y0)
    nx, ny = -np.sin(ang), np.cos(ang)
    mid = (c.x + off * nx, c.y + off * ny)
    line = shapely.LineString([(mid[0] - span * np.cos(ang), mid[1] - span * np.sin(ang)),
                               (mid[0] + span * np.cos(ang), mid[1] + span * np.sin(ang))])
    belt = shapely.intersection(shapely.buffer(line, 750.0, cap_style="flat"), city)
    shapely.prepare(belt)
    inside = shapely.contains_xy(belt, b["x"].to_numpy(), b["y"].to_numpy())
    keep = ~inside | (rng.random(len(b)) < 0.3)
    b = b[keep].reset_index(drop=True)
    inside = inside[keep]
    b.loc[inside, ["zone", "zone_id", "half"]] = ["industrial", 0, INDUSTRIAL_HALF_M]
    zone = {"kind": "industrial", "id": "IB01",
            "geometry": shapely.to_wkt(belt, rounding_precision=3),
            "area_km2": round(float(shapely.area(belt)) / 1e6, 3)}
    return b, zone


# --------------------------------------------------------------------------------------------
# people
# --------------------------------------------------------------------------------------------


def adjust_population(var: Variant, b: pd.DataFrame, pop: Any, rng: np.random.Generator,
                      zones: list[dict[str, Any]]) -> None:
    """Give the variant's zones their people (in place) and record households per zone."""
    if var.name == "base" or "zone" not in b:
        return
    zone, zid = b["zone"].to_numpy(), b["zone_id"].to_numpy()
    for k in sorted(set(zid[zone == "compound"])):
        idx = np.flatnonzero((zone == "compound") & (zid == k))
        w = rng.lognormal(0.0, 0.4, len(idx))
        hh = rng.multinomial(int(rng.integers(700, 1_900)), w / w.sum())
        _set(pop, idx, _HOUSE, hh, rng.poisson(2.2 * hh), rng.poisson(0.9 * hh), rng.poisson(0.15 * hh))
    idx = np.flatnonzero(zone == "village")
    hh = 6 + rng.poisson(10.0, len(idx))
    _set(pop, idx, _RENTAL, hh, rng.poisson(0.3 * hh), rng.poisson(2.3 * hh), hh + rng.poisson(3.0, len(idx)))
    idx = np.flatnonzero(zone == "industrial")
    hh = rng.binomial(1, 0.1, len(idx))
    _set(pop, idx, _FACTORY, hh, 2 * hh, rng.poisson(4.0, len(idx)), np.zeros(len(idx), dtype=np.int64))
    codes = {"compound": "CP", "village": "VL", "industrial": "IB"}
    for z in zones:
        sel = np.array([f"{codes.get(a, '')}{int(i) + 1:02d}" == z["id"]
                        for a, i in zip(zone, zid, strict=True)])
        z["buildings"] = int(sel.sum())
        z["households"] = int(pop.households[sel].sum())


def _set(pop: Any, idx: np.ndarray, use: int, households: np.ndarray, locals_: np.ndarray,
         floating: np.ndarray, rental: np.ndarray) -> None:
    pop.use_i[idx] = use
    pop.households[idx] = households
    pop.locals_[idx] = locals_
    pop.floating[idx] = floating
    pop.rental[idx] = rental
