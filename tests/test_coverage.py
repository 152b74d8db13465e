"""Maximal covering / set covering of fixed posts (gridplan.coverage) and `gridplan coverage`."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import geopandas as gpd
import numpy as np
import pulp
import pyogrio
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gridplan.coverage import (
    coverage_layers,
    coverage_pairs,
    generated_candidates,
    maximal_covering,
    set_covering,
)
from gridplan.errors import InputError
from gridplan.layers import write_layers

# sites on a line every 1 km; demand clusters near sites 0, 2 (heavy) and 4
SITES = np.array([[0.0, 0.0], [1000.0, 0.0], [2000.0, 0.0], [3000.0, 0.0], [4000.0, 0.0]])
DEMAND = np.array(
    [[0.0, 100.0], [50.0, -50.0], [2000.0, 10.0], [2100.0, 0.0], [1950.0, 0.0], [4000.0, 0.0], [9000.0, 0.0]]
)
WEIGHTS = np.array([2.0, 2.0, 1.0, 1.0, 1.0, 5.0, 100.0])


def _brute_best(p: int, radius: float) -> float:
    d = np.linalg.norm(DEMAND[:, None] - SITES[None], axis=2) <= radius
    return max(float(WEIGHTS[d[:, list(c)].any(axis=1)].sum()) for c in combinations(range(len(SITES)), p))


@pytest.mark.parametrize("p", [1, 2, 3])
def test_mclp_known_optimum(p: int):
    r = maximal_covering(SITES, DEMAND, radius_m=200, p=p, weights=WEIGHTS)
    assert r.covered_weight == pytest.approx(_brute_best(p, 200))
    assert r.selected.tolist() == [[4], [0, 4], [0, 2, 4]][p - 1]
    assert r.gap == pytest.approx(0.0, abs=1e-9)
    assert r.coverable.tolist() == [True] * 6 + [False]  # 9 km away from every site
    assert not r.covered[6]


def test_mclp_more_posts_than_useful_sites():
    r = maximal_covering(SITES, DEMAND, radius_m=200, p=5, weights=WEIGHTS)
    assert r.selected.tolist() == [0, 2, 4]  # sites 1 and 3 cover nothing
    assert r.covered_weight == pytest.approx(WEIGHTS[:6].sum())


def test_lscp_known_optimum_and_uncoverable_reported():
    r = set_covering(SITES, DEMAND, radius_m=200)
    assert r.selected.tolist() == [0, 2, 4]
    assert r.covered.sum() == 6
    assert (~r.coverable).sum() == 1
    assert r.bound == pytest.approx(3.0)
    assert r.gap == pytest.approx(0.0)
    # a radius of 1.1 km lets site 1 cover the first two clusters
    assert len(set_covering(SITES, DEMAND, radius_m=1100).selected) == 2


def test_greedy_is_never_better_than_milp_and_bound_holds():
    rng = np.random.default_rng(0)
    sites, demand = rng.uniform(0, 5000, (60, 2)), rng.uniform(0, 5000, (400, 2))
    w = rng.integers(1, 10, 400).astype(float)
    exact = maximal_covering(sites, demand, radius_m=500, p=6, weights=w)
    greedy = maximal_covering(sites, demand, radius_m=500, p=6, weights=w, method="greedy")
    assert greedy.covered_weight <= exact.covered_weight + 1e-9
    assert exact.covered_weight <= exact.bound + 1e-6
    assert greedy.covered_weight >= (1 - 1 / np.e) * exact.covered_weight


def test_agrees_with_spopt_mclp():
    from spopt.locate import MCLP

    rng = np.random.default_rng(5)
    sites, demand = rng.uniform(0, 2000, (12, 2)), rng.uniform(0, 2000, (60, 2))
    w = rng.integers(1, 6, 60)
    cost = np.linalg.norm(demand[:, None] - sites[None], axis=2)
    ref = MCLP.from_cost_matrix(cost, w, service_radius=400, p_facilities=4)
    ref = ref.solve(pulp.PULP_CBC_CMD(msg=False))
    ours = maximal_covering(sites, demand, radius_m=400, p=4, weights=w)
    assert ours.covered_weight == pytest.approx(float(pulp.value(ref.problem.objective)))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), radius=st.floats(50.0, 800.0))
def test_coverage_pairs_match_brute_force(seed: int, radius: float):
    rng = np.random.default_rng(seed)
    sites, demand = rng.uniform(0, 2000, (15, 2)), rng.uniform(0, 2000, (40, 2))
    s, d = coverage_pairs(sites, demand, radius_m=radius)
    dist = np.linalg.norm(demand[:, None] - sites[None], axis=2)
    assert sorted(zip(d.tolist(), s.tolist(), strict=True)) == sorted(
        zip(*np.nonzero(dist <= radius), strict=True)
    )


def test_generated_candidates_lattice_near_demand():
    pts = generated_candidates(np.array([[0.0, 0.0], [10_000.0, 0.0]]), spacing_m=500, radius_m=600)
    xy = shapely.get_coordinates(pts)
    assert len(xy) > 0
    d = np.minimum(np.hypot(xy[:, 0], xy[:, 1]), np.hypot(xy[:, 0] - 10_000, xy[:, 1]))
    assert (d <= 600).all()
    assert np.allclose(xy % 500, 0)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: maximal_covering(SITES, DEMAND, radius_m=0, p=1), "must be > 0"),
        (lambda: maximal_covering(SITES, DEMAND, radius_m=100, p=0), "must be >= 1"),
        (lambda: maximal_covering(SITES, DEMAND, radius_m=100, p=1, weights=[1.0]), "one value per demand"),
        (lambda: maximal_covering(SITES, DEMAND, radius_m=100, p=1, weights=-WEIGHTS), "finite and >= 0"),
        (lambda: generated_candidates(DEMAND, spacing_m=0, radius_m=10), "must be > 0"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(InputError, match=match):
        call()


def test_layers_and_writer(tmp_path: Path):
    sites = gpd.GeoDataFrame(
        {"site_id": [f"S{i}" for i in range(5)]}, geometry=shapely.points(SITES), crs=4547
    )
    demand = gpd.GeoDataFrame({"id": range(7)}, geometry=shapely.points(DEMAND), crs=4547)
    r = maximal_covering(sites, demand, radius_m=200, p=2, weights=WEIGHTS)
    layers = coverage_layers(sites, demand, r, radius_m=200, weights=WEIGHTS)
    assert layers["posts"]["site_id"].tolist() == ["S0", "S4"]
    assert layers["posts"]["covered_weight"].tolist() == pytest.approx([4.0, 5.0])
    unc = layers["uncovered"]
    assert unc["id"].tolist() == [2, 3, 4, 6]
    assert unc["reason"].tolist() == ["no post within 200 m"] * 3 + ["no candidate site within 200 m"]
    out = write_layers(layers, tmp_path / "cover.gpkg")
    assert set(pyogrio.list_layers(out)[:, 0]) == {"posts", "uncovered", "summary"}


# ------------------------------------------------------------------------------------- CLI


def test_cli_coverage_end_to_end(small_city: Path, tmp_path: Path):
    from gridplan.cli import app

    layers = str(small_city / "layers.gpkg")
    out = tmp_path / "cover.gpkg"
    res = CliRunner().invoke(
        app,
        [
            "coverage",
            layers,
            "--radius-m",
            "800",
            "--posts",
            "5",
            "--candidates",
            "facilities:治安岗亭",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    posts = pyogrio.read_dataframe(out, layer="posts")
    assert len(posts) == 5
    assert (posts["kind"] == "治安岗亭").all()
    summary = pyogrio.read_dataframe(out, layer="summary").set_index("metric")["value"]
    assert float(summary["gap"]) <= 1e-6
    out2 = tmp_path / "cover_all.gpkg"
    res = CliRunner().invoke(
        app,
        [
            "coverage",
            layers,
            "--radius-m",
            "1000",
            "--cover-all",
            "--demand",
            str(small_city / "hazards.csv"),
            "--out",
            str(out2),
        ],
    )
    assert res.exit_code == 0, res.output
    unc = pyogrio.read_dataframe(out2, layer="uncovered")
    assert (unc["reason"] == "no candidate site within 1000 m").all()  # cover-all covers all coverable


def test_cli_coverage_bad_input(small_city: Path, tmp_path: Path):
    from gridplan.cli import app

    layers = str(small_city / "layers.gpkg")
    res = CliRunner().invoke(app, ["coverage", layers, "--out", str(tmp_path / "x.gpkg")])
    assert res.exit_code == 2
    assert "exactly one of --posts N or --cover-all" in res.output
    res = CliRunner().invoke(
        app,
        [
            "coverage",
            layers,
            "--posts",
            "3",
            "--candidates",
            "facilities:火箭基地",
            "--out",
            str(tmp_path / "x.gpkg"),
        ],
    )
    assert res.exit_code == 2
    assert "no facilities of kind '火箭基地'" in res.output


@pytest.mark.parametrize("radius", [0.0, -5.0, float("nan"), float("inf")])
def test_a_bad_radius_is_named_as_the_radius(radius: float) -> None:
    """``--radius-m 0`` blamed the lattice spacing derived from it; the radius is what to fix."""
    demand = np.array([[0.0, 0.0], [10.0, 0.0]])
    with pytest.raises(InputError) as err:
        generated_candidates(demand, spacing_m=max(radius / 2, 0.0) or 1.0, radius_m=radius)
    assert err.value.field == "radius_m"
    with pytest.raises(InputError) as err:
        coverage_pairs(demand, demand, radius_m=radius)
    assert err.value.field == "radius_m"
