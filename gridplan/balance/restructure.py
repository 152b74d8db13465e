"""Private engine of :mod:`gridplan.balance`: split and merge grids as moves of a proposal.

Unit moves cannot help a grid whose workload needs more workers than ``max_staff`` allows, nor a grid
with almost no workload that still takes one worker: integer staffing of those grids is off however
the boundary units are shuffled.  Two structural moves fix them, both along atomic units and inside
one community (the unit graph only links units of one community):

* **merge** two adjacent grids of a community (the one with fewer households gives up its code,
  which is retired) when the merged grid is no further out of the household band than the two
  were in total;
* **redraw** the boundary of two adjacent grids of a community: their units re-bisected as one
  (a merge and a split in one step, many unit moves at once), the side sharing more households
  with a grid keeping its code, the two grids no further out of the band in total;
* **split** a grid in two contiguous grids by a graph bisection balanced by workload: units ordered
  along the grid's principal axes and breadth-first from a peripheral unit, every prefix cut scored,
  the best cut whose two sides are both rook-connected kept.  Sides in the household band are
  preferred; a split may only leave the band (or go further out) when the grid needs more than
  ``max_staff`` workers.  The side with fewer households gets a new code.

Both are scored by the staffing error ``e(W) = (W / s(W) − m)² / m²`` with ``s(W)`` the rounded
ideal staff ``W / m`` clipped to the staff bounds and ``m`` the city workload per worker: a greedy
applies the structural move with the largest drop of Σe per household that changes code (+1), within
the households budget, until none gains.  New codes never reuse one used or retired before: the next
free three-digit sequence after the highest ever seen in the community (:class:`CodeBook`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np
import shapely

from gridplan.balance.graph import UnitGraph
from gridplan.balance.units import Units

__all__ = ["CodeBook", "StructOp", "StructParams", "Structure", "restructure"]

_Cand = tuple[float, float, tuple[int, ...], tuple[str, int, int, "np.ndarray | None"]]
_MIN_GAIN = 1e-3  # in units of m²: smaller gains are not worth a new or a retired grid code


class CodeBook:
    """Grid codes ever used (current and retired); hands out fresh ``<community><seq:03d>`` codes."""

    def __init__(self, used: Iterable[str]) -> None:
        self.used = {str(c) for c in used if c}

    def new(self, like: str) -> str | None:
        """Return a new code with the prefix of *like* (its community), or ``None`` when none is left."""
        prefix, width = like[:-3], len(like)
        seqs = [
            int(c[-3:]) for c in self.used if len(c) == width and c.startswith(prefix) and c[-3:].isdigit()
        ]
        nxt = max(seqs, default=0) + 1
        if nxt > 999:
            return None
        code = f"{prefix}{nxt:03d}"
        self.used.add(code)
        return code


@dataclass(frozen=True)
class StructParams:
    """Bounds of the structural moves."""

    m: float  # city workload per worker
    min_staff: int
    max_staff: int | None
    households_min: float
    households_max: float
    max_households_moved: float
    max_grids: int  # the staff budget must still give every grid min_staff
    min_grids: int = 1  # ... and fit under max_staff per grid
    redraw: bool = True  # also redraw the boundary of two adjacent grids (merge + bisect in one)


@dataclass(frozen=True)
class StructOp:
    """One applied split or merge.

    ``kind="split"``: grid *keep* was cut, its side with fewer households became *other* (new code).
    ``kind="merge"``: grid *other* was absorbed by *keep* (its code retired).
    """

    kind: str
    keep: str
    other: str
    households: float
    gain: float

    def reason(self) -> str:
        """One line for the moves table."""
        if self.kind == "redraw":
            return f"boundary between grids {self.keep} and {self.other} redrawn along atomic units"
        if self.kind == "split":
            return (
                f"split of grid {self.keep} (too much workload for its staff): this part became new grid "
                f"{self.other}, {int(self.households)} households"
            )
        return f"grid {self.other} (too little workload for one worker) merged into adjacent grid {self.keep}"


@dataclass
class Structure:
    """Result of :func:`restructure`: the new grids as :class:`Units`, and what was done."""

    units: Units
    ops: list[StructOp] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    reason_of: dict[int, str] = field(default_factory=dict)  # unit → last structural reason
    households_moved: float = 0.0

    def then(self, later: Structure) -> Structure:
        """Return this structure followed by *later* (a further pass on its grids)."""
        return Structure(
            units=later.units,
            ops=[*self.ops, *later.ops],
            retired=[*self.retired, *later.retired],
            reason_of={**self.reason_of, **later.reason_of},
            households_moved=self.households_moved + later.households_moved,
        )

    @property
    def splits(self) -> int:
        """Number of splits applied."""
        return sum(op.kind == "split" for op in self.ops)

    @property
    def merges(self) -> int:
        """Number of merges applied."""
        return sum(op.kind == "merge" for op in self.ops)

    @property
    def redraws(self) -> int:
        """Number of boundaries between two grids redrawn."""
        return sum(op.kind == "redraw" for op in self.ops)


def _band_dist(h: np.ndarray | float, lo: float, hi: float) -> np.ndarray:
    return np.maximum(np.maximum(lo - np.asarray(h, float), 0.0), np.asarray(h, float) - hi)


class _State:
    """Mutable grids during the greedy (grids are appended by splits, flagged dead by merges)."""

    def __init__(self, u: Units, graph: UnitGraph, prm: StructParams, book: CodeBook) -> None:
        self.u, self.prm, self.book = u, prm, book
        self.graph = graph
        self.pos = np.full(graph.n, -1, dtype=np.int64)  # scratch: unit → position in a local graph
        self.rows, self.cols = graph.matrix().nonzero()
        self.grid_of = u.grid_of.copy()
        self.codes = [str(c) for c in u.codes]
        self.comm = [str(c) for c in u.comm_g]
        self.alive = [True] * len(self.codes)
        self.W = list(u.per_grid(u.wl))
        self.H = list(u.per_grid(u.hh))
        self.ver = [0] * len(self.codes)
        self.split_cache: dict[int, tuple[int, tuple[float, np.ndarray] | None]] = {}
        self.redraw_cache: dict[tuple[int, int, int, int], tuple[float, np.ndarray, float] | None] = {}
        self.xy = shapely.get_coordinates(shapely.centroid(u.geoms)) if len(u.geoms) else np.zeros((0, 2))
        self.out = Structure(units=u)

    # ---- the staffing error ----------------------------------------------------------------------
    def err(self, w: np.ndarray | float) -> np.ndarray:
        prm, m = self.prm, self.prm.m
        w = np.asarray(w, float)
        hi = prm.max_staff if prm.max_staff is not None else 10**9
        s = np.clip(np.round(w / m), max(prm.min_staff, 1), hi)
        return np.square(w / s / m - 1.0)

    def n_alive(self) -> int:
        return sum(self.alive)

    # ---- merge candidates ------------------------------------------------------------------------
    def pairs(self) -> np.ndarray:
        """Adjacent grid pairs (a < b) as an (n, 2) array."""
        g = self.grid_of
        a, b = g[self.rows], g[self.cols]
        ok = (a >= 0) & (b >= 0) & (a < b)
        return np.unique(np.c_[a[ok], b[ok]], axis=0) if ok.any() else np.zeros((0, 2), dtype=np.int64)

    def merges(self, pairs: np.ndarray) -> list[_Cand]:
        """Every merge of two adjacent grids that gains: (score, cost, grids, op)."""
        if self.n_alive() <= self.prm.min_grids or not len(pairs):
            return []
        W, H = np.asarray(self.W), np.asarray(self.H)
        pa, pb = pairs[:, 0], pairs[:, 1]
        gain = self.err(W[pa]) + self.err(W[pb]) - self.err(W[pa] + W[pb])
        lo, hi = self.prm.households_min, self.prm.households_max
        d_new = _band_dist(H[pa] + H[pb], lo, hi)
        band_ok = d_new <= _band_dist(H[pa], lo, hi) + _band_dist(H[pb], lo, hi) + 1e-9
        cost = np.minimum(H[pa], H[pb])
        budget_ok = self.out.households_moved + cost <= self.prm.max_households_moved + 1e-9
        score = np.where(band_ok & budget_ok & (gain > _MIN_GAIN), gain / (cost + 1.0), -np.inf)
        out: list[_Cand] = []
        for k in np.flatnonzero(np.isfinite(score)):
            x, y = int(pa[k]), int(pb[k])
            keep, absorb = (x, y) if (H[x], -x) >= (H[y], -y) else (y, x)
            out.append((float(score[k]), float(cost[k]), (keep, absorb), ("merge", keep, absorb, None)))
        return out

    def merge(self, keep: int, absorb: int) -> None:
        members = np.flatnonzero(self.grid_of == absorb)
        gain = float(
            self.err(self.W[keep]) + self.err(self.W[absorb]) - self.err(self.W[keep] + self.W[absorb])
        )
        op = StructOp("merge", self.codes[keep], self.codes[absorb], float(self.H[absorb]), gain)
        self.grid_of[members] = keep
        self.W[keep] += self.W[absorb]
        self.H[keep] += self.H[absorb]
        self.W[absorb] = self.H[absorb] = 0.0
        self.alive[absorb] = False
        self.ver[keep] += 1
        self._record(op, members)
        self.out.retired.append(op.other)

    def _record(self, op: StructOp, members: np.ndarray) -> None:
        self.out.ops.append(op)
        self.out.households_moved += op.households
        text = op.reason()
        for k in members:
            self.out.reason_of[int(k)] = text

    # ---- split candidates ------------------------------------------------------------------------
    def splits(self) -> list[_Cand]:
        """Every split that gains: (score, cost, grids, op)."""
        if self.n_alive() >= self.prm.max_grids:
            return []
        out: list[_Cand] = []
        for g in range(len(self.codes)):
            if not self.alive[g]:
                continue
            hit = self.split_cache.get(g)
            if hit is None or hit[0] != self.ver[g]:
                hit = self.split_cache[g] = (self.ver[g], self._split_of(g))
            cand = hit[1]
            if cand is None:
                continue
            side = cand[1]
            cost = float(self.u.hh[side].sum())
            if self.out.households_moved + cost > self.prm.max_households_moved + 1e-9:
                continue
            out.append((cand[0] / (cost + 1.0), cost, (g,), ("split", g, g, side)))
        return out

    def _split_of(self, g: int) -> tuple[float, np.ndarray] | None:
        """Best contiguous bisection of grid *g*: (gain, units of the side with fewer households)."""
        idx = np.flatnonzero(self.grid_of == g)
        if len(idx) < 2:
            return None
        e0 = float(self.err(self.W[g]))
        if e0 <= _MIN_GAIN:
            return None
        hi_staff = self.prm.max_staff if self.prm.max_staff is not None else 10**9
        overloaded = self.W[g] / self.prm.m > hi_staff + 0.5
        best = _bisect(self, idx, overloaded)
        if best is None:
            return None
        e_sides, side = best
        gain = e0 - e_sides
        if gain <= _MIN_GAIN:
            return None
        hh_side, hh_rest = self.u.hh[side].sum(), self.u.hh[idx].sum() - self.u.hh[side].sum()
        if hh_side > hh_rest:
            side = np.setdiff1d(idx, side)
        return gain, side

    def split(self, g: int, side: np.ndarray) -> bool:
        code = self.book.new(self.codes[g])
        if code is None:
            return False
        new = len(self.codes)
        w, h = float(self.u.wl[side].sum()), float(self.u.hh[side].sum())
        gain = float(self.err(self.W[g]) - self.err(self.W[g] - w) - self.err(w))
        self.codes.append(code)
        self.comm.append(self.comm[g])
        self.alive.append(True)
        self.W.append(w)
        self.H.append(h)
        self.ver.append(0)
        self.W[g] -= w
        self.H[g] -= h
        self.ver[g] += 1
        self.grid_of[side] = new
        self._record(StructOp("split", self.codes[g], code, h, gain), side)
        return True

    # ---- redraw the boundary of two adjacent grids ----------------------------------------------
    def redraws(self, pairs: np.ndarray) -> list[_Cand]:
        """Every redrawn boundary between adjacent grids that gains: (score, cost, grids, op)."""
        g = self.grid_of
        W = np.asarray(self.W)
        e = self.err(W)
        order = np.argsort(g, kind="stable")
        cuts = np.searchsorted(g[order], np.arange(len(self.codes) + 1))
        out: list[_Cand] = []
        for x, y in pairs:
            x, y = int(x), int(y)
            if e[x] + e[y] <= 20 * _MIN_GAIN:
                continue
            key = (x, y, self.ver[x], self.ver[y])
            if key not in self.redraw_cache:
                self.redraw_cache[key] = self._redraw_of(x, y, order, cuts, float(e[x] + e[y]))
            cand = self.redraw_cache[key]
            if cand is None:
                continue
            gain, side_x, cost = cand
            if self.out.households_moved + cost > self.prm.max_households_moved + 1e-9:
                continue
            out.append((gain / (cost + 1.0), cost, (x, y), ("redraw", x, y, side_x)))
        return out

    def _redraw_of(
        self, x: int, y: int, order: np.ndarray, cuts: np.ndarray, e0: float
    ) -> tuple[float, np.ndarray, float] | None:
        ix, iy = order[cuts[x] : cuts[x + 1]], order[cuts[y] : cuts[y + 1]]
        idx = np.r_[ix, iy]
        lo, hi = self.prm.households_min, self.prm.households_max
        d_now = float(_band_dist(self.H[x], lo, hi) + _band_dist(self.H[y], lo, hi))
        cut = _bisect(self, idx, False, d_allow=d_now)
        if cut is None or e0 - cut[0] <= _MIN_GAIN:
            return None
        side = cut[1]
        other = np.setdiff1d(idx, side)
        in_x = np.isin(side, ix)
        # the side sharing more households with x keeps x's code
        if self.u.hh[side][in_x].sum() < self.u.hh[other][np.isin(other, ix)].sum():
            side, other = other, side
        changed = np.r_[side[~np.isin(side, ix)], other[np.isin(other, ix)]]
        return e0 - cut[0], side, float(self.u.hh[changed].sum())

    def redraw(self, x: int, y: int, side_x: np.ndarray) -> None:
        idx = np.flatnonzero((self.grid_of == x) | (self.grid_of == y))
        before = self.grid_of[idx].copy()
        new = np.full(len(idx), y)
        new[np.isin(idx, side_x)] = x
        changed = idx[new != before]
        gain = float(self.err(self.W[x]) + self.err(self.W[y]))
        self.grid_of[idx] = new
        for g in (x, y):
            self.W[g] = float(self.u.wl[self.grid_of == g].sum())
            self.H[g] = float(self.u.hh[self.grid_of == g].sum())
            self.ver[g] += 1
        gain -= float(self.err(self.W[x]) + self.err(self.W[y]))
        op = StructOp("redraw", self.codes[x], self.codes[y], float(self.u.hh[changed].sum()), gain)
        self._record(op, changed)

    # ---- result ----------------------------------------------------------------------------------
    def result(self) -> Structure:
        keep = np.flatnonzero(self.alive)
        remap = np.full(len(self.codes), -1, dtype=np.int64)
        remap[keep] = np.arange(len(keep))
        grid_of = np.where(self.grid_of >= 0, remap[np.maximum(self.grid_of, 0)], -1)
        codes = np.array([self.codes[k] for k in keep], dtype=object)
        comm = np.array([self.comm[k] for k in keep]).astype(str)
        self.out.units = replace(self.u, grid_of=grid_of, codes=codes, comm_g=comm)
        return self.out


@dataclass(frozen=True)
class _Local:
    """Rook adjacency among a few units (positions 0..n−1), as CSR arrays."""

    indptr: np.ndarray
    indices: np.ndarray

    @classmethod
    def of(cls, st: _State, idx: np.ndarray) -> _Local:
        g = st.graph
        st.pos[idx] = np.arange(len(idx))
        counts = g.indptr[idx + 1] - g.indptr[idx]
        nb = g.indices[np.repeat(g.indptr[idx], counts) + _ranges(counts)]
        local = st.pos[nb]
        st.pos[idx] = -1
        keep = local >= 0
        owner = np.repeat(np.arange(len(idx)), counts)[keep]
        indptr = np.r_[0, np.cumsum(np.bincount(owner, minlength=len(idx)))]
        return cls(indptr.astype(np.int64), local[keep])

    def bfs(self, start: int, mask: np.ndarray | None = None) -> list[int]:
        """Units reached from *start* (inside *mask*), in breadth-first order."""
        seen = {start}
        order, head = [start], 0
        while head < len(order):
            x = order[head]
            head += 1
            for y in self.indices[self.indptr[x] : self.indptr[x + 1]].tolist():
                if y not in seen and (mask is None or mask[y]):
                    seen.add(y)
                    order.append(y)
        return order

    def connected(self, mask: np.ndarray) -> bool:
        """Whether the units under *mask* are one rook-connected part."""
        pos = np.flatnonzero(mask)
        return bool(len(pos)) and len(self.bfs(int(pos[0]), mask)) == len(pos)


def _ranges(counts: np.ndarray) -> np.ndarray:
    """[0..c0−1, 0..c1−1, …] for the given counts."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total) - starts


def _orders(st: _State, idx: np.ndarray, sub: _Local) -> list[np.ndarray]:
    """Orderings of a grid's units (positions into *idx*) whose prefixes make candidate sides."""
    out: list[np.ndarray] = []
    xy = st.xy[idx] - st.xy[idx].mean(axis=0)
    if len(idx) >= 2 and np.isfinite(xy).all():
        _, _, vt = np.linalg.svd(xy, full_matrices=False)
        for axis in vt:
            out.append(np.argsort(xy @ axis, kind="stable"))
    far = sub.bfs(0)[-1]
    out.append(np.asarray(sub.bfs(far), dtype=np.int64))
    return [o for o in out if len(o) == len(idx)]


def _bisect(
    st: _State, idx: np.ndarray, overloaded: bool, d_allow: float | None = None
) -> tuple[float, np.ndarray] | None:
    """Best (Σe of both sides, units of side 1) over prefix cuts of a few orderings; both sides connected."""
    sub = _Local.of(st, idx)
    if len(sub.bfs(0)) != len(idx):
        return None  # a grid already in parts is left to the QA, not split further
    wl, hh = st.u.wl[idx], st.u.hh[idx]
    W, H = float(wl.sum()), float(hh.sum())
    lo, hi = st.prm.households_min, st.prm.households_max
    d0 = float(_band_dist(H, lo, hi)) if d_allow is None else d_allow
    best: tuple[float, float, np.ndarray] | None = None  # key, Σe, side
    for order in _orders(st, idx, sub):
        pw, ph = np.cumsum(wl[order])[:-1], np.cumsum(hh[order])[:-1]
        e = st.err(pw) + st.err(W - pw)
        d = _band_dist(ph, lo, hi) + _band_dist(H - ph, lo, hi)
        allowed = (d <= d0 + 1e-9) | overloaded
        key = np.where(allowed, e + 0.1 * d / max(hi, 1.0), np.inf)
        for k in np.argsort(key, kind="stable")[:12]:
            if not np.isfinite(key[k]) or (best is not None and key[k] >= best[0]):
                break
            mask = np.zeros(len(idx), dtype=bool)
            mask[order[: k + 1]] = True
            if sub.connected(mask) and sub.connected(~mask):
                best = (float(key[k]), float(e[k]), idx[mask])
                break
    return None if best is None else (best[1], best[2])


def restructure(u: Units, graph: UnitGraph, prm: StructParams, book: CodeBook) -> Structure:
    """Greedily split, merge and redraw grids of *u* while the staffing error drops (module doc).

    Each round scores every candidate once and applies, best first, all those on grids not yet
    touched in the round (independent moves need no re-scoring), within the budget and bounds.
    """
    st = _State(u, graph, prm, book)
    if not prm.m > 0:  # no workload anywhere: every staffing is as good as any other
        return st.out
    for _ in range(4 * len(u.codes) + 8):
        pairs = st.pairs()
        cands = st.merges(pairs) + st.splits() + (st.redraws(pairs) if prm.redraw else [])
        cands.sort(key=lambda c: (-c[0], c[2]))
        touched: set[int] = set()
        for _score, cost, grids, (kind, x, y, side) in cands:
            if touched.intersection(grids):
                continue
            if st.out.households_moved + cost > prm.max_households_moved + 1e-9:
                continue
            if kind == "merge":
                if st.n_alive() <= prm.min_grids:
                    continue
                st.merge(x, y)
            elif kind == "split" and side is not None:
                if st.n_alive() >= prm.max_grids:
                    continue
                if not st.split(x, side):
                    st.split_cache[x] = (st.ver[x], None)
                    continue
            elif side is not None:
                st.redraw(x, y, side)
            touched.update(grids)
        if not touched:
            break
    return st.result()
