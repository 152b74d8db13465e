"""Messy address variants by named class, made from any standard address library, with their truth.

Written apart from the sample generator (``gridplan.sample``), which makes its own messy cases: this
module only reads a library in the data contract (``std_addresses``: ``address_id``, ``town_name``,
``community_name``, ``road_name``, ``house_number``, ``building_no``, ``full_address``) and rewrites
its rows the way people write addresses, one named class at a time, so a geocoder can be scored per
class on any city (issue 13).  Each variant row says what the right answer is:

``house``
    the house (or building) of ``address_id`` at house level (status ``M``);
``road``
    the house number is not in the library but the road is: the answer must be coarser than house
    (road level is right; a house-level match is *wrong*);
``none``
    an address of another city: no house- or road-level match is right.

``python -m benchmarks.address_variants LAYERS.gpkg [PLAN.gpkg] [--n 100]`` prints the per-class table
(match / wrong / coarse / tied / unmatched); ``benchmarks/bench_address_variants.py`` puts it in
RESULTS.md for the city sample and for ``../shared/cities/chancheng`` when it is there.

Homophones come from pypinyin's character table (restricted to GB 2312 level-1 characters, the common
ones), look-alikes from a short generic table of characters Chinese writers confuse; neither is
written for one city.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

ROAD_SUFFIXES = ("大道", "大街", "路", "街", "道", "巷", "里", "坊")
NOISE = ("楼下", "附近", "旁边", "门口", "对面", "那里", "斜对面")
ROOMS = ("301房", "2楼", "5层", "B102室", "二楼", "首层")
LOOKALIKE_GROUPS = (
    "己已巳", "未末", "日曰", "大太犬", "王玉主", "土士", "木本术", "人入八", "田由甲申", "刀力",
    "千干于", "天夫", "午牛", "兔免", "侯候", "拔拨", "折拆", "即既", "戊戌戍", "贝见", "园圆",
    "沙莎", "湖瑚", "港巷", "岗冈", "汾粉", "华桦", "兴舆", "祖租", "庙届", "莲连",
)
OTHER_CITIES = (
    "北京市朝阳区建国路88号", "上海市浦东新区世纪大道100号", "杭州市西湖区文三路90号",
    "成都市武侯区人民南路四段12号", "武汉市江汉区解放大道690号", "南京市鼓楼区中山北路30号",
    "西安市雁塔区长安南路88号", "重庆市渝中区解放碑民族路166号",
)
_CN_DIGITS = "零一二三四五六七八九"
_FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def chinese_numeral(n: int) -> str:
    """361 → 三百六十一 (the way people write numbers below 10,000)."""
    if n == 0:
        return "零"
    units = ["", "十", "百", "千"]
    digits = [int(d) for d in str(n)]
    out: list[str] = []
    zero = False
    for i, d in enumerate(digits):
        place = len(digits) - 1 - i
        if d == 0:
            zero = True
            continue
        if zero and out:
            out.append("零")
        zero = False
        if not (d == 1 and place == 1 and not out):
            out.append(_CN_DIGITS[d])
        out.append(units[place])
    return "".join(out)


@dataclass(frozen=True)
class Address:
    """One library row split into the components a person writes."""

    address_id: str
    prefix: str
    town: str
    community: str
    road: str
    number: int
    building: str

    @property
    def house(self) -> str:
        return f"{self.number}号"

    def join(self, *parts: str) -> str:
        return "".join(parts)

    def full(self, **repl: str) -> str:
        p = {"prefix": self.prefix, "town": self.town, "community": self.community,
             "road": self.road, "house": self.house, "building": self.building} | repl
        return "".join(p[k] for k in ("prefix", "town", "community", "road", "house", "building"))


@dataclass
class Library:
    """The library's rows as :class:`Address` plus what the variant makers look up."""

    rows: list[Address]
    numbers: dict[tuple[str, str], set[int]]
    roads: set[str]
    chars: set[str] = field(default_factory=set)

    @classmethod
    def from_frame(cls, lib: pd.DataFrame) -> Library:
        rows: list[Address] = []
        numbers: dict[tuple[str, str], set[int]] = {}
        for r in lib.itertuples(index=False):
            full, town = str(r.full_address), str(r.town_name)
            m = re.match(r"\d+", str(r.house_number))
            if not m or town not in full:
                continue
            b = r.building_no
            building = "" if b is None or (isinstance(b, float) and np.isnan(b)) else str(b)
            a = Address(str(r.address_id), full[: full.index(town)], town, str(r.community_name),
                        str(r.road_name), int(m.group()), building)
            rows.append(a)
            numbers.setdefault((a.town, a.road), set()).add(a.number)
        roads = {a.road for a in rows}
        chars = {c for road in roads for c in road}
        return cls(rows, numbers, roads, chars)


def _stem(road: str) -> tuple[str, str]:
    for s in ROAD_SUFFIXES:
        if road.endswith(s) and len(road) > len(s) + 1:
            return road[: -len(s)], s
    return road, ""


@cache
def _homophones() -> dict[str, list[str]]:
    """Toneless pinyin → common characters (GB 2312 level 1) with that single reading."""
    from pypinyin import Style, lazy_pinyin
    from pypinyin.pinyin_dict import pinyin_dict

    out: dict[str, list[str]] = {}
    for code, reading in pinyin_dict.items():
        ch = chr(code)
        if "," in reading:
            continue
        try:
            gb = ch.encode("gb2312")
        except UnicodeEncodeError:
            continue
        if not (0xB0 <= gb[0] <= 0xD7):
            continue
        out.setdefault(lazy_pinyin(ch, style=Style.NORMAL)[0], []).append(ch)
    return out


def _swap_char(a: Address, rng: np.random.Generator, lib: Library, kind: str) -> str | None:
    stem, suffix = _stem(a.road)
    order = rng.permutation(len(stem))
    for i in order:
        c = stem[i]
        if kind == "homophone":
            from pypinyin import Style, lazy_pinyin

            alts = [x for x in _homophones().get(lazy_pinyin(c, style=Style.NORMAL)[0], []) if x != c]
        else:
            alts = [x for g in LOOKALIKE_GROUPS if c in g for x in g if x != c]
        rng.shuffle(alts)
        for alt in alts:
            road = stem[:i] + alt + stem[i + 1:] + suffix
            if road not in lib.roads:
                return a.full(road=road)
    return None


Maker = Callable[[Address, np.random.Generator, Library], "str | None"]


def _v_no_hao(a: Address, rng: np.random.Generator, lib: Library) -> str | None:
    tail = rng.choice(["", "楼下", "旁"]) if not a.building else ""
    return a.full(house=str(a.number) + str(tail)) if not a.building else None


def _v_range(a: Address, rng: np.random.Generator, lib: Library) -> str | None:
    return a.full(house=f"{a.number}-{a.number + 2}号")


def _v_zhi(a: Address, rng: np.random.Generator, lib: Library) -> str | None:
    return a.full(house=f"{a.number}号{rng.choice(['之一', '之二', '附1'])}") if not a.building else None


def _v_suffix_dropped(a: Address, rng: np.random.Generator, lib: Library) -> str | None:
    stem, suffix = _stem(a.road)
    return a.full(road=stem) if suffix and stem not in lib.roads else None


def _v_deleted(a: Address, rng: np.random.Generator, lib: Library) -> str | None:
    stem, suffix = _stem(a.road)
    if len(stem) < 3:
        return None
    i = int(rng.integers(1, len(stem)))
    road = stem[:i] + stem[i + 1:] + suffix
    return a.full(road=road) if road not in lib.roads else None


def _v_inserted(a: Address, rng: np.random.Generator, lib: Library) -> str | None:
    stem, suffix = _stem(a.road)
    i = int(rng.integers(0, len(stem)))
    road = stem[: i + 1] + stem[i] + stem[i + 1:] + suffix
    return a.full(road=road) if road not in lib.roads else None


def _v_short_town(a: Address, rng: np.random.Generator, lib: Library) -> str | None:
    for s in ("街道", "镇", "街"):
        if a.town.endswith(s) and len(a.town) > len(s) + 1:
            return a.full(town=a.town[: -len(s)])
    return None


def _v_village_swap(a: Address, rng: np.random.Generator, lib: Library) -> str | None:
    c = a.community
    if c.endswith("社区"):
        return a.full(community=c[:-2] + "村")
    if c.endswith("村"):
        return a.full(community=c[:-1] + "社区")
    return None


def _v_building(a: Address, rng: np.random.Generator, lib: Library) -> str | None:
    m = re.match(r"(\d+|[A-Z])", a.building)
    if not m:
        return None
    n = m.group(1)
    form = str(rng.choice([f"第{n}栋", f"{n}幢", f"{n}座", f"{n}号楼"]))
    return a.full(building=form)


def _v_spaces(a: Address, rng: np.random.Generator, lib: Library) -> str | None:
    sep = [" ", "，", "、", "  ", ","]
    parts = [a.prefix, a.town, a.community, a.road, a.house + a.building]
    return "".join(p + str(rng.choice(sep)) for p in parts[:-1]) + parts[-1]


def _v_order(a: Address, rng: np.random.Generator, lib: Library) -> str | None:
    return f"{a.road}{a.house}{a.building}（{a.town}{a.community}）"


def _v_province(a: Address, rng: np.random.Generator, lib: Library) -> str | None:
    """The province named when the library leaves it out, left out when the library names it."""
    m = re.match(r"^(.{2,7}?(?:省|自治区))", a.prefix)
    if m:
        return a.full(prefix=a.prefix[m.end():])
    return a.full(prefix="广东省" + a.prefix) if a.prefix else None


def _v_not_in_library(a: Address, rng: np.random.Generator, lib: Library) -> str | None:
    taken = lib.numbers.get((a.town, a.road), set())
    n = max(taken) + int(rng.integers(50, 400))
    return a.full(house=f"{n}号", building="")


def _v_other_city(a: Address, rng: np.random.Generator, lib: Library) -> str | None:
    return str(rng.choice(OTHER_CITIES))


@dataclass(frozen=True)
class VariantClass:
    """A named way of writing an address: a maker and the level that is right for it."""

    name: str
    make: Maker
    expect: str = "house"
    building: bool | None = False  # False: door addresses only; True: building addresses only


CLASSES: tuple[VariantClass, ...] = (
    VariantClass("clean", lambda a, r, lib: a.full(), building=None),
    VariantClass("no_prefix", lambda a, r, lib: a.full(prefix="")),
    VariantClass("province_toggled", _v_province),
    VariantClass("no_community", lambda a, r, lib: a.full(community="")),
    VariantClass("no_town", lambda a, r, lib: a.full(town="")),
    VariantClass("road_house_only", lambda a, r, lib: a.full(prefix="", town="", community="")),
    VariantClass("short_town", _v_short_town),
    VariantClass("village_community_swap", _v_village_swap),
    VariantClass("no_hao", _v_no_hao),
    VariantClass("chinese_numerals", lambda a, r, lib: a.full(house=chinese_numeral(a.number) + "号")),
    VariantClass("fullwidth_digits", lambda a, r, lib: a.full(house=str(a.number).translate(_FULLWIDTH)
                                                              + "号")),
    VariantClass("number_range", _v_range),
    VariantClass("zhi_suffix", _v_zhi),
    VariantClass("road_suffix_dropped", _v_suffix_dropped),
    VariantClass("homophone_road", lambda a, r, lib: _swap_char(a, r, lib, "homophone")),
    VariantClass("lookalike_road", lambda a, r, lib: _swap_char(a, r, lib, "lookalike")),
    VariantClass("road_char_deleted", _v_deleted),
    VariantClass("road_char_inserted", _v_inserted),
    VariantClass("trailing_noise", lambda a, r, lib: a.full() + str(r.choice(NOISE))),
    VariantClass("room_number", lambda a, r, lib: a.full() + str(r.choice(ROOMS))),
    VariantClass("building_forms", _v_building, building=True),
    VariantClass("spaces_punctuation", _v_spaces, building=None),
    VariantClass("order_swapped", _v_order, building=None),
    VariantClass("not_in_library_house", _v_not_in_library, expect="road"),
    VariantClass("other_city", _v_other_city, expect="none"),
)


def make_variants(lib: pd.DataFrame, n_per_class: int = 100, seed: int = 0) -> pd.DataFrame:
    """Rows ``case_id, address, variant, address_id, expect, road_name`` (*n_per_class* per class).

    A class that cannot be made from a row (no suffix to drop, no homophone that is not itself a
    road …) tries other rows; a class the library cannot give at all is left out.
    """
    library = Library.from_frame(lib)
    rng = np.random.default_rng(seed)
    out: list[dict[str, str]] = []
    for vc in CLASSES:
        pool = [a for a in library.rows if vc.building is None or bool(a.building) == vc.building]
        if not pool:
            continue
        made = 0
        for i in rng.permutation(len(pool))[: n_per_class * 20]:
            a = pool[int(i)]
            text = vc.make(a, rng, library)
            if text is None:
                continue
            out.append({"case_id": f"{vc.name}-{made:04d}", "address": text, "variant": vc.name,
                        "address_id": a.address_id if vc.expect == "house" else "",
                        "expect": vc.expect, "road_name": a.road if vc.expect == "road" else ""})
            made += 1
            if made == n_per_class:
                break
    return pd.DataFrame(out)


def score(geocoded: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Per class: rows, right, wrong (a house-level answer that is not the truth), coarse, tied, unmatched.

    *geocoded* is the geocoder's output (``case_id, status, match_level, address_id,
    matched_address``); shares are fractions of the class's rows.
    """
    df = truth.merge(geocoded[["case_id", "status", "match_level", "address_id", "matched_address"]],
                     on="case_id", how="left", suffixes=("", "_got"))
    status = df["status"].fillna("U")
    level = df["match_level"].fillna("")
    house = (status == "M") & (level == "house")
    road_ok = (status == "M") & (level == "road") & df.apply(
        lambda r: bool(r["road_name"]) and r["road_name"] in str(r["matched_address"]), axis=1)
    exp = df["expect"]
    right = np.where(exp == "house", house & (df["address_id_got"] == df["address_id"]),
                     np.where(exp == "road", road_ok, ~(status == "M") | ~level.isin(["house", "road"])))
    wrong = np.where(exp == "house", house & (df["address_id_got"] != df["address_id"]),
                     np.where(exp == "road", house, (status == "M") & level.isin(["house", "road"])))
    tied = (status == "T") & ~right
    unmatched = (status == "U") & ~right
    df = df.assign(right=right, wrong=wrong, tied=tied, unmatched=unmatched,
                   coarse=~right & ~wrong & ~tied & ~unmatched)
    g = df.groupby("variant", sort=False)
    table = g[["right", "wrong", "coarse", "tied", "unmatched"]].mean()
    table.insert(0, "rows", g.size())
    table.insert(1, "expect", g["expect"].first())
    return table


def evaluate(layers: Path, plan: Path | None = None, n_per_class: int = 100, seed: int = 0) -> pd.DataFrame:
    """Make the variants of *layers*' library, geocode them with gridplan and score them."""
    import pyogrio

    from gridplan.geocode import Geocoder

    lib = pyogrio.read_dataframe(layers, layer="std_addresses", read_geometry=False)
    truth = make_variants(lib, n_per_class, seed)
    geocoder = Geocoder.from_files(layers, plan)
    got = geocoder.geocode(truth[["case_id", "address"]].copy())
    return score(got, truth)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.address_variants", description=__doc__)
    ap.add_argument("layers", type=Path)
    ap.add_argument("plan", type=Path, nargs="?")
    ap.add_argument("--n", type=int, default=100, help="rows per class (default 100)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    table = evaluate(args.layers, args.plan, args.n, args.seed)
    pd.set_option("display.width", 200)
    print((table.drop(columns=["rows", "expect"]) * 100).round(1).assign(
        rows=table["rows"], expect=table["expect"]).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
