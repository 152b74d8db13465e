"""Names and number words for the sample city (private to :mod:`gridplan.sample`).

Owns the Dongguan town table (``gridplan/data/dongguan_towns.csv``: the 4 街道 + 28 镇 with
plausible 9-digit codes, approximate centres, areas and populations), the pools from which
synthetic community, road and business names are drawn, and integer → Chinese-numeral
conversion (二十三) used to perturb house numbers.  Hand-written because no package ships
Dongguan's town table, and the numeral writer is ten lines (cn2an would add a dependency for it).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import numpy as np
import pandas as pd

PROVINCE = "广东省"
CITY = "东莞市"
CITY_NAME = "东莞市"
COUNTY_CODE = "441900"

_FIRST = list("上下新沙乌锦涌东西南北大小石黄白龙凤莲塘岗湖洲溪坑田围头边厦岭山桥江湾埔朗沥寮洋角")
_SECOND = list("沙边头塘岗洲围坑湖湾山岭田园村厦坊地埔屋涌溪美安和兴盛丰宁华福隆平")
#: Cores that contain numeral characters, so the geocoder's numeral rules meet real names.
NUMERAL_CORES = [
    "三元", "十八", "五一", "四甲", "二甲", "七星", "九龙", "六合", "八一", "三联", "一村", "百花",
]
_ROAD_FIRST = list("兴振安康宏富裕长永福隆盛华新育才创科建莞太虎沙锦荣德明光金银鸿顺昌泰")
_ROAD_SECOND = list("发安华业荣盛达丰泰明和平兴源海宁通运港园林山湖江城景乐")
ROAD_TYPO_CHARS = list("发安华业荣盛达丰泰明和平兴源海宁通运港园林山湖江城景乐振康宏富")
_ROAD_DIRS = ["", "", "", "东", "西", "南", "北", "中"]

#: road_class per road kind, with the name suffix used for it.
ROAD_KINDS = (("主干道", "大道"), ("次干道", "路"), ("支路", "街"), ("巷道", "巷"))

_UNIT_KINDS = (
    ("工业企业", ("五金制品有限公司", "电子科技有限公司", "塑胶制品厂", "家具有限公司", "鞋业有限公司")),
    ("商贸零售", ("便利店", "商行", "超市", "服装店")),
    ("餐饮住宿", ("餐饮店", "酒家", "旅馆", "茶餐厅")),
    ("生活服务", ("美发店", "洗衣店", "维修部", "药店")),
    ("仓储物流", ("物流有限公司", "仓储中心")),
)
UNIT_CATEGORIES = tuple(k for k, _ in _UNIT_KINDS)

FACILITY_KINDS = ("警务室", "消防站", "微型消防站", "治安岗亭", "学校", "医院", "社区服务中心", "视频监控点")

_CN_DIGITS = "零一二三四五六七八九"


@cache
def town_table() -> pd.DataFrame:
    """Dongguan's 32 towns/streets: code, name, kind, centre lon/lat, area, population, communities.

    Examples
    --------
    >>> t = town_table()
    >>> len(t), t.loc[t.town_code == "441900119", "town_name"].item()
    (32, '长安镇')

    """
    with resources.files("gridplan").joinpath("data/dongguan_towns.csv").open(encoding="utf-8") as fh:
        df = pd.read_csv(fh, dtype={"town_code": str})
    return df


def short_town_name(name: str) -> str:
    """Town name without its 镇/街道 suffix (长安镇 → 长安, 东城街道 → 东城).

    >>> short_town_name("长安镇"), short_town_name("东城街道")
    ('长安', '东城')
    """
    for suffix in ("街道", "镇"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def community_cores() -> list[str]:
    """All two-character community name cores (plus the numeral ones), in a fixed order."""
    cores = [a + b for a in _FIRST for b in _SECOND if a != b]
    return NUMERAL_CORES + cores


def road_cores() -> list[str]:
    """All road name cores (direction + two characters), in a fixed order."""
    base = [a + b for a in _ROAD_FIRST for b in _ROAD_SECOND if a != b]
    return ["三元", "十八", "五一", "八一", *base]


def road_direction(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random direction infix (东/西/南/北/中 or none) for *n* roads."""
    return np.asarray(_ROAD_DIRS, dtype=object)[rng.integers(0, len(_ROAD_DIRS), n)]


def unit_name_parts(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Random (category, name suffix) for *n* units."""
    kind = rng.choice(len(_UNIT_KINDS), size=n, p=[0.35, 0.25, 0.2, 0.12, 0.08])
    pick = rng.integers(0, 5, n)
    cats = np.array([k for k, _ in _UNIT_KINDS], dtype=object)[kind]
    suffixes = np.array(
        [[s[i % len(s)] for i in range(5)] for _, s in _UNIT_KINDS], dtype=object
    )[kind, pick]
    return cats, suffixes


def int_to_chinese(n: int) -> str:
    """Write a non-negative integer below 10,000 in Chinese numerals, as addresses do.

    Examples
    --------
    >>> [int_to_chinese(v) for v in (0, 7, 10, 15, 23, 105, 110, 1203, 2000)]
    ['零', '七', '十', '十五', '二十三', '一百零五', '一百一十', '一千二百零三', '二千']

    """
    if n < 0 or n >= 10000:
        raise ValueError(f"int_to_chinese supports 0..9999, got {n}")
    if n == 0:
        return "零"
    if 10 <= n < 20:
        return "十" + (_CN_DIGITS[n - 10] if n > 10 else "")
    out: list[str] = []
    zero = False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        d = n // value % 10
        if d == 0:
            zero = bool(out)
            continue
        if zero:
            out.append("零")
            zero = False
        out.append(_CN_DIGITS[d] + unit)
    return "".join(out)


FULLWIDTH_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")
