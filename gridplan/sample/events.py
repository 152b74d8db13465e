"""Cases and hazards of the sample city (private to :mod:`gridplan.sample`).

Owns the event generator: a background proportional to population, planted hotspots per source
(small scale: 2 per source holding 14 % / 18 % of its events each; 40 % of them within 300 m of the
centre, the rest spread over the neighbouring base grids; each with a rising/falling/steady trend),
year-on-year category trends, free-text addresses perturbed the way people write them (each row's
``variant`` recorded), and optional app coordinates in WGS-84/GCJ-02/BD-09, a few swapped or outside
the city (``coord_variant``).  The truth tables let tests score the geocoder.

Hotspot strength was tuned against the project's own analyses on the small sample (seeds 0–4):
Gi* per category on base grids and on H3 res 9 cells flags the cell holding every centre at 99 %
(FDR), and quarterly emerging-hotspot patterns match the planted trends.  Centres are put where
addresses are plentiful but residents few, because rates per resident are what the analyses test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from numpy.typing import NDArray

from gridplan.crs import wgs84_to_bd09, wgs84_to_gcj02
from gridplan.sample import names

#: source → category → (share of background, designed year-on-year change)
CATEGORIES: dict[str, dict[str, tuple[float, float]]] = {
    "cases": {"治安": (0.30, -0.35), "矛盾纠纷": (0.25, 0.05), "城市管理": (0.25, 0.15),
              "消防": (0.10, -0.22), "安全生产": (0.10, -0.11)},
    "hazards": {"消防": (0.35, 0.12), "安全生产": (0.30, -0.08), "治安": (0.15, -0.20),
                "城市管理": (0.20, 0.10)},
}
#: scale → source → planted hotspots (category, trend).  Two per source at the small scale (Gi* there
#: runs on ~65 grids, where each extra hotspot inflates the variance the others are judged against);
#: more, each smaller, over the whole city.
HOTSPOTS: dict[str, dict[str, list[tuple[str, str]]]] = {
    "small": {"cases": [("治安", "falling"), ("城市管理", "rising")],
              "hazards": [("消防", "rising"), ("安全生产", "steady")]},
    "city": {"cases": [("治安", "falling"), ("城市管理", "rising"), ("矛盾纠纷", "steady"),
                       ("治安", "rising"), ("消防", "falling"), ("安全生产", "steady")],
             "hazards": [("消防", "rising"), ("安全生产", "steady"), ("治安", "falling"),
                         ("城市管理", "rising")]},
}
#: A hotspot is a dense core (≤ 300 m, within about one base grid) inside a uniform halo reaching the
#: neighbouring grids (HALO_FACTOR × the radius holding one grid's households): Gi* sums a grid's
#: neighbourhood, so a single hot grid among ordinary neighbours would stay below 99 %.
#: scale → source → share of the source's events in each hotspot
HOTSPOT_SHARE = {"small": {"cases": 0.14, "hazards": 0.18}, "city": {"cases": 0.03, "hazards": 0.04}}
HOTSPOT_CORE_SHARE = 0.4
HOTSPOT_CORE_RADIUS_M = 300.0
HOTSPOT_GRID_HOUSEHOLDS = 400
HOTSPOT_HALO_FACTOR = 2.0
HOTSPOT_RESIDENTS_RADIUS_M = 800.0
YEARS = (2023, 2024, 2025)
_TREND_WEIGHTS = {"rising": (0.2, 0.3, 0.5), "falling": (0.5, 0.3, 0.2), "steady": (1 / 3, 1 / 3, 1 / 3)}

ADDRESS_VARIANTS: dict[str, float] = {
    "exact": 0.30, "fullwidth_digits": 0.06, "chinese_numerals": 0.07, "no_prefix": 0.10,
    "city_prefix": 0.06, "town_suffix_dropped": 0.06, "village_alias": 0.06, "spacing_punct": 0.06,
    "noise": 0.07, "road_typo": 0.05, "house_not_in_library": 0.04, "not_in_library": 0.03,
    "community_omitted": 0.04,
}
COORD_SHARE = 0.20
COORD_VARIANTS: dict[str, float] = {
    "wgs84": 0.35, "gcj02": 0.35, "bd09": 0.20, "swapped": 0.05, "outside": 0.05,
}
_FAKE_ROADS = np.array(
    ["幸福路", "人民路", "解放路", "文化路", "和谐大道", "光明街", "建设路", "团结巷"], dtype=object
)
_NOISE = np.array(["附近", "对面", "旁边", "门口", "3楼", "502房", "二楼", "1203房"], dtype=object)
_SEPS = np.array([" ", "，", ",", "、", "  "], dtype=object)


@dataclass(frozen=True)
class AddressBook:
    """The standard address library as arrays (one row per address; text as arrow strings)."""

    address_id: pa.Array
    town_name: pa.Array
    community_name: pa.Array
    road_name: pa.Array
    house_no: NDArray[np.int64]
    building_no: pa.Array
    full_address: pa.Array
    x: NDArray[np.float64]
    y: NDArray[np.float64]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    weight: NDArray[np.float64]
    households: NDArray[np.float64]
    road_max_no: NDArray[np.int64]


def pick_hotspot_centres(
    book: AddressBook, counts: list[int], city: shapely.Geometry, rng: np.random.Generator, *,
    min_sep_m: float = 3000.0, edge_m: float = 1600.0,
) -> tuple[list[NDArray[np.int64]], shapely.STRtree]:
    """Hotspot centres per source: dense addresses, *edge_m* inside the city, *min_sep_m* apart.

    Centres of one source are kept apart (Gi* is computed per source); the next source prefers
    places not used yet but may reuse them when the city is small.
    """
    n = len(book.x)
    pts = shapely.points(book.x, book.y)
    tree = shapely.STRtree(pts)
    inner = shapely.buffer(city, -edge_m)
    ok = shapely.contains_xy(inner, book.x, book.y) if not shapely.is_empty(inner) else np.ones(n, bool)
    pool = np.flatnonzero(ok) if ok.sum() >= 10 else np.arange(n)
    cand = rng.choice(pool, size=min(len(pool), 3000), replace=False)
    qi, _ = tree.query(pts[cand], predicate="dwithin", distance=HOTSPOT_CORE_RADIUS_M)
    density = np.bincount(qi, minlength=len(cand))
    # enough addresses nearby, but few residents around: analyses rate events per resident, and a
    # crowded block's many residents would dilute the hotspot's rate
    qi2, qa2 = tree.query(pts[cand], predicate="dwithin", distance=HOTSPOT_RESIDENTS_RADIUS_M)
    residents = np.bincount(qi2, weights=book.weight[qa2], minlength=len(cand))
    busy = density >= max(15.0, float(np.quantile(density, 0.5)))
    ranked = np.r_[cand[busy][np.argsort(residents[busy], kind="stable")],
                   cand[~busy][np.argsort(-density[~busy], kind="stable")]]
    used: list[int] = []
    out = []
    for k in counts:
        chosen: list[int] = []
        for sep in (min_sep_m, min_sep_m * 0.7, min_sep_m * 0.5):
            for c in ranked:
                if len(chosen) == k:
                    break
                far = all(_d2(book, c, o) > sep**2 for o in chosen)
                fresh = all(_d2(book, c, o) > 1000.0**2 for o in used)
                if far and (fresh or sep < min_sep_m) and int(c) not in chosen:
                    chosen.append(int(c))
            if len(chosen) == k:
                break
        used.extend(chosen)
        out.append(np.array(chosen, dtype=np.int64))
    return out, tree


def _d2(book: AddressBook, a: int, b: int) -> float:
    return float((book.x[a] - book.x[b]) ** 2 + (book.y[a] - book.y[b]) ** 2)


def grid_radius_m(book: AddressBook, c: int) -> float:
    """Radius around address *c* holding one base grid's households (HOTSPOT_GRID_HOUSEHOLDS)."""
    d = np.hypot(book.x - book.x[c], book.y - book.y[c])
    order = np.argsort(d, kind="stable")
    cum = np.cumsum(book.households[order])
    k = min(int(np.searchsorted(cum, HOTSPOT_GRID_HOUSEHOLDS)), len(d) - 1)
    return float(max(d[order[k]], 150.0))


def _near(book: AddressBook, tree: shapely.STRtree, c: int, radius_m: float, sigma_m: float, n: int,
          rng: np.random.Generator) -> NDArray[np.int64]:
    """*n* addresses within *radius_m* of address *c*, Gaussian-weighted by distance (sigma_m)."""
    near = tree.query(shapely.points(book.x[c], book.y[c]), predicate="dwithin", distance=radius_m)
    d2 = (book.x[near] - book.x[c]) ** 2 + (book.y[near] - book.y[c]) ** 2
    w = np.exp(-d2 / (2 * sigma_m**2)) if np.isfinite(sigma_m) else np.ones(len(near))
    return rng.choice(near, size=n, p=w / w.sum())


def _dates(year: NDArray[np.int64], rng: np.random.Generator) -> NDArray[np.object_]:
    start = (year - 1970).astype("datetime64[Y]").astype("datetime64[s]")
    end = (year - 1969).astype("datetime64[Y]").astype("datetime64[s]")
    span = (end - start).astype(np.int64)
    secs = (rng.random(len(year)) * span).astype(np.int64)
    return start + secs.astype("timedelta64[s]")


def make_events(
    source: str, n: int, book: AddressBook, centres: NDArray[np.int64], tree: shapely.STRtree,
    hot_ids: list[str], rng: np.random.Generator, *, scale: str = "small",
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Located events of *source* with category, time, true address and hotspot id."""
    hot = HOTSPOTS[scale][source]
    n_hot = round(n * HOTSPOT_SHARE[scale][source])
    parts = []
    meta = []
    for (cat, trend), c, hid in zip(hot, centres, hot_ids, strict=True):
        n_core = round(n_hot * HOTSPOT_CORE_SHARE)
        r_grid = grid_radius_m(book, c)
        core_r = min(HOTSPOT_CORE_RADIUS_M, r_grid)
        halo_r = max(HOTSPOT_HALO_FACTOR * r_grid, core_r)
        addr = np.r_[_near(book, tree, c, core_r, core_r / 2.5, n_core, rng),
                     _near(book, tree, c, halo_r, np.inf, n_hot - n_core, rng)]
        year = rng.choice(np.array(YEARS), size=n_hot, p=_TREND_WEIGHTS[trend])
        parts.append(pd.DataFrame({"category": cat, "year": year, "addr": addr, "hotspot_id": hid}))
        meta.append({"id": hid, "source": source, "category": cat, "x": round(float(book.x[c]), 3),
                     "y": round(float(book.y[c]), 3), "lon": round(float(book.lon[c]), 7),
                     "lat": round(float(book.lat[c]), 7), "radius_m": float(np.ceil(halo_r * 10) / 10),
                     "core_radius_m": float(np.ceil(core_r * 10) / 10), "core_events": n_core, "trend": trend,
                     "events": n_hot})
    parts.append(_background(source, n - n_hot * len(hot), book, rng))
    ev = pd.concat(parts, ignore_index=True)
    ev["reported_at"] = _dates(ev["year"].to_numpy(), rng)
    ev = ev.sort_values(["reported_at", "addr"], kind="stable").reset_index(drop=True)
    return ev, meta


def _background(source: str, n_bg: int, book: AddressBook, rng: np.random.Generator) -> pd.DataFrame:
    """Events spread in proportion to residents, categories and years following the designed trends."""
    cats = CATEGORIES[source]
    combos = [(c, y, share * (1 + g) ** i) for c, (share, g) in cats.items() for i, y in enumerate(YEARS)]
    p = np.array([w for _, _, w in combos])
    pick = rng.choice(len(combos), size=n_bg, p=p / p.sum())
    addr = rng.choice(len(book.x), size=n_bg, p=book.weight / book.weight.sum())
    return pd.DataFrame({
        "category": np.array([c for c, _, _ in combos], dtype=object)[pick],
        "year": np.array([y for _, y, _ in combos])[pick], "addr": addr, "hotspot_id": "",
    })


@dataclass(frozen=True)
class Spot:
    """A planted hotspot of a generated variant: its category, trend, radius and share of the events.

    Trends: ``rising`` / ``falling`` / ``steady`` (year shares as the base sample's), ``new``
    (every event in the final month) and ``sporadic`` (every other quarter, and the final one).
    """

    category: str
    trend: str
    radius_m: float
    share: float


MONTHS = 12 * len(YEARS)


def month_weights(trend: str) -> NDArray[np.float64]:
    """Share of a hotspot's events in each of the MONTHS months for *trend*."""
    if trend in _TREND_WEIGHTS:
        return np.repeat(np.asarray(_TREND_WEIGHTS[trend]) / 12.0, 12)
    w = np.zeros(MONTHS)
    if trend == "new":
        w[-1] = 1.0
    elif trend == "sporadic":  # on in every other quarter and the last one: sporadic by month or quarter
        quarter = np.arange(MONTHS) // 3
        w[(quarter % 2 == 0) | (quarter == quarter[-1])] = 1.0
    else:
        raise ValueError(f"unknown trend {trend!r}")
    return w / w.sum()


def _month_dates(month: NDArray[np.int64], rng: np.random.Generator) -> NDArray[np.datetime64]:
    start = (month + 12 * (YEARS[0] - 1970)).astype("datetime64[M]").astype("datetime64[s]")
    end = (month + 1 + 12 * (YEARS[0] - 1970)).astype("datetime64[M]").astype("datetime64[s]")
    secs = (rng.random(len(month)) * (end - start).astype(np.int64)).astype(np.int64)
    return start + secs.astype("timedelta64[s]")


def make_spot_events(
    source: str, n: int, book: AddressBook, centres: NDArray[np.int64], tree: shapely.STRtree,
    spots: list[Spot], hot_ids: list[str], rng: np.random.Generator,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Located events of *source* with hotspots planted as *spots* say (the generated variants).

    Each hotspot's events fall on addresses within its radius, Gaussian-weighted (sigma = radius / 2),
    in months drawn from :func:`month_weights`; the rest is the usual background.
    """
    parts, meta = [], []
    for spot, c, hid in zip(spots, centres, hot_ids, strict=True):
        k = round(n * spot.share)
        addr = _near(book, tree, int(c), spot.radius_m, spot.radius_m / 2.0, k, rng)
        month = rng.choice(MONTHS, size=k, p=month_weights(spot.trend))
        parts.append(pd.DataFrame({"category": spot.category, "year": YEARS[0] + month // 12, "addr": addr,
                                   "hotspot_id": hid, "reported_at": _month_dates(month, rng)}))
        meta.append({"id": hid, "source": source, "category": spot.category,
                     "x": round(float(book.x[c]), 3), "y": round(float(book.y[c]), 3),
                     "lon": round(float(book.lon[c]), 7), "lat": round(float(book.lat[c]), 7),
                     "radius_m": float(spot.radius_m), "trend": spot.trend, "events": k})
    bg = _background(source, n - sum(len(p) for p in parts), book, rng)
    bg["reported_at"] = _dates(bg["year"].to_numpy(), rng)
    ev = pd.concat([*parts, bg], ignore_index=True)
    ev = ev.sort_values(["reported_at", "addr"], kind="stable").reset_index(drop=True)
    return ev, meta


def _typo(road: list[str], rng: np.random.Generator) -> list[str]:
    """Substitute one character of each road name's core (never its 路/街/大道/巷 suffix)."""
    out = []
    chars = names.ROAD_TYPO_CHARS
    for name in road:
        core_len = len(name) - (2 if name.endswith("大道") else 1)
        pos = int(rng.integers(0, core_len))
        repl = chars[int(rng.integers(0, len(chars)))]
        if repl == name[pos]:
            repl = chars[(chars.index(repl) + 1) % len(chars)]
        out.append(name[:pos] + repl + name[pos + 1:])
    return out


def _replace(arr: pa.Array, mask: NDArray[np.bool_], values: Any) -> pa.Array:
    """*arr* with the rows of *mask* replaced by *values* (one per selected row)."""
    if not mask.any():
        return arr
    return pc.replace_with_mask(arr, pa.array(mask), pa.array(values, type=pa.string()))


def _pick(options: Any, codes: NDArray[np.int64]) -> pa.Array:
    return pc.take(pa.array(list(options), type=pa.string()), pa.array(codes))


def address_text(ev: pd.DataFrame, book: AddressBook, rng: np.random.Generator) -> dict[str, Any]:
    """Free-text address per event with its recorded variant, plus in_library and address_id.

    Returns arrow string arrays ``address``, ``variant``, ``address_id`` and a bool array ``in_library``.
    """
    n = len(ev)
    a = pa.array(ev["addr"].to_numpy())
    keys = list(ADDRESS_VARIANTS)
    probs = np.array([ADDRESS_VARIANTS[k] for k in keys])
    vcode = rng.choice(len(keys), size=n, p=probs / probs.sum())

    def m(v: str) -> NDArray[np.bool_]:
        return vcode == keys.index(v)

    prefix_code = np.zeros(n, dtype=np.int64)
    prefix_code[m("no_prefix")] = 1
    prefix_code[m("city_prefix")] = 2
    prefix = _pick((names.PROVINCE + names.CITY, "", names.CITY), prefix_code)
    town = pc.take(book.town_name, a)
    comm = pc.take(book.community_name, a)
    road = pc.take(book.road_name, a)
    bno = pc.take(book.building_no, a)
    hno = book.house_no[ev["addr"].to_numpy()].copy()
    in_lib = np.ones(n, dtype=bool)
    sel = m("town_suffix_dropped")
    town = _replace(town, sel, pc.replace_substring_regex(pc.filter(town, pa.array(sel)), "(镇|街道)$", ""))
    sel = m("village_alias")
    sub = pc.filter(comm, pa.array(sel))
    swapped = pc.if_else(pc.ends_with(sub, "村"), pc.replace_substring_regex(sub, "村$", "社区"),
                         pc.replace_substring_regex(sub, "社区$", "村"))
    comm = _replace(comm, sel, swapped)
    sel = m("community_omitted")
    comm = _replace(comm, sel, [""] * int(sel.sum()))
    sel = m("road_typo")
    road = _replace(road, sel, _typo(pc.filter(road, pa.array(sel)).to_pylist(), rng))
    tail_code = np.zeros(n, dtype=np.int64)
    sel = m("noise")
    tail_code[sel] = 1 + rng.integers(0, len(_NOISE), int(sel.sum()))
    tail = _pick(["", *_NOISE], tail_code)
    sel = m("house_not_in_library")
    hno[sel] = book.road_max_no[ev["addr"].to_numpy()[sel]] + 2 * rng.integers(3, 40, int(sel.sum()))
    bno = _replace(bno, sel, [""] * int(sel.sum()))
    in_lib[sel] = False
    sel = m("not_in_library")
    road = _replace(road, sel, _FAKE_ROADS[rng.integers(0, len(_FAKE_ROADS), int(sel.sum()))].tolist())
    hno[sel] = rng.integers(1, 400, int(sel.sum()))
    bno = _replace(bno, sel, [""] * int(sel.sum()))
    in_lib[sel] = False
    hn_digits = pc.cast(pa.array(hno), pa.string())
    sel = m("chinese_numerals")
    cn_table = [names.int_to_chinese(i) for i in range(int(hno[sel].max(initial=0)) + 1)]
    hn_digits = _replace(hn_digits, sel, [cn_table[v] for v in hno[sel]])
    sep_code = np.zeros(n, dtype=np.int64)
    sel = m("spacing_punct")
    sep_code[sel] = 1 + rng.integers(0, len(_SEPS), int(sel.sum()))
    sep = _pick(["", *_SEPS], sep_code)
    text = pc.binary_join_element_wise(
        prefix, sep, town, sep, comm, sep, road, sep, hn_digits, "号", bno, tail, "")
    sel = m("fullwidth_digits")
    wide = [t.translate(names.FULLWIDTH_DIGITS) for t in pc.filter(text, pa.array(sel)).to_pylist()]
    text = _replace(text, sel, wide)
    exact = pa.array(m("exact"))
    text = pc.if_else(exact, pc.take(book.full_address, a), text)
    addr_id = pc.if_else(pa.array(in_lib), pc.take(book.address_id, a), "")
    return {"address": text, "variant": _pick(keys, vcode), "in_library": in_lib, "address_id": addr_id}


def coordinates(
    ev: pd.DataFrame, book: AddressBook, rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.object_], NDArray[np.object_]]:
    """(lon, lat, coord_sys, coord_variant) per event; NaN / empty where there are no coordinates."""
    n = len(ev)
    a = ev["addr"].to_numpy()
    has = rng.random(n) < COORD_SHARE
    keys = list(COORD_VARIANTS)
    probs = np.array([COORD_VARIANTS[k] for k in keys])
    cv = np.full(n, "none", dtype=object)
    cv[has] = np.asarray(keys, dtype=object)[rng.choice(len(keys), size=int(has.sum()), p=probs)]
    lon = book.lon[a].copy()
    lat = book.lat[a].copy()
    sys_ = np.full(n, "", dtype=object)
    for v, cs in (("wgs84", "wgs84"), ("gcj02", "gcj02"), ("bd09", "bd09"), ("swapped", "gcj02"),
                  ("outside", "wgs84")):
        sys_[cv == v] = cs
    g = (cv == "gcj02") | (cv == "swapped")
    lon[g], lat[g] = wgs84_to_gcj02(lon[g], lat[g])
    b = cv == "bd09"
    lon[b], lat[b] = wgs84_to_bd09(lon[b], lat[b])
    o = cv == "outside"
    k = int(o.sum())
    lon[o] = lon[o] + rng.choice([-1.0, 1.0], k) * rng.uniform(0.6, 1.2, k)
    lat[o] = lat[o] + rng.uniform(-0.3, 0.3, k)
    s = cv == "swapped"
    lon[s], lat[s] = lat[s].copy(), lon[s].copy()
    lon_out = np.where(has, np.round(lon, 7), np.nan)
    lat_out = np.where(has, np.round(lat, 7), np.nan)
    return lon_out, lat_out, sys_, cv


def trends_table(ev: pd.DataFrame, source: str) -> dict[str, Any]:
    """Actual yearly counts per category plus the designed year-on-year change."""
    out: dict[str, Any] = {}
    counts = ev.groupby(["category", "year"]).size()
    for cat, (_share, g) in CATEGORIES[source].items():
        per_year = {str(y): int(counts.get((cat, y), 0)) for y in YEARS}
        out[cat] = {"counts": per_year, "designed_yoy_pct": round(100 * g, 1)}
    return out
