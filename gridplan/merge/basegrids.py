"""Grouping atomic units into base grids, and grid codes (private helper of :mod:`gridplan.merge`).

Owns the districting step.  No library fits: spopt's max-p / SKATER solve a related problem but
take seconds per community (600 communities in a city) and cannot express "cut where departments
agree"; so this is a small, deterministic, hand-written heuristic:

1. per community, per connected part of it (a grid never crosses a community line and is always
   contiguous), choose ``k`` grids so that the mean ``H/k`` lies in the household band (closest to
   its middle); a part with fewer households than the band is one grid (``below``);
2. **recursive bisection**: the units of a part are swept along their principal axis (household-
   weighted PCA of unit centres) by *region growing* — the next unit is always a neighbour of the
   grown side, so that side stays contiguous — and the cut is placed at the prefix whose household
   total is in the feasible window of the ``k1 : k2`` split and whose cut is cheapest.  Cut cost =
   Σ shared-edge length × (D + 1 − agree) / (D + 1), where *agree* is the number of departments whose
   own grid boundary runs along that edge: short cuts (compact grids) along boundaries the
   departments agree on are preferred; the score also grows with the distance of the household and
   (half-weighted) resident totals from an even split.  A piece of the other side cut off from it
   joins the grown side;
3. **repair**: a grid below the band merges with a neighbour when the sum stays in the band, or
   takes boundary units from a neighbour that can spare them; a grid above the band hands boundary
   units to a neighbour with room — every move keeps both grids contiguous;
4. an enclave unit (all its edges shared with one other grid) joins the grid that surrounds it.

Codes (:func:`grid_sequence`): grids of a community are numbered in reading order — rows of
height ``h = sqrt(community area / number of grids)`` counted from the community's northern edge
(north → south), and inside a row by easting of the grid's representative point (west → east).
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gridplan.errors import InputError

__all__ = ["GridNote", "grid_sequence", "partition_units"]


@dataclass(frozen=True)
class GridNote:
    """Band status of one grid: ``ok``, ``below`` or ``above`` and a reason when not ok."""

    status: str
    reason: str


def check_band(households_min: int, households_max: int) -> None:
    """Refuse an empty or inverted household band before any work."""
    if households_max < 1 or households_min < 0:
        raise InputError(
            f"the household band {households_min}-{households_max} is empty; households_max must be at "
            "least 1 and households_min at least 0",
            field="households_max" if households_max < 1 else "households_min",
        )
    if households_min > households_max:
        raise InputError(
            f"households_min ({households_min}) is larger than households_max ({households_max})",
            field="households_min",
        )


def _choose_k(h: float, lo: int, hi: int) -> int:
    if h < lo or h <= 0:
        return 1
    mid = (lo + hi) / 2
    k_lo = int(np.ceil(h / hi))
    k_hi = int(np.floor(h / lo)) if lo > 0 else k_lo + int(np.ceil(h))  # no lower end: any k ≥ k_lo
    if k_lo <= k_hi:
        return int(min(max(round(h / mid), k_lo), k_hi))
    # no k puts the mean in the band: fewer, larger grids (one grid off band instead of several)
    return max(1, int(np.floor(h / hi)))


class _Community:
    """Adjacency and attributes of the units of one connected community part."""

    def __init__(self, nodes: np.ndarray, hh: list[float], res: list[float], xy: list[tuple[float, float]],
                 nbrs: dict[int, dict[int, tuple[float, float]]], outer_len: dict[int, float]) -> None:
        self.nodes = nodes
        self.outer_len = outer_len
        self.hh = hh
        self.res = res
        self.xy = xy
        self.nbrs = nbrs  # node -> {neighbour: (length, cost)}

    def connected_parts(self, members: set[int]) -> list[set[int]]:
        seen: set[int] = set()
        parts = []
        for start in sorted(members):
            if start in seen:
                continue
            comp = {start}
            stack = [start]
            seen.add(start)
            while stack:
                u = stack.pop()
                for v in self.nbrs[u]:
                    if v in members and v not in seen:
                        seen.add(v)
                        comp.add(v)
                        stack.append(v)
            parts.append(comp)
        return parts

    def bisect(self, members: list[int], k: int, lo: int, hi: int) -> list[list[int]]:
        if k <= 1 or len(members) <= 1:
            return [sorted(members)]
        k1 = k // 2
        k2 = k - k1
        hh = self.hh
        total = float(sum(hh[u] for u in members))
        target = total * k1 / k
        res_target = float(sum(self.res[u] for u in members)) * k1 / k
        f_lo = max(k1 * lo, total - k2 * hi)
        f_hi = min(k1 * hi, total - k2 * lo)
        if f_lo <= target <= f_hi:
            shrink = 1.0 if k <= 3 else 0.5
            w_lo, w_hi = target - shrink * (target - f_lo), target + shrink * (f_hi - target)
        else:
            w_lo = w_hi = target
        pts = np.array([self.xy[u] for u in members])
        wts = np.array([hh[u] for u in members], float) + 1.0
        mean = (pts * wts[:, None]).sum(0) / wts.sum()
        d = pts - mean
        cov = (d * wts[:, None]).T @ d / wts.sum()
        vals, vecs = np.linalg.eigh(cov)
        v = vecs[:, int(np.argmax(vals))]
        if v[0] < 0 or (v[0] == 0 and v[1] < 0):
            v = -v
        proj = dict(zip(members, (d @ v).tolist(), strict=True))
        mset = set(members)
        start = min(members, key=lambda u: (proj[u], u))
        in_a: set[int] = set()
        heap = [(proj[start], start)]
        queued = {start}
        seq: list[int] = []
        cum = 0.0
        cum_res = 0.0
        cut = 0.0
        best: tuple[float, int] | None = None
        closest: tuple[float, int] = (np.inf, 0)
        while heap and len(seq) < len(members) - 1:
            _, u = heapq.heappop(heap)
            in_a.add(u)
            seq.append(u)
            cum += hh[u]
            cum_res += self.res[u]
            for w, (_, cost) in self.nbrs[u].items():
                if w in mset:
                    cut += -cost if w in in_a else cost
                    if w not in queued:
                        queued.add(w)
                        heapq.heappush(heap, (proj[w], w))
            p = len(seq)
            dev = abs(cum - target)
            if dev < closest[0]:
                closest = (dev, p)
            if w_lo <= cum <= w_hi:
                # residents are the second criterion: a milder pull towards an even split
                score = cut * (1.0 + dev / max(target, 1.0)
                               + 0.5 * abs(cum_res - res_target) / max(res_target, 1.0))
                if best is None or score < best[0]:
                    best = (score, p)
            if cum > w_hi and cum > target:
                break
        p = best[1] if best is not None else closest[1]
        side_a = set(seq[:p])
        side_b = mset - side_a
        parts_b = self.connected_parts(side_b)
        if len(parts_b) > 1:
            parts_b.sort(key=lambda s: (-sum(hh[u] for u in s), -len(s), min(s)))
            for extra in parts_b[1:]:
                side_a |= extra
            side_b = parts_b[0]
        return self.bisect(sorted(side_a), k1, lo, hi) + self.bisect(sorted(side_b), k2, lo, hi)


def _repair(comm: _Community, grids: list[set[int]], lo: int, hi: int) -> list[set[int]]:
    hh = comm.hh
    label = {u: g for g, s in enumerate(grids) for u in s}
    tot = [float(sum(hh[u] for u in s)) for s in grids]

    def stays_connected(g: int, u: int) -> bool:
        rest = grids[g] - {u}
        return bool(rest) and len(comm.connected_parts(rest)) == 1

    def boundary_len(g: int, h: int) -> float:
        return sum(ln for u in grids[g] for w, (ln, _) in comm.nbrs[u].items() if label.get(w) == h)

    def neighbours(g: int) -> set[int]:
        return {label[w] for u in grids[g] for w in comm.nbrs[u] if label.get(w, g) != g}

    for _ in range(4 * len(grids) + 4):
        changed = False
        for g in range(len(grids)):
            if not grids[g]:
                continue
            if tot[g] < lo:
                # merge with a neighbour when the sum stays in band
                cands = [h for h in neighbours(g) if tot[g] + tot[h] <= hi]
                if cands:
                    h = max(cands, key=lambda h: (boundary_len(g, h), -h))
                    for u in grids[g]:
                        label[u] = h
                    grids[h] |= grids[g]
                    tot[h] += tot[g]
                    grids[g] = set()
                    tot[g] = 0.0
                    changed = True
                    continue
                moves = []
                for u in grids[g]:
                    for w, (ln, _) in comm.nbrs[u].items():
                        lw = label.get(w)
                        if lw is None or lw == g:
                            continue
                        if tot[lw] - hh[w] >= lo and tot[g] + hh[w] <= hi:
                            moves.append((-ln, w, lw))
                for _ln, w, h in sorted(moves):
                    if label[w] == h and tot[h] - hh[w] >= lo and tot[g] + hh[w] <= hi \
                            and stays_connected(h, w):
                        grids[h].discard(w)
                        grids[g].add(w)
                        label[w] = g
                        tot[h] -= hh[w]
                        tot[g] += hh[w]
                        changed = True
                        break
            elif tot[g] > hi and len(grids[g]) > 1:
                moves = []
                for u in grids[g]:
                    for w, (ln, _) in comm.nbrs[u].items():
                        lw = label.get(w)
                        if lw is None or lw == g:
                            continue
                        if tot[lw] + hh[u] <= hi and tot[g] - hh[u] >= lo and hh[u] > 0:
                            moves.append((-ln, u, lw))
                for _ln, u, h in sorted(moves):
                    if label[u] == g and tot[h] + hh[u] <= hi and tot[g] - hh[u] >= lo \
                            and stays_connected(g, u):
                        grids[g].discard(u)
                        grids[h].add(u)
                        label[u] = h
                        tot[g] -= hh[u]
                        tot[h] += hh[u]
                        changed = True
                        break
        if not changed:
            break
    # enclaves: a unit whose every same-community edge touches one other grid joins it
    for u in sorted(label):
        owners = {label[w] for w in comm.nbrs[u]}
        if len(owners) == 1:
            h = owners.pop()
            g = label[u]
            if h != g and comm.outer_len.get(u, 0.0) <= 1e-9 and stays_connected(g, u):
                grids[g].discard(u)
                grids[h].add(u)
                label[u] = h
                tot[g] -= hh[u]
                tot[h] += hh[u]
    return [s for s in grids if s]


def _solve(comm: _Community, part: set[int], k: int, lo: int, hi: int) -> list[set[int]]:
    grids = [set(g) for g in comm.bisect(sorted(part), k, lo, hi)]
    return _repair(comm, grids, lo, hi)


def _n_off_band(grids: list[set[int]], hh: list[float], lo: int, hi: int) -> int:
    return sum(1 for g in grids if not lo <= sum(hh[u] for u in g) <= hi)


def partition_units(
    community: np.ndarray,
    households: np.ndarray,
    residents: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    adj: pd.DataFrame,
    outer_len: np.ndarray,
    *,
    households_min: int,
    households_max: int,
) -> tuple[np.ndarray, dict[int, GridNote]]:
    """Group units into contiguous base grids inside each community.

    Parameters
    ----------
    community
        Community key per unit (grids never mix keys).
    households, residents
        Per-unit totals.
    x, y
        Representative point per unit (m).
    adj
        Unit adjacency, columns ``a``, ``b``, ``length`` (m) and ``cost`` (cut cost, m).
    outer_len
        Per unit, length of its boundary not shared with a unit of the same community (m);
        0 marks a unit enclosed by its community.
    households_min, households_max
        Household band of a grid.

    Returns
    -------
    labels : ndarray of int
        Grid label per unit (0..n_grids-1, ordered by first unit).
    notes : dict
        Grid label → :class:`GridNote`.

    Examples
    --------
    A strip of four units of 200 households each becomes two grids of 400:

    >>> adj = pd.DataFrame({"a": [0, 1, 2], "b": [1, 2, 3], "length": 1.0, "cost": 1.0})
    >>> lab, notes = partition_units(np.zeros(4, int), np.full(4, 200), np.full(4, 500),
    ...     np.arange(4.0), np.zeros(4), adj, np.ones(4), households_min=300, households_max=500)
    >>> lab.tolist(), sorted({n.status for n in notes.values()})
    ([0, 0, 1, 1], ['ok'])

    """
    n = len(community)
    hh = np.asarray(households, float)
    res_ = np.asarray(residents, float)
    a = adj["a"].to_numpy()
    b = adj["b"].to_numpy()
    same = community[a] == community[b]
    nbrs: dict[int, dict[int, tuple[float, float]]] = defaultdict(dict)
    for u, w, ln, c in zip(a[same].tolist(), b[same].tolist(), adj["length"].to_numpy()[same].tolist(),
                           adj["cost"].to_numpy()[same].tolist(), strict=True):
        nbrs[u][w] = (ln, c)
        nbrs[w][u] = (ln, c)
    for u in range(n):
        nbrs.setdefault(u, {})
    hh_l = hh.tolist()
    res_l = res_.tolist()
    xy = list(zip(np.asarray(x, float).tolist(), np.asarray(y, float).tolist(), strict=True))
    labels = np.full(n, -1, np.int64)
    notes: dict[int, GridNote] = {}
    order = pd.Series(np.arange(n)).groupby(pd.Series(community), sort=True)
    next_label = 0
    lo, hi = int(households_min), int(households_max)
    for _key, idx in order:
        nodes = idx.to_numpy()
        comm = _Community(nodes, hh_l, res_l, xy, nbrs,
                          {int(u): float(outer_len[u]) for u in nodes})
        parts = comm.connected_parts({int(u) for u in nodes})
        h_comm = float(hh[nodes].sum())
        for part in parts:
            h_part = float(sum(hh_l[u] for u in part))
            k = _choose_k(h_part, lo, hi)
            grids = _solve(comm, part, k, lo, hi)
            n_bad = _n_off_band(grids, hh_l, lo, hi)
            if n_bad and k > 0:
                # try one grid fewer / more; keep the split with the fewest grids off band
                for k2 in (k + 1, k - 1):
                    if k2 < 1 or h_part / k2 > 2 * hi or h_part / k2 < lo / 2:
                        continue
                    alt = _solve(comm, part, k2, lo, hi)
                    bad2 = _n_off_band(alt, hh_l, lo, hi)
                    if bad2 < n_bad:
                        grids, n_bad = alt, bad2
            for g in grids:
                tot = sum(hh_l[u] for u in g)
                if lo <= tot <= hi:
                    note = GridNote("ok", "")
                elif tot < lo:
                    if len(parts) == 1 and len(grids) == 1:
                        note = GridNote("below", f"community has only {tot:.0f} households")
                    elif len(grids) == 1:
                        note = GridNote("below", f"detached part of the community with only {tot:.0f} "
                                        f"households (community: {h_comm:.0f})")
                    else:
                        note = GridNote("below", f"{tot:.0f} households: no contiguous split of "
                                        f"{h_part:.0f} households into {lo}-{hi} found at unit level")
                else:
                    big = max(g, key=lambda u: hh_l[u])
                    if hh_l[big] > hi:
                        note = GridNote("above", f"a single atomic unit has {hh_l[big]:.0f} households")
                    elif len(grids) == 1 and k == 1:
                        note = GridNote("above", f"{tot:.0f} households cannot be split into two grids "
                                        f"of {lo}-{hi}")
                    else:
                        note = GridNote("above", f"{tot:.0f} households: no contiguous split of "
                                        f"{h_part:.0f} households into {lo}-{hi} found at unit level")
                labels[sorted(g)] = next_label
                notes[next_label] = note
                next_label += 1
    # renumber labels by first unit so the result does not depend on dict/set iteration order
    _, first = np.unique(labels, return_index=True)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    new_notes = {int(rank[old]): note for old, note in notes.items()}
    return rank[labels], new_notes


def grid_sequence(
    community: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    comm_north_m: np.ndarray,
    row_height_m: np.ndarray,
) -> np.ndarray:
    """Sequence number (1-based) of each grid inside its community, in reading order.

    Parameters
    ----------
    community
        Community key per grid.
    x, y
        Representative point of each grid (m).
    comm_north_m
        Northern edge (max y) of each grid's community (m).
    row_height_m
        Row height used for the grid's community (m), ``sqrt(area / n_grids)``.

    Returns
    -------
    ndarray of int
        1, 2, … per community: north → south by rows, west → east inside a row.

    Examples
    --------
    Four grids in a 2 x 2 block: north-west, north-east, south-west, south-east.

    >>> grid_sequence(np.zeros(4, int), np.array([1.5, 0.5, 0.5, 1.5]), np.array([0.5, 0.5, 1.5, 1.5]),
    ...               np.full(4, 2.0), np.full(4, 1.0)).tolist()
    [4, 3, 1, 2]

    """
    row = np.floor((np.asarray(comm_north_m) - np.asarray(y)) / np.maximum(row_height_m, 1e-9))
    df = pd.DataFrame({"c": community, "row": row, "x": x, "y": -np.asarray(y), "i": np.arange(len(x))})
    df = df.sort_values(["c", "row", "x", "y", "i"], kind="stable")
    df["seq"] = df.groupby("c", sort=False).cumcount() + 1
    return df.sort_values("i")["seq"].to_numpy()
