"""Exact point → grid refinement in tile order gives the same ranks as in arrival order."""

from __future__ import annotations

import numpy as np
import shapely

from gridplan.hexindex import cells


def test_tile_order_is_a_permutation_and_ranks_are_unchanged() -> None:
    rng = np.random.default_rng(4)
    env = shapely.box(0, 0, 3000, 2000)
    seeds = shapely.multipoints(rng.uniform([0, 0], [3000, 2000], (60, 2)))
    grids = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=env)), env)
    tree = shapely.STRtree(grids)
    n = 3 * cells._ORDER_MIN
    x = rng.uniform(-200, 3200, n)
    y = rng.uniform(-200, 2200, n)
    # points exactly on edges and vertices (edge rule: smallest rank), and non-finite coordinates
    edge = shapely.get_coordinates(shapely.boundary(grids))
    x[: len(edge)], y[: len(edge)] = edge[:, 0], edge[:, 1]
    x[-3:] = [np.nan, np.inf, 5.0]
    y[-3:] = [1.0, 2.0, np.nan]
    order = cells._tile_order(x, y)
    np.testing.assert_array_equal(np.sort(order), np.arange(n))
    got = cells._exact_rank(tree, x, y)
    np.testing.assert_array_equal(got, cells._exact_rank_in_order(tree, x, y))
    # the plain definition: the smallest index of a grid that covers the point
    pick = np.r_[0:300, n - 300 : n]  # edge points, random points, the non-finite ones
    pts = shapely.points(x[pick], y[pick])
    want = [next((g for g in range(len(grids)) if shapely.covers(grids[g], p)), -1) for p in pts]
    np.testing.assert_array_equal(got[pick], want)
    assert (got[-3:] == -1).all()
    assert 0.7 < (got >= 0).mean() < 0.8  # the grids cover 3000 × 2000 of 3400 × 2400
