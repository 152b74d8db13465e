"""Addresses as people write them (issue 13): each class by hand, with the answer a reader would give.

A hand-made town (南庄镇, communities 甲村 and 乙村) whose library makes each class decidable: the
house number exists on exactly one candidate road, or truly on two (then the answer is T).
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely import box, points

from gridplan.geocode import Geocoder

X0, Y0 = 440_000.0, 2_540_000.0

# address_id, community, road, house, building
ROWS = [
    ("A361", "甲村", "鸿福路", "361号", ""),
    ("A116", "甲村", "鸿福路", "116号", ""),
    ("A12", "甲村", "元美路", "12号", ""),
    ("A148", "甲村", "体育路", "148号", ""),
    ("A16", "甲村", "中建湖路", "16号", ""),
    ("A8", "甲村", "建设路", "8号", ""),
    ("A737", "甲村", "南庄大道", "737号", "2座"),
    ("B737", "乙村", "南庄大道", "737号", "31座"),
    ("B50", "乙村", "卫国路", "50号", ""),
]


def _layers() -> dict[str, gpd.GeoDataFrame]:
    df = pd.DataFrame(
        ROWS, columns=["address_id", "community_name", "road_name", "house_number", "building_no"]
    )
    df["town_name"] = "南庄镇"
    df["full_address"] = (
        "广东省佛山市南庄镇" + df.community_name + df.road_name + df.house_number + df.building_no
    )
    dx = [100.0 * (i + 1) for i in range(len(df))]
    dy = [300.0 if c == "甲村" else 1300.0 for c in df.community_name]
    std = gpd.GeoDataFrame(df, geometry=points([X0 + x for x in dx], [Y0 + y for y in dy]), crs=4547)
    towns = gpd.GeoDataFrame(
        {"town_code": ["440605124"], "town_name": ["南庄镇"]},
        geometry=[box(X0, Y0, X0 + 2000, Y0 + 2000)],
        crs=4547,
    )
    comms = gpd.GeoDataFrame(
        {
            "community_code": ["440605124001", "440605124002"],
            "community_name": ["甲村", "乙村"],
            "town_code": ["440605124", "440605124"],
        },
        geometry=[box(X0, Y0, X0 + 2000, Y0 + 1000), box(X0, Y0 + 1000, X0 + 2000, Y0 + 2000)],
        crs=4547,
    )
    return {"std_addresses": std, "towns": towns, "communities": comms}


@pytest.fixture(scope="module")
def geocoder() -> Geocoder:
    return Geocoder.from_layers(_layers())


CASES = [
    # (class, address, status, level, address_id)
    ("no 号", "南庄镇甲村鸿福路361", "M", "house", "A361"),
    ("no 号, Chinese numerals", "鸿福路三百六十一", "M", "house", "A361"),
    ("no 号, position word", "鸿福路361楼下", "M", "house", "A361"),
    ("号 then 楼下 (not building 号楼)", "鸿福路361号 楼下", "M", "house", "A361"),
    ("noise after the number", "鸿福路三百六十一号旁边", "M", "house", "A361"),
    ("side word", "南庄镇鸿福路361号东侧", "M", "house", "A361"),
    ("bare side character after a bare number", "鸿福路361旁", "M", "house", "A361"),
    ("a range of doors: the first one", "鸿福路361-363号", "M", "house", "A361"),
    ("a sub-number is not a range", "鸿福路361-1号", "M", "road", ""),
    ("suffix dropped", "鸿福116号", "M", "house", "A116"),
    ("suffix dropped, no community", "南庄镇体育148号", "M", "house", "A148"),
    ("homophone typo confirmed by the house", "红福路361号", "M", "house", "A361"),
    ("look-alike typo confirmed by the house", "园美路12号", "M", "house", "A12"),
    ("one character deleted", "建湖路16号", "M", "house", "A16"),
    ("full-width digits", "鸿福路３６１号", "M", "house", "A361"),
    ("community left out, building decides", "南庄大道737号31座", "M", "house", "B737"),
    ("community left out, truly two places", "南庄大道737号", "T", "", ""),
    ("house not in the library: road level", "鸿福路999号", "M", "road", ""),
    ("another road, not a typo: no house-level guess", "建设路16号", "M", "road", ""),
]


@pytest.mark.parametrize(
    ("kind", "address", "status", "level", "address_id"), CASES, ids=[c[0] for c in CASES]
)
def test_address_as_people_write_it(
    geocoder: Geocoder, kind: str, address: str, status: str, level: str, address_id: str
) -> None:
    r = geocoder.match_addresses(pd.Series([address])).iloc[0]
    assert (r["status"], r["match_level"], r["address_id"]) == (status, level, address_id), (
        kind,
        r["reason"],
    )
    if status == "T":
        assert set(r["candidates"].split("|")) == {"A737", "B737"}


def test_noise_is_kept_aside(geocoder: Geocoder) -> None:
    out = geocoder.geocode(pd.DataFrame({"address": ["鸿福路361楼下", "鸿福路361号 楼下"]}))
    assert out["address_extra"].tolist() == ["楼下", "楼下"]


@settings(max_examples=40, deadline=None)
@given(row=st.sampled_from(ROWS))
def test_a_clean_library_address_matches_itself(row: tuple[str, ...]) -> None:
    g = _GEOCODER
    address_id, comm, road, house, building = row
    r = g.match_addresses(pd.Series([f"广东省佛山市南庄镇{comm}{road}{house}{building}"])).iloc[0]
    assert (r["status"], r["address_id"]) == ("M", address_id)


_GEOCODER = Geocoder.from_layers(_layers())
