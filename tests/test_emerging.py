"""Emerging hot spots: Mann-Kendall, the 17 pattern rules, space-time Gi*, planted trends."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

from gridplan.errors import InputError
from gridplan.hotspots import (
    PATTERNS,
    PATTERNS_ZH,
    Areas,
    classify_pattern,
    classify_patterns,
    emerging_hotspots,
    mann_kendall,
    pattern_masks,
    space_time_cube,
    space_time_gi,
)
from gridplan.hotspots.emerging import NO_PATTERN

# --------------------------------------------------------------------------------------------
# Mann-Kendall
# --------------------------------------------------------------------------------------------


def test_mann_kendall_known_values() -> None:
    # S = 10, Var = 5·4·15/18 = 16.67, z = 9 / 4.082
    z, p = mann_kendall([1.0, 2.0, 3.0, 4.0, 5.0])
    assert z == pytest.approx(9 / np.sqrt(50 / 3))
    assert p == pytest.approx(0.02749, abs=1e-4)
    z, _ = mann_kendall([5.0, 4.0, 3.0, 2.0, 1.0])
    assert z == pytest.approx(-9 / np.sqrt(50 / 3))


def test_mann_kendall_tie_correction() -> None:
    # [1, 1, 2, 3]: S = 5; Var = (4·3·13 − 2·1·9) / 18 = 138 / 18
    z, _ = mann_kendall([1.0, 1.0, 2.0, 3.0])
    assert z == pytest.approx(4 / np.sqrt(138 / 18))


def test_mann_kendall_constant_and_short_series() -> None:
    z, p = mann_kendall(np.zeros((2, 6)))
    assert z.tolist() == [0.0, 0.0]
    assert p.tolist() == [1.0, 1.0]
    z, p = mann_kendall([1.0, 2.0])
    assert float(z) == 0.0
    assert float(p) == 1.0


def test_mann_kendall_vectorised_equals_rowwise() -> None:
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(size=(40, 12)), 1)  # rounding makes ties
    z, p = mann_kendall(x)
    for k in range(len(x)):
        zk, pk = mann_kendall(x[k])
        assert z[k] == pytest.approx(float(zk))
        assert p[k] == pytest.approx(float(pk))


# --------------------------------------------------------------------------------------------
# the 17 labels
# --------------------------------------------------------------------------------------------

UP, DOWN, FLAT = (3.0, 0.003), (-3.0, 0.003), (0.4, 0.69)

# label → (bins oldest first, (trend_z, trend_p)); n = 10 steps unless noted
CASES: dict[str, tuple[list[int], tuple[float, float]]] = {
    "New Hot Spot": ([0, 0, 0, 0, 0, 0, 0, 0, 0, 3], UP),
    "Consecutive Hot Spot": ([0, 0, 0, 0, 0, 0, 0, 1, 2, 3], UP),
    "Intensifying Hot Spot": ([0, 1, 1, 2, 2, 2, 3, 3, 3, 3], UP),
    "Persistent Hot Spot": ([3, 3, 2, 3, 3, 3, 2, 3, 3, 3], FLAT),
    "Diminishing Hot Spot": ([3, 3, 3, 3, 3, 2, 2, 2, 1, 1], DOWN),
    "Sporadic Hot Spot": ([0, 2, 0, 0, 1, 0, 0, 3, 0, 2], FLAT),
    "Oscillating Hot Spot": ([0, -2, -1, 0, 0, 1, 0, 0, 2, 2], UP),
    "Historical Hot Spot": ([3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0], DOWN),
    "New Cold Spot": ([0, 0, 0, 0, 0, 0, 0, 0, 0, -2], DOWN),
    "Consecutive Cold Spot": ([0, 0, 0, 0, 0, 0, -1, -1, -3, -3], DOWN),
    "Intensifying Cold Spot": ([0, -1, -2, -2, -2, -3, -3, -3, -3, -3], DOWN),
    "Persistent Cold Spot": ([-2, -2, -2, -2, -2, -2, -2, -2, -2, -2], FLAT),
    "Diminishing Cold Spot": ([-3, -3, -3, -3, -2, -2, -2, -1, -1, -1], UP),
    "Sporadic Cold Spot": ([-1, 0, 0, -1, 0, 0, 0, 0, -2, -1], FLAT),
    "Oscillating Cold Spot": ([2, 3, 0, 0, 0, 0, 0, 0, 0, -1], DOWN),
    "Historical Cold Spot": ([-2] * 19 + [0], UP),
    NO_PATTERN: ([0, 0, 2, 1, 0, 0, 0, 0, 0, 0], FLAT),
}


def test_every_label_has_a_case_and_chinese_name() -> None:
    assert set(CASES) == set(PATTERNS)
    assert len(PATTERNS) == 17
    assert set(PATTERNS_ZH) == set(PATTERNS)


@pytest.mark.parametrize("label", list(CASES))
def test_hand_built_series_gives_exactly_its_label(label: str) -> None:
    bins, (tz, tp) = CASES[label]
    assert classify_pattern(bins, tz, tp) == label
    masks = pattern_masks(np.array([bins]), [tz], [tp])
    matched = [name for name, m in masks.items() if m[0]]
    assert matched == [label]


def test_edge_cases_of_the_rules() -> None:
    # hot ≥ 90 % but the final bin cold: an oscillating cold spot, not a historical hot spot
    assert classify_pattern([3] * 19 + [-1], -3.0, 0.001) == "Oscillating Cold Spot"
    # a single trailing hot bin after a gap with earlier hot bins: sporadic, not new
    assert classify_pattern([1, 0, 0, 0, 2], 0.0, 1.0) == "Sporadic Hot Spot"
    # hot all along except the last 2 steps out of 10 (80 %): not historical (needs 90 %)
    assert classify_pattern([3] * 8 + [0, 0], -3.0, 0.001) == NO_PATTERN
    # ≥ 90 % hot with a significant *upward* trend but the last bin not hot: historical
    assert classify_pattern([3] * 9 + [0], 3.0, 0.001) == "Historical Hot Spot"
    # trend significance threshold is configurable
    assert classify_pattern([2] * 10, 2.0, 0.04) == "Intensifying Hot Spot"
    assert classify_pattern([2] * 10, 2.0, 0.04, trend_alpha=0.01) == "Persistent Hot Spot"


def test_classify_patterns_is_vectorised() -> None:
    labels = list(CASES)
    for length in (10, 20):  # one call per series length (padding would change the shares)
        group = [k for k in labels if len(CASES[k][0]) == length]
        bins = np.array([CASES[k][0] for k in group])
        tz = [CASES[k][1][0] for k in group]
        tp = [CASES[k][1][1] for k in group]
        assert classify_patterns(bins, tz, tp).tolist() == group


@settings(max_examples=300, deadline=None)
@given(
    bins=st.lists(st.lists(st.integers(-3, 3), min_size=1, max_size=24), min_size=1, max_size=1).map(
        lambda rows: np.array(rows)
    ),
    tz=st.floats(-5, 5),
    tp=st.floats(0, 1),
)
def test_rules_are_exclusive_and_exhaustive(bins: np.ndarray, tz: float, tp: float) -> None:
    masks = pattern_masks(bins, [tz], [tp])
    assert sum(int(m[0]) for m in masks.values()) == 1


def test_empty_series_is_rejected() -> None:
    with pytest.raises(InputError, match="at least one time step"):
        pattern_masks(np.zeros((1, 0)), [0.0], [1.0])


# --------------------------------------------------------------------------------------------
# space-time Gi*
# --------------------------------------------------------------------------------------------


def _line_neighbours(n: int) -> sparse.csr_matrix:
    i = np.arange(n - 1)
    m = sparse.coo_matrix((np.ones(2 * (n - 1)), (np.r_[i, i + 1], np.r_[i + 1, i])), shape=(n, n))
    return m.tocsr()


def test_space_time_gi_per_step_equals_esda() -> None:
    import esda
    from libpysal.graph import Graph

    rng = np.random.default_rng(1)
    n, steps = 12, 4
    x = rng.poisson(3.0, size=(n, steps)).astype(float)
    nb = _line_neighbours(n)
    z = space_time_gi(x, nb, time_window_steps=0, global_window="step")
    coo = nb.tocoo()
    graph = Graph.from_arrays(coo.row, coo.col, np.ones(len(coo.row)))
    for t in range(steps):
        lg = esda.G_Local(x[:, t], graph, transform="B", star=True, permutations=0)
        np.testing.assert_allclose(z[:, t], lg.Zs, rtol=1e-9, atol=1e-12)


def test_space_time_gi_window_and_cube() -> None:
    nb = _line_neighbours(3)
    x = np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 9.0]])
    z0 = space_time_gi(x, nb, time_window_steps=0)
    z1 = space_time_gi(x, nb, time_window_steps=1)
    assert z0[2, 2] > 0
    assert z0[0, 0] < 0
    # the window sums the previous step: step 1 of location 2 now sees nothing hot, step 2 does
    assert z1[2, 2] > z1[2, 1]
    with pytest.raises(InputError, match="2-D"):
        space_time_gi(np.zeros(3), nb)
    with pytest.raises(InputError, match="global window"):
        space_time_gi(x, nb, global_window="year")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# the sample city
# --------------------------------------------------------------------------------------------


def _located(city: Path, source: str) -> pd.DataFrame:
    idc = "case_id" if source == "cases" else "hazard_id"
    ev = pd.read_csv(city / f"{source}.csv", usecols=[idc, "category", "reported_at"])
    truth = pd.read_csv(city / f"truth_{source}.csv", usecols=[idc, "x", "y"])
    out = ev.merge(truth, on=idc)
    out["reported_at"] = pd.to_datetime(out["reported_at"])
    return out


#: planted trend → patterns that count as finding it.  A rising hot spot is new, consecutive or
#: intensifying (hot at the end, getting hotter); a steady one persistent; a falling one diminishing
#: (still hot, weakening) or historical (no longer hot).  Sporadic/oscillating say nothing about a
#: trend, so they do not count.  The generator's trends are year-on-year shares (20/30/50 %), so the
#: test uses quarters: with months, the few early events of a rising spot make its first bins flicker
#: in and out of significance and ArcGIS's rules then call it "sporadic".
EXPECTED = {
    "rising": {"New Hot Spot", "Consecutive Hot Spot", "Intensifying Hot Spot"},
    "steady": {"Persistent Hot Spot"},
    "falling": {"Diminishing Hot Spot", "Historical Hot Spot"},
}


@pytest.fixture(scope="module")
def plan_and_units(small_plan: Path):  # type: ignore[no-untyped-def]
    from gridplan.hotspots import analysis_units
    from gridplan.plans import read_plan

    plan = read_plan(small_plan)
    return plan, analysis_units(plan, "h3", h3_res=9)


def test_planted_trends_get_matching_patterns(small_city: Path, plan_and_units) -> None:  # type: ignore[no-untyped-def]
    plan, units = plan_and_units
    manifest = json.loads((small_city / "manifest.json").read_text())
    found = {}
    for spot in manifest["hotspots"]:
        events = _located(small_city, spot["source"])
        em = emerging_hotspots(
            events,
            plan,
            areas=Areas(by="h3", h3_res=9, units=units),
            time_step="quarter",
            category=spot["category"],
        )
        row = em.loc[em.geometry.contains(shapely.Point(spot["x"], spot["y"]))].iloc[0]
        found[spot["id"]] = (spot["trend"], row["pattern"])
        assert row["pattern"] in EXPECTED[spot["trend"]], (spot, row["pattern"], row["bin_history"])
        assert row["n_steps"] == 12
        assert len(row["bin_history"].split(",")) == 12
    assert {t for t, _ in found.values()} == {"rising", "steady", "falling"}


def test_cube_counts_every_event(small_city: Path, plan_and_units) -> None:  # type: ignore[no-untyped-def]
    plan, _ = plan_and_units
    events = _located(small_city, "hazards")
    units, cube, periods = space_time_cube(events, plan, by="grid", time_step="quarter")
    assert cube.shape == (len(units), 12)
    assert periods[0] == "2023Q1"
    assert periods[-1] == "2025Q4"
    from gridplan.hotspots import assign_events

    inside = assign_events(events, plan)["grid_code"].notna().sum()
    assert cube.sum() == inside


def test_emerging_needs_events_inside(small_plan: Path) -> None:
    from gridplan.plans import read_plan

    plan = read_plan(small_plan)
    far = pd.DataFrame(
        {"x": [0.0], "y": [0.0], "category": ["治安"], "reported_at": pd.to_datetime(["2024-01-01"])}
    )
    with pytest.raises(InputError, match="no located"):
        emerging_hotspots(far, plan)
