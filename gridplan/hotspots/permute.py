"""Conditional permutations for Gi*, vectorised: esda's ``crand`` draws and counts without a site loop.

The permutations are drawn and counted in batches of :data:`PERMUTATION_BATCH`
(:func:`permutation_batches`): batch 0 draws from the seed itself, batch ``b`` from a seed derived
from ``(seed, b)``, and the counts of the batches add up.  The answer therefore depends on the
seed and the number of permutations only, not on where the batches run (in this process or on a
Dask cluster, :mod:`gridplan._dask`) nor in which order they finish; with at most
:data:`PERMUTATION_BATCH` permutations it is esda's own draw for draw.

``esda.G_Local`` computes its pseudo p-value by conditional randomisation (``esda.crand``): one table
of ``permutations × max_cardinality`` indices into the *other* ``n − 1`` sites is drawn once, and
site ``i`` with ``c_i`` neighbours takes the first ``c_i`` columns of every row as its random
neighbours (index ``j`` means site ``j`` below ``i`` and site ``j + 1`` from ``i`` on).  esda then
loops over the sites in Python (or numba): 169 k sites × 999 draws is ~25 s CPU without numba.

Here the same draws give the same counts without touching every (site, draw) pair: for one draw
``k`` the random sum of a site only changes where ``i`` passes one of the row's ``c`` drawn indices,
so over a block of consecutive sites almost every draw is constant.  For each block the constant
draws are sorted once and counted per site by bisection (exact, with esda's own arithmetic
``(Σ z + w_ii z_i) / Σ y ≥ G_i``); the few draws that change inside the block are evaluated
directly.  Cost ≈ (n / block) · K log K + K · c² · block instead of n · K · c.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

#: Consecutive sites of one cardinality counted together (see the module docstring for the cost).
BLOCK = 512
#: Permutations per batch (:func:`permutation_batches`): the unit of work, here or on a Dask worker.
PERMUTATION_BATCH = 250


def esda_draws(n: int, max_card: int, permutations: int, seed: int) -> NDArray[np.int64]:
    """Draw the ``(permutations, max_card)`` table of esda's ``vec_permutations`` (without numba).

    esda seeds numpy's global legacy generator and takes ``np.random.choice(n - 1, max_card,
    replace=False)`` per row, which is ``RandomState.permutation(n - 1)[:max_card]``; a private
    ``RandomState`` gives the same stream without touching the global one.

    Examples
    --------
    >>> esda_draws(10, 3, 2, seed=0).shape
    (2, 3)

    """
    rs = np.random.RandomState(seed)
    out = np.empty((permutations, max_card), dtype=np.int64)
    for k in range(permutations):
        out[k] = rs.permutation(n - 1)[:max_card]
    return out


def _sums(below: NDArray[np.bool_], a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Σ over the neighbour axis (1) of ``a`` where the drawn index lies below the site, else ``b``.

    Summed left to right, in esda's order of the neighbour columns.
    """
    acc = np.where(below[:, 0], a[:, 0], b[:, 0])
    for c in range(1, below.shape[1]):
        acc = acc + np.where(below[:, c], a[:, c], b[:, c])
    return acc


def _count_at_least(
    ts: NDArray[np.float64], own: NDArray[np.float64], obs: NDArray[np.float64], scaling: float
) -> NDArray[np.int64]:
    """Per site, how many of the sorted sums *ts* give ``(t + own) / scaling ≥ obs`` (bisection)."""
    m = len(ts)
    lo = np.zeros(len(obs), dtype=np.int64)
    if m == 0:
        return lo
    hi = np.full(len(obs), m, dtype=np.int64)
    while True:
        active = lo < hi
        if not active.any():
            break
        mid = (lo + hi) // 2
        ok = (ts[np.minimum(mid, m - 1)] + own) / scaling >= obs
        hi = np.where(active & ok, mid, hi)
        lo = np.where(active & ~ok, mid + 1, lo)
    return m - lo


def _block_counts(
    idx: NDArray[np.int64],
    draws: NDArray[np.int64],
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    own: NDArray[np.float64],
    obs: NDArray[np.float64],
    scaling: float,
) -> NDArray[np.int64]:
    lo, hi = int(idx[0]), int(idx[-1])
    moving = ((draws >= lo) & (draws < hi)).any(axis=1)  # the draw's sum changes inside the block
    t_lo = _sums(draws < lo, a, b)
    cnt = _count_at_least(np.sort(t_lo[~moving]), own, obs, scaling)
    mv = np.flatnonzero(moving)
    if len(mv):
        below = draws[mv][:, :, None] < idx[None, None, :]  # (draws, neighbours, sites)
        t = _sums(below, a[mv][:, :, None], b[mv][:, :, None])
        cnt += ((t + own[None, :]) / scaling >= obs[None, :]).sum(axis=0)
    return cnt


def larger_counts(
    y: NDArray[np.float64],
    observed: NDArray[np.float64],
    cardinalities: NDArray[np.int64],
    self_weights: NDArray[np.float64],
    draws: NDArray[np.int64],
    scaling: float,
) -> NDArray[np.int64]:
    """For every site, how many of the conditional draws reach its observed binary-weight Gi*.

    Parameters
    ----------
    y
        The analysis values (esda's ``z`` for ``G_Local``: the raw values).
    observed
        esda's ``G_Local.Gs``.
    cardinalities, self_weights
        Neighbours of each site (self excluded) and its own weight, as esda's ``crand`` reads them
        from the weights (binary neighbour weights).
    draws
        :func:`esda_draws`.
    scaling
        ``y.sum()``, esda's scaling for ``G_Local``.

    Examples
    --------
    One random neighbour each (the last site an island): ``(y_i + drawn) / 16 ≥ 0.5`` needs the 8,
    drawn 4 times in 9 (index 2 of the other three sites).

    >>> y = np.array([1.0, 5.0, 2.0, 8.0])
    >>> esda_draws(4, 1, 9, seed=0).ravel().tolist()
    [2, 2, 0, 2, 2, 1, 1, 0, 0]
    >>> larger_counts(y, np.full(4, 0.5), np.array([1, 1, 1, 0]), np.ones(4), esda_draws(4, 1, 9, 0), 16.0)
    array([4, 4, 4, 0])

    """
    k = draws.shape[0]
    larger = np.zeros(len(y), dtype=np.int64)
    isl = np.flatnonzero(cardinalities == 0)
    # esda gives an island one fake neighbour of weight 0 and no self weight: its statistic is 0
    larger[isl] = np.where(observed[isl] <= 0.0, k, 0)
    for m in np.unique(cardinalities[cardinalities > 0]):
        sites = np.flatnonzero(cardinalities == m)
        dm = np.ascontiguousarray(draws[:, :m])
        a, b = y[dm], y[dm + 1]  # the drawn value for sites above / at or below the index
        own = self_weights[sites] * y[sites]
        for s in range(0, len(sites), BLOCK):
            idx = sites[s : s + BLOCK]
            larger[idx] = _block_counts(idx, dm, a, b, own[s : s + BLOCK], observed[idx], scaling)
    return larger


def permutation_batches(
    permutations: int, seed: int, *, batch: int | None = PERMUTATION_BATCH
) -> list[tuple[int, int]]:
    """Split *permutations* into ``(size, seed)`` batches of at most *batch* draws.

    Batch 0 uses *seed*; batch ``b ≥ 1`` uses the first word of ``SeedSequence([seed, b])``.
    ``batch=None`` makes one batch: esda's single stream of *permutations* draws.

    Examples
    --------
    >>> [size for size, _ in permutation_batches(999, 0)], permutation_batches(999, 7)[0]
    ([250, 250, 250, 249], (250, 7))
    >>> permutation_batches(999, 7, batch=None)
    [(999, 7)]

    """
    step = permutations if batch is None else max(1, int(batch))
    out: list[tuple[int, int]] = []
    for b, start in enumerate(range(0, permutations, max(step, 1))):
        size = min(step, permutations - start)
        sub = seed if b == 0 else int(np.random.SeedSequence([seed, b]).generate_state(1)[0])
        out.append((size, sub))
    return out


@dataclass(frozen=True)
class PermutationInputs:
    """What every batch of :func:`batch_counts` reads (sent to each Dask worker once).

    Attributes as :func:`larger_counts` names them; ``max_card`` is the draw table's width.
    """

    y: NDArray[np.float64]
    observed: NDArray[np.float64]
    cardinalities: NDArray[np.int64]
    self_weights: NDArray[np.float64]
    scaling: float

    @property
    def max_card(self) -> int:
        """Widest neighbourhood: the columns of the draw table."""
        return int(self.cardinalities.max()) if len(self.cardinalities) else 0


def batch_counts(inputs: PermutationInputs, batch: tuple[int, int]) -> NDArray[np.int64]:
    """Draw one ``(size, seed)`` batch (:func:`esda_draws`) and count it (:func:`larger_counts`).

    Examples
    --------
    The counts of the batches add up to the counts of their draws taken together:

    >>> y = np.array([1.0, 5.0, 2.0, 8.0, 3.0])
    >>> inp = PermutationInputs(y, np.full(5, 0.45), np.array([1, 2, 1, 2, 0]), np.ones(5), 19.0)
    >>> parts = [batch_counts(inp, b) for b in permutation_batches(30, 3, batch=10)]
    >>> table = np.vstack([esda_draws(5, 2, size, s) for size, s in permutation_batches(30, 3, batch=10)])
    >>> whole = larger_counts(y, inp.observed, inp.cardinalities, inp.self_weights, table, 19.0)
    >>> bool((sum(parts) == whole).all())
    True

    """
    size, seed = batch
    draws = esda_draws(len(inputs.y), inputs.max_card, size, seed)
    return larger_counts(
        inputs.y, inputs.observed, inputs.cardinalities, inputs.self_weights, draws, inputs.scaling
    )


def p_sim_directed(larger: NDArray[np.int64], permutations: int) -> NDArray[np.float64]:
    """Return esda's default (``alternative="directed"``) pseudo p-value, in its float32 precision.

    Examples
    --------
    >>> p_sim_directed(np.array([999, 0, 500]), 999).round(4).tolist()
    [0.001, 0.001, 0.5]

    """
    low = (permutations - larger) < larger
    folded = np.where(low, permutations - larger, larger)
    return ((folded + 1.0) / (permutations + 1.0)).astype(np.float32).astype(np.float64)
