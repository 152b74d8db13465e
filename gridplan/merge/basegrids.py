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
   units to a neighbour with room — every move keeps both grids contiguous; when no such move is
   left, a grid below the band joins the neighbour (not above the band) that brings the pair
   closest to the band (only if the pair's distance from the band shrinks);
4. an enclave unit (all its edges shared with one other grid) joins the grid that surrounds it.

Codes (:func:`grid_sequence`): grids of a community are numbered in reading order — rows of
height ``h = sqrt(community area / number of grids)`` counted from the community's northern edge
(north → south), and inside a row by easting of the grid's representative point (west → east).

Every grid outside the band gets a reason whose code is one of :data:`REASONS`.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass
from typing import NotRequired, TypedDict, Unpack

import numpy as np
import pandas as pd

from gridplan.errors import InputError

__all__ = [
    "REASONS",
    "UNIT_NOT_SPLIT",
    "UNIT_SINGLE_BUILDING",
    "UNIT_SPLIT_SHORT",
    "Band",
    "GridNote",
    "check_band",
    "choose_k",
    "grid_sequence",
    "partition_units",
]


class Band(TypedDict):
    """Keyword arguments of :func:`partition_units`: the band and optional per-unit flags."""

    households_min: int
    households_max: int
    flags: NotRequired[np.ndarray | None]


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


def choose_k(h: float, lo: int, hi: int) -> int:
    """Return the number of grids for *h* households: mean in the band, closest to its middle."""
    if h < lo or h <= 0:
        return 1
    mid = (lo + hi) / 2
    k_lo = int(np.ceil(h / hi))
    k_hi = int(np.floor(h / lo)) if lo > 0 else k_lo + int(np.ceil(h))  # no lower end: any k ≥ k_lo
    if k_lo <= k_hi:
        return int(min(max(round(h / mid), k_lo), k_hi))
    # no k puts the mean in the band: fewer, larger grids (one grid off band instead of several)
    return max(1, int(np.floor(h / hi)))


_choose_k = choose_k  # the name the overlay tests use


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


def _off(t: float, lo: int, hi: int) -> float:
    """Distance of a household total from the band (0 inside)."""
    return max(lo - t, t - hi, 0.0)


class _Repair:
    """Moves between the grids of one community part that bring grids into the band."""

    def __init__(self, comm: _Community, grids: list[set[int]], lo: int, hi: int) -> None:
        self.comm, self.grids, self.lo, self.hi = comm, grids, lo, hi
        self.hh = comm.hh
        self.label = {u: g for g, s in enumerate(grids) for u in s}
        self.tot = [float(sum(self.hh[u] for u in s)) for s in grids]

    def stays_connected(self, g: int, u: int) -> bool:
        rest = self.grids[g] - {u}
        return bool(rest) and len(self.comm.connected_parts(rest)) == 1

    def boundary_len(self, g: int, h: int) -> float:
        return sum(ln for u in self.grids[g] for w, (ln, _) in self.comm.nbrs[u].items()
                   if self.label.get(w) == h)

    def neighbours(self, g: int) -> set[int]:
        return {self.label[w] for u in self.grids[g] for w in self.comm.nbrs[u] if self.label.get(w, g) != g}

    def move(self, u: int, g: int, h: int) -> None:
        """Move unit *u* from grid *g* to grid *h*."""
        self.grids[g].discard(u)
        self.grids[h].add(u)
        self.label[u] = h
        self.tot[g] -= self.hh[u]
        self.tot[h] += self.hh[u]

    def merge(self, g: int, h: int) -> None:
        """Merge grid *g* into grid *h*."""
        for u in self.grids[g]:
            self.label[u] = h
        self.grids[h] |= self.grids[g]
        self.tot[h] += self.tot[g]
        self.grids[g] = set()
        self.tot[g] = 0.0

    def _merge_in_band(self, g: int) -> bool:
        cands = [h for h in self.neighbours(g) if self.tot[g] + self.tot[h] <= self.hi]
        if not cands:
            return False
        self.merge(g, max(cands, key=lambda h: (self.boundary_len(g, h), -h)))
        return True

    def _take(self, g: int) -> bool:
        """Take a boundary unit into grid *g* (below) from a neighbour that can spare it."""
        hh, tot, lo, hi = self.hh, self.tot, self.lo, self.hi
        moves = []
        for u in self.grids[g]:
            for w, (ln, _) in self.comm.nbrs[u].items():
                lw = self.label.get(w)
                if lw is not None and lw != g and tot[lw] - hh[w] >= lo and tot[g] + hh[w] <= hi:
                    moves.append((-ln, w, lw))
        for _ln, w, h in sorted(moves):
            if self.label[w] == h and tot[h] - hh[w] >= lo and tot[g] + hh[w] <= hi \
                    and self.stays_connected(h, w):
                self.move(w, h, g)
                return True
        return False

    def _give(self, g: int) -> bool:
        """Hand a boundary unit of grid *g* (above) to a neighbour with room."""
        hh, tot, lo, hi = self.hh, self.tot, self.lo, self.hi
        moves = []
        for u in self.grids[g]:
            for w, (ln, _) in self.comm.nbrs[u].items():
                lw = self.label.get(w)
                if lw is not None and lw != g and hh[u] > 0 and tot[lw] + hh[u] <= hi \
                        and tot[g] - hh[u] >= lo:
                    moves.append((-ln, u, lw))
        for _ln, u, h in sorted(moves):
            if self.label[u] == g and tot[h] + hh[u] <= hi and tot[g] - hh[u] >= lo \
                    and self.stays_connected(g, u):
                self.move(u, g, h)
                return True
        return False

    def _merge_closer(self, g: int) -> bool:
        """Merge grid *g* (below) into the neighbour that brings the pair closest to the band."""
        tot, lo, hi = self.tot, self.lo, self.hi
        best: tuple[float, float, int] | None = None
        for h in self.neighbours(g):
            if tot[h] > hi:  # never onto a grid already above (a building above the maximum stays alone)
                continue
            gain = _off(tot[g], lo, hi) + _off(tot[h], lo, hi) - _off(tot[g] + tot[h], lo, hi)
            if gain > 0:
                key = (-gain, -self.boundary_len(g, h), h)
                if best is None or key < best:
                    best = key
        if best is None:
            return False
        self.merge(g, best[2])
        return True

    def _enclaves(self) -> None:
        """Move a unit whose every same-community edge touches one other grid into that grid."""
        for u in sorted(self.label):
            owners = {self.label[w] for w in self.comm.nbrs[u]}
            if len(owners) == 1:
                h = owners.pop()
                g = self.label[u]
                if h != g and self.comm.outer_len.get(u, 0.0) <= 1e-9 and self.stays_connected(g, u):
                    self.move(u, g, h)

    def run(self) -> list[set[int]]:
        grids = self.grids
        for _ in range(4 * len(grids) + 4):
            changed = False
            for g in range(len(grids)):
                if not grids[g]:
                    continue
                if self.tot[g] < self.lo:
                    changed |= self._merge_in_band(g) or self._take(g)
                elif self.tot[g] > self.hi and len(grids[g]) > 1:
                    changed |= self._give(g)
            if not changed:
                # last resort for a grid under the band: the merge that brings the pair closer
                changed = any(grids[g] and self.tot[g] < self.lo and self._merge_closer(g)
                              for g in range(len(grids)))
            if not changed:
                break
        self._enclaves()
        return [s for s in grids if s]


def _repair(comm: _Community, grids: list[set[int]], lo: int, hi: int) -> list[set[int]]:
    return _Repair(comm, grids, lo, hi).run()


def _solve(comm: _Community, part: set[int], k: int, lo: int, hi: int) -> list[set[int]]:
    grids = [set(g) for g in comm.bisect(sorted(part), k, lo, hi)]
    return _repair(comm, grids, lo, hi)


def _n_off_band(grids: list[set[int]], hh: list[float], lo: int, hi: int) -> int:
    return sum(1 for g in grids if not lo <= sum(hh[u] for u in g) <= hi)


#: Reasons a grid stays outside the band (``band_reason`` starts with one of these codes).
REASONS = {
    "community_smaller_than_band": "the whole community has fewer households than the band's minimum",
    "no_neighbour_in_community": "a detached part of its community: no neighbouring grid to merge with",
    "merge_would_leave_band": ("no merge with a neighbour in the community (none above the band) "
                               "gets closer to it"),
    "single_building_over_max": "one building holds more households than the band's maximum",
    "unit_over_max_not_split": "an atomic unit above the maximum, and units may not be split",
    "unit_over_max_after_split": "a piece of a split unit is above the maximum (large buildings)",
    "too_few_households_for_two_grids": "above the maximum but too few households for two grids in band",
    "no_contiguous_split": "no contiguous split of the part into the band was found at unit level",
}
#: Per-unit flags passed to :func:`partition_units` (why a unit above the maximum stays whole).
UNIT_SINGLE_BUILDING, UNIT_NOT_SPLIT, UNIT_SPLIT_SHORT = 1, 2, 3


def _note(g: set[int], grids: list[set[int]], h_comm: float, h_part: float, comm: _Community,
          flags: np.ndarray | None, lo: int, hi: int) -> GridNote:
    hh = comm.hh
    tot = sum(hh[u] for u in g)
    if lo <= tot <= hi:
        return GridNote("ok", "")
    if tot < lo:
        has_nbr = any(w not in g for u in g for w in comm.nbrs[u])
        if h_comm < lo:
            code, text = "community_smaller_than_band", f"community has only {h_comm:.0f} households"
        elif not has_nbr:
            code, text = "no_neighbour_in_community", (f"{tot:.0f} households, no neighbour in its "
                                                       f"community ({h_comm:.0f} households)")
        else:
            code, text = "merge_would_leave_band", (f"{tot:.0f} households: a merge with any neighbour "
                                                    f"would end farther from {lo}-{hi}")
        return GridNote("below", f"{code}: {text}")
    big = max(g, key=lambda u: hh[u])
    flag = int(flags[big]) if flags is not None else 0
    if hh[big] > hi and flag == UNIT_SINGLE_BUILDING:
        code, text = "single_building_over_max", (f"a unit of {hh[big]:.0f} households whose largest "
                                                  f"building alone is above {hi}")
    elif hh[big] > hi and hh[big] < 2 * lo:
        code, text = "too_few_households_for_two_grids", (f"a unit of {hh[big]:.0f} households cannot be "
                                                          f"split into two grids of {lo}-{hi}")
    elif hh[big] > hi and flag == UNIT_SPLIT_SHORT:
        code, text = "unit_over_max_after_split", (f"a piece of a split unit has {hh[big]:.0f} households "
                                                   "(its buildings cannot be grouped into the band)")
    elif hh[big] > hi:
        code, text = "unit_over_max_not_split", f"a single atomic unit has {hh[big]:.0f} households"
    elif len(grids) == 1 and choose_k(h_part, lo, hi) == 1:
        code, text = "too_few_households_for_two_grids", (f"{tot:.0f} households cannot be split into two "
                                                          f"grids of {lo}-{hi}")
    else:
        code, text = "no_contiguous_split", (f"{tot:.0f} households: no contiguous split of {h_part:.0f} "
                                             f"households into {lo}-{hi} found at unit level")
    return GridNote("above", f"{code}: {text}")


def partition_units(
    community: np.ndarray,
    households: np.ndarray,
    residents: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    adj: pd.DataFrame,
    outer_len: np.ndarray,
    **band: Unpack[Band],
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
    flags
        Optional per-unit :data:`UNIT_SINGLE_BUILDING` / :data:`UNIT_NOT_SPLIT` /
        :data:`UNIT_SPLIT_SHORT` (why a unit above the maximum is whole), for the reasons of grids
        above the band.

    Returns
    -------
    labels : ndarray of int
        Grid label per unit (0..n_grids-1, ordered by first unit).
    notes : dict
        Grid label → :class:`GridNote`; ``reason`` starts with a code of :data:`REASONS`.

    Examples
    --------
    A strip of four units of 200 households each becomes two grids of 400:

    >>> adj = pd.DataFrame({"a": [0, 1, 2], "b": [1, 2, 3], "length": 1.0, "cost": 1.0})
    >>> lab, notes = partition_units(np.zeros(4, int), np.full(4, 200), np.full(4, 500),
    ...     np.arange(4.0), np.zeros(4), adj, np.ones(4), households_min=300, households_max=500)
    >>> lab.tolist(), sorted({n.status for n in notes.values()})
    ([0, 0, 1, 1], ['ok'])

    """
    flags = band.get("flags")
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
    lo, hi = int(band["households_min"]), int(band["households_max"])
    for _key, idx in order:
        nodes = idx.to_numpy()
        comm = _Community(nodes, hh_l, res_l, xy, nbrs,
                          {int(u): float(outer_len[u]) for u in nodes})
        parts = comm.connected_parts({int(u) for u in nodes})
        h_comm = float(hh[nodes].sum())
        for part in parts:
            h_part = float(sum(hh_l[u] for u in part))
            k = choose_k(h_part, lo, hi)
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
                labels[sorted(g)] = next_label
                notes[next_label] = _note(g, grids, h_comm, h_part, comm, flags, lo, hi)
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
