"""The per-class address evaluation (benchmarks/address_variants.py) on the small sample's library.

The variants are made from the library alone, apart from the sample generator's messy cases, so these
figures say how the geocoder does on the ways people write addresses, class by class (issue 13).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyogrio
import pytest

from benchmarks.address_variants import CLASSES, chinese_numeral, evaluate, make_variants, score


@pytest.fixture(scope="module")
def table(small_city: Path, small_plan: Path) -> pd.DataFrame:
    return evaluate(small_city / "layers.gpkg", small_plan, n_per_class=40)


def test_every_class_is_made(small_city: Path) -> None:
    lib = pyogrio.read_dataframe(small_city / "layers.gpkg", layer="std_addresses", read_geometry=False)
    v = make_variants(lib, n_per_class=10)
    assert len(CLASSES) >= 20
    assert set(v["variant"]) == {c.name for c in CLASSES}
    assert (v.groupby("variant").size() == 10).all()
    # a variant is never the library's own text, except the clean class
    own = set(lib["full_address"])
    assert not v[v["variant"] != "clean"]["address"].isin(own).any()


def test_each_class_at_least_90_percent_right(table: pd.DataFrame) -> None:
    low = table[table["right"] < 0.90]
    assert low.empty, f"classes under 90 %:\n{low}"


def test_wrong_places_stay_rare(table: pd.DataFrame) -> None:
    assert (table["wrong"] <= 0.05).all(), table[table["wrong"] > 0.05]
    overall = (table["wrong"] * table["rows"]).sum() / table["rows"].sum()
    assert overall <= 0.005


def test_not_in_library_never_at_house_level(table: pd.DataFrame) -> None:
    assert table.loc["not_in_library_house", "wrong"] <= 0.01
    assert table.loc["other_city", "wrong"] == 0


def test_score_counts_each_outcome_once() -> None:
    truth = pd.DataFrame({
        "case_id": ["a", "b", "c", "d"], "address": ["", "", "", ""], "variant": ["x"] * 4,
        "address_id": ["1", "2", "", ""], "expect": ["house", "house", "road", "none"],
        "road_name": ["", "", "鸿福路", ""],
    })
    got = pd.DataFrame({
        "case_id": ["a", "b", "c", "d"], "status": ["M", "M", "M", "U"],
        "match_level": ["house", "house", "house", ""], "address_id": ["1", "9", "5", ""],
        "matched_address": ["", "", "鸿福路5号", ""],
    })
    t = score(got, truth).loc["x"]
    assert (t["right"], t["wrong"], t["coarse"], t["tied"], t["unmatched"]) == (0.5, 0.5, 0.0, 0.0, 0.0)


@pytest.mark.parametrize(("n", "text"), [(1, "一"), (10, "十"), (12, "十二"), (105, "一百零五"),
                                         (361, "三百六十一"), (2000, "二千")])
def test_chinese_numeral(n: int, text: str) -> None:
    assert chinese_numeral(n) == text
