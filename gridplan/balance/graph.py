"""Private helpers of :mod:`gridplan.balance`: the atomic-unit adjacency graph and grid geometry.

Rook adjacency (a shared edge of positive length, not a corner) between atomic units of the same
community, with the shared boundary length, so that a grid's perimeter can be updated exactly when a
unit changes grid (``P(a − u) = P(a) − P(u) + 2·L(u, a)``) without re-unioning geometries.  libpysal's
``Rook`` gives the neighbours but not the shared lengths, hence the STRtree + vectorised boundary
intersection here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from scipy import sparse
from scipy.sparse.csgraph import connected_components


@dataclass(frozen=True)
class UnitGraph:
    """CSR adjacency of atomic units: neighbours of unit ``u`` are ``indices[indptr[u]:indptr[u+1]]``."""

    indptr: np.ndarray
    indices: np.ndarray
    shared_m: np.ndarray

    @property
    def n(self) -> int:
        """Number of units."""
        return len(self.indptr) - 1

    def neighbours(self, u: int) -> tuple[np.ndarray, np.ndarray]:
        """Neighbour indices of *u* and the shared boundary length (m) with each."""
        s, e = self.indptr[u], self.indptr[u + 1]
        return self.indices[s:e], self.shared_m[s:e]

    def matrix(self) -> sparse.csr_matrix:
        """Return the adjacency as a scipy CSR matrix of shared lengths."""
        return sparse.csr_matrix((self.shared_m, self.indices, self.indptr), shape=(self.n, self.n))


def unit_adjacency(geoms: np.ndarray, group: np.ndarray, *, min_shared_m: float = 0.01) -> UnitGraph:
    """Rook adjacency of polygons that share an edge longer than *min_shared_m* and the same *group*.

    Parameters
    ----------
    geoms
        Polygons (compute CRS, metres).
    group
        A label per polygon (community code); pairs across labels are not neighbours.
    min_shared_m
        Shorter shared boundaries (corner touches, noise) do not count.

    """
    n = len(geoms)
    group = np.asarray(group)
    tree = shapely.STRtree(geoms)
    i, j = tree.query(geoms, predicate="intersects")
    keep = (i < j) & (group[i] == group[j])
    i, j = i[keep], j[keep]
    # fast path: edges shared vertex-for-vertex (what an overlay produces) found by hashing segments
    hi_, hj, hlen = _shared_segments(geoms)
    key = i.astype(np.int64) * n + j
    hkey = hi_.astype(np.int64) * n + hj
    found = np.isin(key, hkey)
    lens = np.zeros(len(i))
    if len(hkey):
        order = np.argsort(hkey)
        pos = np.searchsorted(hkey[order], key[found])
        lens[found] = hlen[order][pos]
    # exact path for the rest (unmatched vertices, corner touches): intersect the boundaries
    rest = np.flatnonzero(~found)
    if len(rest):
        bnd = shapely.boundary(geoms)
        lens[rest] = np.nan_to_num(shapely.length(shapely.intersection(bnd[i[rest]], bnd[j[rest]])))
    ok = lens > min_shared_m
    i, j, lens = i[ok], j[ok], lens[ok]
    m = sparse.coo_matrix((np.r_[lens, lens], (np.r_[i, j], np.r_[j, i])), shape=(n, n)).tocsr()
    m.sort_indices()
    return UnitGraph(m.indptr.astype(np.int64), m.indices.astype(np.int64), m.data.astype(float))


def _shared_segments(geoms: np.ndarray, *, precision_m: float = 1e-3) -> tuple[np.ndarray, ...]:
    """Pairs of polygons (i < j) with identical boundary segments and the summed shared length."""
    rings, ring_poly = shapely.get_rings(geoms, return_index=True)
    if len(rings) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    xy, ring_of = shapely.get_coordinates(rings, return_index=True)
    same = ring_of[1:] == ring_of[:-1]
    a, b = xy[:-1][same], xy[1:][same]
    poly = ring_poly[ring_of[:-1][same]]
    q = np.round(np.c_[a, b] / precision_m).astype(np.int64)
    # orientation-free key: the smaller endpoint first
    swap = (q[:, 0] > q[:, 2]) | ((q[:, 0] == q[:, 2]) & (q[:, 1] > q[:, 3]))
    q[swap] = q[swap][:, [2, 3, 0, 1]]
    # one 64-bit hash per segment (wrapping multiply-xor); equal hashes are re-checked coordinate-wise
    with np.errstate(over="ignore"):
        h = (
            (q[:, 0] * np.int64(0x9E3779B1))
            ^ (q[:, 1] * np.int64(0x85EBCA77))
            ^ (q[:, 2] * np.int64(0xC2B2AE3D))
            ^ (q[:, 3] * np.int64(0x27D4EB2F))
        )
    order = np.argsort(h, kind="stable")
    hs, qs, ps = h[order], q[order], poly[order]
    eq = (hs[1:] == hs[:-1]) & (ps[1:] != ps[:-1]) & (qs[1:] == qs[:-1]).all(axis=1)
    k = np.flatnonzero(eq)
    if len(k) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    seg_len = np.hypot(*(b - a)[order][k].T)
    n = len(geoms)
    pi, pj = np.minimum(ps[k], ps[k + 1]), np.maximum(ps[k], ps[k + 1])
    pair_key, inv = np.unique(pi.astype(np.int64) * n + pj, return_inverse=True)
    total = np.bincount(inv, weights=seg_len, minlength=len(pair_key))
    return pair_key // n, pair_key % n, total


def grid_components(graph: UnitGraph, grid_of: np.ndarray) -> np.ndarray:
    """Count the rook-connected parts of every grid (index = grid number; grid_of < 0 ignored)."""
    m = graph.matrix().tocoo()
    same = grid_of[m.row] == grid_of[m.col]
    sub = sparse.csr_matrix((np.ones(int(same.sum())), (m.row[same], m.col[same])), shape=(graph.n, graph.n))
    _, labels = connected_components(sub, directed=False)
    n_grids = int(grid_of.max()) + 1 if len(grid_of) else 0
    ok = grid_of >= 0
    pairs = np.unique(np.c_[grid_of[ok], labels[ok]], axis=0)
    return np.bincount(pairs[:, 0], minlength=n_grids) if len(pairs) else np.zeros(n_grids, int)


def grid_perimeters(
    graph: UnitGraph, grid_of: np.ndarray, unit_perim: np.ndarray, n_grids: int
) -> np.ndarray:
    """Perimeter of each grid = Σ unit perimeters − 2 × Σ internal shared boundary (metres)."""
    ok = grid_of >= 0
    p = np.bincount(grid_of[ok], weights=unit_perim[ok], minlength=n_grids)
    m = graph.matrix().tocoo()
    inner = (grid_of[m.row] == grid_of[m.col]) & (grid_of[m.row] >= 0)
    # each internal pair appears twice in the symmetric matrix: subtract 2·L once per pair
    p -= np.bincount(grid_of[m.row[inner]], weights=m.data[inner], minlength=n_grids)
    return p


def polsby_popper(area_m2: np.ndarray, perimeter_m: np.ndarray) -> np.ndarray:
    """Compactness 4πA/P² (1 for a disc, ≈0.785 for a square, → 0 for slivers)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        pp = 4 * np.pi * area_m2 / np.square(perimeter_m)
    return np.nan_to_num(pp, nan=0.0, posinf=0.0)
