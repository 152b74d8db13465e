"""Address parsing: a normalised key → town, community, road, house number, building.

This module owns step 2 of geocoding.  The parser knows no city: its :class:`Vocabulary` is built
from the standard address library itself (the distinct town, community and road names of
``std_addresses``, plus the ``towns``/``communities`` layers when given), so any city's library
works.  Alias forms come from general Chinese naming conventions applied to those names:

* towns: the name without its administrative suffix (长安镇 → 长安, 东城街道 → 东城);
* communities: the core with any of the usual suffixes (乌沙社区 ↔ 乌沙村 ↔ 乌沙村委会 ↔ 乌沙);
* roads: suffix variants that are safe (大道 ↔ 大路, 大街 ↔ 街), added only when the variant is
  not itself a name, or the variant of another road, in the library.

Reading goes left to right as Chinese addresses are written (big to small): town form at the
start, then community form, then the road before the house number.  Where two readings compete at
one position (the community 长安社区 starts with the town form 长安; the road 乌沙路 starts with the
community core 乌沙) the longer name wins.  Text before the first recognised name (an unknown
prefix such as 东莞 without 市) is kept aside.  Lookups are dictionary probes per position and name
length on the *unique* keys only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gridplan.geocode._frames import obj_frame
from gridplan.geocode.normalize import TextRules, normalize_addresses, normalize_names, trie_regex

TOWN_SUFFIXES = ("街道办事处", "街道办", "街道", "镇", "乡", "街办")
COMMUNITY_SUFFIXES = ("社区居委会", "社区居民委员会", "村民委员会", "村委会", "居委会", "社区", "村", "居")
COMMUNITY_ALIAS_SUFFIXES = ("社区", "村", "村委会", "居委会", "社区居委会")
#: Road-type suffix pairs that mean the same street kind (each direction is tried).
ROAD_SUFFIX_VARIANTS = (("大道", "大路"), ("大街", "街"))
#: Suffixes people drop from road names (longest first: 大道 before 道).
ROAD_SUFFIXES = ("大道", "大街", "大路", "路", "街", "道", "巷")

_HOUSE_RE = re.compile(r"(\d+(?:-\d+)?)号")
#: A house number written without 号 at the end of the text (鸿福路361; noise was removed before).
_BARE_HOUSE_RE = re.compile(r"(?<=\D)(\d+(?:-\d+)?)$")
_BUILDING_RE = re.compile(r"([A-Za-z]?\d+|[A-Za-z])(?:栋|幢|座)")
_DIGITS_RE = re.compile(r"\d+(?:-\d+)?")

PARSE_COLUMNS = ("town", "community", "road", "road_text", "house", "building", "parse_extra")


def _strip_suffix(name: str, suffixes: Iterable[str]) -> str:
    for suf in suffixes:
        if name.endswith(suf) and len(name) - len(suf) >= 2:
            return name[: -len(suf)]
    return name


def _basic_names(values: Iterable[object]) -> list[str]:
    """NFKC + punctuation removal of names (numerals in names are left alone)."""
    return normalize_names(values if isinstance(values, pd.Series) else list(values)).tolist()


class _Forms:
    """Form → canonical values, with the set of form lengths for position probes."""

    def __init__(self) -> None:
        self.map: dict[str, set[str]] = {}

    def add(self, form: str, canon: str) -> None:
        if form:
            self.map.setdefault(form, set()).add(canon)

    def freeze(self) -> dict[str, tuple[str, ...]]:
        return {k: tuple(sorted(v)) for k, v in self.map.items()}


#: A pattern that never matches (vocabulary kinds without names).
_NEVER = re.compile(r"(?!)")


def _compile(forms: dict[str, tuple[str, ...]]) -> re.Pattern[str]:
    """Trie regex of the forms (longest alternative first); never matches an empty string."""
    return re.compile(trie_regex(forms)) if forms else _NEVER


def _towns_and_communities(
    std: pd.DataFrame, towns: pd.DataFrame | None, communities: pd.DataFrame | None
) -> tuple[list[str], set[tuple[str, str]]]:
    """Town names and (town, community) pairs of the library, plus those of the optional layers."""
    town_names = _basic_names(std["town_name"])
    pairs = set(zip(town_names, _basic_names(std["community_name"]), strict=True))
    if towns is not None and len(towns):
        tn = _basic_names(towns["town_name"])
        code_to_town = dict(zip(towns["town_code"].astype(str), tn, strict=True))
        town_names = town_names + tn
        if communities is not None and len(communities):
            cn = _basic_names(communities["community_name"])
            for code, c in zip(communities["town_code"].astype(str), cn, strict=True):
                if code in code_to_town:
                    pairs.add((code_to_town[code], c))
    return town_names, pairs


def _add_road_forms(rf: _Forms, road_names: set[str], taken: set[str]) -> None:
    """Each road under its own name, and under a suffix variant or its stem that names only it.

    A stem (the name without 路/街/大道 …) that is also a town or community form (*taken*) is not
    added: 南庄 stays the town, not 南庄大道.
    """
    for r in road_names:
        rf.add(r, r)
    variants: dict[str, set[str]] = {}
    for r in road_names:
        for a, b in ROAD_SUFFIX_VARIANTS:
            for x, y in ((a, b), (b, a)):
                if r.endswith(x) and len(r) > len(x) and not (x == "街" and r.endswith("大街")):
                    variants.setdefault(r[: -len(x)] + y, set()).add(r)
    for r in road_names:  # the suffix dropped (鸿福 for 鸿福路): a stem of two characters or more
        for suffix in ROAD_SUFFIXES:
            if r.endswith(suffix) and len(r) - len(suffix) >= 2:
                variants.setdefault(r[: -len(suffix)], set()).add(r)
                break
    for form, canon in variants.items():
        if form not in road_names and form not in taken and len(canon) == 1:
            rf.add(form, next(iter(canon)))


#: First characters of road suffixes: a stem form (鸿福 for 鸿福路) followed by one is another road.
_SUFFIX_STARTS = frozenset(suffix[0] for suffix in ("路", "街", "道", "巷", "大道", "大街", "大路"))


class _RoadMatcher:
    """Road forms of a vocabulary, where a bare stem counts only when no road suffix follows it.

    ``鸿福116号`` is 鸿福路 116号; in ``鸿福东路`` or a typo'd ``康山路`` the stem 康山 (of 康山街) is
    not the road: the text names a road of its own, for the fuzzy matcher.
    """

    def __init__(self, vocab: Vocabulary) -> None:
        self.rx, self.roads = vocab._road_rx, vocab.roads

    def match(self, text: str, pos: int = 0) -> re.Match[str] | None:
        m = self.rx.match(text, pos)
        if m is None:
            return None
        form, end = m.group(0), m.end()
        if form not in self.roads.get(form, ()) and end < len(text) and text[end] in _SUFFIX_STARTS:
            return None
        return m


def _range_start(house: str) -> str:
    """``112-114`` (a range of doors, the higher number second) → ``112``; ``23-1`` (a sub-number) stays.

    >>> _range_start("112-114"), _range_start("23-1"), _range_start("7")
    ('112', '23-1', '7')
    """
    a, sep, b = house.partition("-")
    return a if sep and int(b) > int(a) else house


def _split_house(key: str) -> tuple[str, str, str, str]:
    """Split a key at its house number: (text before, text after, house, building)."""
    m = _HOUSE_RE.search(key) or _BARE_HOUSE_RE.search(key)
    if m:
        head, tail, house = key[: m.start()], key[m.end() :], m.group(1)
        house = _range_start(house)
    else:
        head, tail, house = key, "", ""
    building = ""
    mb = _BUILDING_RE.search(tail) if house else None
    if mb:
        building = mb.group(1).upper()
        tail = tail[: mb.start()] + tail[mb.end() :]
    elif not house:
        mb = _BUILDING_RE.search(head)
        if mb:  # "3栋" without a house number is beyond what the text can locate: keep aside
            tail = head[mb.start() :]
            head = head[: mb.start()]
    return head, tail, house, building


@dataclass(frozen=True)
class Vocabulary:
    """The names a library knows, with their alias forms.

    Attributes
    ----------
    towns
        Alias form → canonical town names.
    communities
        Alias form → canonical community keys ``"<town>/<community>"``.
    roads
        Alias form → canonical road names.
    rules
        :class:`~gridplan.geocode.normalize.TextRules` protecting every name and form.

    """

    towns: dict[str, tuple[str, ...]]
    communities: dict[str, tuple[str, ...]]
    roads: dict[str, tuple[str, ...]]
    rules: TextRules
    _town_rx: re.Pattern[str] = field(default=_NEVER, repr=False)
    _comm_rx: re.Pattern[str] = field(default=_NEVER, repr=False)
    _road_rx: re.Pattern[str] = field(default=_NEVER, repr=False)

    @classmethod
    def from_library(
        cls,
        std_addresses: pd.DataFrame,
        *,
        towns: pd.DataFrame | None = None,
        communities: pd.DataFrame | None = None,
    ) -> Vocabulary:
        """Build the vocabulary of a standard address library.

        Parameters
        ----------
        std_addresses
            Needs ``town_name``, ``community_name``, ``road_name``.
        towns, communities
            Optional layers (``town_code``/``town_name``; ``community_name``/``town_code``) adding
            names without addresses.

        Examples
        --------
        >>> lib = pd.DataFrame({"town_name": ["长安镇"], "community_name": ["乌沙社区"],
        ...                     "road_name": ["兴发大道"]})
        >>> v = Vocabulary.from_library(lib)
        >>> v.towns["长安"], v.communities["乌沙村"], v.roads["兴发大路"]
        (('长安镇',), ('长安镇/乌沙社区',), ('兴发大道',))

        """
        town_names, pairs = _towns_and_communities(std_addresses, towns, communities)
        tf, cf, rf = _Forms(), _Forms(), _Forms()
        for t in set(town_names):
            if t:
                tf.add(t, t)
                tf.add(_strip_suffix(t, TOWN_SUFFIXES), t)
        for t, c in pairs:
            if not c:
                continue
            key = f"{t}/{c}"
            cf.add(c, key)
            core = _strip_suffix(c, COMMUNITY_SUFFIXES)
            if len(core) >= 2:
                cf.add(core, key)
                for suf in COMMUNITY_ALIAS_SUFFIXES:
                    cf.add(core + suf, key)
        towns_m = tf.freeze()
        comms_m = cf.freeze()
        road_names = {r for r in _basic_names(std_addresses["road_name"].drop_duplicates()) if r}
        _add_road_forms(rf, road_names, set(towns_m) | set(comms_m))
        roads_m = rf.freeze()
        rules = TextRules.from_names([*towns_m, *comms_m, *roads_m])
        return cls(towns_m, comms_m, roads_m, rules, _compile(towns_m), _compile(comms_m), _compile(roads_m))

    # -- probes: one trie regex per kind, so a probe is one C-level match (longest form first) ----
    def town_at(self, text: str, pos: int = 0) -> str:
        """Longest town form starting at *pos* ('' if none)."""
        m = self._town_rx.match(text, pos)
        return m.group(0) if m is not None else ""

    def community_at(self, text: str, pos: int = 0) -> str:
        """Longest community form starting at *pos* ('' if none)."""
        m = self._comm_rx.match(text, pos)
        return m.group(0) if m is not None else ""

    def road_at(self, text: str, pos: int = 0) -> str:
        """Longest road form starting at *pos* ('' if none)."""
        m = self._road_rx.match(text, pos)
        return m.group(0) if m is not None else ""

    def parse_one(self, key: str) -> tuple[str, str, str, str, str, str, str]:
        """Parse one normalised key; see :func:`parse_addresses` for the fields."""
        head, tail, house, building = _split_house(key)
        extra = [tail] if tail else []
        town_rx, comm_rx, road_rx = self._town_rx, self._comm_rx, _RoadMatcher(self)
        pos, town, comm, skipped = 0, "", "", ""
        mt, mc, mr = town_rx.match(head), comm_rx.match(head), road_rx.match(head)
        if mt is None and mc is None and mr is None and head:
            # skip unknown leading text up to the first town/community name (e.g. 东莞 without 市)
            hits = [
                m.start()
                for m in (town_rx.search(head, 1), comm_rx.search(head, 1))
                if m is not None and m.start() < len(head) - 1
            ]
            if hits:
                pos = min(hits)
                skipped = head[:pos]
                mt, mc, mr = town_rx.match(head, pos), comm_rx.match(head, pos), road_rx.match(head, pos)
        tl = mt.end() - pos if mt is not None else 0
        cl = mc.end() - pos if mc is not None else 0
        rl = mr.end() - pos if mr is not None else 0
        if tl and tl >= cl and tl >= rl:  # a town first (unless a longer community/road starts here)
            town, pos = head[pos : pos + tl], pos + tl
            mc, mr = comm_rx.match(head, pos), road_rx.match(head, pos)
            cl = mc.end() - pos if mc is not None else 0
            rl = mr.end() - pos if mr is not None else 0
        if cl and cl >= rl:
            comm, pos = head[pos : pos + cl], pos + cl
        rest = head[pos:]
        road = ""
        if rest in self.roads:
            road = rest
        elif rest:
            mr = road_rx.match(rest)
            if mr is not None:  # a road followed by text the library does not know
                road, extra = mr.group(0), [rest[mr.end() :], *extra]
            else:
                for i in range(1, len(rest) - 1):
                    if rest[i:] in self.roads:
                        road, skipped = rest[i:], skipped + rest[:i]
                        break
        if skipped:
            extra = [skipped, *extra]
        towns = self.towns[town] if town else ()
        comms = self.communities[comm] if comm else ()
        if towns and len(comms) > 1:  # a community name used in several towns: the town decides
            inside = tuple(k for k in comms if k.split("/", 1)[0] in towns)
            comms = inside or comms
        return (
            "|".join(towns),
            "|".join(comms),
            "|".join(self.roads[road]) if road else "",
            road or rest,
            house,
            building,
            " ".join(e for e in extra if e),
        )


def parse_addresses(keys: pd.Series, vocab: Vocabulary) -> pd.DataFrame:
    """Parse normalised keys into address components using *vocab*.

    Parameters
    ----------
    keys
        Output column ``key`` of :func:`~gridplan.geocode.normalize.normalize_addresses`.
    vocab
        The library's :class:`Vocabulary`.

    Returns
    -------
    pandas.DataFrame
        Indexed like *keys*; columns ``town`` (canonical town names, ``|``-joined if the form is
        ambiguous, '' if absent), ``community`` (``town/community`` keys likewise), ``road``
        (canonical road name or ''), ``road_text`` (the text where the road should be, for fuzzy
        matching), ``house`` (digits, e.g. ``23`` or ``23-1``), ``building`` (e.g. ``3``, ``A``),
        ``parse_extra`` (text the library cannot use).

    Examples
    --------
    >>> lib = pd.DataFrame({"town_name": ["长安镇"], "community_name": ["乌沙社区"],
    ...                     "road_name": ["兴发路"]})
    >>> v = Vocabulary.from_library(lib)
    >>> parse_addresses(pd.Series(["长安乌沙村兴发路23号3栋"]), v).iloc[0].tolist()
    ['长安镇', '长安镇/乌沙社区', '兴发路', '兴发路', '23', '3', '']

    """
    inverse, uniq = pd.factorize(keys.to_numpy(dtype=object))
    rows = [vocab.parse_one(k if isinstance(k, str) else "") for k in uniq]
    arr = np.empty((len(uniq), len(PARSE_COLUMNS)), dtype=object)
    if rows:
        arr[:] = rows
    if not (len(uniq) == len(keys) and (inverse == np.arange(len(keys))).all()):
        arr = arr[inverse]
    return obj_frame({c: arr[:, i] for i, c in enumerate(PARSE_COLUMNS)}, index=keys.index)


def house_key(values: pd.Series) -> pd.Series:
    """House numbers of the library as digit keys (``23号`` / ``二十三号`` / ``23`` → ``23``).

    Examples
    --------
    >>> house_key(pd.Series(["23号", "二十三号", "7", None])).tolist()
    ['23', '23', '7', '']

    """
    codes, uniq = pd.factorize(values, use_na_sentinel=True)  # a library repeats few house numbers
    s = pd.Series([u if isinstance(u, str) else str(u) for u in uniq], dtype=object)
    s = s.where(~s.str.fullmatch(r"\s*\d+\s*"), s.str.strip() + "号")
    norm = normalize_addresses(s).key
    keys = norm.str.extract(f"({_DIGITS_RE.pattern})", expand=False).fillna("").to_numpy(dtype=object)
    return pd.Series(np.append(keys, "")[codes], index=values.index, dtype=object)


def building_key(values: pd.Series) -> pd.Series:
    """Turn building numbers of the library into keys (``3栋``/``3``/``三栋`` → ``3``; empty stays empty).

    Examples
    --------
    >>> building_key(pd.Series(["3栋", "3", "三幢", "", None, "A座"])).tolist()
    ['3', '3', '3', '', '', 'A']

    """
    codes, uniq = pd.factorize(values, use_na_sentinel=True)
    s = pd.Series([u.strip() if isinstance(u, str) else str(u) for u in uniq], dtype=object)
    s = s.where(~s.str.fullmatch(r"[A-Za-z]?\d*") | (s == ""), s + "栋")
    norm = normalize_addresses(s).key
    out = norm.str.extract(_BUILDING_RE.pattern, expand=False).fillna("").str.upper()
    return pd.Series(np.append(out.to_numpy(dtype=object), "")[codes], index=values.index, dtype=object)


__all__ = ["Vocabulary", "building_key", "house_key", "parse_addresses"]
