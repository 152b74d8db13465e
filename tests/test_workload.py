"""Workload index and staffing apportionment (gridplan.balance.workload)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from gridplan.balance import COMPONENTS, apportion, grid_workload, load_weights, staffing_table, unit_workload
from gridplan.errors import InputError

# ------------------------------------------------------------------------------------- weights


def test_default_weights_are_documented_hours_per_month():
    w = load_weights()
    assert w["unit"] == "hours per month"
    assert w["households"] == pytest.approx(0.25)
    assert w["businesses"]["categories"]["工业企业"] == pytest.approx(1.5)
    assert set(w["cases_per_year"]["categories"]) >= {"治安", "消防", "安全生产", "城市管理", "矛盾纠纷"}


def test_custom_weights_override_only_given_keys(tmp_path: Path):
    f = tmp_path / "w.yml"
    f.write_text("households: 1.0\ncases_per_year:\n  categories:\n    治安: 9\n", encoding="utf-8")
    w = load_weights(f)
    assert w["households"] == 1.0
    assert w["residents"] == load_weights()["residents"]
    assert w["cases_per_year"]["categories"]["治安"] == 9.0
    assert w["cases_per_year"]["categories"]["消防"] == load_weights()["cases_per_year"]["categories"]["消防"]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("househods: 1\n", "unknown weight key 'househods'"),
        ("businesses:\n  defualt: 1\n", "unknown weight key 'defualt' under 'businesses'"),
        ("households: -1\n", "must be >= 0"),
        ("households: lots\n", "finite number"),
        ("- 1\n- 2\n", "mapping"),
        ("households: [1\n", "not valid YAML"),
    ],
)
def test_bad_weights_file(tmp_path: Path, text: str, match: str):
    f = tmp_path / "bad.yml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=match):
        load_weights(f)


# ------------------------------------------------------------------------------------ workload


def _tiny_plan() -> SimpleNamespace:
    """Two 100 m squares in grid g1 and one in g2 (one community)."""
    au = gpd.GeoDataFrame(
        {
            "unit_id": ["U1", "U2", "U3"],
            "community_code": ["441900003001"] * 3,
            "base_grid_code": ["441900003001001", "441900003001001", "441900003001002"],
            "households": [10, 20, 40],
            "residents": [30, 60, 100],
            "floating_residents": [0, 50, 0],
            "rental_rooms": [0, 10, 0],
        },
        geometry=[shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100), shapely.box(200, 0, 300, 100)],
        crs=4547,
    )
    return SimpleNamespace(atomic_units=au)


def test_unit_workload_components_by_hand():
    plan = _tiny_plan()
    units = gpd.GeoDataFrame(
        {"category": ["工业企业", "未知类别"]},
        geometry=[shapely.Point(50, 50), shapely.Point(150, 50)],
        crs=4547,
    )
    cases = gpd.GeoDataFrame(
        {
            "category": ["治安", "治安", "矛盾纠纷"],
            "reported_at": pd.to_datetime(["2024-01-01", "2024-07-01", "2025-12-31"]),
        },
        geometry=[shapely.Point(250, 50), shapely.Point(250, 60), shapely.Point(5000, 5000)],
        crs=4547,
    )
    roads = gpd.GeoDataFrame(
        {"road_name": ["r"]}, geometry=[shapely.LineString([(0, 50), (300, 50)])], crs=4547
    )
    wl = unit_workload(plan, units=units, events={"cases": cases}, roads=roads)
    w = load_weights()
    years = (pd.Timestamp("2025-12-31") - pd.Timestamp("2024-01-01")).days / 365.25 + 1 / 365.25
    assert wl["unit_id"].tolist() == ["U1", "U2", "U3"]
    assert wl["wl_households"].tolist() == pytest.approx(
        [10 * w["households"], 20 * w["households"], 40 * w["households"]]
    )
    assert wl["wl_businesses"].tolist() == pytest.approx([1.5, w["businesses"]["default"], 0.0])
    assert wl["cases_per_year"].tolist() == pytest.approx([0, 0, 2 / years])
    assert wl["wl_cases"].iloc[2] == pytest.approx(2 * w["cases_per_year"]["categories"]["治安"] / years)
    assert wl["road_km"].tolist() == pytest.approx([0.1, 0.1, 0.1])
    assert wl["area_km2"].tolist() == pytest.approx([0.01] * 3)
    assert wl["workload"].to_numpy() == pytest.approx(wl[list(COMPONENTS)].sum(axis=1).to_numpy())
    # the event outside every unit is dropped, not assigned
    assert wl["cases_per_year"].sum() == pytest.approx(2 / years)


def test_grid_workload_sums_units_and_shares():
    wl = unit_workload(_tiny_plan())
    g = grid_workload(wl)
    assert g["grid_code"].tolist() == ["441900003001001", "441900003001002"]
    assert g["units"].tolist() == [2, 1]
    assert g["workload"].sum() == pytest.approx(wl["workload"].sum())
    assert g.loc[0, "workload"] == pytest.approx(wl["workload"].iloc[:2].sum())
    shares = g[[c for c in g.columns if c.startswith("share_")]].sum(axis=1)
    assert shares.to_numpy() == pytest.approx([1.0, 1.0])


def test_staffing_table_reports_workload_per_worker():
    g = pd.DataFrame({"grid_code": ["a", "b"], "community_code": ["c", "c"], "workload": [300.0, 100.0]})
    t = staffing_table(g, 4)
    assert t["staff"].tolist() == [3, 1]
    assert t["workload_per_staff"].tolist() == pytest.approx([100.0, 100.0])
    assert t["load_ratio"].tolist() == pytest.approx([1.0, 1.0])


# ----------------------------------------------------------------------------------- apportion


def test_webster_textbook_sainte_lague():
    # the Sainte-Laguë example: 100k/80k/30k/20k votes, 8 seats → 3/3/1/1 (D'Hondt would give 4/3/1/0)
    assert apportion([100_000, 80_000, 30_000, 20_000], 8, min_staff=0).tolist() == [3, 3, 1, 1]


def test_hamilton_textbook_largest_remainder():
    # Hare quota example: 47k/16k/15.8k/12k/6.1k/3.1k, 10 seats → 5/2/1/1/1/0
    votes = [47_000, 16_000, 15_800, 12_000, 6_100, 3_100]
    assert apportion(votes, 10, min_staff=0, method="hamilton").tolist() == [5, 2, 1, 1, 1, 0]


def test_hamilton_alabama_paradox_and_webster_does_not_suffer_it():
    assert apportion([6, 6, 2], 10, min_staff=0, method="hamilton").tolist() == [4, 4, 2]
    assert apportion([6, 6, 2], 11, min_staff=0, method="hamilton").tolist() == [5, 5, 1]  # C loses a seat
    w10 = apportion([6, 6, 2], 10, min_staff=0)
    w11 = apportion([6, 6, 2], 11, min_staff=0)
    assert (w11 >= w10).all()  # divisor methods are house-monotone


def test_bounds_are_respected_and_redistributed():
    a = apportion([1000, 10, 10, 10], 10, min_staff=1, max_staff=4)
    assert a.tolist() == [4, 2, 2, 2]
    h = apportion([1000, 10, 10, 10], 10, min_staff=1, max_staff=4, method="hamilton")
    assert h.tolist() == [4, 2, 2, 2]


@pytest.mark.parametrize(
    ("total", "match"),
    [(3, "below the sum of per-grid minimums 4"), (25, "above the sum of per-grid maximums 24")],
)
def test_infeasible_budget(total: int, match: str):
    with pytest.raises(InputError, match=match):
        apportion([1.0, 2.0, 3.0, 4.0], total, min_staff=1, max_staff=6)


def test_bad_apportion_input():
    with pytest.raises(InputError, match="unknown apportionment method"):
        apportion([1.0], 1, method="dhondt")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="finite and >= 0"):
        apportion([1.0, -1.0], 2)
    with pytest.raises(InputError, match="below min staff"):
        apportion([1.0, 1.0], 2, min_staff=2, max_staff=1)


def _sequential_sainte_lague(w: np.ndarray, total: int, lo: int, hi: int) -> np.ndarray:
    """Reference: highest averages one seat at a time from the minimums (independent of bisection)."""
    a = np.full(len(w), lo)
    while a.sum() < total:
        pri = [(w[i] / (a[i] + 0.5) if a[i] < hi else -1.0, -i) for i in range(len(w))]
        a[-max(pri)[1]] += 1
    return a


@settings(max_examples=60, deadline=None)
@given(
    w=st.lists(st.floats(0.5, 1000.0), min_size=1, max_size=25),
    extra=st.integers(0, 40),
    lo=st.integers(0, 2),
    span=st.integers(1, 5),
)
def test_apportion_invariants(w: list[float], extra: int, lo: int, span: int):
    w_arr = np.asarray(w)
    hi = lo + span
    total = min(len(w) * lo + extra, len(w) * hi)
    for method in ("webster", "hamilton"):
        a = apportion(w_arr, total, min_staff=lo, max_staff=hi, method=method)  # type: ignore[arg-type]
        assert a.sum() == total
        assert (a >= lo).all()
        assert (a <= hi).all()
    web = apportion(w_arr, total, min_staff=lo, max_staff=hi)
    ref = _sequential_sainte_lague(w_arr, total, lo, hi)
    # equal up to exact ties of the priority (vanishingly rare with random floats)
    assert np.abs(web - ref).sum() <= 2


@settings(max_examples=40, deadline=None)
@given(w=st.lists(st.floats(1.0, 1000.0), min_size=2, max_size=20), total=st.integers(1, 60))
def test_hamilton_stays_within_quota_without_bounds(w: list[float], total: int):
    q = np.asarray(w) * total / np.sum(w)
    a = apportion(w, total, min_staff=0, method="hamilton")
    assert (a >= np.floor(q) - 1e-9).all()
    assert (a <= np.ceil(q) + 1e-9).all()
