"""The default hot spot command on generated cities unlike the sample (issue 14's "done when").

For three variants (coarse departmental layers, big compounds, dense rental villages) with planted
hotspots of 200-800 m, different background densities and rising / falling / steady / new /
sporadic trends, the events are geocoded with ``gridplan geocode`` and analysed with the default
``gridplan hotspots`` (``--by auto``, ``--time-step auto``) per planted category.  Asserted, as the
issue asks: every planted centre lies in a ``gi_bin`` 3 cell, ``gi_bin`` 3 covers at most 25 % of
the analysed area, and the emerging label matches the planted trend for at least 80 % of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyogrio
import pytest
import shapely
from typer.testing import CliRunner

from gridplan.cli import app
from gridplan.hotspots.aggregate import MIN_TIME_STEPS, choose_time_step

#: planted trend → emerging labels that count as finding it (as tests/test_emerging.py, plus the
#: variants' new and sporadic ones)
EXPECTED = {
    "rising": {"New Hot Spot", "Consecutive Hot Spot", "Intensifying Hot Spot"},
    "steady": {"Persistent Hot Spot"},
    "falling": {"Diminishing Hot Spot", "Historical Hot Spot"},
    "new": {"New Hot Spot"},
    "sporadic": {"Sporadic Hot Spot"},
}
VARIANTS = ("coarse", "compounds", "villages")
runner = CliRunner()


def _ok(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module", params=VARIANTS)
def found(request: pytest.FixtureRequest, variant_city: Callable[[str], Path],
          tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[dict]]:
    """Per planted hotspot of one variant: the bin and label of the default command at its centre."""
    variant = request.param
    city = variant_city(variant)
    d = tmp_path_factory.mktemp(f"hot_{variant}")
    for src in ("cases", "hazards"):
        _ok(["geocode", str(city / f"{src}.csv"), "--layers", str(city / "layers.gpkg"), "--plan",
             str(city / "plan.gpkg"), "--out", str(d / f"geo_{src}.csv")])
    manifest = json.loads((city / "manifest.json").read_text(encoding="utf-8"))
    rows = []
    for spot in manifest["hotspots"]:
        hot = d / f"hot_{spot['id']}.gpkg"
        _ok(["hotspots", str(d / f"geo_{spot['source']}.csv"), "--plan", str(city / "plan.gpkg"),
             "--out", str(hot), "--category", spot["category"], "--permutations", "0"])
        hs = pyogrio.read_dataframe(hot, layer="hotspots")
        em = pyogrio.read_dataframe(hot, layer="emerging")
        centre = shapely.Point(spot["x"], spot["y"])
        cell = hs[hs.geometry.contains(centre)]
        label = em.loc[em.geometry.contains(centre), "pattern"]
        rows.append({
            "id": spot["id"], "trend": spot["trend"], "radius_m": spot["radius_m"],
            "bins": cell["gi_bin"].tolist(), "pattern": label.iloc[0] if len(label) else None,
            "bin3_area": float(hs.area[hs["gi_bin"] == 3].sum() / hs.area.sum()),
            "n_steps": int(em["n_steps"].iloc[0]),
        })
    return variant, rows


def test_planted_sizes_and_trends_vary(found: tuple[str, list[dict]]) -> None:
    _, rows = found
    radii = [r["radius_m"] for r in rows]
    assert min(radii) >= 200.0
    assert max(radii) <= 800.0
    assert max(radii) >= 2 * min(radii)
    assert len({r["trend"] for r in rows}) >= 3


def test_every_planted_centre_is_in_gi_bin_3(found: tuple[str, list[dict]]) -> None:
    variant, rows = found
    for r in rows:
        assert r["bins"] == [3], (variant, r)


def test_gi_bin_3_covers_at_most_a_quarter_of_the_area(found: tuple[str, list[dict]]) -> None:
    variant, rows = found
    for r in rows:
        assert r["bin3_area"] <= 0.25, (variant, r)


def test_emerging_labels_follow_the_planted_trends(found: tuple[str, list[dict]]) -> None:
    variant, rows = found
    hits = [r["pattern"] in EXPECTED[r["trend"]] for r in rows]
    assert sum(hits) >= 0.8 * len(rows), (variant, rows)
    assert all(r["n_steps"] >= MIN_TIME_STEPS for r in rows)


@pytest.mark.parametrize(("start", "end", "step"), [
    ("2023-01-01", "2025-12-31", "quarter"),  # three years: 12 quarters
    ("2024-01-01", "2024-12-31", "month"),  # one year: 4 quarters, 12 months
    ("2024-01-01", "2024-04-30", "week"),  # four months: weeks
    ("2024-01-01", "2024-01-20", "week"),  # fewer than ten weeks: the finest step there is
])
def test_auto_time_step_is_the_coarsest_with_ten_steps(start: str, end: str, step: str) -> None:
    t = pd.Series(pd.to_datetime([start, end]))
    chosen, why = choose_time_step(t)
    assert chosen == step
    assert why.startswith(step)
