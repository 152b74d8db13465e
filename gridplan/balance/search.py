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
    W: np.ndarray, S: np.ndarray, group: np.ndarray, lo: np.ndarray, hi: np.ndarray, m: float
) -> np.ndarray:
    """Move single workers between grids of the same group while Σ (W/S − m)² drops.

    Group totals (the community's apportioned staff) are kept; each transfer takes a worker from the
    grid that loses least by it and gives it to the grid that gains most, within the bounds.
    """
    S = S.astype(np.int64).copy()
    W = W.astype(float)

    def f(w: np.ndarray, s: np.ndarray) -> np.ndarray:
        return np.square(w / np.maximum(s, 1) - m)

    order = np.argsort(group, kind="stable")
    g_sorted = np.asarray(group)[order]
    cuts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1], True])
    for a, b in itertools.pairwise(cuts):
        idx = order[a:b]
        if len(idx) < 2:
            continue
        for _ in range(int(S[idx].sum()) * 2):
            w, s = W[idx], S[idx]
            base = f(w, s)
            add = np.where(s < hi[idx], base - f(w, s + 1), -np.inf)  # gain of one more worker
            rem = np.where(s > lo[idx], base - f(w, s - 1), -np.inf)  # gain (≤0 mostly) of one fewer
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
    graph, grid_of = st.graph, st.grid_of
    indptr, indices, shared = graph.indptr, graph.indices, graph.shared_m
    W, H, A, P = st.W, st.H, st.A, st.P
    S = S.astype(float)
    m = W.sum() / S.sum()
    n_g = len(W)
    ver = np.zeros(n_g, dtype=np.int64)
    wpw = W / S
    s1, s2 = float(wpw.sum()), float(np.square(wpw).sum())
    lo, hi = prm.households_min, prm.households_max
    heap: list[tuple[float, float, int, int, int, int, int]] = []
    eps = 1e-12 * max(m, 1.0) ** 2

    def cv_now() -> float:
        mu = s1 / n_g
        var = max(s2 / n_g - mu * mu, 0.0)
        return float(np.sqrt(var) / mu) if mu > 0 else 0.0

    def push(u: int, a: int, b: int) -> None:
        if st.locked[u]:
            return
        w = st.wl[u]
        ra, rb = W[a] / S[a] - m, W[b] / S[b] - m
        gain = ra * ra + rb * rb - (ra - w / S[a]) ** 2 - (rb + w / S[b]) ** 2
        if gain <= eps:
            return
        h = st.hh[u]
        if _band_dist(H[a] - h, lo, hi) > _band_dist(H[a], lo, hi) + 1e-9:
            return
        if _band_dist(H[b] + h, lo, hi) > _band_dist(H[b], lo, hi) + 1e-9:
            return
        cost = h + prm.address_weight * st.addr[u] + 1.0
        heapq.heappush(heap, (-gain / cost, float(st.tiebreak[u]), u, b, a, int(ver[a]), int(ver[b])))

    def push_around(g: int) -> None:
        # boundary units of g per neighbouring grid c, and the units of c that touch g
        out_of: dict[int, set[int]] = {}
        into: dict[int, set[int]] = {}
        for u in st.members[g]:
            for v in indices[indptr[u] : indptr[u + 1]]:
                c = int(grid_of[v])
                if c < 0 or c == g:
                    continue
                out_of.setdefault(c, set()).add(u)
                into.setdefault(c, set()).add(int(v))
        rg = (W[g] / S[g] - m) / S[g]
        for c, us in out_of.items():
            rc = (W[c] / S[c] - m) / S[c]
            # F is convex along a move, so only the downhill direction can gain: g→c iff rg > rc
            if rg > rc:
                for u in us:
                    push(u, g, c)
            elif rc > rg:
                for v in into[c]:
                    push(v, c, g)

    conn_cache: dict[tuple[int, int, int], bool] = {}

    def stays_connected(u: int, a: int) -> bool:
        key = (u, a, int(ver[a]))
        hit = conn_cache.get(key)
        if hit is None:
            hit = conn_cache[key] = _stays_connected(u, a)
        return hit

    def _stays_connected(u: int, a: int) -> bool:
        nb = [int(v) for v in indices[indptr[u] : indptr[u + 1]] if grid_of[v] == a]
        if len(nb) <= 1:
            return True
        targets = set(nb[1:])
        stack, seen = [nb[0]], {nb[0], u}
        while stack and targets:
            x = stack.pop()
            for y in indices[indptr[x] : indptr[x + 1]]:
                y = int(y)
                if y in seen or grid_of[y] != a:
                    continue
                seen.add(y)
                targets.discard(y)
                stack.append(y)
        return not targets

    def pp_ok(g: int, a0: float, p0: float, a1: float, p1: float) -> bool:
        new = 4 * np.pi * a1 / (p1 * p1) if p1 > 0 else 0.0
        old = 4 * np.pi * a0 / (p0 * p0) if p0 > 0 else 0.0
        floor = prm.min_compactness if prm.pp_floor is None else prm.pp_floor[g]
        return not (new < floor and new < old - 1e-9)

    def compact_ok(u: int, a: int, b: int) -> tuple[bool, float, float]:
        nbrs, lens = indices[indptr[u] : indptr[u + 1]], shared[indptr[u] : indptr[u + 1]]
        g = grid_of[nbrs]
        la, lb = float(lens[g == a].sum()), float(lens[g == b].sum())
        pa, pb = P[a] - st.perim[u] + 2 * la, P[b] + st.perim[u] - 2 * lb
        aa, ab = A[a] - st.area[u], A[b] + st.area[u]
        if not (pp_ok(a, A[a], P[a], aa, pa) and pp_ok(b, A[b], P[b], ab, pb)):
            return False, pa, pb
        return True, pa, pb

    for g in range(n_g):
        # initial candidates: every boundary pair, pushed once per (unit, target grid)
        for u in st.members[g]:
            targets = {int(grid_of[v]) for v in indices[indptr[u] : indptr[u + 1]]} - {g, -1}
            for b in sorted(targets):
                push(u, g, b)

    n_moves = 0

    def apply(u: int, a: int, b: int, pa: float, pb: float, note: str = "") -> None:
        nonlocal s1, s2, n_moves
        w, h = st.wl[u], st.hh[u]
        st.moves.append((u, a, b, (W[a] / S[a]) / m, (W[b] / S[b]) / m, note))
        old_a, old_b = W[a] / S[a], W[b] / S[b]
        W[a] -= w
        W[b] += w
        new_a, new_b = W[a] / S[a], W[b] / S[b]
        s1 += new_a + new_b - old_a - old_b
        s2 += new_a * new_a + new_b * new_b - old_a * old_a - old_b * old_b
        H[a] -= h
        H[b] += h
        A[a] -= st.area[u]
        A[b] += st.area[u]
        P[a], P[b] = pa, pb
        st.members[a].discard(u)
        st.members[b].add(u)
        grid_of[u] = b
        st.locked[u] = True
        st.hh_moved += h
        ver[a] += 1
        ver[b] += 1
        n_moves += 1
        push_around(a)
        push_around(b)

    def single_moves() -> None:
        while heap and cv_now() > prm.target_cv:
            _, _, u, b, a, va, vb = heapq.heappop(heap)
            if grid_of[u] != a or ver[a] != va or ver[b] != vb or st.locked[u]:
                continue
            if st.hh_moved + st.hh[u] > prm.max_households_moved + 1e-9:
                continue
            if len(st.members[a]) <= 1 or not stays_connected(u, a):
                continue
            ok, pa, pb = compact_ok(u, a, b)
            if ok:
                apply(u, a, b, pa, pb)

    def lens_to(u: int, g: int) -> float:
        nb = indices[indptr[u] : indptr[u + 1]]
        return float(shared[indptr[u] : indptr[u + 1]][grid_of[nb] == g].sum())

    def len_between(u: int, v: int) -> float:
        nb = indices[indptr[u] : indptr[u + 1]]
        return float(shared[indptr[u] : indptr[u + 1]][nb == v].sum())

    def touches(x: int, g: int, other_than: int) -> bool:
        return any(grid_of[y] == g and y != other_than for y in indices[indptr[x] : indptr[x + 1]])

    def swap_phase() -> int:
        """Exchange a boundary unit of a loaded grid for a lighter one of its neighbour.

        Swaps shift workload while keeping households nearly equal, so they balance grids that the
        household band stops from simply giving a unit away.
        """
        done = 0
        dev = np.abs(W / S - m)
        for a in np.argsort(-dev, kind="stable"):
            a = int(a)
            if cv_now() <= prm.target_cv or dev[a] < 0.005 * m:
                break  # grids within 0.5 % of the mean are not worth a swap
            ra = W[a] / S[a] - m
            cands: list[tuple[float, int, int, int]] = []
            out_of: dict[int, set[int]] = {}
            into: dict[int, set[int]] = {}
            for u in st.members[a]:
                for v in indices[indptr[u] : indptr[u + 1]]:
                    c = int(grid_of[v])
                    if c >= 0 and c != a:
                        out_of.setdefault(c, set()).add(u)
                        into.setdefault(c, set()).add(int(v))
            for c, us in out_of.items():
                rc = W[c] / S[c] - m
                if ra / S[a] <= rc / S[c]:
                    continue
                for u in us:
                    if st.locked[u]:
                        continue
                    for v in into[c]:
                        if st.locked[v]:
                            continue
                        d = st.wl[u] - st.wl[v]
                        if d <= 0:
                            continue
                        gain = ra * ra + rc * rc - (ra - d / S[a]) ** 2 - (rc + d / S[c]) ** 2
                        if gain <= eps:
                            continue
                        dh = st.hh[u] - st.hh[v]
                        if _band_dist(H[a] - dh, lo, hi) > _band_dist(H[a], lo, hi) + 1e-9:
                            continue
                        if _band_dist(H[c] + dh, lo, hi) > _band_dist(H[c], lo, hi) + 1e-9:
                            continue
                        moved_hh = st.hh[u] + st.hh[v]
                        if st.hh_moved + moved_hh > prm.max_households_moved + 1e-9:
                            continue
                        cost = moved_hh + prm.address_weight * (st.addr[u] + st.addr[v]) + 2.0
                        cands.append((gain / cost, u, v, c))
            cands.sort(key=lambda t: (-t[0], st.tiebreak[t[1]], st.tiebreak[t[2]]))
            for _, u, v, c in cands[:20]:
                if not (touches(v, a, u) and touches(u, c, v)):
                    continue
                if not (stays_connected(u, a) and stays_connected(v, c)):
                    continue
                luv = len_between(u, v)
                lua, luc, lva, lvc = lens_to(u, a), lens_to(u, c), lens_to(v, a), lens_to(v, c)
                pa1 = P[a] - st.perim[u] + 2 * lua
                pc1 = P[c] + st.perim[u] - 2 * luc
                pa2 = pa1 + st.perim[v] - 2 * (lva - luv)
                pc2 = pc1 - st.perim[v] + 2 * (lvc + luv)
                aa2 = A[a] - st.area[u] + st.area[v]
                ac2 = A[c] + st.area[u] - st.area[v]
                if not (pp_ok(a, A[a], P[a], aa2, pa2) and pp_ok(c, A[c], P[c], ac2, pc2)):
                    continue
                apply(u, a, c, pa1, pc1, note=f"swap:{v}")
                apply(v, c, a, pc2, pa2, note=f"swap:{u}")
                done += 1
                break
        return done

    while True:
        single_moves()
        if cv_now() <= prm.target_cv or not prm.swaps or swap_phase() == 0:
            break
    return n_moves
