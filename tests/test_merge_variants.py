"""The merge on generated cities unlike the sample (issue 12's "done when").

Four variants of the sample generator (coarse departmental layers, big compounds, villages of
dense rental buildings, an industrial belt) are merged with the defaults.  What holds today is
asserted plainly: valid geometry, single-part base grids, atomic units that dissolve exactly into
their base grids, area conserved, every grid outside the band listed in ``qa_issues``.

The band figures come from splitting oversized units between buildings (into pieces of half the
band) and merging undersized grids (seed 0): coarse 90.9 %, compounds 97.6 %, villages 97.6 %,
industrial 96.4 %.  Coarse was 89.4 % (an ``xfail``) while pieces were as big as a whole grid.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gridplan.plans import read_plan

VARIANTS = ("coarse", "compounds", "villages", "industrial")
#: reasons that make a grid outside the band acceptable: the data leave no way into it
ALLOWED = {"community_smaller_than_band", "no_neighbour_in_community", "single_building_over_max"}

@pytest.fixture(scope="module", params=VARIANTS)
def merged(request: pytest.FixtureRequest, variant_city: Callable[[str], Path]):  # type: ignore[no-untyped-def]
    folder = variant_city(request.param)
    city = gpd.read_file(folder / "layers.gpkg", layer="city").geometry.iloc[0]
    return request.param, read_plan(folder / "plan.gpkg"), city


def test_every_geometry_is_valid_and_base_grids_are_single_polygons(merged) -> None:  # type: ignore[no-untyped-def]
    name, plan, _ = merged
    grids = plan.base_grids.geometry.to_numpy()
    units = plan.atomic_units.geometry.to_numpy()
    assert shapely.is_valid(grids).all(), name
    assert shapely.is_valid(units).all(), name
    assert (shapely.get_num_geometries(grids) == 1).all(), name
    parts = shapely.get_parts(grids)
    assert (shapely.area(parts) > 0).all(), name


def test_atomic_units_dissolve_into_their_base_grids(merged) -> None:  # type: ignore[no-untyped-def]
    name, plan, _ = merged
    grids = plan.base_grids.set_index("grid_code").geometry
    units = plan.atomic_units
    assert set(units["base_grid_code"]) == set(grids.index)
    for code, group in units.groupby("base_grid_code"):
        dissolved = shapely.union_all(group.geometry.to_numpy())
        diff = shapely.symmetric_difference(dissolved, grids[code]).area
        assert diff <= 1e-6 * grids[code].area, (name, code, diff)
    # households are carried, not invented
    by_grid = units.groupby("base_grid_code")["households"].sum()
    hh = plan.base_grids.set_index("grid_code")["households"]
    assert np.allclose(by_grid.reindex(hh.index).to_numpy(), hh.to_numpy())


def test_area_is_conserved(merged) -> None:  # type: ignore[no-untyped-def]
    name, plan, city = merged
    grids = plan.base_grids.geometry.to_numpy()
    assert shapely.area(grids).sum() == pytest.approx(city.area, rel=1e-6), name
    assert shapely.area(shapely.union_all(grids)) == pytest.approx(city.area, rel=1e-6), name


def test_every_grid_outside_the_band_is_listed_with_a_reason(merged) -> None:  # type: ignore[no-untyped-def]
    name, plan, _ = merged
    bg, qa = plan.base_grids, plan.qa_issues
    off = bg[bg["band_status"] != "ok"]
    band = qa[(qa["layer"] == "base_grids") & (qa["issue"] == "band")].set_index("feature_id")
    assert set(off["grid_code"]) <= set(band.index), name
    assert (off["band_reason"].astype(str).str.len() > 0).all(), name
    assert (band.loc[off["grid_code"], "detail"].astype(str).str.len() > 0).all(), name
    hh = bg["households"].to_numpy()
    lo, hi = 300, 500
    assert ((bg["band_status"] == "ok").to_numpy() == ((hh >= lo) & (hh <= hi))).all(), name


def _in_band_where_allowed(plan) -> float:  # type: ignore[no-untyped-def]
    bg = plan.base_grids
    ok = (bg["band_status"] == "ok").to_numpy()
    code = bg["band_reason"].astype(str).str.split(":").str[0].to_numpy()
    allowed = np.isin(code, list(ALLOWED)) & ~ok
    return float(ok.sum() / max(1, (~allowed).sum()))


@pytest.mark.parametrize("name", [
    "coarse",  # 66 % before issue 12; 89.4 % while split pieces were a whole grid; 90.9 % now
    "compounds",  # 82 % before units were split between buildings
    "villages",  # 89 % before
    "industrial",  # 96 % today: few households, nothing to split
])
def test_ninety_percent_of_grids_in_band_where_reasons_allow(name: str,
                                                             variant_city: Callable[[str], Path]) -> None:
    share = _in_band_where_allowed(read_plan(variant_city(name) / "plan.gpkg"))
    assert share >= 0.9, (name, share)


@pytest.mark.parametrize("name", VARIANTS)
def test_reasons_are_codes_of_the_merge(name: str, variant_city: Callable[[str], Path]) -> None:
    from gridplan.merge.basegrids import REASONS

    bg = read_plan(variant_city(name) / "plan.gpkg").base_grids
    off = bg[bg["band_status"] != "ok"]
    codes = off["band_reason"].astype(str).str.split(":").str[0]
    assert codes.isin(list(REASONS)).all(), codes.value_counts().to_dict()
