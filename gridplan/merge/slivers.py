"""Atomic units from faces, and sliver elimination (private helper of :mod:`gridplan.merge`).

Owns two graph steps on the face adjacency of :mod:`gridplan.merge.overlay`:

* :func:`lineage_components` — neighbouring faces with the *same* lineage (community and grid of
  every department) form one atomic unit (connected components, ``scipy.sparse.csgraph``);
* :func:`eliminate_slivers` — ArcGIS "Eliminate" without its re-runs: every sliver joins the unit
  with which it shares the longest edge **inside its own community**.  It is solved as a
  breadth-first absorption: in each round every unresolved sliver that touches a resolved unit
  joins the owner with which it shares the longest total edge (edges to slivers already absorbed
  count for their owner), until a fixed point.  Clusters of slivers (three in a row, a fan of
  crumbs) therefore resolve in one call.  A cluster left with no non-sliver neighbour in its
  community is a crumb cut off from it (the community polygon has a detached speck, or two
  departments' lines enclose a scrap of it): when the community has a body elsewhere, the crumb
  joins the neighbour it shares the longest edge with, across the community line, and is reported —
  kept, it would become a base grid of a few square metres with no households and no workload,
  which no staffing can balance.  Only a community that is a sliver as a whole is kept (merged into
  the largest sliver of its cluster) and reported.

Area is conserved exactly: units are unions of whole faces, nothing is clipped or dropped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["eliminate_slivers", "lineage_components", "sliver_mask"]


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if n == 0:
        return np.zeros(0, np.int64)
    g = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(g, directed=False)
    # renumber by first occurrence so labels follow the input order (deterministic, stable)
    _, first = np.unique(labels, return_index=True)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[labels]


def lineage_components(keys: np.ndarray, adj: pd.DataFrame) -> np.ndarray:
    """Label connected groups of adjacent items that share the same key.

    Parameters
    ----------
    keys
        One hashable key per item (e.g. an int code of the lineage tuple).
    adj
        Adjacency with columns ``a``, ``b`` (item indices).

    Returns
    -------
    ndarray of int
        Group label per item, numbered in order of first appearance.

    Examples
    --------
    >>> adj = pd.DataFrame({"a": [0, 1, 2], "b": [1, 2, 3]})
    >>> lineage_components(np.array([5, 5, 6, 5]), adj).tolist()
    [0, 0, 1, 2]

    """
    a = adj["a"].to_numpy()
    b = adj["b"].to_numpy()
    same = keys[a] == keys[b]
    return _components(len(keys), a[same], b[same])


def sliver_mask(
    area_m2: np.ndarray,
    perimeter_m: np.ndarray,
    *,
    min_area_m2: float,
    max_thinness: float,
    max_width_m: float,
) -> np.ndarray:
    """Which units are slivers: too small, or thin *and* narrow.

    A unit is a sliver when ``area < min_area_m2``, or when its Polsby-Popper compactness
    ``4πA/P²`` is below ``max_thinness`` **and** its mean width ``2A/P`` is below ``max_width_m``
    (a long strip of a few metres between two departments' versions of the same road; a long but
    wide unit such as a riverside park is not a sliver).

    Examples
    --------
    >>> sliver_mask(np.array([40.0, 1000.0, 1000.0]), np.array([30.0, 130.0, 1002.0]),
    ...             min_area_m2=50, max_thinness=0.05, max_width_m=3).tolist()
    [True, False, True]

    """
    area = np.asarray(area_m2, float)
    per = np.maximum(np.asarray(perimeter_m, float), 1e-12)
    thin = (4 * np.pi * area / per**2 < max_thinness) & (2 * area / per < max_width_m)
    return (area < min_area_m2) | thin


def eliminate_slivers(
    is_sliver: np.ndarray,
    community: np.ndarray,
    area_m2: np.ndarray,
    adj: pd.DataFrame,
) -> tuple[np.ndarray, np.ndarray]:
    """Absorb slivers into their same-community neighbour with the longest shared edge.

    Parameters
    ----------
    is_sliver
        Boolean mask per unit.
    community
        Community key per unit (int codes); a sliver joins a unit of another community only when it
        is a crumb cut off from its own community's body (see the module docstring).
    area_m2
        Area per unit (picks the representative of a cluster of slivers that has no non-sliver
        neighbour).
    adj
        Unit adjacency: columns ``a``, ``b``, ``length`` (shared edge length, m).

    Returns
    -------
    owner : ndarray of int
        For every unit, the unit it is merged into (itself for non-slivers).
    kept : ndarray of bool
        Units that are slivers and stay (no non-sliver neighbour in their community): one per
        isolated cluster.

    Examples
    --------
    Three slivers in a row (1, 2, 3) next to a big unit 0 resolve in one call:

    >>> adj = pd.DataFrame({"a": [0, 1, 2], "b": [1, 2, 3], "length": [10.0, 10.0, 10.0]})
    >>> owner, kept = eliminate_slivers(np.array([False, True, True, True]), np.zeros(4, int),
    ...                                 np.array([1e4, 5, 5, 5]), adj)
    >>> owner.tolist(), kept.tolist()
    ([0, 0, 0, 0], [False, False, False, False])

    """
    n = len(is_sliver)
    owner = np.where(is_sliver, -1, np.arange(n))
    a_all = adj["a"].to_numpy()
    b_all = adj["b"].to_numpy()
    len_all = adj["length"].to_numpy(float)
    same = community[a_all] == community[b_all]
    src, dst, ln = _directed(is_sliver, a_all[same], b_all[same], len_all[same])
    _absorb(owner, src, dst, ln)
    # crumbs of a community that has a body elsewhere: absorbed across the community line
    body = np.unique(community[~is_sliver])
    crumb = (owner < 0) & np.isin(community, body)
    if crumb.any():
        _absorb(owner, *_directed(crumb, a_all, b_all, len_all))
    left = owner < 0
    if left.any():
        idx = np.flatnonzero(left)
        pos = np.full(n, -1)
        pos[idx] = np.arange(len(idx))
        m = left[src] & left[dst]
        comp = _components(len(idx), pos[src[m]], pos[dst[m]])
        df = pd.DataFrame({"u": idx, "comp": comp, "area": area_m2[idx]})
        df = df.sort_values(["comp", "area", "u"], ascending=[True, False, True], kind="stable")
        rep = df.drop_duplicates("comp", keep="first").set_index("comp")["u"]
        owner[idx] = rep.loc[comp].to_numpy()
    kept = np.zeros(n, bool)
    kept[np.unique(owner[left])] = True
    return owner, kept


def _directed(from_mask: np.ndarray, a: np.ndarray, b: np.ndarray, length: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges in both directions whose source is in *from_mask*."""
    src = np.concatenate([a, b])
    dst = np.concatenate([b, a])
    ln = np.concatenate([length, length])
    cand = from_mask[src]
    return src[cand], dst[cand], ln[cand]


def _absorb(owner: np.ndarray, src: np.ndarray, dst: np.ndarray, ln: np.ndarray) -> None:
    """Breadth-first absorption in place: unresolved sources join their longest-edge resolved owner."""
    while True:
        unresolved = owner[src] < 0
        resolved_dst = owner[dst] >= 0
        m = unresolved & resolved_dst
        if not m.any():
            break
        df = pd.DataFrame({"u": src[m], "o": owner[dst[m]], "len": ln[m]})
        tot = df.groupby(["u", "o"], as_index=False, sort=True)["len"].sum()
        # longest total edge first; ties → smaller owner index (sorted order is kept by stable sort)
        tot = tot.sort_values(["u", "len", "o"], ascending=[True, False, True], kind="stable")
        best = tot.drop_duplicates("u", keep="first")
        owner[best["u"].to_numpy()] = best["o"].to_numpy()
