"""Split and merge as moves of a rebalancing proposal, and the trade-off between proposals."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from test_balance import COMM_A, COMM_B, _plan, _wl

from gridplan.balance import RebalanceOptions, rebalance
from gridplan.balance.frontier import Candidate, binding_note, choose, pareto_front, proposals_table
from gridplan.balance.restructure import CodeBook
from gridplan.plans import write_plan


def _opts(**kw) -> RebalanceOptions:
    base = {"target_cv": 0.0, "rebuild_h3": False, "min_compactness": 0.0, "max_moved_share": 0.5}
    return RebalanceOptions(**{**base, **kw})


def _row_and_island() -> tuple:
    """Community A: one grid, a row of six units (10 h each); community B: one unit (20 h)."""
    cells = [(c, 0, COMM_A, "001", 10) for c in range(6)] + [(0, 3, COMM_B, "001", 10)]
    plan = _plan(cells)
    return plan, _wl(plan, [10.0] * 6 + [20.0])


def test_split_of_an_overloaded_grid_is_the_known_optimum():
    # 80 h over 4 workers = 20 h each; grid A needs 3 workers but may have 2: only a split balances
    plan, wl = _row_and_island()
    p = rebalance(plan, wl, total_staff=4, options=_opts(max_staff=2))
    assert p.summary["cv_before"] == pytest.approx(0.5)  # A: 60/2, B: 20/2 (B takes the spare)
    assert p.summary["cv_moves"] == pytest.approx(0.5)  # nothing to move across communities
    assert p.summary["cv_after"] == pytest.approx(0.0)
    assert p.summary["grids_split"] == 1
    bg = p.plan.base_grids.set_index("grid_code")
    # the side with fewer households (two end units, 20 h) gets the next free code; the rest keeps 001
    new = COMM_A + "002"
    assert sorted(bg.index) == sorted([COMM_A + "001", new, COMM_B + "001"])
    assert bg.loc[new, "households"] == 20
    assert bg.loc[new, "staff"] == 1
    assert bg.loc[COMM_A + "001", "staff"] == 2
    assert bg.loc[new].geometry.geom_type == "Polygon"
    assert bg.loc[new, "community_code"] == COMM_A
    moved = p.moves.set_index("unit_id")
    assert set(moved["to_grid"]) == {new}
    assert moved["reason"].str.contains("split of grid").all()
    # the split side is an end of the row (contiguous), not two separate units
    assert sorted(moved.index) in (["U000", "U001"], ["U004", "U005"])


def test_split_never_reuses_a_retired_code():
    plan, wl = _row_and_island()
    plan = plan.derive(kind="edit", params={**plan.meta.params, "retired_grid_codes": [COMM_A + "007"]})
    p = rebalance(plan, wl, total_staff=4, options=_opts(max_staff=2))
    assert COMM_A + "008" in set(p.plan.base_grids["grid_code"])
    assert p.plan.meta.params["retired_grid_codes"] == [COMM_A + "007"]


def test_merge_of_an_idle_grid_into_its_neighbour():
    # grid 002 has next to no workload yet takes a worker; merging it into 001 balances exactly
    cells = [(0, 0, COMM_A, "001", 10), (1, 0, COMM_A, "001", 10), (2, 0, COMM_A, "002", 1)]
    cells += [(0, 3, COMM_B, "001", 10), (1, 3, COMM_B, "001", 10)]
    plan = _plan(cells)
    wl = _wl(plan, [10.0, 10.0, 0.0, 10.0, 10.0])
    p = rebalance(plan, wl, total_staff=4, options=_opts(max_staff=3))
    assert p.summary["cv_after"] == pytest.approx(0.0)
    assert p.summary["grids_merged"] == 1
    bg = p.plan.base_grids.set_index("grid_code")
    assert COMM_A + "002" not in bg.index
    assert p.plan.meta.params["retired_grid_codes"] == [COMM_A + "002"]
    assert bg.loc[COMM_A + "001", "households"] == 21
    assert bg.loc[COMM_A + "001"].geometry.geom_type == "Polygon"
    assert p.moves[["unit_id", "from_grid", "to_grid"]].to_dict("records") == [
        {"unit_id": "U002", "from_grid": COMM_A + "002", "to_grid": COMM_A + "001"}
    ]
    assert "merged into adjacent grid" in p.moves["reason"].iloc[0]


def test_no_merge_across_communities():
    cells = [(0, 0, COMM_A, "001", 10), (1, 0, COMM_B, "001", 1)]
    plan = _plan(cells)
    p = rebalance(plan, _wl(plan, [10.0, 0.0]), total_staff=2, options=_opts())
    assert p.summary["grids_merged"] == 0
    assert len(p.plan.base_grids) == 2


def test_split_merge_off_keeps_codes():
    plan, wl = _row_and_island()
    p = rebalance(plan, wl, total_staff=4, options=_opts(max_staff=2, split_merge=False))
    assert set(p.plan.base_grids["grid_code"]) == set(plan.base_grids["grid_code"])
    assert set(p.proposals["kind"]) == {"staffing", "moves"}


def test_proposals_table_and_round_trip(tmp_path):
    from gridplan.plans import read_plan

    plan, wl = _row_and_island()
    p = rebalance(plan, wl, total_staff=4, options=_opts(max_staff=2))
    t = p.proposals
    assert t["chosen"].sum() == 1
    assert t.loc[t["chosen"], "kind"].item() == "moves+split/merge"
    assert t.loc[t["kind"] == "staffing", "households_moved"].item() == 0
    back = read_plan(write_plan(p.plan, tmp_path / "p.gpkg"))
    assert len(back.extra_tables["proposals"]) == len(t)
    m = back.extra_tables["metrics"].set_index(["metric", "scope"])
    assert m.loc[("cv_workload_per_staff", "city"), "before"] == pytest.approx(0.5)
    assert m.loc[("cv_workload_per_staff_moves_split_merge", "city"), "after"] == pytest.approx(0.0)
    assert m.loc[("grids", "city"), "after"] == 3


def test_max_moved_share_picks_a_cheaper_proposal():
    plan, wl = _row_and_island()
    # 20 of 70 households would change code: a 10 % cap leaves staffing alone
    p = rebalance(plan, wl, total_staff=4, options=_opts(max_staff=2, max_moved_share=0.10))
    assert p.summary["households_moved"] == 0
    assert p.summary["grids_split"] == 0
    assert "target CV 0 not reached" in p.plan.meta.params["balance"]["note"]


def _cand(name, moved, cv, changed, slack=0.0, off_band=0) -> Candidate:
    return Candidate(name, "moves", 0.15, moved, moved / 100, cv, 1.0, changed, 10, 0, 0, 0, slack, off_band)


def test_pareto_front_and_choice():
    cands = [
        _cand("a", 0, 0.30, 0),
        _cand("b", 5, 0.20, 4),
        _cand("c", 6, 0.25, 5),  # dominated by b
        _cand("d", 12, 0.09, 9),
        _cand("e", 9, 0.08, 9, slack=0.5, off_band=3),
    ]
    assert pareto_front(cands) == [True, True, False, True, True]
    assert choose(cands, target_cv=0.10, max_moved_share=0.15) == 3  # strict band preferred
    assert choose(cands, target_cv=0.10, max_moved_share=0.10) == 4  # only the stretched band fits
    assert choose(cands, target_cv=0.05, max_moved_share=0.10) == 4  # none reaches: lowest CV
    assert choose(cands, target_cv=0.21, max_moved_share=0.15) == 1  # fewest households that reach
    t = proposals_table(cands, 3)
    assert t["chosen"].tolist() == [False, False, False, True, False]
    note = binding_note(cands, 0, target_cv=0.05, max_moved_share=0.15, capped=(2, 1.5))
    assert "max staff per grid: 2 grids" in note
    assert "household band" in note


def test_code_book():
    book = CodeBook([COMM_A + "001", COMM_A + "009", COMM_B + "003"])
    assert book.new(COMM_A + "001") == COMM_A + "010"
    assert book.new(COMM_A + "001") == COMM_A + "011"
    assert book.new(COMM_B + "001") == COMM_B + "004"
    assert CodeBook([COMM_A + "999"]).new(COMM_A + "999") is None


# ------------------------------------------------------------------------------ invariants


def _random_plan(rng: np.random.Generator, ncols: int, nrows: int):
    """ncols × nrows squares, two communities (left/right), grids = column bands of random widths."""
    half = max(ncols // 2, 1)
    cells = []
    starts = {0, half} | {int(c) for c in np.flatnonzero(rng.random(ncols) < 0.4)}
    band_of = np.cumsum([c in starts for c in range(ncols)])
    for c in range(ncols):
        comm = COMM_A if c < half else COMM_B
        grid = f"{band_of[c]:03d}"
        for r in range(nrows):
            cells.append((c, r, comm, grid, int(rng.integers(0, 60))))
    return _plan(cells, band=(40, 120))


def test_a_plan_without_workload_is_left_as_it_is():
    # m = 0: no staffing error to lower, nothing to split or merge (once a 0/0 in the error)
    plan = _random_plan(np.random.default_rng(0), 4, 3)
    n_grids = len(plan.base_grids)
    p = rebalance(plan, _wl(plan, [0.0] * len(plan.atomic_units)), total_staff=n_grids + 2,
                  options=_opts(budget_ladder=(1.0,)))
    assert p.moves.empty
    assert sorted(p.plan.base_grids["grid_code"]) == sorted(plan.base_grids["grid_code"])
    assert p.plan.base_grids["staff"].sum() == n_grids + 2


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    ncols=st.integers(2, 8),
    nrows=st.integers(1, 5),
    extra=st.integers(0, 4),
    max_staff=st.integers(1, 3),
)
def test_split_merge_invariants(seed: int, ncols: int, nrows: int, extra: int, max_staff: int):
    rng = np.random.default_rng(seed)
    plan = _random_plan(rng, ncols, nrows)
    n_grids = len(plan.base_grids)
    wl = _wl(plan, rng.exponential(20, len(plan.atomic_units)) * (rng.random(len(plan.atomic_units)) > 0.2))
    total = max(n_grids + extra, 1)
    total = min(total, n_grids * max_staff)
    p = rebalance(
        plan, wl, total_staff=total, options=_opts(max_staff=max_staff, seed=seed, budget_ladder=(1.0,))
    )
    au, bg = p.plan.atomic_units, p.plan.base_grids
    # households conserved, every unit in exactly one existing grid, none lost
    assert bg["households"].sum() == plan.atomic_units["households"].sum()
    assert sorted(au["unit_id"]) == sorted(plan.atomic_units["unit_id"])
    assert set(au["base_grid_code"]) == set(bg["grid_code"])
    assert bg["grid_code"].is_unique
    assert bg["staff"].sum() == total
    assert bg["staff"].between(1, max_staff).all()
    for code, part in au.groupby("base_grid_code"):
        assert (part["community_code"] == code[:12]).all()  # nesting
        assert shapely.union_all(part.geometry.to_numpy()).geom_type == "Polygon", code  # contiguity
    geom = bg.set_index("grid_code").geometry
    for code, part in au.groupby("base_grid_code"):
        assert shapely.equals(shapely.union_all(part.geometry.to_numpy()), geom[code])
    # never a worse balance than best staffing of the unchanged plan; new codes never the plan's
    assert p.summary["cv_after"] <= p.summary["cv_before"] + 1e-9
    assert not (set(bg["grid_code"]) - set(plan.base_grids["grid_code"])) & set(plan.base_grids["grid_code"])
    moved = p.moves["unit_id"].tolist()
    before = plan.atomic_units.set_index("unit_id")["base_grid_code"]
    after = au.set_index("unit_id")["base_grid_code"]
    assert sorted(moved) == sorted(before.index[before != after.reindex(before.index)])


def test_redraw_of_a_boundary_is_the_known_optimum():
    from gridplan.balance.graph import unit_adjacency
    from gridplan.balance.restructure import StructParams, restructure
    from gridplan.balance.units import Units

    # a row of eight units, grid 001 = the western six, 002 = the eastern two; 2 workers: 4 + 4 is best
    plan = _plan([(c, 0, COMM_A, "001" if c < 6 else "002", 10) for c in range(8)])
    u = Units.of(plan, _wl(plan, [10.0] * 8))
    prm = StructParams(40.0, 1, 1, 0, 10**6, 10**6, 2, min_grids=2)
    out = restructure(u, unit_adjacency(u.geoms, u.comm_u), prm, CodeBook(u.codes))
    assert [op.kind for op in out.ops] == ["redraw"]
    assert out.redraws == 1
    assert list(out.units.codes) == [COMM_A + "001", COMM_A + "002"]
    assert out.units.grid_of.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]  # contiguous halves, codes kept
    assert out.households_moved == 20
    assert "redrawn" in out.reason_of[4]
