"""Private engine of :mod:`gridplan.balance`: greedy boundary moves with lazy re-evaluation.

State: every atomic unit belongs to one grid (``grid_of``); each grid has a workload ``W``, staff
``S`` (fixed during a search round), households ``H``, area ``A`` and perimeter ``P``.  The objective
is ``F = Σ_g (W_g / S_g − m)²`` with ``m`` = city-wide workload per worker (constant: moves and
re-apportioning keep both totals).  A candidate move sends a boundary unit ``u`` of grid ``a`` to an
adjacent grid ``b`` of the same community (the graph only links units of one community); its score
is the reduction of ``F`` per unit of disruption (households + ``address_weight`` × addresses + 1).

Candidates sit in a max-heap keyed by score, stamped with the versions of both grids; a move bumps
the versions of its two grids and re-pushes the candidates touching them, so stale entries are
dropped on pop (lazy greedy).  Constraints checked before a move is applied:

* donor keeps ≥ 1 unit and does not fall apart (BFS among the donor's other units from one of ``u``'s
  neighbours in the donor must reach all the others — i.e. ``u`` is not an articulation point); the
  receiver stays connected because ``u`` touches it;
* household band: neither grid leaves the band, nor moves further from it;
* compactness (Polsby–Popper) of both grids stays ≥ the floor, or does not get worse;
* each unit moves at most once, and the households moved stay within the budget.

The search stops as soon as the city-wide CV of workload per worker reaches the target.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

import numpy as np

from gridplan.balance.graph import UnitGraph


@dataclass
class SearchState:
    """Mutable state shared by successive search rounds (arrays are per unit or per grid)."""

    graph: UnitGraph
    grid_of: np.ndarray  # unit → grid number (−1: not in any grid; never moves)
    wl: np.ndarray  # unit workload
    hh: np.ndarray  # unit households
    addr: np.ndarray  # unit standard addresses
    area: np.ndarray  # unit area m²
    perim: np.ndarray  # unit perimeter m
    W: np.ndarray  # grid workload
    H: np.ndarray  # grid households
    A: np.ndarray  # grid area
    P: np.ndarray  # grid perimeter
    members: list[set[int]]
    locked: np.ndarray  # unit already moved
    tiebreak: np.ndarray  # seeded random key per unit
    hh_moved: float = 0.0
    moves: list[tuple[int, int, int, float, float, str]] = field(default_factory=list)


@dataclass(frozen=True)
class SearchParams:
    """Constraints and stopping rules of a search round."""

    households_min: float
    households_max: float
    min_compactness: float
    target_cv: float
    max_households_moved: float
    address_weight: float = 0.2
    swaps: bool = True
    pp_floor: np.ndarray | None = None  # per-grid compactness floor (overrides min_compactness)


def _band_dist(x: float, lo: float, hi: float) -> float:
    return max(lo - x, 0.0, x - hi)


def _cv(wpw: np.ndarray) -> float:
    mu = float(wpw.mean()) if len(wpw) else 0.0
    return float(wpw.std() / mu) if mu > 0 else 0.0


def refine_staff(
    W: np.ndarray,
    S: np.ndarray,
    group: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    m: float,
    weight: np.ndarray | None = None,
) -> np.ndarray:
    """Move single workers between grids of the same group while Σ weight·(W/S − m)² drops.

    Group totals (the community's apportioned staff) are kept; each transfer takes a worker from the
    grid that loses least by it and gives it to the grid that gains most, within the bounds.  With
    *weight* the rows may be communities standing for ``weight`` grids each (see
    :func:`gridplan.balance.staffing.community_totals`).
    """
    S = S.astype(np.int64).copy()
    W = W.astype(float)
    k = np.ones(len(W)) if weight is None else np.asarray(weight, dtype=float)

    def f(w: np.ndarray, s: np.ndarray, kk: np.ndarray) -> np.ndarray:
        return kk * np.square(w / np.maximum(s, 1) - m)

    order = np.argsort(group, kind="stable")
    g_sorted = np.asarray(group)[order]
    cuts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1], True])
    for a, b in itertools.pairwise(cuts):
        idx = order[a:b]
        if len(idx) < 2:
            continue
        for _ in range(int(S[idx].sum()) * 2):
            w, s, kk = W[idx], S[idx], k[idx]
            base = f(w, s, kk)
            add = np.where(s < hi[idx], base - f(w, s + 1, kk), -np.inf)  # gain of one more worker
            rem = np.where(s > lo[idx], base - f(w, s - 1, kk), -np.inf)  # gain (≤0 mostly) of one fewer
            j = int(np.argmax(add))
            rem_j = rem.copy()
            rem_j[j] = -np.inf
            i = int(np.argmax(rem_j))
            if not np.isfinite(add[j]) or not np.isfinite(rem_j[i]) or add[j] + rem_j[i] <= 1e-9 * m * m:
                break
            S[idx[j]] += 1
            S[idx[i]] -= 1
    return S


def run_round(st: SearchState, S: np.ndarray, prm: SearchParams) -> int:
    """Apply greedy moves with staff *S* fixed until the target CV or no improving move; return count."""
    return _Round(st, S, prm).run()


_Candidate = tuple[float, float, int, int, int, int, int]  # -gain/cost, tiebreak, unit, to, from, versions


class _Round:
    """One round of the lazy greedy: a heap of single-unit moves, then swaps, with staff fixed.

    Each move kind is a method: :meth:`single_moves` (give a boundary unit to a neighbour) and
    :meth:`swap_phase` (exchange two boundary units).  Both check the same rules — the grids stay
    contiguous (:meth:`stays_connected`), in the household band or not further out, and compact
    enough (:meth:`pp_ok`) — and apply through :meth:`apply`, which keeps the running sums exact.
    """

    def __init__(self, st: SearchState, S: np.ndarray, prm: SearchParams) -> None:
        self.st, self.prm = st, prm
        self.S = S.astype(float)
        self.m = float(st.W.sum() / self.S.sum())
        self.ver = np.zeros(len(st.W), dtype=np.int64)
        wpw = st.W / self.S
        self.s1, self.s2 = float(wpw.sum()), float(np.square(wpw).sum())
        self.heap: list[_Candidate] = []
        self.eps = 1e-12 * max(self.m, 1.0) ** 2
        self.conn_cache: dict[tuple[int, int, int], bool] = {}
        self.n_moves = 0

    # ---- shared rules ---------------------------------------------------------------------------
    def neighbours(self, u: int) -> np.ndarray:
        g = self.st.graph
        return g.indices[g.indptr[u] : g.indptr[u + 1]]

    def shared(self, u: int) -> np.ndarray:
        g = self.st.graph
        return g.shared_m[g.indptr[u] : g.indptr[u + 1]]

    def cv_now(self) -> float:
        n_g = len(self.st.W)
        mu = self.s1 / n_g
        var = max(self.s2 / n_g - mu * mu, 0.0)
        return float(np.sqrt(var) / mu) if mu > 0 else 0.0

    def band_ok(self, g: int, dh: float) -> bool:
        """Grid *g* gaining *dh* households stays in the band, or gets no further out of it."""
        lo, hi, H = self.prm.households_min, self.prm.households_max, self.st.H
        return _band_dist(H[g] + dh, lo, hi) <= _band_dist(H[g], lo, hi) + 1e-9

    def stays_connected(self, u: int, a: int) -> bool:
        key = (u, a, int(self.ver[a]))
        hit = self.conn_cache.get(key)
        if hit is None:
            hit = self.conn_cache[key] = self._stays_connected(u, a)
        return hit

    def _stays_connected(self, u: int, a: int) -> bool:
        grid_of = self.st.grid_of
        nb = [int(v) for v in self.neighbours(u) if grid_of[v] == a]
        if len(nb) <= 1:
            return True
        targets = set(nb[1:])
        stack, seen = [nb[0]], {nb[0], u}
        while stack and targets:
            x = stack.pop()
            for y in self.neighbours(x):
                y = int(y)
                if y in seen or grid_of[y] != a:
                    continue
                seen.add(y)
                targets.discard(y)
                stack.append(y)
        return not targets

    def pp_ok(self, g: int, a0: float, p0: float, a1: float, p1: float) -> bool:
        prm = self.prm
        new = 4 * np.pi * a1 / (p1 * p1) if p1 > 0 else 0.0
        old = 4 * np.pi * a0 / (p0 * p0) if p0 > 0 else 0.0
        floor = prm.min_compactness if prm.pp_floor is None else prm.pp_floor[g]
        return not (new < floor and new < old - 1e-9)

    def lens_to(self, u: int, g: int) -> float:
        return float(self.shared(u)[self.st.grid_of[self.neighbours(u)] == g].sum())

    def apply(self, u: int, a: int, b: int, pa: float, pb: float, note: str = "") -> None:
        """Move unit *u* from grid *a* to *b* (perimeters *pa*, *pb* after), updating every sum."""
        st, S, m = self.st, self.S, self.m
        W, H, A, P = st.W, st.H, st.A, st.P
        w, h = st.wl[u], st.hh[u]
        st.moves.append((u, a, b, (W[a] / S[a]) / m, (W[b] / S[b]) / m, note))
        old_a, old_b = W[a] / S[a], W[b] / S[b]
        W[a] -= w
        W[b] += w
        new_a, new_b = W[a] / S[a], W[b] / S[b]
        self.s1 += new_a + new_b - old_a - old_b
        self.s2 += new_a * new_a + new_b * new_b - old_a * old_a - old_b * old_b
        H[a] -= h
        H[b] += h
        A[a] -= st.area[u]
        A[b] += st.area[u]
        P[a], P[b] = pa, pb
        st.members[a].discard(u)
        st.members[b].add(u)
        st.grid_of[u] = b
        st.locked[u] = True
        st.hh_moved += h
        self.ver[a] += 1
        self.ver[b] += 1
        self.n_moves += 1
        self.push_around(a)
        self.push_around(b)

    def run(self) -> int:
        st = self.st
        for g in range(len(st.W)):
            # initial candidates: every boundary pair, pushed once per (unit, target grid)
            for u in st.members[g]:
                targets = {int(st.grid_of[v]) for v in self.neighbours(u)} - {g, -1}
                for b in sorted(targets):
                    self.push(u, g, b)
        while True:
            self.single_moves()
            if self.cv_now() <= self.prm.target_cv or not self.prm.swaps or self.swap_phase() == 0:
                break
        return self.n_moves

    # ---- move kind 1: give a boundary unit to a neighbour ----------------------------------------
    def push(self, u: int, a: int, b: int) -> None:
        st, S, m = self.st, self.S, self.m
        if st.locked[u]:
            return
        w = st.wl[u]
        ra, rb = st.W[a] / S[a] - m, st.W[b] / S[b] - m
        gain = ra * ra + rb * rb - (ra - w / S[a]) ** 2 - (rb + w / S[b]) ** 2
        if gain <= self.eps:
            return
        h = st.hh[u]
        if not (self.band_ok(a, -h) and self.band_ok(b, h)):
            return
        cost = h + self.prm.address_weight * st.addr[u] + 1.0
        entry = (-gain / cost, float(st.tiebreak[u]), u, b, a, int(self.ver[a]), int(self.ver[b]))
        heapq.heappush(self.heap, entry)

    def _borders(self, g: int) -> tuple[dict[int, set[int]], dict[int, set[int]]]:
        """Boundary units of *g* per neighbouring grid c, and the units of c that touch g."""
        out_of: dict[int, set[int]] = {}
        into: dict[int, set[int]] = {}
        for u in self.st.members[g]:
            for v in self.neighbours(u):
                c = int(self.st.grid_of[v])
                if c < 0 or c == g:
                    continue
                out_of.setdefault(c, set()).add(u)
                into.setdefault(c, set()).add(int(v))
        return out_of, into

    def push_around(self, g: int) -> None:
        W, S, m = self.st.W, self.S, self.m
        out_of, into = self._borders(g)
        rg = (W[g] / S[g] - m) / S[g]
        for c, us in out_of.items():
            rc = (W[c] / S[c] - m) / S[c]
            # F is convex along a move, so only the downhill direction can gain: g→c iff rg > rc
            if rg > rc:
                for u in us:
                    self.push(u, g, c)
            elif rc > rg:
                for v in into[c]:
                    self.push(v, c, g)

    def compact_ok(self, u: int, a: int, b: int) -> tuple[bool, float, float]:
        st = self.st
        A, P = st.A, st.P
        pa = P[a] - st.perim[u] + 2 * self.lens_to(u, a)
        pb = P[b] + st.perim[u] - 2 * self.lens_to(u, b)
        aa, ab = A[a] - st.area[u], A[b] + st.area[u]
        return self.pp_ok(a, A[a], P[a], aa, pa) and self.pp_ok(b, A[b], P[b], ab, pb), pa, pb

    def single_moves(self) -> None:
        st, prm = self.st, self.prm
        while self.heap and self.cv_now() > prm.target_cv:
            _, _, u, b, a, va, vb = heapq.heappop(self.heap)
            if st.grid_of[u] != a or self.ver[a] != va or self.ver[b] != vb or st.locked[u]:
                continue
            if st.hh_moved + st.hh[u] > prm.max_households_moved + 1e-9:
                continue
            if len(st.members[a]) <= 1 or not self.stays_connected(u, a):
                continue
            ok, pa, pb = self.compact_ok(u, a, b)
            if ok:
                self.apply(u, a, b, pa, pb)

    # ---- move kind 2: swap a boundary unit of a loaded grid for a lighter one --------------------
    def swap_phase(self) -> int:
        """Exchange a boundary unit of a loaded grid for a lighter one of its neighbour.

        Swaps shift workload while keeping households nearly equal, so they balance grids that the
        household band stops from simply giving a unit away.
        """
        done = 0
        W, S, m = self.st.W, self.S, self.m
        dev = np.abs(W / S - m)
        for a in np.argsort(-dev, kind="stable"):
            a = int(a)
            if self.cv_now() <= self.prm.target_cv or dev[a] < 0.005 * m:
                break  # grids within 0.5 % of the mean are not worth a swap
            cands = self._swap_candidates(a)
            cands.sort(key=lambda t: (-t[0], self.st.tiebreak[t[1]], self.st.tiebreak[t[2]]))
            for _, u, v, c in cands[:20]:
                if self._try_swap(u, v, a, c):
                    done += 1
                    break
        return done

    def _swap_candidates(self, a: int) -> list[tuple[float, int, int, int]]:
        """(gain per cost, u of *a*, v of c, c) for every legal-looking exchange across a's border."""
        st, S, m, prm = self.st, self.S, self.m, self.prm
        W = st.W
        ra = W[a] / S[a] - m
        cands: list[tuple[float, int, int, int]] = []
        out_of, into = self._borders(a)
        for c, us in out_of.items():
            rc = W[c] / S[c] - m
            if ra / S[a] <= rc / S[c]:
                continue
            for u in (u for u in us if not st.locked[u]):
                for v in (v for v in into[c] if not st.locked[v]):
                    d = st.wl[u] - st.wl[v]
                    if d <= 0:
                        continue
                    gain = ra * ra + rc * rc - (ra - d / S[a]) ** 2 - (rc + d / S[c]) ** 2
                    dh = st.hh[u] - st.hh[v]
                    if gain <= self.eps or not (self.band_ok(a, -dh) and self.band_ok(c, dh)):
                        continue
                    moved_hh = st.hh[u] + st.hh[v]
                    if st.hh_moved + moved_hh > prm.max_households_moved + 1e-9:
                        continue
                    cost = moved_hh + prm.address_weight * (st.addr[u] + st.addr[v]) + 2.0
                    cands.append((gain / cost, u, v, c))
        return cands

    def _touches(self, x: int, g: int, other_than: int) -> bool:
        return any(self.st.grid_of[y] == g and y != other_than for y in self.neighbours(x))

    def _try_swap(self, u: int, v: int, a: int, c: int) -> bool:
        """Exchange *u* (of *a*) and *v* (of *c*) if both grids stay contiguous and compact."""
        st = self.st
        A, P = st.A, st.P
        if not (self._touches(v, a, u) and self._touches(u, c, v)):
            return False
        if not (self.stays_connected(u, a) and self.stays_connected(v, c)):
            return False
        luv = float(self.shared(u)[self.neighbours(u) == v].sum())
        lua, luc, lva, lvc = self.lens_to(u, a), self.lens_to(u, c), self.lens_to(v, a), self.lens_to(v, c)
        pa1 = P[a] - st.perim[u] + 2 * lua
        pc1 = P[c] + st.perim[u] - 2 * luc
        pa2 = pa1 + st.perim[v] - 2 * (lva - luv)
        pc2 = pc1 - st.perim[v] + 2 * (lvc + luv)
        aa2 = A[a] - st.area[u] + st.area[v]
        ac2 = A[c] + st.area[u] - st.area[v]
        if not (self.pp_ok(a, A[a], P[a], aa2, pa2) and self.pp_ok(c, A[c], P[c], ac2, pc2)):
            return False
        self.apply(u, a, c, pa1, pc1, note=f"swap:{v}")
        self.apply(v, c, a, pc2, pa2, note=f"swap:{u}")
        return True
