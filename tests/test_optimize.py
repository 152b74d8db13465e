"""The optimized default (gridplan.hotspots.optimize): cell size and neighbourhood chosen from the events."""

from __future__ import annotations

import geopandas as gpd
import h3
import numpy as np
import pytest
from shapely import box

from gridplan.hotspots import Areas, grid_hotspot_share, hotspot_analysis, optimized_areas
from gridplan.hotspots.optimize import choose_h3_res, choose_k_ring

X0, Y0 = 440_000.0, 2_540_000.0


@pytest.mark.parametrize(("spacing_m", "res"), [(1000.0, 7), (300.0, 8), (100.0, 9), (30.0, 10), (2.0, 10)])
def test_cells_follow_the_spacing_of_the_events(spacing_m: float, res: int) -> None:
    g = np.arange(40) * spacing_m
    x, y = np.meshgrid(g, g)
    assert choose_h3_res(x.ravel(), y.ravel())[0] == res


def test_the_neighbourhood_is_the_scale_of_the_clusters() -> None:
    """Blobs about 3 cells across: a wider ring than the single neighbours sees them best."""
    centre = h3.latlng_to_cell(23.0, 113.1, 9)
    cells = sorted(h3.grid_disk(centre, 12))
    rng = np.random.default_rng(1)
    seeds = rng.choice(len(cells), 6, replace=False)
    values = np.zeros(len(cells))
    for s in seeds:
        d = np.array([h3.grid_distance(cells[s], c) for c in cells], dtype=float)
        values += np.where(d <= 2, 10.0, 0.0)
    k, z = choose_k_ring(cells, values)
    assert k >= 2
    assert z[k] > z[1]
    assert choose_k_ring(cells[:5], values[:5]) == (1, {})  # too few cells: the default


def _plan_grids() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "grid_code": [f"441900119001{k:03d}" for k in range(1, 5)],
            "community_code": ["441900119001"] * 4,
            "town_code": ["441900119"] * 4,
            "households": [400] * 4,
            "residents": [1000] * 4,
        },
        geometry=[box(X0 + 1000 * i, Y0, X0 + 1000 * (i + 1), Y0 + 2000) for i in range(4)],
        crs=4547,
    )


def test_optimized_areas_find_a_planted_hotspot_and_the_grid_it_is_in() -> None:
    grids = _plan_grids()
    rng = np.random.default_rng(0)
    bg = np.column_stack([rng.uniform(X0, X0 + 4000, 800), rng.uniform(Y0, Y0 + 2000, 800)])
    spot = np.column_stack([rng.normal(X0 + 2500, 60, 300), rng.normal(Y0 + 1000, 60, 300)])
    xy = np.vstack([bg, spot])
    events = gpd.GeoDataFrame({"x": xy[:, 0], "y": xy[:, 1]}, geometry=gpd.points_from_xy(*xy.T), crs=4547)
    areas, choice = optimized_areas(events, grids)
    assert isinstance(areas, Areas)
    assert areas.by == "h3"
    assert areas.h3_res == choice.h3_res
    assert "H3 res" in choice.reason
    assert "k-ring" in choice.reason
    hs = hotspot_analysis(events, grids, areas=areas, permutations=0)
    hot = hs[hs["gi_bin"] == 3]
    assert hot.geometry.contains(gpd.points_from_xy([X0 + 2500], [Y0 + 1000])[0]).any()
    assert hot.geometry.area.sum() / hs.geometry.area.sum() < 0.25
    share = grid_hotspot_share(hs, grids).set_index("grid_code")
    assert share["hot99_share"].idxmax() == "441900119001003"  # the grid holding x = 2,500 m
    assert share.loc["441900119001001", "max_gi_bin"] < 3
