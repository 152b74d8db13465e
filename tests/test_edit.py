"""The edit engine (gridplan.balance.edit) on the hand-made 16-unit plan of tests/common.py.

Layout: two communities side by side, each 4 columns × 2 rows of 500 m units with 100 households;
grid …001 = the western two columns of a community, …002 the eastern two (400 households each,
band 300–500).  Police grid P1 = column 0 of community 1; P2 = its columns 1–3.
"""

from __future__ import annotations

import pytest
import shapely
from common import C1, C2, X0, Y0, make_plan
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridplan.balance.edit import EditSession, MergeGrids, Reassign, SplitGrid, operation_from_json
from gridplan.errors import InputError
from gridplan.plans import diff_plans

G11, G12, G21 = C1 + "001", C1 + "002", C2 + "001"


def _unit(ci: int, col: int, row: int) -> str:
    return f"U{ci * 8 + col * 2 + row + 1:04d}"


@pytest.fixture
def session() -> EditSession:
    return EditSession(make_plan(plan_id="P0"))


def test_reassign_shows_counts_band_and_saves_a_child_with_the_right_diff(session: EditSession) -> None:
    cons = session.apply(Reassign((_unit(0, 1, 0),), G12))
    state = {g.grid_code: g for g in cons.grids}
    assert (state[G11].households, state[G12].households) == (300, 500)
    assert state[G11].band_status == state[G12].band_status == "ok"
    assert state[G11].parts == 1
    assert cons.legal
    assert cons.households_moved == 100
    assert cons.dept_grids_newly_cut == ()
    child = session.to_plan("move one block east")
    assert child.meta.parent_id == "P0"
    assert child.meta.kind == "edit"
    hh = dict(zip(child.base_grids["grid_code"], child.base_grids["households"], strict=True))
    assert (hh[G11], hh[G12]) == (300, 500)
    d = diff_plans(session.plan, child)
    assert d.summary["households_moved"] == 100
    assert d.summary["moves_method"] == "units"
    assert child.base_grids.geometry.area.sum() == pytest.approx(session.plan.base_grids.geometry.area.sum())


def test_a_grid_in_two_parts_is_shown_and_cannot_be_saved(session: EditSession) -> None:
    cons = session.apply(Reassign((_unit(0, 0, 0), _unit(0, 1, 1)), G12))
    (g11,) = [g for g in cons.grids if g.grid_code == G11]
    assert g11.parts == 2  # the two remaining units touch at a corner only
    assert not cons.legal
    with pytest.raises(InputError, match=f"grid {G11}: is in 2 separate parts"):
        session.to_plan()


def test_a_grid_across_a_community_line_is_blocked_with_its_reason(session: EditSession) -> None:
    cons = session.apply(Reassign((_unit(0, 3, 0),), G21))
    assert any(v.startswith(f"grid {G21}: spans 2 communities") for v in cons.violations)
    with pytest.raises(InputError, match="spans 2 communities"):
        session.to_plan()


def test_merge_then_split_uses_a_fresh_code_and_undo_redo(session: EditSession) -> None:
    cons = session.apply(MergeGrids(G11, G12))
    (g,) = cons.grids
    assert (g.grid_code, g.households, g.band_status) == (G11, 800, "above")
    assert cons.legal  # off band is shown, not blocked
    line = shapely.LineString([(X0 + 1000, Y0 - 10), (X0 + 1000, Y0 + 1010)])  # walking north
    cons = session.apply(SplitGrid(G11, line))
    new = {g.grid_code: g.households for g in cons.grids}
    assert new == {G11: 400, C1 + "003": 400}  # …002 was retired by the merge: never reused
    assert set(session.assignment[:4]) == {C1 + "003"}  # the western units are left of the line
    session.undo()
    assert set(session.assignment[:8]) == {G11}
    session.redo()
    assert C1 + "003" in set(session.assignment)
    session.undo()
    session.undo()
    assert session.consequences().moved_units.empty


def test_a_split_that_cuts_a_department_says_so(session: EditSession) -> None:
    line = shapely.LineString([(X0 - 10, Y0 + 500), (X0 + 1010, Y0 + 500)])  # walking east: north is left
    cons = session.apply(SplitGrid(G11, line))
    assert ("police", "P1") in cons.dept_grids_newly_cut
    assert cons.legal


def test_a_line_that_does_not_divide_is_refused(session: EditSession) -> None:
    far = shapely.LineString([(X0 + 5000, Y0), (X0 + 5000, Y0 + 1000)])
    with pytest.raises(InputError, match="does not divide"):
        session.apply(SplitGrid(G11, far))


def test_operations_from_json() -> None:
    got = operation_from_json({"op": "reassign", "units": ["U0001"], "to_grid": G12})
    assert got == Reassign(("U0001",), G12)
    assert operation_from_json({"op": "merge", "keep": G11, "absorb": G12}) == MergeGrids(G11, G12)
    split = operation_from_json({"op": "split", "grid": G11, "line": [[0, 0], [1, 1]]})
    assert isinstance(split, SplitGrid)
    with pytest.raises(InputError, match="unknown edit operation 'rotate'"):
        operation_from_json({"op": "rotate"})
    with pytest.raises(InputError, match="incomplete or malformed"):
        operation_from_json({"op": "reassign", "units": ["U0001"]})


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    moves=st.lists(
        st.tuples(st.integers(0, 15), st.sampled_from([G11, G12, C2 + "001", C2 + "002"])), max_size=6
    )
)
def test_any_sequence_keeps_a_partition_and_conserves_households(moves: list[tuple[int, str]]) -> None:
    s = EditSession(make_plan(plan_id="P0"))
    for unit, grid in moves:
        if grid in set(s.assignment):
            s.apply(Reassign((f"U{unit + 1:04d}",), grid))
    assert (s.assignment != "").all()
    cons = s.consequences()
    if cons.legal:
        child = s.to_plan()
        assert child.base_grids["households"].sum() == 1600
        assert child.base_grids["grid_code"].is_unique
        assert sorted(child.atomic_units["unit_id"]) == sorted(s.plan.atomic_units["unit_id"])
        area = child.base_grids.geometry.area.sum()
        assert area == pytest.approx(s.plan.base_grids.geometry.area.sum())
        union = shapely.union_all(child.base_grids.geometry.to_numpy())
        assert union.area == pytest.approx(area)  # no overlaps
    else:
        with pytest.raises(InputError):
            s.to_plan()
    affected = {g.grid_code: g.households for g in cons.grids}
    parent = dict(zip(s.plan.base_grids["grid_code"], s.plan.base_grids["households"], strict=True))
    untouched = sum(h for code, h in parent.items() if code not in affected and code in set(s.assignment))
    assert sum(affected.values()) + untouched == 1600  # households conserved, whatever moved


def test_a_split_skips_codes_retired_by_an_earlier_proposal() -> None:
    plan = make_plan(plan_id="P0")
    plan = plan.derive(kind="proposal", params={**plan.meta.params, "retired_grid_codes": [C1 + "004"]})
    session = EditSession(plan)
    line = shapely.LineString([(X0 + 500, Y0 - 10), (X0 + 500, Y0 + 1010)])
    cons = session.apply(SplitGrid(G11, line))
    assert C1 + "005" in {g.grid_code for g in cons.grids}
