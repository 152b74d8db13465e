"""The sample generator's variants (gridplan.sample.variants): cities unlike the sample, same contract.

Each variant is generated once (small scale, module-scoped), validated with ``gridplan validate``
and checked for the character it claims: coarse departmental layers, big compounds that no
department line crosses, villages of dense rental buildings, an industrial belt with few
households.  The default variant stays byte-identical (tests/test_sample.py checks determinism).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely
from typer.testing import CliRunner

from gridplan.cli import app
from gridplan.errors import InputError
from gridplan.sample import build_sample, write_sample
from gridplan.sample.events import MONTHS, month_weights
from gridplan.sample.variants import VARIANTS

DEPTS = ("police", "fire", "urban", "civil", "safety")
runner = CliRunner()


@pytest.fixture(scope="module")
def city(variant_city: Callable[[str], Path]) -> dict[str, Path]:
    """Folder of each variant (seed 0, small; shared with the merge and hot spot variant tests)."""
    return {name: variant_city(name) for name in ("coarse", "compounds", "villages", "industrial")}


def test_cli_writes_a_variant(tmp_path: Path) -> None:
    result = runner.invoke(app, ["sample", "--out", str(tmp_path), "--seed", "1", "--variant", "villages"])
    assert result.exit_code == 0, result.output
    assert "village zones" in result.output
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["variant"]["name"] == "villages"


def _layer(d: Path, name: str) -> gpd.GeoDataFrame:
    return gpd.read_file(d / "layers.gpkg", layer=name)


def _solid(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Rows with a geometry that is neither NULL nor empty (the planted defects aside)."""
    g = gdf.geometry.to_numpy()
    return gdf[~shapely.is_missing(g) & ~shapely.is_empty(g)]


def _manifest(d: Path) -> dict:
    return json.loads((d / "manifest.json").read_text(encoding="utf-8"))


def _dept_per_community(d: Path) -> float:
    n_comm = len(_layer(d, "communities"))
    return sum(len(_layer(d, f"dept_{k}")) for k in DEPTS) / n_comm


@pytest.mark.parametrize("name", ["coarse", "compounds", "villages", "industrial"])
def test_each_variant_validates_and_keeps_the_contract(city: dict[str, Path], name: str) -> None:
    d = city[name]
    result = runner.invoke(app, ["validate", str(d / "layers.gpkg")])
    assert result.exit_code == 0, result.output
    listed = {n for n, _ in pyogrio.list_layers(d / "layers.gpkg")}
    assert {"city", "towns", "communities", "roads", "buildings", "std_addresses"} <= listed
    bld, std = _layer(d, "buildings"), _layer(d, "std_addresses")
    assert set(bld["address_id"]) == set(std["address_id"])
    assert std["full_address"].is_unique
    geoms = _solid(bld).geometry.to_numpy()
    assert shapely.is_valid(geoms).all()
    # buildings never overlap (a building is a building, also in a village)
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    assert (a == b).all()
    roads = set(zip(_layer(d, "roads")["town_code"], _layer(d, "roads")["road_name"], strict=True))
    assert all(k in roads for k in zip(std["town_code"], std["road_name"], strict=True))
    m = _manifest(d)
    assert m["variant"]["name"] == name
    assert {h["trend"] for h in m["hotspots"]} <= {"rising", "falling", "steady", "new", "sporadic"}


def test_coarse_has_far_fewer_department_grids(city: dict[str, Path], small_city: Path) -> None:
    assert _dept_per_community(city["coarse"]) < 0.35 * _dept_per_community(small_city)


def test_compounds_are_big_and_no_department_line_crosses_them(city: dict[str, Path]) -> None:
    d = city["compounds"]
    zones = [z for z in _manifest(d)["variant"]["zones"] if z["kind"] == "compound"]
    assert len(zones) >= 5
    bld = _layer(d, "buildings")
    bld = _solid(bld)
    centroids = bld.geometry.centroid
    comm = _layer(d, "communities").set_index("community_code")
    for z in zones:
        block = shapely.from_wkt(z["geometry"])
        inside = centroids.within(block)
        # a street block of many buildings holding 600-2,000 households
        assert inside.sum() == z["buildings"] >= 40
        assert 600 <= z["households"] <= 2_000
        # a planted NULL households may fall in a block
        assert bld.loc[inside, "households"].sum() == pytest.approx(z["households"], rel=0.05)
        assert comm.geometry[z["community_code"]].buffer(1.0).contains(block)
        core = block.buffer(-6.0)  # hand-drawn lines wander up to 5 m
        for dept in DEPTS:
            grids = _layer(d, f"dept_{dept}").geometry.make_valid()
            covered = grids.intersection(core).area
            # one grid of each department holds the block whole (planted defects aside)
            assert covered.max() >= 0.98 * core.area, (z["id"], dept, sorted(covered[covered > 1])[-3:])


def test_villages_pack_many_households_in_small_buildings(city: dict[str, Path], small_city: Path) -> None:
    d = city["villages"]
    zones = [z for z in _manifest(d)["variant"]["zones"] if z["kind"] == "village"]
    assert len(zones) == 2
    bld = _layer(d, "buildings")
    base = _layer(small_city, "buildings")
    for z in zones:
        disc = shapely.from_wkt(z["geometry"])
        bld = _solid(bld)
        inside = bld[bld.geometry.within(disc)]
        assert len(inside) >= 200
        assert inside.geometry.area.median() < 0.3 * base.geometry.area.median()
        per_building = inside["households"].median()
        assert per_building >= 3 * base["households"].median(), (per_building, base["households"].median())
        assert (inside["use"] == "出租屋").all()
        # irregular lanes: the lanes serving the village are not straight
        lanes = _layer(d, "roads")
        lanes = lanes[lanes.road_name.isin(set(inside.merge(_layer(d, "std_addresses"),
                                                            on="address_id")["road_name"]))]
        straight = shapely.distance(shapely.get_point(lanes.geometry.to_numpy(), 0),
                                    shapely.get_point(lanes.geometry.to_numpy(), -1))
        assert (lanes.geometry.length.to_numpy() > straight * 1.01).any()


def test_industrial_belt_is_large_and_empty(city: dict[str, Path]) -> None:
    d = city["industrial"]
    (zone,) = [z for z in _manifest(d)["variant"]["zones"] if z["kind"] == "industrial"]
    belt = shapely.from_wkt(zone["geometry"])
    city_area = _layer(d, "city").area.iloc[0]
    assert belt.area > 0.15 * city_area
    bld = _layer(d, "buildings")
    bld = _solid(bld)
    inside = bld.geometry.centroid.within(belt)
    dens_in = bld.loc[inside, "households"].sum() / belt.area
    dens_out = bld.loc[~inside, "households"].sum() / (city_area - belt.area)
    assert dens_in < 0.05 * dens_out
    assert (bld.loc[inside, "use"] == "厂房").all()
    assert bld.loc[inside].geometry.area.median() > 1.5 * bld.loc[~inside].geometry.area.median()


def test_variant_is_deterministic_and_unknown_names_are_refused(tmp_path: Path) -> None:
    a = build_sample(scale="small", seed=0, variant="coarse")
    b = build_sample(scale="small", seed=0, variant="coarse")
    assert a.cases.equals(b.cases)
    assert a.layers["dept_police"].geometry.to_wkb().equals(b.layers["dept_police"].geometry.to_wkb())
    with pytest.raises(InputError, match="unknown variant"):
        write_sample(tmp_path / "x", variant="suburbs")
    result = runner.invoke(app, ["sample", "--out", str(tmp_path / "y"), "--variant", "suburbs"])
    assert result.exit_code == 2
    assert set(VARIANTS) == {"base", "coarse", "compounds", "villages", "industrial"}


@pytest.mark.parametrize("trend", ["rising", "falling", "steady", "new", "sporadic"])
def test_month_weights_follow_the_trend(trend: str) -> None:
    w = month_weights(trend)
    assert len(w) == MONTHS
    assert w.sum() == pytest.approx(1.0)
    first, last = w[:12].sum(), w[-12:].sum()
    if trend == "rising":
        assert last > 2 * first
    elif trend == "falling":
        assert first > 2 * last
    elif trend == "steady":
        assert first == pytest.approx(last)
    elif trend == "new":
        assert w[-1] == 1.0
    else:
        quarters = w.reshape(-1, 3).sum(axis=1)
        assert quarters[-1] > 0
        assert 0.3 < (quarters > 0).mean() < 0.9
