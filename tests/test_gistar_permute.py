"""Gi* conditional permutations: our vectorised counts against esda's own ``G_Local`` on the same weights."""

from __future__ import annotations

import importlib.util
import warnings

import esda
import geopandas as gpd
import h3
import numpy as np
import pytest

from gridplan.hotspots import gi_star, spatial_weights
from gridplan.hotspots import permute as pm

#: esda draws with numpy's legacy generator without numba (this venv); numba has its own stream.
NUMBA = importlib.util.find_spec("numba") is not None


def _h3_units(k_ring: int, drop: float, seed: int) -> gpd.GeoDataFrame:
    """H3 res-9 cells of a disk, some dropped: holes, edge cells and islands give many cardinalities."""
    rng = np.random.default_rng(seed)
    cells = sorted(h3.grid_disk(h3.latlng_to_cell(23.02, 113.75, 9), 9 + k_ring))
    keep = [c for c in cells if rng.random() > drop]
    keep += [h3.latlng_to_cell(23.5, 114.2, 9)]  # far away: an island for any k-ring
    return gpd.GeoDataFrame({"h3": keep, "code": keep}, geometry=[None] * len(keep))


def _esda(y: np.ndarray, graph: object, permutations: int, seed: int) -> esda.G_Local:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return esda.G_Local(y, graph, transform="B", star=True, permutations=permutations, seed=seed,
                            n_jobs=1, keep_simulations=False)


def _assert_same_p(ours: np.ndarray, theirs: np.ndarray) -> None:
    if NUMBA:  # different random stream: the same distribution, not the same draws
        assert np.corrcoef(ours, theirs)[0, 1] > 0.95
        assert np.abs(ours - theirs).mean() < 0.03
    else:
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("block", [3, 64, pm.BLOCK])
@pytest.mark.parametrize(("k_ring", "kind"), [(1, "count"), (1, "density"), (2, "count")])
def test_p_sim_is_esdas_draw_for_draw(monkeypatch: pytest.MonkeyPatch, block: int, k_ring: int,
                                      kind: str) -> None:
    monkeypatch.setattr(pm, "BLOCK", block)  # small blocks exercise the sorted/bisection path
    units = _h3_units(k_ring, drop=0.25, seed=k_ring)
    graph, n_nb = spatial_weights(units, by="h3", k_ring=k_ring)
    assert n_nb.min() == 0  # islands
    assert len(np.unique(n_nb)) >= 4  # and several cardinalities
    rng = np.random.default_rng(7)
    counts = rng.poisson(2.0, len(units)).astype(float)  # integer sums: many exact ties
    y = counts if kind == "count" else counts / rng.uniform(0.09, 0.11, len(units))
    lg = _esda(y, graph, 199, seed=11)
    out = gi_star(y, graph, permutations=199, seed=11)
    np.testing.assert_array_equal(out["gi_z"].to_numpy(), np.where(np.isfinite(lg.Zs), lg.Zs, 0.0))
    _assert_same_p(out["gi_p_sim"].to_numpy(), np.minimum(1.0, 2.0 * lg.p_sim))
    assert out["gi_p_sim"].min() < 0.05  # the test is not vacuous: some areas are significant


def test_draws_and_counts_match_a_site_by_site_loop() -> None:
    """The counting against the plain per-site definition (esda's crand loop written out)."""
    rng = np.random.default_rng(3)
    n, k = 40, 99
    y = rng.poisson(3.0, n).astype(float)
    card = rng.integers(0, 5, n)
    self_w = np.ones(n)
    draws = pm.esda_draws(n, int(card.max()), k, seed=4)
    assert ((draws >= 0) & (draws < n - 1)).all()
    assert all(len(set(row)) == draws.shape[1] for row in draws.tolist())  # without replacement
    observed = rng.uniform(0.0, 0.2, n)
    want = np.zeros(n, dtype=np.int64)
    for i in range(n):
        others = np.delete(y, i)
        rstat = np.zeros(k)  # an island: esda's statistic is 0
        if card[i]:
            rstat = (others[draws[:, : card[i]]].sum(axis=1) + y[i]) / y.sum()
        want[i] = int((rstat >= observed[i]).sum())
    np.testing.assert_array_equal(pm.larger_counts(y, observed, card, self_w, draws, float(y.sum())), want)


def test_seeded_and_unseeded() -> None:
    units = _h3_units(1, drop=0.1, seed=5)
    graph, _ = spatial_weights(units, by="h3")
    y = np.random.default_rng(1).poisson(2.0, len(units)).astype(float)
    a = gi_star(y, graph, permutations=99, seed=3)["gi_p_sim"]
    b = gi_star(y, graph, permutations=99, seed=3)["gi_p_sim"]
    c = gi_star(y, graph, permutations=99, seed=None)["gi_p_sim"]
    assert a.equals(b)
    assert c.between(0.0199, 1.0).all()
    assert np.corrcoef(a, c)[0, 1] > 0.8


@pytest.mark.parametrize("k_ring", [1, 2, 3])
def test_h3_neighbours_are_the_k_ring(k_ring: int) -> None:
    """The integer-H3 neighbour search gives exactly the cells within k steps that are present."""
    units = _h3_units(k_ring, drop=0.3, seed=9)
    cells = units["h3"].tolist()
    pos = {c: i for i, c in enumerate(cells)}
    want = {(a, pos[nb]) for a, c in enumerate(cells) for nb in h3.grid_disk(c, k_ring)
            if nb != c and nb in pos}
    graph, n_nb = spatial_weights(units, by="h3", k_ring=k_ring)
    adj = graph.sparse.tocsr()
    adj.setdiag(0)
    adj.eliminate_zeros()
    got = set(zip(*(v.tolist() for v in adj.nonzero()), strict=True))
    assert got == want
    np.testing.assert_array_equal(n_nb, np.bincount([a for a, _ in want], minlength=len(cells)))
