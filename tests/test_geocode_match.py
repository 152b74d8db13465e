"""Matching, fallback levels, ties, coordinates, grid codes, reverse geocoding and rematch.

A hand-made town (长安镇, two communities side by side, four base grids) whose answers are known.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from _numerals import int_to_chinese
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely import box, points

from gridplan import crs
from gridplan.errors import InputError
from gridplan.geocode import Geocoder, rematch, reverse_geocode, reverse_geocode_xy
from gridplan.plans import Plan, PlanMeta

X0, Y0 = 440_000.0, 2_540_000.0
W_CODE, E_CODE, TOWN = "441900119001", "441900119002", "441900119"

# address_id, community, road, house, building, x offset, y offset
ROWS = [
    ("W1", "乌沙社区", "兴发路", "1号", "", 100, 500),
    ("W3", "乌沙社区", "兴发路", "3号", "", 200, 500),
    ("W5", "乌沙社区", "兴发路", "5号", "", 300, 500),
    ("W23A", "乌沙社区", "兴发路", "23号", "1栋", 400, 500),
    ("W23B", "乌沙社区", "兴发路", "23号", "2栋", 420, 500),
    ("W8", "乌沙社区", "建设路", "8号", "", 500, 1500),
    ("E8", "锦厦社区", "建设路", "8号", "", 1500, 1500),
    ("E2", "锦厦社区", "十八巷", "2号", "", 1300, 800),
    ("E105", "锦厦社区", "长安大道", "105号", "", 1700, 300),
]


def _layers() -> dict[str, gpd.GeoDataFrame]:
    df = pd.DataFrame(
        ROWS, columns=["address_id", "community_name", "road_name", "house_number", "building_no", "dx", "dy"]
    )
    df["town_name"] = "长安镇"
    df["full_address"] = (
        "广东省东莞市长安镇" + df.community_name + df.road_name + df.house_number + df.building_no
    )
    std = gpd.GeoDataFrame(df.drop(columns=["dx", "dy"]), geometry=points(X0 + df.dx, Y0 + df.dy), crs=4547)
    towns = gpd.GeoDataFrame(
        {"town_code": [TOWN], "town_name": ["长安镇"]}, geometry=[box(X0, Y0, X0 + 2000, Y0 + 2000)], crs=4547
    )
    comms = gpd.GeoDataFrame(
        {
            "community_code": [W_CODE, E_CODE],
            "community_name": ["乌沙社区", "锦厦社区"],
            "town_code": [TOWN, TOWN],
        },
        geometry=[box(X0, Y0, X0 + 1000, Y0 + 2000), box(X0 + 1000, Y0, X0 + 2000, Y0 + 2000)],
        crs=4547,
    )
    city = gpd.GeoDataFrame(
        {"name": ["东莞市"], "county_code": ["441900"]},
        geometry=[box(X0, Y0, X0 + 2000, Y0 + 2000)],
        crs=4547,
    )
    return {"std_addresses": std, "towns": towns, "communities": comms, "city": city}


def _plan() -> Plan:
    grids = gpd.GeoDataFrame(
        {
            "grid_code": [W_CODE + "001", W_CODE + "002", E_CODE + "001", E_CODE + "002"],
            "community_code": [W_CODE, W_CODE, E_CODE, E_CODE],
            "town_code": [TOWN] * 4,
        },
        geometry=[
            box(X0, Y0, X0 + 1000, Y0 + 1000),
            box(X0, Y0 + 1000, X0 + 1000, Y0 + 2000),
            box(X0 + 1000, Y0, X0 + 2000, Y0 + 1000),
            box(X0 + 1000, Y0 + 1000, X0 + 2000, Y0 + 2000),
        ],
        crs=4547,
    )
    empty = pd.DataFrame()
    return Plan(
        atomic_units=gpd.GeoDataFrame(geometry=[], crs=4547),
        base_grids=grids,
        crosswalk=empty,
        dept_fit=empty,
        h3_cells=empty,
        qa_issues=empty,
        meta=PlanMeta("test-geocode-tiny", None, ""),
    )


@pytest.fixture(scope="module")
def geocoder() -> Geocoder:
    return Geocoder.from_layers(_layers(), plan=_plan())


def lonlat_of(address_id: str) -> tuple[float, float]:
    r = next(r for r in ROWS if r[0] == address_id)
    lon, lat = crs.xy_to_lonlat(X0 + r[5], Y0 + r[6])
    return float(lon), float(lat)


def one(geocoder: Geocoder, address: str, **kwargs: object) -> pd.Series:
    return geocoder.geocode(pd.DataFrame({"address": [address]}), **kwargs).iloc[0]  # type: ignore[arg-type]


# --- levels -------------------------------------------------------------------------------------


def test_exact_house_match_with_codes(geocoder: Geocoder) -> None:
    r = one(geocoder, "广东省东莞市长安镇乌沙社区兴发路3号")
    assert (r.status, r.match_level, r.address_id, r.score, r.located_by) == (
        "M",
        "house",
        "W3",
        100.0,
        "address",
    )
    assert (r.grid_code, r.community_code, r.town_code, r.coord_sys) == (
        W_CODE + "001",
        W_CODE,
        TOWN,
        "cgcs2000",
    )
    assert (r.lon, r.lat) == pytest.approx(lonlat_of("W3"), abs=1e-8)
    assert r.matched_address == "广东省东莞市长安镇乌沙社区兴发路3号"


def test_aliases_and_numerals(geocoder: Geocoder) -> None:
    r = one(geocoder, "东莞市长安乌沙村兴发路三号")
    assert (r.status, r.match_level, r.address_id) == ("M", "house", "W3")


def test_missing_house_number_falls_back_to_road_level(geocoder: Geocoder) -> None:
    r = one(geocoder, "长安镇乌沙社区兴发路999号")
    assert (r.status, r.match_level, r.address_id) == ("M", "road", "")
    assert "999号 not in the library" in r.reason
    # the road's representative point: the middle address of 兴发路 in 乌沙社区 (1, 3, 5, 23, 23 → 5号)
    assert (r.lon, r.lat) == pytest.approx(lonlat_of("W5"), abs=1e-8)
    assert r.grid_code == W_CODE + "001"


def test_unknown_road_falls_back_to_community_level(geocoder: Geocoder) -> None:
    r = one(geocoder, "长安镇乌沙社区人民路5号")
    assert (r.status, r.match_level, r.address_id, r.grid_code) == ("M", "community", "", "")
    assert (r.community_code, r.town_code) == (W_CODE, TOWN)
    assert np.isnan(r.lon)
    assert "人民路" in r.reason


def test_town_only_falls_back_to_town_level(geocoder: Geocoder) -> None:
    r = one(geocoder, "长安镇")
    assert (r.status, r.match_level, r.town_code, r.community_code) == ("M", "town", TOWN, "")


def test_nothing_recognised_is_unmatched(geocoder: Geocoder) -> None:
    r = one(geocoder, "北京市朝阳区建国路1号")
    assert (r.status, r.match_level, r.address_id, r.grid_code) == ("U", "", "", "")
    assert r.reason


def test_road_in_two_communities_is_a_tie_unless_named(geocoder: Geocoder) -> None:
    r = one(geocoder, "长安镇建设路8号")
    assert (r.status, r.address_id, r.candidates, r.grid_code) == ("T", "", "W8|E8", "")
    assert "tie" in r.reason
    r = one(geocoder, "长安镇锦厦社区建设路8号")
    assert (r.status, r.address_id) == ("M", "E8")


def test_typo_in_road_name_is_matched_fuzzily(geocoder: Geocoder) -> None:
    r = one(geocoder, "长安镇乌沙社区兴友路5号")
    assert (r.status, r.match_level, r.address_id) == ("M", "house", "W5")
    assert 80 <= r.score < 100
    assert "fuzzily" in r.reason


def test_min_score_turns_weak_matches_unmatched(geocoder: Geocoder) -> None:
    r = one(geocoder, "长安镇乌沙社区兴友路5号", min_score=95)
    assert r.address_id == ""
    assert r.match_level != "house"
    assert "< min score 95" in r.reason


def test_name_with_numerals_stays_intact(geocoder: Geocoder) -> None:
    r = one(geocoder, "长安镇锦厦社区十八巷二号")
    assert (r.status, r.address_id) == ("M", "E2")
    r = one(geocoder, "虎门镇长安大道一百零五号")  # unknown town text before a known road
    assert r.address_id == "E105"


def test_noise_is_kept_in_address_extra(geocoder: Geocoder) -> None:
    r = one(geocoder, "长安镇乌沙社区兴发路3号对面 502房")
    assert (r.address_id, r.address_extra) == ("W3", "对面 502房")


def test_buildings(geocoder: Geocoder) -> None:
    assert one(geocoder, "长安镇乌沙社区兴发路23号2栋").address_id == "W23B"
    assert one(geocoder, "长安镇乌沙社区兴发路二十三号二栋").address_id == "W23B"
    # a house number with buildings, the text naming none or an unknown one: first building, said so
    r = one(geocoder, "长安镇乌沙社区兴发路23号")
    assert (r.match_level, r.address_id) == ("house", "W23A")
    assert "no building given" in r.reason
    r = one(geocoder, "长安镇乌沙社区兴发路23号9栋")
    assert (r.match_level, r.address_id) == ("house", "W23A")
    assert "building 9栋 not in the library" in r.reason


# --- coordinates --------------------------------------------------------------------------------


def _coords_table(geocoder: Geocoder) -> pd.DataFrame:
    lon3, lat3 = lonlat_of("W3")
    glon, glat = crs.wgs84_to_gcj02(lon3, lat3)
    blon, blat = crs.wgs84_to_bd09(lon3, lat3)
    lon8, lat8 = lonlat_of("E8")
    return pd.DataFrame(
        {
            "id": ["gcj", "bd", "swap", "out", "both", "far", "roadlvl", "blank"],
            "address": [
                "",
                "",
                "",
                "",
                "长安镇乌沙社区兴发路3号",
                "长安镇乌沙社区兴发路3号",
                "长安镇乌沙社区兴发路999号",
                "",
            ],
            "lon": [glon, blon, lat3, lon3 + 1.0, lon3, lon8, lon8, ""],
            "lat": [glat, blat, lon3, lat3, lat3, lat8, lat8, ""],
            "coord_sys": ["gcj02", "BD-09", "wgs84", "wgs84", "cgcs2000", "wgs84", "wgs84", ""],
        }
    )


def test_coordinates_converted_checked_and_combined(geocoder: Geocoder) -> None:
    t = _coords_table(geocoder)
    out = geocoder.geocode(t).set_index("id")
    _lon3, _lat3 = lonlat_of("W3")
    for k in ("gcj", "bd"):
        r = out.loc[k]
        assert (r.status, r.match_level, r.located_by, r.grid_code) == (
            "M",
            "coordinate",
            "coordinates",
            W_CODE + "001",
        )
        assert r.reason == ""  # no address text: nothing to flag
        x, y = crs.lonlat_to_xy(r.lon, r.lat)
        assert np.hypot(x - (X0 + 200), y - (Y0 + 500)) < 0.01
    for k, word in (("swap", "swapped"), ("out", "outside the city")):
        r = out.loc[k]
        assert (r.status, r.grid_code) == ("U", "")
        assert np.isnan(r.lon)
        assert word in r.reason
    assert (out.loc["both", "located_by"], out.loc["both", "address_id"]) == ("both", "W3")
    far = out.loc["far"]
    assert (far.located_by, far.address_id) == ("address", "W3")
    assert "disagree by 1,640 m" in far.reason  # W3 → E8: hypot(1300, 1000)
    rl = out.loc["roadlvl"]
    assert (rl.match_level, rl.located_by, rl.grid_code) == ("coordinate", "coordinates", E_CODE + "002")
    assert out.loc["blank", "status"] == "U"
    # input values kept under in_ names; output is CGCS2000
    assert out.loc["gcj", "in_coord_sys"] == "gcj02"
    assert (out["coord_sys"] == "cgcs2000").all()
    assert {"in_lon", "in_lat"} <= set(out.columns)


def test_unreadable_coordinates_are_flagged(geocoder: Geocoder) -> None:
    t = pd.DataFrame({"address": ["", "长安镇乌沙社区兴发路3号"], "lon": ["east", "x"], "lat": ["23.0", "y"]})
    out = geocoder.geocode(t)
    assert out["status"].tolist() == ["U", "M"]
    assert out["reason"].str.contains("not numbers").all()


def test_unknown_coord_sys_is_an_input_error(geocoder: Geocoder) -> None:
    t = pd.DataFrame({"address": ["x"], "lon": [113.7], "lat": [23.0], "coord_sys": ["mars"]})
    with pytest.raises(InputError, match="coord_sys"):
        geocoder.geocode(t)


def test_table_without_address_or_coordinates_is_an_input_error(geocoder: Geocoder) -> None:
    with pytest.raises(InputError, match="address"):
        geocoder.geocode(pd.DataFrame({"text": ["x"]}))


def test_library_missing_field_is_an_input_error() -> None:
    layers = _layers()
    layers["std_addresses"] = layers["std_addresses"].drop(columns=["road_name"])
    with pytest.raises(InputError, match="road_name"):
        Geocoder.from_layers(layers)
    with pytest.raises(InputError, match="std_addresses"):
        Geocoder.from_layers({"towns": layers["towns"]})


# --- rematch, reverse ---------------------------------------------------------------------------


def test_rematch_reruns_only_unmatched_rows(geocoder: Geocoder) -> None:
    first = geocoder.geocode(pd.DataFrame({"address": ["长安镇乌沙社区兴发路3号", "北京市建国路1号"]}))
    assert first["status"].tolist() == ["M", "U"]
    edited = first.copy()
    edited.loc[1, "address"] = "长安镇锦厦社区十八巷2号"
    edited.loc[0, "address"] = "edited but not re-run"
    again = rematch(edited, geocoder)
    assert again.loc[0, "address_id"] == "W3"
    assert (again.loc[1, "status"], again.loc[1, "address_id"]) == ("M", "E2")
    assert list(again.columns) == list(first.columns)
    with pytest.raises(InputError, match="status"):
        rematch(pd.DataFrame({"address": ["x"]}), geocoder)


def test_reverse_geocode(geocoder: Geocoder) -> None:
    r = reverse_geocode_xy(
        np.array([X0 + 200, X0 + 1900, np.nan]),
        np.array([Y0 + 510, Y0 + 1900, np.nan]),
        geocoder,
        radius_m=50,
    )
    assert r["address_id"].tolist() == ["W3", "", ""]
    assert r.loc[0, "distance_m"] == pytest.approx(10.0)
    assert r["grid_code"].tolist() == [W_CODE + "001", E_CODE + "002", ""]
    assert r["status"].tolist() == ["M", "U", "U"]
    lon, lat = lonlat_of("W3")
    t = reverse_geocode(pd.DataFrame({"lon": [lon, lat], "lat": [lat, lon]}), geocoder, radius_m=5)
    assert t["address_id"].tolist() == ["W3", ""]
    assert "swapped" in t.loc[1, "reason"]
    with pytest.raises(InputError, match="radius"):
        reverse_geocode_xy(np.array([0.0]), np.array([0.0]), geocoder, radius_m=0)


# --- invariants ---------------------------------------------------------------------------------

_UNIQUE = [r for r in ROWS if r[2] != "建设路"]


@settings(max_examples=25, deadline=None)
@given(
    row=st.sampled_from(_UNIQUE),
    prefix=st.sampled_from(["", "东莞市", "广东省东莞市"]),
    town=st.sampled_from(["长安镇", "长安", ""]),
    community_form=st.sampled_from(["name", "alias", "none"]),
    numerals=st.booleans(),
    fullwidth=st.booleans(),
    noise=st.sampled_from(["", "附近", "3楼", "502房", " 门口"]),
    missing_house=st.booleans(),
)
def test_rendered_addresses_come_back(
    geocoder: Geocoder,
    row: tuple,
    prefix: str,
    town: str,
    community_form: str,
    numerals: bool,
    fullwidth: bool,
    noise: str,
    missing_house: bool,
) -> None:
    """Any rendering of a library address finds it; a house number not in the library never gives a
    house-level match (road level instead)."""
    aid, comm, road, house, bldg = row[:5]
    number = int(house[:-1]) + (1000 if missing_house else 0)
    comm_text = {"name": comm, "alias": comm[:-2] + "村", "none": ""}[community_form]
    digits = str(number)
    if numerals:
        digits = int_to_chinese(number)
    if fullwidth:
        digits = digits.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    text = f"{prefix}{town}{comm_text}{road}{digits}号{bldg if not missing_house else ''}{noise}"
    r = one(geocoder, text)
    if missing_house:
        assert (r.status, r.match_level, r.address_id) == ("M", "road", "")
    else:
        assert (r.status, r.match_level, r.address_id) == ("M", "house", aid)
