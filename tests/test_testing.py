"""gridplan.testing.assert_plan_equal: equal plans pass; every kind of difference is caught and named."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import shapely
from common import make_plan

from gridplan.plans import read_plan, write_plan
from gridplan.testing import assert_plan_equal


def test_a_plan_equals_itself_and_its_file_round_trip(tmp_path: Path) -> None:
    plan = make_plan(plan_id="P1")
    assert_plan_equal(plan, plan)
    back = read_plan(write_plan(plan, tmp_path / "plan.gpkg"))
    assert_plan_equal(back, plan, check_dtype=False)


def test_row_order_matters_only_when_asked() -> None:
    plan = make_plan(plan_id="P1")
    shuffled = plan.derive(kind="edit", params={}, base_grids=plan.base_grids.iloc[::-1])
    with pytest.raises(AssertionError, match="plan layer base_grids"):
        assert_plan_equal(plan, shuffled, check_meta=False)
    assert_plan_equal(plan, shuffled, check_meta=False, check_row_order=False)


def test_meta_difference_is_named() -> None:
    a, b = make_plan(plan_id="P1"), make_plan(plan_id="P2")
    with pytest.raises(AssertionError, match="plan_id: 'P1' vs 'P2'"):
        assert_plan_equal(a, b)
    assert_plan_equal(a, b, check_meta=False)


def test_a_changed_count_is_named_with_its_column() -> None:
    plan = make_plan(plan_id="P1")
    grids = plan.base_grids.copy()
    grids.loc[grids.index[0], "households"] += 1
    edited = plan.derive(kind="edit", params={}, base_grids=grids)
    with pytest.raises(AssertionError, match=r"base_grids.*households"):
        assert_plan_equal(plan, edited, check_meta=False)


def test_geometry_within_tolerance_and_beyond() -> None:
    plan = make_plan(plan_id="P1")
    grids = plan.base_grids.copy()
    grids["geometry"] = shapely.transform(grids.geometry.values, lambda c: c + 0.01)
    moved = plan.derive(kind="edit", params={}, base_grids=grids)
    with pytest.raises(AssertionError, match="4 of 4 geometries differ"):
        assert_plan_equal(plan, moved, check_meta=False)
    assert_plan_equal(plan, moved, check_meta=False, atol_m=0.05)
    with pytest.raises(AssertionError, match=r"by more than 0\.001 m"):
        assert_plan_equal(plan, moved, check_meta=False, atol_m=0.001)


def test_same_shape_other_start_vertex_is_equal() -> None:
    plan = make_plan(plan_id="P1")
    grids = plan.base_grids.copy()
    grids["geometry"] = shapely.normalize(grids.geometry.values)
    assert_plan_equal(plan, plan.derive(kind="edit", params={}, base_grids=grids), check_meta=False)


def test_missing_layer_and_crs_are_caught() -> None:
    plan = make_plan(plan_id="P1")
    with pytest.raises(AssertionError, match="plan layers differ"):
        assert_plan_equal(plan, dataclasses.replace(plan, extra_tables={"moves": plan.crosswalk}))
    with pytest.raises(AssertionError, match="CRS"):
        assert_plan_equal(
            plan,
            plan.derive(kind="edit", params={}, base_grids=plan.base_grids.to_crs(4490)),
            check_meta=False,
        )
