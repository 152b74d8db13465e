"""`gridplan balance` on generated cities unlike the sample (issue 15's "done when").

Scored the way ``../shared/cities/checks/score_balance.py`` scores a proposal, independently of the
proposal's own metrics: "before" is the unchanged plan with the budget apportioned by largest
remainder (at least one worker per grid with work), "after" the proposal's own staff and workload
per grid; the proposal must reach a CV of workload per worker ≤ 0.10 or ≤ 0.4 × before, moving
≤ 15 % of households.  Budget: households / 275 (the checker's default).  The coarse variant is
left out: its atomic units are lumpy (6–8 per grid, most households in units above 100) and it
needs ~27 % of households moved to reach 0.10 (see the issue 15 note).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
from typer.testing import CliRunner


def _cv(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float("inf") if np.isinf(x).any() else float(x.std() / x.mean())


def _largest_remainder(w: np.ndarray, budget: int) -> np.ndarray:
    base = (w > 0).astype(int) if (w > 0).sum() <= budget else np.zeros(len(w), int)
    quota = w / w.sum() * (budget - base.sum())
    alloc = base + np.floor(quota).astype(int)
    alloc[np.argsort(-(quota - np.floor(quota)))[: budget - int(alloc.sum())]] += 1
    return alloc


#: (variant, seed): seed 0 of three kinds, and the seeds where the balance fell short before the
#: community staff targets (base 3: 0.137, compounds 7: 0.149, industrial 7: 0.185; the last two
#: also had a speck grid of a few cm² from the merge)
CITIES = [("compounds", 0), ("villages", 0), ("industrial", 0), ("base", 3), ("compounds", 7),
          ("industrial", 7)]


@pytest.mark.parametrize(("name", "seed"), CITIES)
def test_proposal_balances_workload_per_worker(name: str, seed: int, variant_city: Callable[..., Path],
                                               tmp_path: Path) -> None:
    from gridplan.cli import app

    folder = variant_city(name, seed)
    plan = folder / "plan.gpkg"
    au0 = pyogrio.read_dataframe(plan, layer="atomic_units", read_geometry=False)
    budget = max(1, round(int(au0["households"].sum()) / 275))
    out = tmp_path / "proposal.gpkg"
    res = CliRunner().invoke(app, ["balance", str(plan), "--layers", str(folder / "layers.gpkg"),
                                   "--staff", str(budget), "--out", str(out)])
    assert res.exit_code == 0, res.output
    bg = pyogrio.read_dataframe(out, layer="base_grids", read_geometry=False)
    au = pyogrio.read_dataframe(out, layer="atomic_units", read_geometry=False)
    st, wl = bg["staff"].to_numpy(float), bg["workload"].to_numpy(float)
    assert st.sum() == budget
    after = _cv(np.where(st > 0, wl / np.maximum(st, 1), np.where(wl > 0, np.inf, np.nan)))
    uwl = pd.Series(au["workload"].to_numpy(float), index=au["unit_id"].astype(str))
    w0 = uwl.reindex(au0["unit_id"].astype(str)).fillna(0).groupby(au0["base_grid_code"].to_numpy()).sum()
    alloc = _largest_remainder(w0.to_numpy(), budget)
    before = _cv(np.where(alloc > 0, w0.to_numpy() / np.maximum(alloc, 1), np.nan))
    grid0 = au0.set_index(au0["unit_id"].astype(str))["base_grid_code"]
    grid1 = au.set_index(au["unit_id"].astype(str))["base_grid_code"].reindex(grid0.index)
    moved = float(au0["households"].to_numpy()[(grid0 != grid1).to_numpy()].sum() / au0["households"].sum())
    assert after <= 0.10 + 1e-9 or after <= 0.4 * before, (name, before, after)
    assert moved <= 0.15, (name, moved)
    # every grid one community (its units share the plan's community)
    comm0 = au0.set_index(au0["unit_id"].astype(str))["community_code"]
    per_grid = comm0.reindex(au["unit_id"].astype(str)).groupby(au["base_grid_code"].to_numpy()).nunique()
    assert (per_grid == 1).all()
