"""The optimized default (``by="auto"``): H3 cells sized from the data, the neighbourhood from its clustering.

ArcGIS's *Optimized Hot Spot Analysis* answers the two questions an analyst should not have to
guess for incident points: how large the aggregation cells are, and how far the neighbourhood
reaches.  The same two answers here, from the events themselves:

* **Cell size** — equal-area H3 hexagons (so counts compare without a rate), at the resolution
  whose hexagon edge is closest to twice the *average nearest-neighbour distance* of the events
  (a cell then holds a few events where events are ordinary, many in a hotspot), clipped to
  res 7–10 (5 km² … 0.015 km²).
* **Neighbourhood** — the k-ring (k = 1 … 4) at the first peak of *incremental spatial
  autocorrelation*: global Moran's I z-score of the cell counts for each k (esda, analytic
  inference), the first k whose z is higher than both neighbours', or the highest z if there is no
  interior peak.  The hotspot scale is where clustering is most intense.

Both choices, and why, are recorded in the output's ``attrs`` (and printed by the CLI).  esda's
``Moran`` is used as is; only the search over k and the H3 edge table are ours.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from gridplan.hotspots.aggregate import Areas, aggregate_events, analysis_units, filter_events

logger = logging.getLogger(__name__)

__all__ = ["Choice", "choose_h3_res", "choose_k_ring", "grid_hotspot_share", "optimized_areas"]

#: Average hexagon edge length (m) of H3 resolutions 7–10 (h3.average_hexagon_edge_length).
_EDGE_M = {7: 1406.5, 8: 531.4, 9: 200.8, 10: 75.9}
_RES_RANGE = (7, 10)
_K_RANGE = (1, 4)


@dataclass(frozen=True)
class Choice:
    """What the optimizer chose and why (shown to the analyst, stored in the output's attrs)."""

    h3_res: int
    k_ring: int
    reason: str


def choose_h3_res(x: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[int, float]:
    """Return the H3 resolution for events at (x, y) (metres) and their average NN distance.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.uniform(0, 10_000, 2_000), rng.uniform(0, 10_000, 2_000)
    >>> choose_h3_res(x, y)[0]  # ~110 m between neighbours: cells of ~200 m edge
    9

    """
    from scipy.spatial import cKDTree

    ok = np.isfinite(x) & np.isfinite(y)
    xy = np.unique(np.column_stack([x[ok], y[ok]]), axis=0)
    if len(xy) < 3:
        return _RES_RANGE[0], float("nan")
    d, _ = cKDTree(xy).query(xy, k=2)
    ann = float(np.mean(d[:, 1]))
    res = min(_EDGE_M, key=lambda r: abs(np.log(_EDGE_M[r] / (2 * ann))))
    return int(np.clip(res, *_RES_RANGE)), ann


def choose_k_ring(cells: list[str], values: NDArray[np.float64]) -> tuple[int, dict[int, float]]:
    """Return the k-ring at the first peak of Moran's I z-score (k = 1 … 4), and the z of each k.

    Examples
    --------
    >>> import h3
    >>> centre = h3.latlng_to_cell(23.0, 113.1, 9)
    >>> cells = sorted(h3.grid_disk(centre, 6))
    >>> dist = np.array([h3.grid_distance(centre, c) for c in cells], dtype=float)
    >>> k, z = choose_k_ring(cells, np.exp(-dist / 2))  # one smooth blob: clustering at every k
    >>> k in (1, 2, 3, 4) and z[k] > 3
    True

    """
    from esda.moran import Moran
    from libpysal.weights import W

    z: dict[int, float] = {}
    if len(cells) < 8 or float(np.var(values)) == 0.0:
        return _K_RANGE[0], z
    pos = {c: i for i, c in enumerate(cells)}
    for k in range(_K_RANGE[0], _K_RANGE[1] + 1):
        w = W(_k_ring_neighbours(cells, pos, k), silence_warnings=True)
        w.transform = "r"
        z[k] = float(Moran(values, w, permutations=0).z_norm)
    ks = sorted(z)
    peaks = [k for i, k in enumerate(ks[1:-1], start=1) if z[k] > z[ks[i - 1]] and z[k] > z[ks[i + 1]]]
    best = peaks[0] if peaks else max(ks, key=lambda k: z[k])
    return best, z


def _k_ring_neighbours(cells: list[str], pos: dict[str, int], k: int) -> dict[int, list[int]]:
    import h3

    out: dict[int, list[int]] = {}
    for i, c in enumerate(cells):
        nb = [pos[n] for n in h3.grid_disk(c, k) if n != c and n in pos]
        out[i] = nb
    return out


def optimized_areas(
    events: Any, plan: Any, *, category: str | Sequence[str] | None = None
) -> tuple[Areas, Choice]:
    """Choose H3 cells and a k-ring for *events* (see the module docstring); return them and why.

    Raises
    ------
    InputError
        No located events (from :func:`~gridplan.hotspots.aggregate.filter_events`).

    """
    df = filter_events(events, category=category)
    res, ann = choose_h3_res(df["x"].to_numpy(np.float64), df["y"].to_numpy(np.float64))
    units = analysis_units(plan, "h3", h3_res=res)
    agg = aggregate_events(df, plan, by="h3", h3_res=res, units=units)
    k, z = choose_k_ring(list(agg["h3"].astype(str)), agg["count"].to_numpy(np.float64))
    zs = ", ".join(f"k{kk} {zz:.1f}" for kk, zz in sorted(z.items()))
    reason = (
        f"events {ann:.0f} m apart on average → H3 res {res} (cell edge ≈ {_EDGE_M[res]:.0f} m); "
        f"Moran's I z by k-ring: {zs or 'too few cells'} → k-ring {k}"
    )
    logger.info("optimized hot spot analysis: %s", reason)
    return Areas(by="h3", h3_res=res, k_ring=k, units=units), Choice(res, k, reason)


def grid_hotspot_share(hotspots: gpd.GeoDataFrame, base_grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Per base grid: the share of its area in hot cells at 99 % and at 90 %+, and its hottest bin.

    Leaders read grids: when the analysis ran on H3 cells, this table says which grids the hot
    spots lie in (layer ``grid_hotspot_share`` of HOT.gpkg).
    """
    g = np.asarray(base_grids.geometry.values, dtype=object)
    h = np.asarray(hotspots.geometry.values, dtype=object)
    b = pd.to_numeric(hotspots["gi_bin"], errors="coerce").fillna(0).to_numpy(np.int64)
    gi, hi = shapely.STRtree(h).query(g, predicate="intersects")
    inter = shapely.area(shapely.intersection(g[gi], h[hi]))
    area = np.maximum(shapely.area(g), 1e-9)
    n = len(g)
    hot3 = np.bincount(gi, weights=inter * (b[hi] == 3), minlength=n) / area
    hot1 = np.bincount(gi, weights=inter * (b[hi] >= 1), minlength=n) / area
    top = np.full(n, -3, dtype=np.int64)
    np.maximum.at(top, gi, np.where(inter > 0, b[hi], -3))
    cols = [c for c in ("grid_code", "community_code", "town_code") if c in base_grids.columns]
    out = gpd.GeoDataFrame(base_grids[cols].copy(), geometry=g, crs=base_grids.crs)
    out["hot99_share"] = np.round(hot3, 4)
    out["hot90_share"] = np.round(hot1, 4)
    out["max_gi_bin"] = np.where(np.bincount(gi, minlength=n) > 0, top, 0)
    return out
