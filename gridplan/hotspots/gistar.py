"""Neighbourhoods and Getis-Ord Gi* with FDR-corrected bins: the ``hotspots`` layer."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike, NDArray

from gridplan._dask import BatchRunner, run_local
from gridplan.errors import InputError
from gridplan.hotspots.aggregate import Areas, Level, aggregate_events
from gridplan.hotspots.permute import (
    PERMUTATION_BATCH,
    PermutationInputs,
    batch_counts,
    p_sim_directed,
    permutation_batches,
)

logger = logging.getLogger(__name__)


Value = Literal["auto", "count", "density", "rate"]

VALUES: tuple[str, ...] = ("auto", "count", "density", "rate")

#: Confidence levels of ``gi_bin``: (alpha, bin).
BIN_LEVELS: tuple[tuple[float, int], ...] = ((0.10, 1), (0.05, 2), (0.01, 3))

#: Tolerance (m) for two polygons to count as neighbours (hand-drawn edges rarely match exactly).
CONTIGUITY_TOLERANCE_M = 0.5


def _h3_pairs(cells: list[str], k_ring: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(i, j) for cells *j* within *k_ring* steps of cell *i* among *cells* (integer H3, one search)."""
    import itertools

    import h3
    import h3.api.basic_int as h3i

    n = len(cells)
    codes = np.fromiter(map(h3.str_to_int, cells), dtype=np.uint64, count=n)
    near = h3i.grid_ring if k_ring <= 1 else h3i.grid_disk
    rings = [near(c, max(k_ring, 1)) for c in codes.tolist()]
    lens = np.fromiter(map(len, rings), dtype=np.int64, count=n)
    flat = np.fromiter(itertools.chain.from_iterable(rings), dtype=np.uint64, count=int(lens.sum()))
    i = np.repeat(np.arange(n, dtype=np.int64), lens)
    order = np.argsort(codes, kind="stable")
    pos = np.minimum(np.searchsorted(codes[order], flat), max(n - 1, 0))
    hit = (codes[order][pos] == flat) & (flat != codes[i])
    return i[hit], order[pos[hit]].astype(np.int64)


def _pairs(
    units: gpd.GeoDataFrame, by: str, distance_band_m: float | None, k_ring: int = 1
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    if distance_band_m is not None:
        if not distance_band_m > 0:
            raise InputError(
                f"distance band must be positive, got {distance_band_m}", field="distance_band_m"
            )
        from scipy.spatial import cKDTree

        c = shapely.centroid(units.geometry.to_numpy())
        xy = np.column_stack([shapely.get_x(c), shapely.get_y(c)])
        pr = cKDTree(xy).query_pairs(float(distance_band_m), output_type="ndarray")
        i = np.concatenate([pr[:, 0], pr[:, 1]]) if len(pr) else np.zeros(0, np.int64)
        j = np.concatenate([pr[:, 1], pr[:, 0]]) if len(pr) else np.zeros(0, np.int64)
        return i.astype(np.int64), j.astype(np.int64)
    if by == "h3" and "h3" in units.columns:
        return _h3_pairs(units["h3"].astype(str).tolist(), k_ring)
    geoms = units.geometry.to_numpy()
    tree = shapely.STRtree(geoms)
    i, j = tree.query(geoms, predicate="dwithin", distance=CONTIGUITY_TOLERANCE_M)
    keep = i != j
    return i[keep].astype(np.int64), j[keep].astype(np.int64)


def spatial_weights(
    units: gpd.GeoDataFrame, *, by: Level = "grid", distance_band_m: float | None = None, k_ring: int = 1
) -> tuple[Any, NDArray[np.int64]]:
    """Binary neighbourhood graph of the areas (the area itself not included).

    Parameters
    ----------
    units
        Areas from :func:`analysis_units` (an ``h3`` column selects the k-ring for ``by="h3"``).
    by
        Level of the areas: polygons use queen contiguity (shared edge or corner within 0.5 m),
        ``"h3"`` the cells within *k_ring* steps (6 neighbours for 1).
    k_ring
        H3 neighbourhood size (``by="h3"`` only).
    distance_band_m
        If set, neighbours are areas whose centroids lie within this distance (metres) instead.

    Returns
    -------
    (libpysal.graph.Graph, numpy.ndarray)
        The graph (islands carry a zero self-weight, libpysal's convention) and the neighbour count
        of each area.

    """
    from libpysal.graph import Graph

    n = len(units)
    i, j = _pairs(units, by, distance_band_m, k_ring)
    n_nb = np.bincount(i, minlength=n).astype(np.int64)
    isl = np.flatnonzero(n_nb == 0)
    focal = np.concatenate([i, isl])
    neigh = np.concatenate([j, isl])
    w = np.concatenate([np.ones(len(i)), np.zeros(len(isl))])
    order = np.lexsort((neigh, focal))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = Graph.from_arrays(focal[order], neigh[order], w[order])
    if len(isl):
        logger.info("%d of %d areas have no neighbour (islands)", len(isl), n)
    return graph, n_nb


def neighbour_matrix(
    units: gpd.GeoDataFrame, *, by: Level = "grid", distance_band_m: float | None = None, k_ring: int = 1
) -> Any:
    """Return the neighbourhood of :func:`spatial_weights` as an ``(n, n)`` CSR 0/1 matrix (no diagonal)."""
    from scipy import sparse

    i, j = _pairs(units, by, distance_band_m, k_ring)
    n = len(units)
    m = sparse.csr_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    m.data[:] = 1.0
    return m


def gi_star_analytic(values: ArrayLike, neighbours: Any) -> NDArray[np.float64]:
    """Gi* z-scores (Getis & Ord 1992; Ord & Getis 1995) with binary weights and the area itself.

    ``z_i = (Σ_j w_ij x_j − x̄ W_i) / (S · sqrt((n Σ_j w_ij² − W_i²) / (n − 1)))`` with ``w_ii = 1``,
    ``W_i = Σ_j w_ij``, ``S`` the population standard deviation — the z of ArcGIS's Hot Spot Analysis
    and of ``esda.G_Local(star=True, transform="B")`` (tested equal).  Vectorised over many columns:
    *values* may be ``(n,)`` or ``(n, k)`` (one column per time step).

    Parameters
    ----------
    values
        Analysis values per area.
    neighbours
        ``(n, n)`` scipy sparse binary matrix of neighbours without the diagonal.

    Examples
    --------
    >>> from scipy import sparse
    >>> nb = sparse.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]]))
    >>> gi_star_analytic([1.0, 2.0, 9.0], nb).round(3).tolist()   # first: (3 - 4·2) / (3.559 · 1)
    [-1.405, 0.0, 0.843]

    """
    x = np.asarray(values, dtype=np.float64)
    one = x.ndim == 1
    x2 = x[:, None] if one else x
    n = x2.shape[0]
    wi = np.asarray(neighbours.sum(axis=1)).ravel() + 1.0  # binary: Σw = Σw² = neighbours + self
    local = neighbours @ x2 + x2
    mean = x2.mean(axis=0)
    s = np.sqrt(np.maximum((x2**2).mean(axis=0) - mean**2, 0.0))
    den = np.sqrt(np.maximum(n * wi - wi**2, 0.0) / max(n - 1, 1))[:, None] * s[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(den > 0, (local - mean[None, :] * wi[:, None]) / den, 0.0)
    return z[:, 0] if one else z


def fdr_bins(z: ArrayLike, p: ArrayLike, *, fdr: bool = True) -> NDArray[np.int8]:
    """``gi_bin`` ∈ −3..3: sign of z times the highest confidence level (90/95/99 %) passed.

    With ``fdr=True`` (default) each level α uses the Benjamini-Hochberg cut-off of ``esda.fdr(p,
    α)`` over all areas; otherwise ``p ≤ α``.

    Examples
    --------
    >>> fdr_bins([4.0, -2.0, 0.1], [0.00006, 0.045, 0.92], fdr=False).tolist()
    [3, -2, 0]

    """
    za = np.asarray(z, dtype=np.float64)
    pa = np.asarray(p, dtype=np.float64)
    bins = np.zeros(za.shape, dtype=np.int8)
    ok = np.isfinite(pa) & np.isfinite(za)
    if not ok.any():
        return bins
    if fdr:
        from esda import fdr as esda_fdr
    for alpha, level in BIN_LEVELS:  # 90 % first, then overwrite with 95 % and 99 %
        cut = float(esda_fdr(pa[ok], alpha)) if fdr else alpha
        sig = ok & (pa <= cut)
        bins[sig] = level
    return (np.sign(za) * bins).astype(np.int8)


def _p_two_sided(z: NDArray[np.float64]) -> NDArray[np.float64]:
    from scipy.stats import norm

    return np.minimum(1.0, 2.0 * norm.sf(np.abs(z)))


def _p_sim(
    y: NDArray[np.float64],
    lg: Any,
    permutations: int,
    seed: int | None,
    batches: BatchOptions,
) -> NDArray[np.float64]:
    """Return esda's conditional-permutation ``p_sim`` of *lg* (a ``G_Local`` without permutations).

    The same draws and the same counts as ``esda.crand`` (:mod:`gridplan.hotspots.permute`), in
    batches of ``batches.size`` permutations run by ``batches.runner``; at 169 k H3 cells drawing
    esda's table costs ~2 s CPU and counting ~0.2 s, where esda's site loop without numba takes ~25 s.
    """
    adj = lg.w.sparse.tocsr(copy=True)
    self_w = np.asarray(adj.diagonal(), dtype=np.float64)
    adj.setdiag(0)
    adj.eliminate_zeros()
    card = np.diff(adj.indptr).astype(np.int64)
    if seed is None:
        seed = int(np.random.default_rng().integers(12345, 12345000))
    inputs = PermutationInputs(y, np.asarray(lg.Gs, dtype=np.float64), card, self_w, float(y.sum()))
    todo = permutation_batches(permutations, int(seed), batch=batches.size)
    on_done = None
    if batches.on_progress is not None:
        report = batches.on_progress
        report(0, len(todo))

        def on_done(k: int) -> None:
            report(k, len(todo))

    counts = (batches.runner or run_local)(batch_counts, inputs, todo, on_done=on_done)
    larger: NDArray[np.int64] = np.vstack(counts).sum(axis=0, dtype=np.int64)
    return p_sim_directed(larger, permutations)


@dataclass(frozen=True)
class BatchOptions:
    """How Gi*'s permutations are run: batch size, where, and who hears of each finished batch.

    Attributes
    ----------
    size
        Permutations per batch (:data:`~gridplan.hotspots.permute.PERMUTATION_BATCH`; ``None``: one
        batch, esda's single stream).  Part of the answer: the same seed and size give the same
        ``gi_p_sim`` wherever the batches run.
    runner
        Runs the batches (:func:`gridplan._dask.run_local` by default, or
        :func:`gridplan._dask.dask_runner` for a cluster).
    on_progress
        Called with ``(batches done, batches)`` as batches finish.

    """

    size: int | None = PERMUTATION_BATCH
    runner: BatchRunner | None = None
    on_progress: Callable[[int, int], None] | None = None


def gi_star(
    values: ArrayLike,
    graph: Any,
    *,
    permutations: int = 999,
    seed: int | None = 0,
    inference: Literal["analytic", "permutation"] = "analytic",
    fdr: bool = True,
    batches: BatchOptions | None = None,
) -> pd.DataFrame:
    """Getis-Ord Gi* of *values* on *graph* through ``esda.G_Local``, with ArcGIS-style bins.

    ``gi_z`` is esda's; ``gi_p_sim`` is esda's conditional-permutation p-value (its default
    directed test, doubled to two-sided), reproduced draw for draw by vectorised counting
    (:mod:`gridplan.hotspots.permute`), ~3 s CPU instead of ~27 s at 169 k H3 cells
    (benchmarks/RESULTS.md, gistar).  The permutations run in batches of 250, each with its own
    seed derived from *seed* (:func:`~gridplan.hotspots.permute.permutation_batches`), so that
    they can run on a Dask cluster with the same answer: up to 250 permutations (or with
    ``BatchOptions(size=None)``) the answer is ``esda.G_Local(..., seed=seed, n_jobs=1)``'s
    without numba, beyond it the sum of esda's counts over the batches' seeds.

    Parameters
    ----------
    values
        One analysis value per area.
    graph
        Neighbourhood from :func:`spatial_weights`.
    permutations
        Conditional permutations for ``gi_p_sim`` (0 = analytic only).
    seed
        Random seed of the permutations (reproducible output).
    inference
        Which p-value the FDR bins use: ``"analytic"`` (``gi_p``, ArcGIS) or ``"permutation"``.
    fdr
        Apply the FDR correction to the bins.
    batches
        Batch size, runner and progress of the permutations (:class:`BatchOptions`).

    Returns
    -------
    pandas.DataFrame
        ``gi_z``, ``gi_p``, ``gi_p_sim`` (NaN without permutations), ``gi_bin``.

    """
    import esda

    y = np.asarray(values, dtype=np.float64)
    if not np.isfinite(y).all():
        raise InputError("the Gi* analysis values contain NaN or infinite values", field="value")
    n = len(y)
    if inference not in ("analytic", "permutation"):
        raise InputError(f"unknown inference {inference!r}; use analytic or permutation", field="inference")
    if inference == "permutation" and permutations < 1:
        raise InputError("permutation inference needs permutations ≥ 1", field="permutations")
    if n < 3 or float(np.ptp(y)) == 0.0:
        # no variation: nothing can be a hot or cold spot
        zeros = np.zeros(n)
        return pd.DataFrame(
            {
                "gi_z": zeros,
                "gi_p": np.ones(n),
                "gi_p_sim": np.ones(n) if permutations else np.full(n, np.nan),
                "gi_bin": np.zeros(n, dtype=np.int8),
            }
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lg = esda.G_Local(y, graph, transform="B", star=True, permutations=0)
    z = np.asarray(lg.Zs, dtype=np.float64)
    z = np.where(np.isfinite(z), z, 0.0)
    p = _p_two_sided(z)
    p_sim = np.full(n, np.nan)
    if permutations:
        p_sim = np.minimum(1.0, 2.0 * _p_sim(y, lg, int(permutations), seed, batches or BatchOptions()))
    bins = fdr_bins(z, p if inference == "analytic" else p_sim, fdr=fdr)
    return pd.DataFrame({"gi_z": z, "gi_p": p, "gi_p_sim": p_sim, "gi_bin": bins})


def resolve_value(value: str, by: str, units: pd.DataFrame) -> str:
    """Resolve ``"auto"``: ``rate`` for plan polygons with residents, else ``density``.

    Base grids are drawn to a household band (300–500 households), so events per 1,000 residents is
    the comparison leaders make and the fair one between grids of very different size; H3 cells are
    equal-area, and their apportioned residents are often zero, so they use density.

    Examples
    --------
    >>> resolve_value("auto", "grid", pd.DataFrame({"residents": [900]})), resolve_value("auto", "h3", None)
    ('rate', 'density')

    """
    if value not in VALUES:
        raise InputError(f"unknown analysis value {value!r}; use one of {', '.join(VALUES)}", field="value")
    if value != "auto":
        return value
    has_res = units is not None and "residents" in units.columns and bool((units["residents"] > 0).all())
    return "rate" if by != "h3" and has_res else "density"


def _analysis_value(agg: pd.DataFrame, value: str) -> NDArray[np.float64]:
    v = agg[value].to_numpy(np.float64)
    return np.where(np.isfinite(v), v, 0.0)


def neighbourhood_text(a: Areas) -> str:
    """Say which neighbourhood *a* uses (for the summary and the output's attrs)."""
    if a.distance_band_m:
        return f"distance band {a.distance_band_m:g} m"
    return f"H3 res {a.h3_res} k-ring {a.k_ring}" if a.by == "h3" else "queen contiguity"


def hotspot_analysis(  # noqa: PLR0913 - keyword-only options, gi_star's passed through
    events: Any,
    plan: Any,
    *,
    areas: Areas | None = None,
    value: Value = "auto",
    category: str | Sequence[str] | None = None,
    permutations: int = 999,
    seed: int | None = 0,
    inference: Literal["analytic", "permutation"] = "analytic",
    batches: BatchOptions | None = None,
) -> gpd.GeoDataFrame:
    """Build the ``hotspots`` layer: one feature per grid/community/town/H3 cell with Gi* and its bin.

    Parameters
    ----------
    events, plan, category
        As :func:`aggregate_events`.
    areas
        Areas and neighbourhood (:class:`~gridplan.hotspots.aggregate.Areas`; default: base grids,
        queen contiguity).  :func:`gridplan.hotspots.optimize.optimized_areas` chooses H3 cells and
        a k-ring from the events (the CLI's default ``--by auto``).
    value
        What Gi* analyses: ``"rate"`` (events per 1,000 residents; areas without residents count 0),
        ``"density"`` (events per km²), ``"count"``, or ``"auto"`` (default, :func:`resolve_value`:
        rate for grids/communities/towns, density for H3 cells).  Raw counts on grids of unequal
        size flag large grids for their size alone (3 % of grids at 99 % on a uniform control of
        the sample city, against 0 % for density and 1.6 % for rate).
    permutations, seed, inference, batches
        As :func:`gi_star` (*batches* runs the permutations on a cluster and reports them).

    Returns
    -------
    geopandas.GeoDataFrame
        Unit columns, ``count``, ``density``, ``rate``, ``rate_hh``, ``gi_z``, ``gi_p``,
        ``gi_p_sim``, ``gi_bin``, ``n_neighbors``; ``attrs`` carries the settings used.

    """
    t0 = time.perf_counter()
    a = areas or Areas()
    by, distance_band_m = a.by, a.distance_band_m
    agg = aggregate_events(events, plan, by=by, h3_res=a.h3_res, category=category, units=a.units)
    if int(agg["count"].sum()) == 0:
        raise InputError("no located events fall inside the plan's grids")
    used = resolve_value(value, by, agg)
    graph, n_nb = spatial_weights(agg, by=by, distance_band_m=distance_band_m, k_ring=a.k_ring)
    gi = gi_star(
        _analysis_value(agg, used),
        graph,
        permutations=permutations,
        seed=seed,
        inference=inference,
        batches=batches,
    )
    out = agg.copy()
    for col in gi.columns:
        out[col] = gi[col].to_numpy()
    out["n_neighbors"] = n_nb
    out.attrs.update(
        {
            "by": by,
            "value": used,
            "permutations": permutations,
            "inference": inference,
            "neighbourhood": neighbourhood_text(a),
            "n_outside": agg.attrs.get("n_outside", 0),
        }
    )
    counts = {b: int((out["gi_bin"] == b).sum()) for b in (3, 2, 1, -1, -2, -3)}
    logger.info(
        "Gi* on %s %s areas (%s): hot 99/95/90 %% = %d/%d/%d, cold = %d/%d/%d in %.2f s",
        f"{len(out):,}",
        by,
        out.attrs["neighbourhood"],
        counts[3],
        counts[2],
        counts[1],
        counts[-3],
        counts[-2],
        counts[-1],
        time.perf_counter() - t0,
    )
    return out
