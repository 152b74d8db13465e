"""The edit engine (gridplan.balance.edit) on the hand-made 16-unit plan of tests/common.py.

Layout: two communities side by side, each 4 columns × 2 rows of 500 m units with 100 households
(and 10 addresses); grid …001 = the western two columns of a community, …002 the eastern two (400
households each, band 300–500).  Police grid P1 = column 0 of community 1; P2 = its columns 1–3.

Vertex moves are checked on the east edge of grid …001 of community 1 (x = 1000 m, the vertex at
its middle, y = 500 m): moved 200 m east it takes from each of the two units east of it a triangle
of ½ · 200 · 500 = 50,000 m², a fifth of the unit, so 20 households each by area.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from common import C1, C2, X0, Y0, make_plan, overlap_area
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gridplan.balance.edit import (
    EditSession,
    MergeGrids,
    MoveVertex,
    Reassign,
    SplitGrid,
    operation_from_json,
)
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
    move = operation_from_json(
        {"op": "move_vertex", "grid": G11, "from": [1, 2], "to": [3, 4], "crs": "EPSG:4326"}
    )
    assert move == MoveVertex(G11, (1.0, 2.0), (3.0, 4.0), "EPSG:4326")
    with pytest.raises(InputError, match="'move_vertex' is incomplete or malformed"):
        operation_from_json({"op": "move_vertex", "grid": G11, "from": [1], "to": [3, 4]})
    with pytest.raises(InputError, match="unknown edit operation 'rotate'"):
        operation_from_json({"op": "rotate"})
    with pytest.raises(InputError, match="incomplete or malformed"):
        operation_from_json({"op": "reassign", "units": ["U0001"]})


GRIDS = [G11, G12, C2 + "001", C2 + "002"]
STEP_M = st.sampled_from([-400.0, -250.0, -137.5, 0.0, 137.5, 250.0, 400.0])
EDIT = st.one_of(
    st.tuples(st.just("reassign"), st.integers(0, 15), st.sampled_from(GRIDS)),
    st.tuples(st.just("move"), st.sampled_from(GRIDS), st.integers(0, 20), STEP_M, STEP_M),
)


def _run(s: EditSession, edit: tuple) -> None:  # type: ignore[type-arg]
    if edit[0] == "reassign":
        _, unit, grid = edit
        if grid in set(s.assignment):
            s.apply(Reassign((f"U{unit + 1:04d}",), grid))
        return
    _, grid, k, dx, dy = edit
    if grid not in set(s.assignment):
        return
    xy = shapely.get_coordinates(s.grid_outline(grid))
    x, y = xy[k % len(xy)]
    refusals = ("cross itself", "does not move", "changes no unit", "cut exactly")
    try:
        s.apply(MoveVertex(grid, (x, y), (x + dx, y + dy)))
    except InputError as exc:  # a move that crosses the outline or moves nothing is refused
        reason = str(exc)
    else:
        return
    assert any(w in reason for w in refusals), reason


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(EDIT, max_size=6))
@example(edits=[("move", G11, 5, 250.0, 0.0), ("reassign", 2, G12), ("move", G12, 3, -137.5, 137.5)])
@example(edits=[("move", G11, 1, 137.5, 0.0)])  # a west-edge vertex inwards: land in no grid
def test_any_sequence_keeps_a_partition_and_conserves_households(edits: list[tuple]) -> None:  # type: ignore[type-arg]
    s = EditSession(make_plan(plan_id="P0"))
    for edit in edits:
        _run(s, edit)
    now = s.units_now()
    geoms = np.asarray(now.geometry.values, dtype=object)
    assert shapely.area(geoms).sum() == pytest.approx(4_000_000)  # area conserved
    assert overlap_area(geoms) == pytest.approx(0, abs=1e-3)  # no overlaps: still a partition
    assert shapely.union_all(geoms).area == pytest.approx(4_000_000)  # no gaps
    assert now["households"].sum() == 1600
    assert now["addresses"].sum() == 160
    assert now["unit_id"].is_unique
    cons = s.consequences()
    if cons.legal:
        assert (s.assignment != "").all()
        child = s.to_plan()
        assert child.base_grids["households"].sum() == 1600
        assert child.base_grids["grid_code"].is_unique
        assert child.atomic_units["unit_id"].is_unique
        assert set(s.plan.atomic_units["unit_id"]) <= set(child.atomic_units["unit_id"])
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
    unassigned = now.loc[now["grid_code"] == "", "households"].sum()
    assert sum(affected.values()) + untouched + unassigned == 1600  # households conserved, whatever moved


def test_a_split_skips_codes_retired_by_an_earlier_proposal() -> None:
    plan = make_plan(plan_id="P0")
    plan = plan.derive(kind="proposal", params={**plan.meta.params, "retired_grid_codes": [C1 + "004"]})
    session = EditSession(plan)
    line = shapely.LineString([(X0 + 500, Y0 - 10), (X0 + 500, Y0 + 1010)])
    cons = session.apply(SplitGrid(G11, line))
    assert C1 + "005" in {g.grid_code for g in cons.grids}


# ---- moving a vertex of a grid's outline ---------------------------------------------------------
MID_EAST = (X0 + 1000, Y0 + 500)  # middle of grid …001's east edge (community 1)


def test_a_vertex_moved_out_cuts_the_neighbours_units_and_gives_the_pieces_to_the_grid(
    session: EditSession,
) -> None:
    cons = session.apply(MoveVertex(G11, MID_EAST, (X0 + 1200, Y0 + 500)))
    state = {g.grid_code: g for g in cons.grids}
    assert (state[G11].households, state[G12].households) == (440, 360)  # 2 × a fifth of 100
    assert (state[G11].units, state[G12].units) == (6, 4)
    assert cons.legal
    assert cons.households_moved == 40
    moved = cons.moved_units.set_index("unit_id")
    assert list(moved.index) == [_unit(0, 2, 0) + "-1", _unit(0, 2, 1) + "-1"]  # new ids, never reused
    assert set(moved["from_grid"]) == {G12}
    assert set(moved["to_grid"]) == {G11}
    assert cons.addresses_moved is not None
    assert cons.addresses_moved.count == 4
    assert not cons.addresses_moved.listed  # counted from the units: no address library here
    changed = cons.changed_units
    assert changed is not None
    assert sorted(changed.area.round()) == [50_000, 50_000, 200_000, 200_000]
    child = session.to_plan("east edge of 001 out by 200 m")
    units = child.atomic_units.set_index("unit_id")
    assert units.loc[_unit(0, 2, 0) + "-1", "parent_unit_id"] == _unit(0, 2, 0)
    assert units.loc[_unit(0, 2, 0), ["households", "addresses"]].tolist() == [80, 8]
    assert units["households"].sum() == 1600
    hh = dict(zip(child.base_grids["grid_code"], child.base_grids["households"], strict=True))
    assert (hh[G11], hh[G12]) == (440, 360)
    g11 = child.base_grids.set_index("grid_code").geometry[G11]
    assert g11.area == pytest.approx(1_000_000 + 2 * 50_000)
    assert shapely.Point(X0 + 1100, Y0 + 500).within(g11)
    assert overlap_area(np.asarray(child.base_grids.geometry.values)) == pytest.approx(0, abs=1e-6)
    d = diff_plans(session.plan, child)
    assert d.summary["moves_method"] == "units"  # the pieces are followed by id, with their own figures
    assert d.summary["households_moved"] == 40
    assert list(d.moves["unit_id"]) == [_unit(0, 2, 0) + "-1", _unit(0, 2, 1) + "-1"]
    assert d.moves["share"].tolist() == pytest.approx([0.2, 0.2])


def test_the_diff_follows_pieces_with_the_figures_the_edit_gave_them() -> None:
    """A move that is not a round fraction of a unit: the diff says what the editor said (integers)."""
    s = EditSession(make_plan(plan_id="P0"))
    cons = s.apply(MoveVertex(G11, MID_EAST, (X0 + 1213.7, Y0 + 512.9)))
    d = diff_plans(s.plan, s.to_plan())
    assert d.summary["households_moved"] == cons.households_moved
    assert float(cons.households_moved).is_integer()


def test_a_vertex_moved_in_gives_the_cut_pieces_to_the_neighbour_and_undo_restores(
    session: EditSession,
) -> None:
    cons = session.apply(MoveVertex(G11, MID_EAST, (X0 + 800, Y0 + 500)))
    state = {g.grid_code: g.households for g in cons.grids}
    assert state == {G11: 360, G12: 440}
    assert cons.legal
    session.undo()
    assert session.consequences().moved_units.empty
    assert session.consequences().changed_units is None
    session.redo()
    assert len(session.units_now()) == 18


def test_to_snaps_to_an_existing_vertex_within_a_metre(session: EditSession) -> None:
    cons = session.apply(MoveVertex(G11, (MID_EAST[0] + 0.4, MID_EAST[1] - 0.3), (X0 + 1500.6, Y0 + 500.5)))
    # snapped to the corner of four units at (1500, 500): each unit east gives half of itself
    assert {g.grid_code: g.households for g in cons.grids} == {G11: 500, G12: 300}
    xy = shapely.get_coordinates(session.grid_outline(G11))
    assert ((xy == [X0 + 1500, Y0 + 500]).all(axis=1)).any()


def test_a_vertex_moved_across_the_community_line_is_a_violation(session: EditSession) -> None:
    cons = session.apply(MoveVertex(G12, (X0 + 2000, Y0 + 500), (X0 + 2300, Y0 + 500)))
    state = {g.grid_code: g for g in cons.grids}
    assert state[G12].households == 460  # 2 × 30 % of a community-2 unit
    assert state[G21].households == 340
    assert any(v.startswith(f"grid {G12}: spans 2 communities") for v in cons.violations)
    with pytest.raises(InputError, match="spans 2 communities"):
        session.to_plan()


def test_a_vertex_on_the_plan_edge_moved_in_leaves_land_in_no_grid(session: EditSession) -> None:
    cons = session.apply(MoveVertex(G11, (X0, Y0 + 500), (X0 + 200, Y0 + 500)))
    assert len(cons.unassigned_units) == 2
    assert not cons.legal
    assert any("is in no grid" in v for v in cons.violations)


def test_a_vertex_move_refuses_what_it_cannot_do(session: EditSession) -> None:
    with pytest.raises(InputError, match=r"no vertex of grid .* within 1 m"):
        session.apply(MoveVertex(G11, (X0 + 1000, Y0 + 250), (X0 + 1200, Y0 + 250)))
    with pytest.raises(InputError, match="cross itself"):
        session.apply(MoveVertex(G11, MID_EAST, (X0 - 500, Y0 + 500)))
    with pytest.raises(InputError, match="does not move"):
        session.apply(MoveVertex(G11, MID_EAST, (X0 + 1000.5, Y0 + 500)))
    with pytest.raises(InputError, match="does not exist"):
        session.apply(MoveVertex("nope", MID_EAST, (X0 + 1200, Y0 + 500)))
    assert session.consequences().moved_units.empty  # nothing was applied


def test_a_vertex_move_in_lon_lat_is_the_same_move() -> None:
    from pyproj import Transformer

    tr = Transformer.from_crs(4547, 4326, always_xy=True)
    s = EditSession(make_plan(plan_id="P0"))
    cons = s.apply(MoveVertex(G11, tr.transform(*MID_EAST), tr.transform(X0 + 1200, Y0 + 500), "EPSG:4326"))
    assert {g.grid_code: g.households for g in cons.grids} == {G11: 440, G12: 360}


def test_a_cut_unit_is_divided_by_its_buildings_and_addresses() -> None:
    """U0005 (x 1000–1500, y 0–500): building B1 (30 households) and 3 of its 10 addresses lie in
    the piece the move cuts off (the triangle west of x = 1000 + 0.4 y), B2 (70) and 7 east of it."""
    inside, outside = (X0 + 1050, Y0 + 400), (X0 + 1400, Y0 + 100)
    buildings = gpd.GeoDataFrame(
        {"building_id": ["B1", "B2"], "households": [30, 70], "residents": [80, 170]},
        geometry=[shapely.Point(inside).buffer(5), shapely.Point(outside).buffer(5)], crs=4547,
    )
    pts = [shapely.Point(inside[0] + i, inside[1]) for i in range(3)]
    pts += [shapely.Point(outside[0] + i, outside[1]) for i in range(7)]
    addresses = gpd.GeoDataFrame({"address_id": [f"A{i}" for i in range(10)]}, geometry=pts, crs=4547)
    s = EditSession(make_plan(plan_id="P0"), buildings=buildings.to_crs(4326), addresses=addresses)
    cons = s.apply(MoveVertex(G11, MID_EAST, (X0 + 1200, Y0 + 500)))
    now = s.units_now().set_index("unit_id")
    piece = now.loc[_unit(0, 2, 0) + "-1"]
    assert (piece["households"], piece["residents"], piece["addresses"]) == (30, 80, 3)
    assert now.loc[_unit(0, 2, 0), "households"] == 70
    assert now.loc[_unit(0, 2, 1) + "-1", "households"] == 20  # U0006 has no buildings: by area
    assert cons.buildings_moved is not None
    assert cons.buildings_moved.ids == ("B1",)
    assert cons.addresses_moved is not None
    assert (cons.addresses_moved.count, cons.addresses_moved.ids) == (3, ("A0", "A1", "A2"))
    assert cons.to_json()["addresses_moved"] == {"count": 3, "ids": ["A0", "A1", "A2"], "listed": True}
    # a reassign of U0007 (no buildings) changes nothing there: B1 is still the one building moved
    cons = s.apply(Reassign((_unit(0, 3, 0),), G11))
    assert cons.buildings_moved is not None
    assert cons.buildings_moved.count == 1
