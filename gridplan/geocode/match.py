"""Matching parsed addresses to the standard address library (step 3 of geocoding).

This module owns the candidate search, the score and the hierarchical fallback:

1. **Road candidates** per parsed address, inside its *block* (the community named in the text,
   else the town, else the whole library — blocking is what keeps fuzzy matching fast):
   the exact road name (similarity 100) in every community of the block that has it, or, when the
   text's road is not a known name in the block, the block's roads ranked by normalised
   Levenshtein similarity computed with rapidfuzz's ``process.cdist`` for all addresses of a
   block at once.
2. **House candidates**: a vectorised merge of the road candidates with the library on
   (community, road, house number); building numbers refine the pick.
3. **Score** 0–100 = 0.5 × road similarity + 0.3 × house-number agreement + 0.2 × area agreement
   (100 when the community is named, 75 the town only, 50 neither).  A road-level candidate is
   scored over the components that define it (road and area, re-weighted to 0–100).  An exact road
   name outranks any fuzzy one.
4. **Levels**: house (a library address), road (the road's representative point: the middle
   address of that road in that community — never reported as house), community, town.  Several
   best candidates in different places → ``T`` with ``candidates``; best score below
   ``min_score`` → ``U`` with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from gridplan.geocode._frames import obj_frame

W_ROAD, W_HOUSE, W_AREA = 0.5, 0.3, 0.2
#: Fuzzy road candidates below this similarity (0–100) are not considered at all.
ROAD_CUTOFF = 50.0
#: Share of a fuzzy road name's penalty kept when the house number exists on that road (0.5: a
#: one-character typo in a four-character name, similarity 75, counts as 87.5 at house level).
HOUSE_CONFIRMS_ROAD = 0.5
#: Only a name one character off (similarity ≥ 66 for names of three characters or more) counts as a
#: typo that a house number can confirm; 建设路 → 中建湖路 (50) is another road.
TYPO_SIM = 66.0
#: Points for the building of the text existing at the candidate house (31座 at 南庄大道737号 in one
#: community, not in the other): enough to break a tie, not to outweigh a better road or area.
BUILDING_BONUS = 1.0
#: Fuzzy road candidates kept per address.
ROAD_TOP_K = 3

RESULT_COLUMNS = (
    "status",
    "score",
    "match_level",
    "address_id",
    "matched_address",
    "x",
    "y",
    "community_key",
    "town",
    "candidates",
    "reason",
)


@dataclass(frozen=True)
class AddressIndex:
    """The library as matching tables (built once, read-only).

    Attributes
    ----------
    lib
        One row per std address: ``address_id``, ``town``, ``community_key`` (``town/community``),
        ``road``, ``house``, ``building``, ``x``, ``y``, ``full_address``, ``house_num`` (int order).
    roads
        Distinct (``community_key``, ``town``, ``road``) with the road's representative address
        (``rep_id``, ``rep_x``, ``rep_y``): the middle address by house number.

    """

    lib: pd.DataFrame
    roads: pd.DataFrame
    _by_block: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)  # lazy lookup tables

    def road_names(self, key: str | None, block: str) -> np.ndarray:
        """Distinct road names of a block (``key`` = ``community_key``, ``town`` or ``None`` for all)."""
        table = self._by_block.get(key)
        if table is None:
            if key is None:
                table = {"": np.unique(self.roads["road"].to_numpy(dtype=str)).astype(object)}
            else:
                r = self.roads[[key, "road"]].drop_duplicates().sort_values([key, "road"])
                ks = r[key].to_numpy(dtype=object)
                rs = r["road"].to_numpy(dtype=object)
                cut = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
                table = dict(zip(ks[cut], np.split(rs, cut[1:]), strict=True))
            self._by_block[key] = table
        return table.get(block, np.empty(0, dtype=object))

    @classmethod
    def from_table(cls, lib: pd.DataFrame) -> AddressIndex:
        """Build from a prepared library table (see :attr:`lib`)."""
        lib = lib.reset_index(drop=True)
        index = cls(lib, pd.DataFrame())
        comm, road, house = index._lib_codes()
        # order addresses along each (community, road) by house number with integer sort keys
        cr = comm * (road.max(initial=0) + 1) + road
        keys = [pd.factorize(lib[c].to_numpy(dtype=object), sort=True)[0] for c in ("address_id", "building")]
        order_idx = np.lexsort((*keys, house, lib["house_num"].to_numpy(), cr))
        cr_sorted = cr[order_idx]
        starts = np.flatnonzero(np.r_[True, cr_sorted[1:] != cr_sorted[:-1]])
        sizes = np.diff(np.r_[starts, len(cr_sorted)])
        mid = lib.iloc[order_idx[starts + (sizes - 1) // 2]]
        roads = obj_frame(
            {
                "community_key": mid["community_key"].to_numpy(),
                "town": mid["town"].to_numpy(),
                "road": mid["road"].to_numpy(),
                "rep_id": mid["address_id"].to_numpy(),
                "rep_x": mid["x"].to_numpy(),
                "rep_y": mid["y"].to_numpy(),
            }
        )
        out = cls(lib, roads)
        out._by_block["__codes__"] = index._by_block["__codes__"]
        return out

    def _lib_codes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Integer codes of the library's community, road and house columns (vocabularies kept)."""
        cached = self._by_block.get("__codes__")
        if cached is None:
            codes, vocab = [], []
            for c in ("community_key", "road", "house"):
                k, u = pd.factorize(self.lib[c].to_numpy(dtype=object), sort=True)
                codes.append(k.astype(np.int64))
                vocab.append(pd.Index(u, dtype=object))
            cached = (tuple(codes), tuple(vocab))
            self._by_block["__codes__"] = cached
        return cached[0]

    def _combine(self, comm: np.ndarray, road: np.ndarray, house: np.ndarray) -> np.ndarray:
        """One int64 key per (community, road, house) code triple (-1 where any part is -1)."""
        (_, nr, nh) = (len(v) for v in self._by_block["__codes__"][1])
        key = (comm * nr + road) * nh + house
        return np.where((comm < 0) | (road < 0) | (house < 0), -1, key)

    def _house_table(self) -> tuple[pd.Index, np.ndarray, np.ndarray, np.ndarray]:
        """(distinct house keys, start, count, lib row order) — built once, then hash lookups."""
        cached = self._by_block.get("__houses__")
        if cached is None:
            hk = self._combine(*self._lib_codes())
            codes, uniques = pd.factorize(hk)
            order = np.argsort(codes, kind="stable")
            count = np.bincount(codes, minlength=len(uniques))
            start = np.concatenate([[0], np.cumsum(count)[:-1]])
            cached = (pd.Index(uniques), start, count, order)
            self._by_block["__houses__"] = cached
        return cached

    def house_hits(
        self, community_key: np.ndarray, road: np.ndarray, house: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pairs (query row, lib row) of library addresses at (community, road, house number)."""
        keys, start, count, order = self._house_table()
        vc, vr, vh = self._by_block["__codes__"][1]
        q = self._combine(
            vc.get_indexer(community_key).astype(np.int64),
            vr.get_indexer(road).astype(np.int64),
            vh.get_indexer(house).astype(np.int64),
        )
        pos = np.where(q >= 0, keys.get_indexer(q), -1)
        found = np.flatnonzero(pos >= 0)
        reps = count[pos[found]]
        qrow = np.repeat(found, reps)
        first = np.repeat(start[pos[found]], reps)
        offset = np.arange(len(qrow)) - np.repeat(np.cumsum(reps) - reps, reps)
        return qrow, order[first + offset]


def _explode_keys(q: pd.DataFrame, col: str) -> pd.DataFrame:
    """Rows of *q* repeated for each ``|``-separated value of *col* (fast path when none has ``|``)."""
    multi = q[col].str.contains("|", regex=False)
    if not multi.any():
        return q
    q = q.copy()
    q[col] = q[col].str.split("|")
    return q.explode(col)


def _similarity(texts: np.ndarray, names: np.ndarray) -> np.ndarray:
    """Road-name similarity 0–100 of every text against every name: normalised Levenshtein.

    A typo is one substitution, so a one-character slip in a three-character name scores 67 and
    in a four-character name 75.  Indel-based ratios (``fuzz.ratio``) were tried and rejected: they
    credit shared characters out of place, so a different road sharing the suffix and one shifted
    character (和谐大道 / 昌和大道) scored like a typo and produced wrong house-level matches.
    """
    return process.cdist(
        texts, names, scorer=Levenshtein.normalized_similarity, dtype=np.float32, workers=1
    ) * np.float32(100.0)


_CAND_COLUMNS = ["qid", "community_key", "town", "road", "sim", "area"]


def _road_candidates(q: pd.DataFrame, index: AddressIndex) -> pd.DataFrame:
    """Candidates (qid, community_key, town, road, sim, area) for parsed rows *q*.

    Exact road names in the named community (area score 100), town (75) or anywhere (50) first;
    rows without an exact candidate get fuzzy road names from the same block.  Each (qid,
    community, road) keeps its best area reading.
    """
    roads = index.roads[["community_key", "town", "road"]]
    q = q[(q["road"] != "") | (q["road_text"] != "")]
    q = _explode_keys(_explode_keys(q, "community"), "town")
    out = _exact_road_candidates(q, roads)
    have = set(pd.concat(out)["qid"].tolist()) if out else set()
    fz = q[~q["qid"].isin(list(have)) & (q["road_text"].str.len() >= 2)]
    out += _fuzzy_road_candidates(fz, index, roads)
    if not out:
        return pd.DataFrame(columns=_CAND_COLUMNS)
    cand = pd.concat(out, ignore_index=True)
    cand = cand.sort_values(
        ["qid", "community_key", "road", "area", "sim"], ascending=[True, True, True, False, False]
    )
    return cand.drop_duplicates(["qid", "community_key", "road"])


def _by_block(q: pd.DataFrame) -> tuple[tuple[pd.DataFrame, str | None, float], ...]:
    """Rows naming a community, only a town, or neither; with their block column and area score."""
    comm, town = q["community"] != "", q["town"] != ""
    return ((q[comm], "community", 100.0), (q[~comm & town], "town", 75.0), (q[~comm & ~town], None, 50.0))


def _exact_road_candidates(q: pd.DataFrame, roads: pd.DataFrame) -> list[pd.DataFrame]:
    """Candidate frames for road names found verbatim in the block the row names."""
    out = []
    joins = {
        "community": (["community", "road"], ["community_key", "road"]),
        "town": (["town", "road"], ["town", "road"]),
    }
    for part, block_col, area in _by_block(q):
        left_on, right_on = joins.get(block_col or "", (["road"], ["road"]))
        ex = part[part["road"] != ""]
        if not len(ex):
            continue
        m = ex[["qid", *left_on]].merge(roads, left_on=left_on, right_on=right_on, how="inner")
        if len(m):
            out.append(
                obj_frame(
                    {
                        "qid": m["qid"].to_numpy(),
                        "community_key": m["community_key"].to_numpy(),
                        "town": m["town"].to_numpy() if "town" in m else m["town_y"].to_numpy(),
                        "road": m["road"].to_numpy(),
                        "sim": 100.0,
                        "area": area,
                    }
                )
            )
    return out


def _fuzzy_block_hits(
    pairs: pd.DataFrame, bcol: str, key: str | None, index: AddressIndex
) -> pd.DataFrame | None:
    """Best road names (≥ ``ROAD_CUTOFF``) for each distinct (block, road_text) pair, block by block."""
    pairs = pairs.sort_values([bcol, "road_text"])
    blocks = pairs[bcol].to_numpy(dtype=object)
    texts_all = pairs["road_text"].to_numpy(dtype=object)
    starts = np.flatnonzero(np.r_[True, blocks[1:] != blocks[:-1]])
    ends = np.r_[starts[1:], len(blocks)]
    hb, ht, hr, hs = [], [], [], []
    for a, b in zip(starts, ends, strict=True):
        names = index.road_names(key, blocks[a])
        if not len(names):
            continue
        texts = texts_all[a:b]
        sims = _similarity(texts, names)
        k = min(ROAD_TOP_K, len(names))
        top = (
            np.argpartition(-sims, k - 1, axis=1)[:, :k]
            if k < len(names)
            else np.tile(np.arange(len(names)), (len(texts), 1))
        )
        ti = np.repeat(np.arange(len(texts)), top.shape[1])
        ri = top.ravel()
        sc = sims[ti, ri]
        keep = sc >= ROAD_CUTOFF
        hb.append(np.full(int(keep.sum()), blocks[a], dtype=object))
        ht.append(texts[ti[keep]])
        hr.append(names[ri[keep]])
        hs.append(sc[keep])
    if not hb:
        return None
    return obj_frame(
        {
            bcol: np.concatenate(hb),
            "road_text": np.concatenate(ht),
            "road": np.concatenate(hr),
            "sim": np.concatenate(hs).astype(float),
        }
    )


def _fuzzy_road_candidates(fz: pd.DataFrame, index: AddressIndex, roads: pd.DataFrame) -> list[pd.DataFrame]:
    """Candidate frames for road names similar to the row's road text, inside the block it names."""
    out = []
    for part, block_col, area in _by_block(fz):
        if not len(part):
            continue
        key = {"community": "community_key", "town": "town"}.get(block_col or "")
        bcol = block_col or "_all"
        pairs = (
            part[[block_col, "road_text"]].drop_duplicates()
            if block_col
            else part[["road_text"]].drop_duplicates().assign(_all="")
        )
        hits = _fuzzy_block_hits(pairs, bcol, key, index)
        if hits is None:
            continue
        left = (
            part[["qid", "road_text"]].assign(_all="")
            if block_col is None
            else part[["qid", block_col, "road_text"]]
        )
        m = left.merge(hits, on=[bcol, "road_text"])
        if key is None:
            m = m.merge(roads, on="road")
        else:
            m = m.merge(roads, left_on=[bcol, "road"], right_on=[key, "road"], suffixes=("_q", ""))
        out.append(
            obj_frame(
                {
                    "qid": m["qid"].to_numpy(),
                    "community_key": m["community_key"].to_numpy(),
                    "town": m["town"].to_numpy(),
                    "road": m["road"].to_numpy(),
                    "sim": np.round(m["sim"].to_numpy(), 1),
                    "area": area,
                }
            )
        )
    return out


def match_parsed(parsed: pd.DataFrame, index: AddressIndex, *, min_score: float = 80.0) -> pd.DataFrame:
    """Match parsed addresses to the library.

    Parameters
    ----------
    parsed
        Output of :func:`~gridplan.geocode.parse.parse_addresses` (one row per distinct address).
    index
        The library's :class:`AddressIndex`.
    min_score
        Best candidates scoring below this (0–100) give status ``U``.

    Returns
    -------
    pandas.DataFrame
        Indexed like *parsed*, columns :data:`RESULT_COLUMNS`; ``x``/``y`` in the library's CRS
        (NaN when not located to a point).

    """
    q = parsed.reset_index(drop=True).copy()
    q["qid"] = np.arange(len(q))
    n = len(q)
    res = {
        "status": np.full(n, "U", dtype=object),
        "score": np.zeros(n),
        "match_level": np.full(n, "", dtype=object),
        "address_id": np.full(n, "", dtype=object),
        "matched_address": np.full(n, "", dtype=object),
        "x": np.full(n, np.nan),
        "y": np.full(n, np.nan),
        "community_key": np.full(n, "", dtype=object),
        "town": np.full(n, "", dtype=object),
        "candidates": np.full(n, "", dtype=object),
        "reason": np.full(n, "", dtype=object),
    }
    cand = _road_candidates(q, index)
    done = np.zeros(n, dtype=bool)
    if len(cand):
        done = _resolve_candidates(cand, q, index, res, min_score=min_score)
    _area_fallback(q, ~done, res, min_score=min_score)
    out = obj_frame(res, index=parsed.index)
    out["score"] = out["score"].round(1)
    return out


def _resolve_candidates(
    cand: pd.DataFrame, q: pd.DataFrame, index: AddressIndex, res: dict[str, np.ndarray], *, min_score: float
) -> np.ndarray:
    """Score the candidates of every row, write the best answer (M/T/U) into *res*; return rows done."""
    cand = cand.merge(q[["qid", "house", "building"]], on="qid")
    cand["cid"] = np.arange(len(cand))
    # exact road names outrank fuzzy ones
    best_sim = cand.groupby("qid")["sim"].transform("max")
    cand = cand[(cand["sim"] == best_sim) | (best_sim < 100)]
    house = _house_candidates(cand, index)
    best = _best_candidates(_road_level(cand, house, index), house)
    first = best[~best["qid"].duplicated()]
    qi = first["qid"].to_numpy()
    nb = best.groupby("qid", sort=True).size().to_numpy()
    cand_ids = np.full(len(qi), "", dtype=object)
    if (nb > 1).any():
        tied = best[best["qid"].isin(qi[nb > 1])]
        joined = tied.groupby("qid", sort=True)["address_id"].agg("|".join)
        cand_ids[nb > 1] = joined.reindex(qi[nb > 1]).to_numpy(dtype=object)
    low = _write_answers(res, first, qi, nb, cand_ids, min_score)
    res["reason"][qi] = _reasons(first, q, qi, nb > 1, low, min_score)
    done = np.zeros(len(q), dtype=bool)
    done[qi] = True
    # an area-only reading may still help rows whose only candidates were too weak
    done[qi[low]] = False
    return done


def _house_candidates(cand: pd.DataFrame, index: AddressIndex) -> pd.DataFrame | None:
    """House-level hits of the candidates, best building first, scored; ``None`` if there are none."""
    lib = index.lib
    withh = cand[cand["house"] != ""]
    qrow, lrow = index.house_hits(
        withh["community_key"].to_numpy(dtype=object),
        withh["road"].to_numpy(dtype=object),
        withh["house"].to_numpy(dtype=object),
    )
    hh = withh.iloc[qrow].reset_index(drop=True)
    for c in ("address_id", "x", "y", "full_address", "bnum"):
        arr = lib[c].to_numpy()[lrow]
        hh[c] = pd.Series(arr, dtype=object) if arr.dtype == object else arr
    hh["building_lib"] = pd.Series(lib["building"].to_numpy(dtype=object)[lrow], dtype=object)
    if not len(hh):
        return None
    qb, lb = hh["building"].to_numpy(dtype=object), hh["building_lib"].to_numpy(dtype=object)
    # 0 same building (or both none), 1 text names a building where the library has none,
    # 2 text names none but the library has buildings, 3 text names another building
    rank = np.where(qb == lb, 0, np.where(lb == "", 1, np.where(qb == "", 2, 3)))
    hh = hh.assign(brank=rank)
    hh = hh.sort_values(["qid", "community_key", "road", "brank", "bnum", "address_id"])
    hh = hh.drop_duplicates(["qid", "community_key", "road"])
    # The house number existing on the candidate road is evidence for the road: a fuzzy road name
    # (one character off) confirmed by its house number loses half its name penalty.
    sim = hh["sim"]
    road_sim = sim.where(sim < TYPO_SIM, 100.0 - (100.0 - sim) * HOUSE_CONFIRMS_ROAD)
    # the building named in the text and found at that house decides between equal places
    named = (hh["building"].to_numpy(dtype=object) != "") & (hh["brank"].to_numpy() == 0)
    score = W_ROAD * road_sim + W_HOUSE * 100 + W_AREA * hh["area"] + np.where(named, BUILDING_BONUS, 0.0)
    return hh.assign(level="house", score=np.minimum(score, 100.0), rank_score=score)


def _road_level(cand: pd.DataFrame, house: pd.DataFrame | None, index: AddressIndex) -> pd.DataFrame:
    """Road-level candidates: every (qid, community, road) without a house hit, at the road's point."""
    rc = cand.merge(index.roads, on=["community_key", "road"], how="left", suffixes=("", "_r"))
    if house is not None:
        rc = rc[~np.isin(rc["cid"].to_numpy(), house["cid"].to_numpy())]
    return rc.assign(
        level="road",
        score=(W_ROAD * rc["sim"] + W_AREA * rc["area"]) / (W_ROAD + W_AREA),
        rank_score=W_ROAD * rc["sim"] + W_AREA * rc["area"],
        address_id=rc["rep_id"],
        x=rc["rep_x"],
        y=rc["rep_y"],
        full_address="",
    )


def _best_candidates(road: pd.DataFrame, house: pd.DataFrame | None) -> pd.DataFrame:
    """Keep the top-ranked candidates of each row (several when tied), in a stable order."""
    parts = [road] if house is None else [road, house]
    allc = pd.concat(parts, ignore_index=True)
    top = allc.groupby("qid")["rank_score"].transform("max")
    return allc[allc["rank_score"] >= top - 1e-9].sort_values(["qid", "community_key", "road", "address_id"])


def _write_answers(
    res: dict[str, np.ndarray],
    first: pd.DataFrame,
    qi: np.ndarray,
    nb: np.ndarray,
    cand_ids: np.ndarray,
    min_score: float,
) -> np.ndarray:
    """Write status, level, place and coordinates of each row's best candidate; return the too-weak rows."""
    level = first["level"].to_numpy(dtype=object)
    score = first["score"].to_numpy(dtype=float)
    res["score"][qi] = score
    res["candidates"][qi] = np.where((nb > 1) & (score >= min_score), cand_ids, "")
    low = score < min_score
    tie = (nb > 1) & ~low
    ok = ~tie & ~low
    res["community_key"][qi] = np.where(ok, first["community_key"].to_numpy(dtype=object), "")
    res["town"][qi] = np.where(ok, first["town"].to_numpy(dtype=object), "")
    is_house = level == "house"
    res["status"][qi] = np.where(tie, "T", np.where(low, "U", "M"))
    res["match_level"][qi] = np.where(ok, level, "")
    res["address_id"][qi] = np.where(ok & is_house, first["address_id"].to_numpy(dtype=object), "")
    comm = first["community_key"].to_numpy(dtype=object)
    road_name = first["road"].to_numpy(dtype=object)
    where = np.array([c.replace("/", "") for c in comm], dtype=object)
    res["matched_address"][qi] = np.where(
        ok, np.where(is_house, first["full_address"].to_numpy(dtype=object), where + road_name), ""
    )
    res["x"][qi] = np.where(ok, first["x"].to_numpy(dtype=float), np.nan)
    res["y"][qi] = np.where(ok, first["y"].to_numpy(dtype=float), np.nan)
    return low


def _reasons(
    first: pd.DataFrame,
    q: pd.DataFrame,
    qi: np.ndarray,
    several: np.ndarray,
    low: np.ndarray,
    min_score: float,
) -> np.ndarray:
    """Explain each answered row: tie, too weak, fuzzy road, building or house not found."""
    tie = several & ~low
    brank = first["brank"].fillna(0).to_numpy(dtype=float) if "brank" in first else np.zeros(len(qi))
    rows = zip(
        tie,
        low,
        first["level"].to_numpy(dtype=object),
        first["score"].to_numpy(dtype=float),
        first["sim"].to_numpy(dtype=float),
        q["road_text"].to_numpy(dtype=object)[qi],
        first["road"].to_numpy(dtype=object),
        q["house"].to_numpy(dtype=object)[qi],
        brank,
        q["building"].to_numpy(dtype=object)[qi],
        strict=True,
    )
    reasons = []
    for t, lo, lv, sc, si, rt, rn, hs, br, qb in rows:
        if lo and not t:
            reasons.append(f"best candidate '{rn}' scored {sc:.0f} < min score {min_score:g}")
            continue
        r = ["tie: several places match equally; name the community"] if t else []
        if si < 100:
            r.append(f"road '{rt}' matched fuzzily to '{rn}' ({si:.0f})")
        if lv == "house" and br >= 2 and not t:
            r.append(
                f"building {qb}栋 not in the library; first building of {hs}号 taken"
                if qb
                else f"no building given; first building of {hs}号 taken"
            )
        if lv == "road" and not t:
            r.append(
                f"house number {hs}号 not in the library; located at road level"
                if hs
                else "no house number; located at road level"
            )
        reasons.append("; ".join(r))
    return np.array(reasons, dtype=object)


def _area_fallback(
    q: pd.DataFrame, todo: np.ndarray, res: dict[str, np.ndarray], *, min_score: float
) -> None:
    """Community / town level for rows without a usable road candidate."""
    idx = np.flatnonzero(todo)
    if not len(idx):
        return
    comm = q["community"].to_numpy(dtype=object)[idx]
    town = q["town"].to_numpy(dtype=object)[idx]
    rt = q["road_text"].to_numpy(dtype=object)[idx]
    for i, c, t, r in zip(idx, comm, town, rt, strict=True):
        prior = res["reason"][i]
        why = "" if prior else (f"road '{r}' not found" if r else "no road in the text")
        if c and "|" not in c:
            res["status"][i], res["match_level"][i], res["score"][i] = "M", "community", 100.0
            res["community_key"][i], res["town"][i] = c, c.split("/")[0]
            res["matched_address"][i] = c.replace("/", "")
            res["reason"][i] = _join(why, "located to the community only")
        elif c:
            res["status"][i], res["candidates"][i] = "T", c
            res["reason"][i] = _join(why, "community name is in several towns; name the town")
        elif t and "|" not in t:
            res["status"][i], res["match_level"][i], res["score"][i] = "M", "town", 100.0
            res["town"][i], res["matched_address"][i] = t, t
            res["reason"][i] = _join(why, "located to the town only")
        else:
            res["status"][i] = "U"
            res["reason"][i] = prior or ("no town, community or road of the library recognised")
        if prior and res["status"][i] != "U":
            res["reason"][i] = prior + "; " + res["reason"][i]
    del min_score


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a and b else (a or b)


__all__ = ["RESULT_COLUMNS", "AddressIndex", "match_parsed"]
