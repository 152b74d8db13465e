"""Merge departmental grids into one base grid ("多网合一", PRODUCT §3.3).

Owns :func:`merge_layers`: departmental layers + communities + city → a :class:`~gridplan.plans.Plan`
with atomic units (lineage), base grids (household band, 15-digit codes), the departmental
crosswalk and fit, the H3 index and QA.  The steps live in private modules:

* :mod:`gridplan.merge.overlay` — one n-way overlay (snap-rounded noding + polygonize + STRtree
  attribution) into *faces*, and exact face adjacency;
* :mod:`gridplan.merge.slivers` — faces → atomic units (same lineage), sliver elimination inside the
  community;
* :mod:`gridplan.merge.basegrids` — units → contiguous base grids in one community, reading-order codes.

Lineage rules (documented in the plan's QA):

* a face in no grid of a department is a **gap**: ``<dept>_grid_id`` is ``""``;
* a face in two grids of one department is an **overlap**: it goes to the grid that covers the
  larger area of the face's community (ties: the smaller id) and is recorded in ``qa_issues``;
* a face in no community joins the community it shares the longest edge with (else the nearest);
  a face in two communities goes to the larger one.

Partitioning: the noding runs on rectangular tiles of ~40,000 vertices on two threads (GEOS
releases the GIL).  On the city sample this costs the same CPU as one pass (~40 s) and splits the
wall time over both cores; tiles by town/community were not used because a community layer with
gaps or overlaps would then lose or double-count area, while faces cut by a tile edge simply rejoin
(same lineage) when atomic units are formed.

Households, residents, floating residents and rental rooms come from ``buildings`` (each building
counted once, in the unit holding its representative point); ``addresses`` counts
``std_addresses`` points.  The plan is deterministic: the same input gives the same units, grids
and codes (only ``plan_id`` and ``created_at`` differ).
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridplan._clock import iso_utc
from gridplan.errors import CRSError, InputError
from gridplan.merge.basegrids import check_band, grid_sequence, partition_units
from gridplan.merge.overlay import face_adjacency, overlay_faces
from gridplan.merge.slivers import eliminate_slivers, lineage_components, sliver_mask
from gridplan.plans import Plan, PlanMeta

__all__ = ["QA_COLUMNS", "STAT_COLUMNS", "fingerprint_gdf", "merge_layers"]

log = logging.getLogger(__name__)

#: Columns of a QA table (contracts: validate / plans).
QA_COLUMNS = ["layer", "feature_id", "issue", "detail"]
#: Per-unit and per-grid statistics summed from buildings and standard addresses.
STAT_COLUMNS = ["households", "residents", "floating_residents", "rental_rooms", "addresses"]
_BUILDING_STATS = ["households", "residents", "floating_residents", "rental_rooms"]

ProgressFn = Callable[[str], None]


def fingerprint_gdf(gdf: pd.DataFrame) -> str:
    """Content hash (sha256 hex) of a (Geo)DataFrame: geometry WKB, column names and values.

    Re-runs on the same data give the same fingerprint, so plans built from the same input can be
    recognised.

    Examples
    --------
    >>> from shapely import Point
    >>> a = gpd.GeoDataFrame({"v": [1]}, geometry=[Point(0, 0)], crs=4547)
    >>> fingerprint_gdf(a) == fingerprint_gdf(a.copy()), len(fingerprint_gdf(a))
    (True, 64)

    """
    h = hashlib.sha256()
    h.update("|".join(map(str, gdf.columns)).encode())
    if isinstance(gdf, gpd.GeoDataFrame) and gdf.geometry.name in gdf.columns:
        wkb = shapely.to_wkb(np.asarray(gdf.geometry.array), hex=False)
        h.update(b"\0".join(b"" if w is None else w for w in wkb))
        attrs = gdf.drop(columns=gdf.geometry.name)
    else:
        attrs = gdf
    if len(attrs.columns):
        h.update(pd.util.hash_pandas_object(attrs, index=False).to_numpy().tobytes())
    return h.hexdigest()


def _validate(gdf: gpd.GeoDataFrame, kind: str, name: str, boundary: Any,
              id_field: str | None) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    try:
        from gridplan.validate import validate_layer
    except ImportError:  # pragma: no cover - stand-in until gridplan.validate exists
        geoms = np.asarray(gdf.geometry.array)
        ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        out = gdf.loc[ok].copy()
        out.geometry = shapely.make_valid(geoms[ok])
        return out, _qa_frame([], gdf.crs)
    return validate_layer(gdf, kind, layer_name=name, boundary=boundary, id_field=id_field)


def _check_codes(values: pd.Series, digits: int, layer: str, field: str) -> np.ndarray:
    s = values.astype(str).str.strip()
    bad = ~s.str.fullmatch(rf"\d{{{digits}}}")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"must be {digits} digits, got {values.iloc[row]!r}", layer=layer, row=row,
                         field=field)
    return s.to_numpy(dtype=object)


def _require(gdf: pd.DataFrame, layer: str, fields: Sequence[str]) -> None:
    for f in fields:
        if f not in gdf.columns:
            raise InputError(f"missing required field; add a column {f!r}", layer=layer, field=f)


def _resolve(pairs: np.ndarray, n_faces: int, keys: np.ndarray, face_area: np.ndarray,
             face_group: np.ndarray | None) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """Pick one key per face: the candidate with the larger area (within the face's group).

    Returns the chosen key code per face (-1 = none), a table of overlapping faces (``face``,
    ``chosen``, ``region``: faces with the same candidates and choice share a region key) and the
    candidates of those faces (``face``, ``key``, sorted).
    """
    face, feat = pairs[0], pairs[1]
    key = keys[feat]
    df = pd.DataFrame({"face": face, "key": key}).drop_duplicates()
    chosen = np.full(n_faces, -1, np.int64)
    counts = df.groupby("face")["key"].transform("size").to_numpy()
    single = counts == 1
    chosen[df["face"].to_numpy()[single]] = df["key"].to_numpy()[single]
    multi = df[~single].copy()
    if multi.empty:
        empty = np.array([], np.int64)
        return (chosen, pd.DataFrame({"face": empty, "chosen": empty, "region": empty}),
                pd.DataFrame({"face": empty, "key": empty}))
    grp = np.zeros(n_faces, np.int64) if face_group is None else face_group
    share = pd.DataFrame({"key": df["key"].to_numpy(), "g": grp[df["face"].to_numpy()],
                          "area": face_area[df["face"].to_numpy()]})
    tot = share.groupby(["key", "g"])["area"].sum()
    multi["g"] = grp[multi["face"].to_numpy()]
    multi["score"] = tot.reindex(pd.MultiIndex.from_arrays([multi["key"], multi["g"]])).to_numpy()
    multi = multi.sort_values(["face", "score", "key"], ascending=[True, False, True], kind="stable")
    best = multi.drop_duplicates("face", keep="first")
    chosen[best["face"].to_numpy()] = best["key"].to_numpy()
    agg = multi.groupby("face", sort=True)["key"].agg(["min", "max", "size"])
    fidx = agg.index.to_numpy()
    region = pd.DataFrame({"a": agg["min"].to_numpy(), "b": agg["max"].to_numpy(),
                           "n": agg["size"].to_numpy(), "c": chosen[fidx]}).groupby(
        ["a", "b", "n", "c"], sort=True).ngroup().to_numpy()
    ov = pd.DataFrame({"face": fidx, "chosen": chosen[fidx], "region": region})
    cand = multi[["face", "key"]].sort_values(["face", "key"], kind="stable").reset_index(drop=True)
    return chosen, ov, cand


def _candidates(cand: pd.DataFrame, face: int) -> np.ndarray:
    f = cand["face"].to_numpy()
    lo, hi = np.searchsorted(f, face, "left"), np.searchsorted(f, face, "right")
    return cand["key"].to_numpy()[lo:hi]


def _dissolve(geoms: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Union faces per label (exact coverage union: faces share identical edges)."""
    out = np.empty(n, dtype=object)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n + 1))
    for g in range(n):
        idx = order[bounds[g]:bounds[g + 1]]
        if len(idx) == 1:
            out[g] = geoms[idx[0]]
        else:
            try:
                out[g] = shapely.coverage_union_all(geoms[idx])
            except shapely.errors.GEOSException:  # pragma: no cover - defensive
                out[g] = shapely.union_all(geoms[idx])
    return out


def _assign_points(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Face index holding each point (-1 outside); a point on an edge goes to the lower index."""
    res = np.full(len(points), -1, np.int64)
    if len(points) == 0:
        return res
    # faces as the query side: each face is prepared once for all the points it holds
    pairs = shapely.STRtree(points).query(faces, predicate="intersects")[::-1]
    if pairs.shape[1]:
        o = np.lexsort((pairs[1], pairs[0]))
        p = pairs[:, o]
        first = np.r_[True, p[0, 1:] != p[0, :-1]]
        res[p[0, first]] = p[1, first]
    return res


def _regions(faces: np.ndarray, key: np.ndarray, fadj: pd.DataFrame, farea: np.ndarray,
             fperim: np.ndarray, noise: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> list[np.ndarray]:
    """Return the connected regions of *faces* with equal *key* that are not noise."""
    if len(faces) == 0:
        return []
    n = len(fperim)
    k = np.full(n, -1, np.int64)
    k[faces] = key
    comp = lineage_components(k, fadj)[faces]
    _, comp = np.unique(comp, return_inverse=True)
    nr = int(comp.max()) + 1
    pos = np.full(n, -1, np.int64)
    pos[faces] = np.arange(len(faces))
    a, b, ln = fadj["a"].to_numpy(), fadj["b"].to_numpy(), fadj["length"].to_numpy()
    m = (pos[a] >= 0) & (pos[b] >= 0)
    m &= k[a] == k[b]
    inner = np.bincount(comp[pos[a[m]]], ln[m], nr)
    area = np.bincount(comp, farea[faces], nr)
    perim = np.bincount(comp, fperim[faces], nr) - 2 * inner
    keep = np.flatnonzero(~noise(area, perim))
    order = np.argsort(comp, kind="stable")
    bounds = np.searchsorted(comp[order], np.arange(nr + 1))
    return [faces[order[bounds[r]:bounds[r + 1]]] for r in keep]


def _qa_frame(rows: list[dict[str, Any]], crs: Any) -> gpd.GeoDataFrame:
    if not rows:
        return gpd.GeoDataFrame({c: pd.Series([], dtype=object) for c in QA_COLUMNS},
                                geometry=gpd.GeoSeries([], crs=crs), crs=crs)
    df = pd.DataFrame(rows)
    return gpd.GeoDataFrame(df[QA_COLUMNS], geometry=gpd.GeoSeries(df["geometry"].to_numpy(), crs=crs),
                            crs=crs)


def merge_layers(
    layers: Mapping[str, gpd.GeoDataFrame],
    *,
    departments: Sequence[str] | None = None,
    min_area_m2: float = 50.0,
    max_thinness: float = 0.3,
    max_width_m: float = 5.0,
    households_min: int = 300,
    households_max: int = 500,
    h3_res: int = 10,
    grid_size_m: float = 0.01,
    progress: ProgressFn | None = None,
) -> Plan:
    """Merge departmental grids and communities into atomic units and base grids.

    Parameters
    ----------
    layers
        Canonical layer name → GeoDataFrame (``gridplan.layers.read_layers``): ``city``,
        ``communities`` and ``dept_<name>`` layers are required; ``towns`` (names),
        ``buildings`` (households …) and ``std_addresses`` (address counts) are used when present.
        All in one projected CRS (EPSG:4547 by default).
    departments
        Department names (``police`` for ``dept_police``); default every ``dept_*`` layer.
    min_area_m2
        Atomic units smaller than this (m²) are slivers.
    max_thinness
        Units with Polsby-Popper compactness ``4πA/P²`` below this *and* mean width ``2A/P`` below
        ``max_width_m`` (m) are slivers too: the lens-shaped strips between two departments'
        versions of one line (hand-digitised outlines differ by up to a few metres).  A 10:1 strip
        has compactness 0.26; a square 0.79.
    max_width_m
        See ``max_thinness``; a wide strip (a riverside park) is never a sliver.
    households_min, households_max
        Household band of a base grid.
    h3_res
        H3 resolution of the plan's cell index (0–15).
    grid_size_m
        Snap-rounding grid of the overlay (m); boundaries closer than this are merged.
    progress
        Optional callback receiving the name of each step as it starts (for progress bars).

    Returns
    -------
    Plan
        ``atomic_units``, ``base_grids``, ``crosswalk`` (``dept_crosswalk``), ``dept_fit``,
        ``h3_cells``, ``qa_issues`` and ``meta``; extra summary figures in
        ``meta.params["summary"]``.

    Raises
    ------
    InputError
        A required layer or field is missing, a code is malformed, an unknown department is
        requested, or the band is empty.
    CRSError
        Layers are not in one projected CRS.

    """
    t0 = time.perf_counter()
    step = progress or (lambda _s: None)
    check_band(households_min, households_max)
    for name in ("city", "communities"):
        if name not in layers:
            raise InputError("required layer is missing", layer=name)
    available = sorted(n.removeprefix("dept_") for n in layers if n.startswith("dept_"))
    if departments is None:
        depts = available
    else:
        depts = [d.strip().removeprefix("dept_") for d in departments if d.strip()]
        unknown = [d for d in depts if d not in available]
        if unknown:
            raise InputError(f"unknown department(s) {', '.join(unknown)}; available: "
                             f"{', '.join(available) or 'none'}", field="departments")
        depts = list(dict.fromkeys(depts))
    if not depts:
        raise InputError("no departmental layers (dept_*) to merge", layer="dept_*")
    used = ["city", "communities", *[f"dept_{d}" for d in depts]]
    crs = layers["city"].crs
    from gridplan.crs import require_projected

    for name in [*used, *[n for n in ("towns", "buildings", "std_addresses") if n in layers]]:
        require_projected(layers[name], what=f"layer {name}")
        if not layers[name].crs.equals(crs):
            raise CRSError(f"layer {name} is in {layers[name].crs.to_string()} but city is in "
                           f"{crs.to_string()}; reproject every layer to one CRS")
    _require(layers["city"], "city", ["county_code"])
    _require(layers["communities"], "communities", ["community_code", "community_name", "town_code"])
    for d in depts:
        _require(layers[f"dept_{d}"], f"dept_{d}", ["dept_grid_id"])

    # ---- validation -------------------------------------------------------------------------
    step("validate layers")
    qa_parts: list[pd.DataFrame] = []
    city_gdf, qa = _validate(layers["city"], "city", "city", None, None)
    qa_parts.append(qa)
    if city_gdf.empty:
        raise InputError("has no valid polygon", layer="city")
    county = _check_codes(city_gdf["county_code"], 6, "city", "county_code")
    county_code = str(county[0])
    city_geom = shapely.union_all(np.asarray(city_gdf.geometry.array))
    comm_gdf, qa = _validate(layers["communities"], "communities", "communities", city_geom,
                             "community_code")
    qa_parts.append(qa)
    comm_code = _check_codes(comm_gdf["community_code"], 12, "communities", "community_code")
    town_code_of = dict(zip(comm_code, _check_codes(comm_gdf["town_code"], 9, "communities", "town_code"),
                            strict=True))
    comm_name_of = dict(zip(comm_code, comm_gdf["community_name"].astype(str), strict=True))
    town_name_of: dict[str, str] = {}
    if "towns" in layers and {"town_code", "town_name"} <= set(layers["towns"].columns):
        t = layers["towns"]
        town_name_of = dict(zip(t["town_code"].astype(str), t["town_name"].astype(str), strict=True))
    dept_gdfs: dict[str, gpd.GeoDataFrame] = {}
    for d in depts:
        g, qa = _validate(layers[f"dept_{d}"], "dept", f"dept_{d}", city_geom, "dept_grid_id")
        qa_parts.append(qa)
        dept_gdfs[d] = g

    # ---- n-way overlay ----------------------------------------------------------------------
    step("overlay")
    ov_layers = {"communities": np.asarray(comm_gdf.geometry.array)}
    for d in depts:
        ov_layers[f"dept_{d}"] = np.asarray(dept_gdfs[d].geometry.array)
    faces = overlay_faces(city_geom, ov_layers, grid_size_m=grid_size_m)
    fg = faces.geoms
    nf = len(fg)
    if nf == 0:
        raise InputError("the city polygon has no area", layer="city")
    farea = shapely.area(fg)
    fadj = face_adjacency(fg)
    fperim = shapely.length(fg)

    def noise(area: np.ndarray, perim: np.ndarray) -> np.ndarray:
        # digitising noise (thin strips, crumbs) gets no lineage note: validation reports it
        return sliver_mask(area, perim, min_area_m2=min_area_m2, max_thinness=max_thinness,
                           max_width_m=max_width_m)
    qa_rows: list[dict[str, Any]] = []

    # communities per face
    comm_codes_u, comm_key = np.unique(comm_code, return_inverse=True)
    fcomm, comm_ov, comm_cand = _resolve(faces.members["communities"], nf, comm_key, farea, None)
    for fi in _regions(comm_ov["face"].to_numpy(), comm_ov["region"].to_numpy(), fadj, farea, fperim, noise):
        others = [str(comm_codes_u[k]) for k in _candidates(comm_cand, int(fi[0]))]
        qa_rows.append({"layer": "communities", "feature_id": ",".join(others), "issue": "overlap",
                        "detail": f"merge: {farea[fi].sum():.1f} m² in communities {' and '.join(others)}; "
                                  f"assigned to {comm_codes_u[fcomm[fi[0]]]} (larger community)",
                        "geometry": shapely.union_all(fg[fi])})
    if (fcomm < 0).any():
        lost = fcomm < 0
        owner, _ = eliminate_slivers(lost, np.zeros(nf, np.int64), farea, fadj)
        fixed = lost & (fcomm[owner] >= 0)
        fcomm[fixed] = fcomm[owner[fixed]]
        if (fcomm < 0).any():  # isolated: nearest community
            idx = np.flatnonzero(fcomm < 0)
            near = shapely.STRtree(np.asarray(comm_gdf.geometry.array)).query_nearest(
                faces.points[idx], all_matches=False)
            fcomm[idx[near[0]]] = comm_key[near[1]]
        li = np.flatnonzero(lost)
        for fi in _regions(li, fcomm[li], fadj, farea, fperim, noise):
            qa_rows.append({"layer": "communities", "feature_id": "", "issue": "gap",
                            "detail": f"merge: {farea[fi].sum():.1f} m² of the city in no community; "
                                      f"assigned to {comm_codes_u[fcomm[fi[0]]]}",
                            "geometry": shapely.union_all(fg[fi])})

    # departments per face
    dept_ids: dict[str, np.ndarray] = {}
    fdept = np.zeros((nf, len(depts)), np.int64)
    for j, d in enumerate(depts):
        ids = dept_gdfs[d]["dept_grid_id"].astype(str).str.strip().to_numpy(dtype=object)
        uids, key = np.unique(ids, return_inverse=True)
        dept_ids[d] = uids
        chosen, ov, cand = _resolve(faces.members[f"dept_{d}"], nf, key, farea, fcomm)
        fdept[:, j] = chosen
        for fi in _regions(ov["face"].to_numpy(), ov["region"].to_numpy(), fadj, farea, fperim, noise):
            pair = ",".join(str(uids[k]) for k in _candidates(cand, int(fi[0])))
            qa_rows.append({
                "layer": f"dept_{d}", "feature_id": pair, "issue": "overlap",
                "detail": f"merge: {farea[fi].sum():.1f} m² in grids {pair.replace(',', ' and ')}; "
                          f"assigned to {uids[chosen[fi[0]]]} (larger share of the community)",
                "geometry": shapely.union_all(fg[fi])})
        gap = np.flatnonzero(chosen < 0)
        for fi in _regions(gap, fcomm[gap], fadj, farea, fperim, noise):
            c = comm_codes_u[fcomm[fi[0]]]
            qa_rows.append({
                "layer": f"dept_{d}", "feature_id": "", "issue": "gap",
                "detail": f"merge: {farea[fi].sum():.1f} m² of community {c} in no {d} grid "
                          f"(units there have an empty {d}_grid_id)",
                "geometry": shapely.union_all(fg[fi])})

    # ---- atomic units: same-lineage components, then slivers ---------------------------------
    step("atomic units and slivers")
    lineage = np.column_stack([fcomm, fdept])
    _, fkey = np.unique(lineage, axis=0, return_inverse=True)
    fkey = fkey.ravel()
    comp = lineage_components(fkey, fadj)
    nu = int(comp.max()) + 1
    u_area = np.bincount(comp, farea, nu)
    a_idx, b_idx, ln = fadj["a"].to_numpy(), fadj["b"].to_numpy(), fadj["length"].to_numpy()
    internal = comp[a_idx] == comp[b_idx]
    u_perim = np.bincount(comp, shapely.length(fg), nu) - 2 * np.bincount(
        comp[a_idx[internal]], ln[internal], nu)
    uadj = (pd.DataFrame({"a": comp[a_idx[~internal]], "b": comp[b_idx[~internal]], "length": ln[~internal]})
            .assign(a2=lambda x: np.minimum(x.a, x.b), b2=lambda x: np.maximum(x.a, x.b))
            .groupby(["a2", "b2"], as_index=False)["length"].sum().rename(columns={"a2": "a", "b2": "b"}))
    u_comm = np.zeros(nu, np.int64)
    u_comm[comp] = fcomm
    u_key = np.zeros(nu, np.int64)
    u_key[comp] = fkey
    is_sliver = sliver_mask(u_area, u_perim, min_area_m2=min_area_m2, max_thinness=max_thinness,
                            max_width_m=max_width_m)
    owner, kept = eliminate_slivers(is_sliver, u_comm, u_area, uadj)
    n_slivers_removed = int((is_sliver & (owner != np.arange(nu))).sum())
    fkey2 = u_key[owner[comp]]
    unit = lineage_components(fkey2, fadj)
    n_units = int(unit.max()) + 1
    # lineage of a final unit = lineage of its faces' owner
    key_lineage = np.zeros((int(fkey.max()) + 1, lineage.shape[1]), np.int64)
    key_lineage[fkey] = lineage
    unit_lineage = np.zeros((n_units, lineage.shape[1]), np.int64)
    unit_lineage[unit] = key_lineage[fkey2]
    unit_kept_sliver = np.zeros(n_units, bool)
    unit_kept_sliver[unit[kept[comp]]] = True

    # ---- statistics from buildings and addresses (per face, then summed) ----------------------
    step("households and addresses")
    fstats = np.zeros((nf, len(STAT_COLUMNS)))
    b_pts = a_pts = np.empty(0, dtype=object)
    b_ok = a_ok = np.zeros(0, bool)
    if "buildings" in layers and len(layers["buildings"]):
        geoms = np.asarray(layers["buildings"].geometry.array)
        b_ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        geoms = geoms[b_ok]
        bad = ~shapely.is_valid(geoms)
        if bad.any():
            geoms = geoms.copy()
            geoms[bad] = shapely.make_valid(geoms[bad])
        b_pts = shapely.point_on_surface(geoms)
    if "std_addresses" in layers and len(layers["std_addresses"]):
        geoms = np.asarray(layers["std_addresses"].geometry.array)
        a_ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        a_pts = shapely.point_on_surface(geoms[a_ok])
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as ex:  # GEOS releases the GIL: both cores
        b_where, a_where = ex.map(lambda p: _assign_points(p, fg), [b_pts, a_pts])
    if len(b_pts):
        b = layers["buildings"]
        inside = b_where >= 0
        for j, c in enumerate(_BUILDING_STATS):
            if c in b.columns:
                vals = pd.to_numeric(b[c], errors="coerce").fillna(0).to_numpy(float)[b_ok]
                fstats[:, j] = np.bincount(b_where[inside], vals[inside], nf)
    if len(a_pts):
        fstats[:, 4] = np.bincount(a_where[a_where >= 0], minlength=nf)
    ustats = np.column_stack([np.bincount(unit, fstats[:, j], n_units) for j in range(fstats.shape[1])])

    # ---- unit geometry and adjacency --------------------------------------------------------
    ugeom = _dissolve(fg, unit, n_units)
    uarea = np.bincount(unit, farea, n_units)
    upts = shapely.point_on_surface(ugeom)
    ux, uy = shapely.get_x(upts), shapely.get_y(upts)
    D = len(depts)
    agree = (fdept[a_idx] != fdept[b_idx]).sum(axis=1) if D else np.zeros(len(a_idx))
    cost = ln * (D + 1 - agree) / (D + 1)
    ua, ub = unit[a_idx], unit[b_idx]
    cross = ua != ub
    uadj2 = (pd.DataFrame({"a": np.minimum(ua, ub)[cross], "b": np.maximum(ua, ub)[cross],
                           "length": ln[cross], "cost": cost[cross]})
             .groupby(["a", "b"], as_index=False, sort=True)[["length", "cost"]].sum())
    ucomm = unit_lineage[:, 0]
    same = ucomm[uadj2["a"].to_numpy()] == ucomm[uadj2["b"].to_numpy()]
    shared_same = (np.bincount(uadj2["a"].to_numpy()[same], uadj2["length"].to_numpy()[same], n_units)
                   + np.bincount(uadj2["b"].to_numpy()[same], uadj2["length"].to_numpy()[same], n_units))
    outer = np.maximum(shapely.length(ugeom) - shared_same, 0.0)
    outer[outer < 1e-6 * np.maximum(shapely.length(ugeom), 1)] = 0.0

    # ---- base grids ---------------------------------------------------------------------------
    step("base grids")
    glabel, notes = partition_units(ucomm, ustats[:, 0], ustats[:, 1], ux, uy, uadj2, outer,
                                    households_min=households_min, households_max=households_max)
    n_grids = int(glabel.max()) + 1
    fgrid = glabel[unit]
    ggeom = _dissolve(fg, fgrid, n_grids)
    garea = np.bincount(fgrid, farea, n_grids)
    gcomm = np.zeros(n_grids, np.int64)
    gcomm[glabel] = ucomm
    gpts = shapely.point_on_surface(ggeom)
    gb = shapely.bounds(ggeom)
    per_comm = pd.DataFrame({"c": gcomm, "area": garea, "north": gb[:, 3]}).groupby("c").agg(
        area=("area", "sum"), north=("north", "max"), n=("area", "size"))
    north = per_comm["north"].reindex(gcomm).to_numpy()
    row_h = np.sqrt(per_comm["area"] / per_comm["n"]).reindex(gcomm).to_numpy()
    seq = grid_sequence(gcomm, shapely.get_x(gpts), shapely.get_y(gpts), north, row_h)
    if seq.max() > 999:
        c = comm_codes_u[gcomm[int(np.argmax(seq))]]
        raise InputError(f"community {c} would need more than 999 base grids; raise households_max",
                         field="households_max")
    gcode = np.array([f"{comm_codes_u[c]}{s:03d}" for c, s in zip(gcomm, seq, strict=True)], dtype=object)
    gstats = np.column_stack([np.bincount(glabel, ustats[:, j], n_grids) for j in range(ustats.shape[1])])

    # ---- unit ids (community, then north→south, west→east) and tables ---------------------------
    uorder = np.lexsort((uarea, np.round(ux, 3), -np.round(uy, 3), comm_codes_u[ucomm]))
    uid = np.empty(n_units, dtype=object)
    width = max(6, len(str(n_units)))
    uid[uorder] = [f"U{i + 1:0{width}d}" for i in range(n_units)]
    ucode_str = comm_codes_u[ucomm]
    units_df: dict[str, Any] = {
        "unit_id": uid, "community_code": ucode_str,
        "town_code": np.array([town_code_of[c] for c in ucode_str], dtype=object),
        "base_grid_code": gcode[glabel],
    }
    for j, d in enumerate(depts):
        col = unit_lineage[:, j + 1]
        units_df[f"{d}_grid_id"] = np.where(col >= 0, dept_ids[d][np.maximum(col, 0)], "").astype(object)
    units_df["area_m2"] = uarea
    for j, c in enumerate(STAT_COLUMNS):
        units_df[c] = ustats[:, j].round().astype(np.int64)
    atomic = gpd.GeoDataFrame(units_df, geometry=gpd.GeoSeries(ugeom, crs=crs), crs=crs)
    atomic = atomic.iloc[uorder].reset_index(drop=True)

    gcomm_str = comm_codes_u[gcomm]
    gtown = np.array([town_code_of[c] for c in gcomm_str], dtype=object)
    grids_df: dict[str, Any] = {
        "grid_code": gcode, "community_code": gcomm_str, "town_code": gtown,
        "community_name": np.array([comm_name_of.get(c, "") for c in gcomm_str], dtype=object),
        "town_name": np.array([town_name_of.get(t, "") for t in gtown], dtype=object),
    }
    for j, c in enumerate(STAT_COLUMNS):
        grids_df[c] = gstats[:, j].round().astype(np.int64)
    grids_df["area_m2"] = garea
    grids_df["units"] = np.bincount(glabel, minlength=n_grids)
    grids_df["band_status"] = np.array([notes[g].status for g in range(n_grids)], dtype=object)
    grids_df["band_reason"] = np.array([notes[g].reason for g in range(n_grids)], dtype=object)
    base = gpd.GeoDataFrame(grids_df, geometry=gpd.GeoSeries(ggeom, crs=crs), crs=crs)
    gorder = np.argsort(gcode, kind="stable")
    base = base.iloc[gorder].reset_index(drop=True)

    # ---- crosswalk and fit --------------------------------------------------------------------
    step("crosswalk")
    crosswalk, fit = _crosswalk(faces.members, depts, dept_ids, dept_gdfs, farea, fstats[:, 0],
                                gcode[fgrid])

    # ---- QA -----------------------------------------------------------------------------------
    for i in np.flatnonzero(unit_kept_sliver):
        qa_rows.append({"layer": "atomic_units", "feature_id": uid[i], "issue": "sliver",
                        "detail": f"{uarea[i]:.1f} m² sliver kept: no non-sliver neighbour in community "
                                  f"{ucode_str[i]}", "geometry": ugeom[i]})
    for g in np.flatnonzero(base["band_status"].to_numpy() != "ok"):
        r = base.iloc[g]
        qa_rows.append({"layer": "base_grids", "feature_id": r["grid_code"], "issue": "band",
                        "detail": f"{r['band_status']}: {r['households']} households outside "
                                  f"{households_min}-{households_max}; {r['band_reason']}",
                        "geometry": r.geometry})
    qa_parts.append(_qa_frame(qa_rows, crs))
    qa_all = pd.concat([q for q in qa_parts if len(q)], ignore_index=True) if any(
        len(q) for q in qa_parts) else _qa_frame([], crs)
    qa_all = gpd.GeoDataFrame(qa_all, geometry="geometry", crs=crs)

    # ---- H3 index and metadata ----------------------------------------------------------------
    step("H3 index")
    from gridplan.hexindex import build_h3_index

    h3_cells = build_h3_index(base, res=h3_res)
    try:
        from gridplan.plans import new_plan_id

        plan_id = new_plan_id()
    except ImportError:  # pragma: no cover - plans.new_plan_id not written yet
        plan_id = uuid.uuid4().hex
    in_band = base["band_status"].to_numpy() == "ok"
    summary = {
        "faces": nf, "atomic_units": n_units, "slivers_removed": n_slivers_removed,
        "slivers_kept": int(unit_kept_sliver.sum()), "base_grids": n_grids,
        "grids_in_band_pct": round(100 * float(in_band.mean()), 2),
        "households_in_band_pct": round(100 * float(base["households"].to_numpy()[in_band].sum())
                                        / max(float(base["households"].sum()), 1.0), 2),
    }
    params = {"min_area_m2": min_area_m2, "max_thinness": max_thinness, "max_width_m": max_width_m,
              "households_min": households_min, "households_max": households_max, "h3_res": h3_res,
              "grid_size_m": grid_size_m, "departments": list(depts), "summary": summary}
    inputs = {name: fingerprint_gdf(layers[name]) for name in sorted(layers)
              if name in used or name in ("towns", "buildings", "std_addresses")}
    meta = PlanMeta(plan_id=plan_id, parent_id=None,
                    created_at=iso_utc(), params=params,
                    inputs=inputs, county_code=county_code, crs=crs.to_string(), h3_res=h3_res,
                    departments=tuple(depts), kind="merge")
    plan = Plan(atomic_units=atomic, base_grids=base, crosswalk=crosswalk, dept_fit=fit,
                h3_cells=h3_cells, qa_issues=qa_all, meta=meta)
    log.info("merged %d layers into %s atomic units, %s base grids in %.1f s", len(depts),
             f"{n_units:,}", f"{n_grids:,}", time.perf_counter() - t0)
    return plan


def _crosswalk(members: dict[str, np.ndarray], depts: Sequence[str], dept_ids: dict[str, np.ndarray],
               dept_gdfs: dict[str, gpd.GeoDataFrame], farea: np.ndarray, fhh: np.ndarray,
               fcode: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every departmental grid as shares of base grids, and how much each keeps in its best one."""
    cw_parts = []
    fit_parts = []
    for d in depts:
        pairs = members[f"dept_{d}"]
        ids = dept_gdfs[d]["dept_grid_id"].astype(str).str.strip().to_numpy(dtype=object)
        df = pd.DataFrame({"dept_grid_id": ids[pairs[1]], "face": pairs[0]}).drop_duplicates()
        df["grid_code"] = fcode[df["face"].to_numpy()]
        df["area"] = farea[df["face"].to_numpy()]
        df["hh"] = fhh[df["face"].to_numpy()]
        agg = df.groupby(["dept_grid_id", "grid_code"], as_index=False, sort=True)[["area", "hh"]].sum()
        tot = agg.groupby("dept_grid_id")[["area", "hh"]].transform("sum")
        agg["area_share"] = agg["area"] / tot["area"]
        agg["household_share"] = np.where(tot["hh"] > 0, agg["hh"] / tot["hh"].where(tot["hh"] > 0, 1),
                                           np.nan)
        agg.insert(0, "department", d)
        cw_parts.append(agg[["department", "dept_grid_id", "grid_code", "area_share", "household_share",
                             "area", "hh"]])
        best = agg.sort_values(["dept_grid_id", "area_share", "household_share", "grid_code"],
                               ascending=[True, False, False, True], kind="stable",
                               na_position="last").drop_duplicates("dept_grid_id")
        n_bg = agg.groupby("dept_grid_id").size()
        tot1 = agg.groupby("dept_grid_id")[["area", "hh"]].sum()
        fit = pd.DataFrame({
            "department": d, "dept_grid_id": best["dept_grid_id"].to_numpy(),
            "best_grid_code": best["grid_code"].to_numpy(),
            "area_kept": best["area_share"].to_numpy(), "households_kept": best["household_share"].to_numpy(),
            "base_grids": n_bg.reindex(best["dept_grid_id"]).to_numpy(),
        })
        kept_area = float(best["area"].sum()) / max(float(tot1["area"].sum()), 1e-12)
        hh_tot = float(tot1["hh"].sum())
        kept_hh = float(best["hh"].sum()) / hh_tot if hh_tot > 0 else np.nan
        summary = pd.DataFrame({"department": [d], "dept_grid_id": ["*"], "best_grid_code": [""],
                                "area_kept": [kept_area], "households_kept": [kept_hh],
                                "base_grids": [int(fit["base_grids"].sum())]})
        fit_parts.append(pd.concat([fit, summary], ignore_index=True))
    cw = pd.concat(cw_parts, ignore_index=True).drop(columns=["area", "hh"])
    fit_all = pd.concat(fit_parts, ignore_index=True)
    for df in (cw, fit_all):
        for c in ("department", "dept_grid_id"):
            df[c] = df[c].astype(object)
    fit_all["best_grid_code"] = fit_all["best_grid_code"].astype(object)
    cw["grid_code"] = cw["grid_code"].astype(object)
    return cw, fit_all
