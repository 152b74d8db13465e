"""Atomic units from attributed faces (private helper of :mod:`gridplan.merge.build`).

Owns the step faces → atomic units: same-lineage components (community, every department's grid,
split piece), sliver elimination inside the community, per-unit statistics from buildings and
standard addresses, and unit geometry, adjacency and cut costs for the districting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridplan.merge.lineage import FaceLineage
from gridplan.merge.overlay import Refinement
from gridplan.merge.slivers import eliminate_slivers, lineage_components, sliver_mask

__all__ = ["STAT_COLUMNS", "Points", "Units", "atomic_units", "dissolve", "point_stats"]

#: Per-unit and per-grid statistics summed from buildings and standard addresses.
STAT_COLUMNS = ["households", "residents", "floating_residents", "rental_rooms", "addresses"]
_BUILDING_STATS = ["households", "residents", "floating_residents", "rental_rooms"]


@dataclass
class Points:
    """Representative points of buildings and standard addresses with building figures."""

    b_pts: np.ndarray
    b_geoms: np.ndarray
    b_vals: np.ndarray  # buildings x len(_BUILDING_STATS); missing columns are 0
    a_pts: np.ndarray


@dataclass
class Units:
    """Atomic units: per-face unit label, lineage, stats, geometry and adjacency."""

    unit: np.ndarray  # per face
    n: int
    lineage: np.ndarray  # unit x (community, dept keys..., piece)
    kept_sliver: np.ndarray
    slivers_removed: int
    fstats: np.ndarray
    stats: np.ndarray
    geom: np.ndarray
    area: np.ndarray
    x: np.ndarray
    y: np.ndarray
    adj: pd.DataFrame
    outer: np.ndarray
    b_unit: np.ndarray  # unit of each building (-1 outside)
    b_face: np.ndarray  # face of each building's point (-1 outside)
    a_face: np.ndarray  # face of each standard address (-1 outside)
    #: slivers cut off from their community that joined a unit of another one: rows of (final unit,
    #: original community key, area m²), reported in qa_issues
    crumbs: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))


def dissolve(geoms: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
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


def point_stats(layers: Mapping[str, gpd.GeoDataFrame]) -> Points:
    """Take representative points and figures of the buildings and standard addresses layers."""
    b_pts = a_pts = b_geoms = np.empty(0, dtype=object)
    b_vals = np.zeros((0, len(_BUILDING_STATS)))
    if "buildings" in layers and len(layers["buildings"]):
        b = layers["buildings"]
        geoms = np.asarray(b.geometry.array)
        b_ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        geoms = geoms[b_ok]
        bad = ~shapely.is_valid(geoms)
        if bad.any():
            geoms = geoms.copy()
            geoms[bad] = shapely.make_valid(geoms[bad])
        b_geoms = geoms
        b_pts = shapely.point_on_surface(geoms)
        b_vals = np.zeros((len(geoms), len(_BUILDING_STATS)))
        for j, c in enumerate(_BUILDING_STATS):
            if c in b.columns:
                b_vals[:, j] = pd.to_numeric(b[c], errors="coerce").fillna(0).to_numpy(float)[b_ok]
    if "std_addresses" in layers and len(layers["std_addresses"]):
        geoms = np.asarray(layers["std_addresses"].geometry.array)
        a_ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        a_pts = shapely.point_on_surface(geoms[a_ok])
    return Points(b_pts=b_pts, b_geoms=b_geoms, b_vals=b_vals, a_pts=a_pts)


def _reassign_points(points: np.ndarray, where: np.ndarray, fg: np.ndarray,
                     refined: Refinement) -> np.ndarray:
    """Locate *points* in the faces of a refined overlay, from their faces *where* in the previous one.

    A point's face is the lowest-index face it meets.  A point that meets no new face and no face
    now gone meets the same kept faces as before, in the same relative order, so its face is its
    previous face renumbered.  Only the points whose previous face is gone, is ``refined.near`` or
    is none are tested again, against the new faces and ``refined.near``: a face meeting such a
    point also meets (so its bounding box meets) a new or gone face, unless it is the previous face.
    """
    now_of_prev = refined.now_of_previous()
    res = np.where(where >= 0, now_of_prev[np.maximum(where, 0)], -1)
    if len(points) == 0:
        return res
    watch = np.zeros(len(fg), bool)
    watch[refined.near] = True
    again = (res < 0) | watch[np.maximum(res, 0)]
    idx = np.flatnonzero(again)
    cand = np.union1d(np.flatnonzero(refined.previous_index < 0), refined.near)
    res[idx] = -1
    sub = _assign_points(points[idx], fg[cand])
    res[idx[sub >= 0]] = cand[sub[sub >= 0]]
    return res


def _face_stats(fg: np.ndarray, pts: Points, refined: Refinement | None = None,
                previous: Units | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per face, the summed building figures and address count; the face of each building and address."""
    from concurrent.futures import ThreadPoolExecutor

    nf = len(fg)
    fstats = np.zeros((nf, len(STAT_COLUMNS)))
    if refined is not None and previous is not None:
        b_where = _reassign_points(pts.b_pts, previous.b_face, fg, refined)
        a_where = _reassign_points(pts.a_pts, previous.a_face, fg, refined)
    else:
        with ThreadPoolExecutor(max_workers=2) as ex:  # GEOS releases the GIL: both cores
            b_where, a_where = ex.map(lambda p: _assign_points(p, fg), [pts.b_pts, pts.a_pts])
    if len(pts.b_pts):
        inside = b_where >= 0
        for j in range(len(_BUILDING_STATS)):
            fstats[:, j] = np.bincount(b_where[inside], pts.b_vals[inside, j], nf)
    if len(pts.a_pts):
        fstats[:, 4] = np.bincount(a_where[a_where >= 0], minlength=nf)
    return fstats, b_where, a_where


def _components(fl: FaceLineage, *, min_area_m2: float, max_thinness: float,
                max_width_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, np.ndarray]:
    """Same-lineage components, slivers merged: face unit, unit lineage, kept slivers, removed, crumbs."""
    fg, farea, fadj = fl.fg, fl.farea, fl.fadj
    lineage = np.column_stack([fl.fcomm, fl.fdept, fl.fpiece])
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
    u_comm[comp] = fl.fcomm
    u_key = np.zeros(nu, np.int64)
    u_key[comp] = fkey
    is_sliver = sliver_mask(u_area, u_perim, min_area_m2=min_area_m2, max_thinness=max_thinness,
                            max_width_m=max_width_m)
    owner, kept = eliminate_slivers(is_sliver, u_comm, u_area, uadj)
    n_removed = int((is_sliver & (owner != np.arange(nu))).sum())
    fkey2 = u_key[owner[comp]]
    unit = lineage_components(fkey2, fadj)
    n_units = int(unit.max()) + 1
    # lineage of a final unit = lineage of its faces' owner
    key_lineage = np.zeros((int(fkey.max()) + 1, lineage.shape[1]), np.int64)
    key_lineage[fkey] = lineage
    unit_lineage = np.zeros((n_units, lineage.shape[1]), np.int64)
    unit_lineage[unit] = key_lineage[fkey2]
    kept_sliver = np.zeros(n_units, bool)
    kept_sliver[unit[kept[comp]]] = True
    # crumbs that crossed a community line, one row per final unit and original community
    crossed = np.flatnonzero(u_comm[owner] != u_comm)
    crumbs = np.zeros((0, 3))
    if len(crossed):
        a_face = np.zeros(nu, np.int64)
        a_face[comp] = np.arange(len(comp))  # any face of a unit: they all end in the same final unit
        df = pd.DataFrame({"unit": unit[a_face[crossed]], "comm": u_comm[crossed], "area": u_area[crossed]})
        crumbs = df.groupby(["unit", "comm"], as_index=False, sort=True)["area"].sum().to_numpy(float)
    return unit, unit_lineage, kept_sliver, n_removed, crumbs


def _previous_units(unit: np.ndarray, n_units: int, refined: Refinement, previous: Units) -> np.ndarray:
    """Per unit, the previous unit made of exactly the same faces (-1 none).

    A unit whose faces are all kept and all belonged to one previous unit of as many faces is that
    unit: the same faces, in the same relative order, so the same dissolved geometry.
    """
    prev_face = refined.previous_index
    kept = prev_face >= 0
    pu = np.where(kept, previous.unit[np.maximum(prev_face, 0)], -1)
    order = np.argsort(unit, kind="stable")
    first = order[np.searchsorted(unit[order], np.arange(n_units))]
    cand = pu[first]
    # every face of the unit kept and in cand; as many faces as cand had
    bad = np.bincount(unit, ~kept | (pu != cand[unit]), n_units) > 0
    n_now = np.bincount(unit, minlength=n_units)
    n_prev = np.bincount(previous.unit, minlength=previous.n)
    bad |= n_now != n_prev[np.maximum(cand, 0)]
    return np.where(bad | (cand < 0), -1, cand)


def atomic_units(fl: FaceLineage, pts: Points, n_depts: int, *, min_area_m2: float, max_thinness: float,
                 max_width_m: float, refined: Refinement | None = None,
                 previous: Units | None = None) -> Units:
    """Faces with their lineage → atomic units with statistics, geometry and adjacency.

    With *refined* (the faces' relation to a previous overlay) and *previous* (its units), the
    points are located again only around the new faces (:func:`_reassign_points`) and the units
    made of the same faces as a previous unit keep its geometry (:func:`_previous_units`); the
    graph steps (components, slivers, adjacency) run on every face, they are cheap.  The result
    equals the units computed from scratch.
    """
    unit, unit_lineage, kept_sliver, n_removed, crumbs = _components(
        fl, min_area_m2=min_area_m2, max_thinness=max_thinness, max_width_m=max_width_m)
    n_units = int(unit.max()) + 1
    fg, farea, fadj, fdept = fl.fg, fl.farea, fl.fadj, fl.fdept
    fstats, b_where, a_where = _face_stats(fg, pts, refined, previous)
    ustats = np.column_stack([np.bincount(unit, fstats[:, j], n_units) for j in range(fstats.shape[1])])
    if refined is not None and previous is not None:
        same = _previous_units(unit, n_units, refined, previous)
        redo = np.flatnonzero(same < 0)
        ugeom = np.empty(n_units, dtype=object)
        ugeom[same >= 0] = previous.geom[same[same >= 0]]
        in_redo = np.isin(unit, redo)
        ugeom[redo] = dissolve(fg[in_redo], np.searchsorted(redo, unit[in_redo]), len(redo))
        ux, uy = np.empty(n_units), np.empty(n_units)
        ux[same >= 0], uy[same >= 0] = previous.x[same[same >= 0]], previous.y[same[same >= 0]]
        rp = shapely.point_on_surface(ugeom[redo])
        ux[redo], uy[redo] = shapely.get_x(rp), shapely.get_y(rp)
    else:
        ugeom = dissolve(fg, unit, n_units)
        upts = shapely.point_on_surface(ugeom)
        ux, uy = shapely.get_x(upts), shapely.get_y(upts)
    uarea = np.bincount(unit, farea, n_units)
    a_idx, b_idx, ln = fadj["a"].to_numpy(), fadj["b"].to_numpy(), fadj["length"].to_numpy()
    agree = (fdept[a_idx] != fdept[b_idx]).sum(axis=1) if n_depts else np.zeros(len(a_idx))
    cost = ln * (n_depts + 1 - agree) / (n_depts + 1)
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
    b_unit = np.where(b_where >= 0, unit[np.maximum(b_where, 0)], -1) if len(b_where) else b_where
    return Units(unit=unit, n=n_units, lineage=unit_lineage, kept_sliver=kept_sliver,
                 slivers_removed=n_removed, fstats=fstats, stats=ustats, geom=ugeom, area=uarea,
                 x=ux, y=uy, adj=uadj2, outer=outer, b_unit=b_unit, b_face=b_where, a_face=a_where,
                 crumbs=crumbs)
