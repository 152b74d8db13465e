"""Merge departmental grids into one base grid ("多网合一", PRODUCT §3.3).

Owns :func:`merge_layers`: departmental layers + communities + city → a :class:`~gridplan.plans.Plan`
with atomic units (lineage), base grids (household band, 15-digit codes), the departmental
crosswalk and fit, the H3 index and QA.  The steps live in private modules:

* :mod:`gridplan.merge.overlay` — one n-way overlay (snap-rounded noding + polygonize + STRtree
  attribution) into *faces*, and exact face adjacency;
* :mod:`gridplan.merge.slivers` — faces → atomic units (same lineage), sliver elimination inside the
  community;
* :mod:`gridplan.merge.split` — units above the band divided along roads, then between buildings;
* :mod:`gridplan.merge.basegrids` — units → contiguous base grids in one community, reading-order codes;
* :mod:`gridplan.merge.inputs`, :mod:`~gridplan.merge.lineage`, :mod:`~gridplan.merge.units`,
  :mod:`~gridplan.merge.tables` — checked inputs, face lineage, atomic units, the plan's tables.

Split units: an atomic unit above ``households_max`` (with ``split_units``) is divided into pieces
(:mod:`gridplan.merge.split`); the pieces' outlines join the overlay as one more layer and the faces,
their lineage and the atomic units are refined from the first pass (only what the pieces change is
computed again, with the same result as a second pass over the whole city), so every piece is an
atomic unit (``parent_unit_id`` = the id its parent would have had, the piece's id ``<parent>-<j>``)
and the crosswalk, H3 index and diff stay exact.

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
from dataclasses import dataclass, replace
from typing import Any, TypedDict, Unpack

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridplan._clock import iso_utc
from gridplan.errors import InputError
from gridplan.merge.basegrids import (
    UNIT_NOT_SPLIT,
    UNIT_SINGLE_BUILDING,
    UNIT_SPLIT_SHORT,
    check_band,
    partition_units,
)
from gridplan.merge.inputs import QA_COLUMNS, MergeInputs, check_layers, qa_frame, read_inputs
from gridplan.merge.lineage import FaceLineage, face_lineage
from gridplan.merge.overlay import (
    Faces,
    drop_isolated_specks,
    face_adjacency,
    overlay_faces,
    refined_adjacency,
)
from gridplan.merge.split import Buildings, plan_splits
from gridplan.merge.tables import base_grid_table, crosswalk_tables, grids_of, unit_table
from gridplan.merge.units import STAT_COLUMNS, Points, Units, atomic_units, point_stats
from gridplan.plans import Plan, PlanMeta

__all__ = ["QA_COLUMNS", "STAT_COLUMNS", "MergeKnobs", "MergeOptions", "fingerprint_gdf", "merge_layers",
           "merge_with"]

log = logging.getLogger(__name__)

ProgressFn = Callable[[str], None]
#: Layers whose lines divide an oversized unit before its buildings do.
LINEAR_LAYERS = ("roads", "rivers")


@dataclass(frozen=True)
class MergeOptions:
    """Knobs of a merge (see :func:`merge_layers` for each)."""

    departments: Sequence[str] | None = None
    min_area_m2: float = 50.0
    max_thinness: float = 0.3
    max_width_m: float = 5.0
    households_min: int = 300
    households_max: int = 500
    h3_res: int = 10
    grid_size_m: float = 0.01
    split_units: bool = True

    def __post_init__(self) -> None:
        if self.departments is not None:  # a tuple: hashable, immune to later edits of a list
            object.__setattr__(self, "departments", tuple(self.departments))

    def sliver_args(self) -> dict[str, float]:
        """Keyword arguments of the sliver rule."""
        return {"min_area_m2": self.min_area_m2, "max_thinness": self.max_thinness,
                "max_width_m": self.max_width_m}


class MergeKnobs(TypedDict, total=False):
    """Keyword form of :class:`MergeOptions` (``departments`` any sequence)."""

    departments: Sequence[str] | None
    min_area_m2: float
    max_thinness: float
    max_width_m: float
    households_min: int
    households_max: int
    h3_res: int
    grid_size_m: float
    split_units: bool


@dataclass
class _Stage:
    """Faces, their lineage and the atomic units made from them."""

    faces: Faces
    fl: FaceLineage
    units: Units


@dataclass
class _Split:
    """Outcome of the split step: parent (-1 whole) per unit, parent geometry, per-unit flags."""

    parent: np.ndarray
    parent_geom: np.ndarray
    flags: np.ndarray
    n_split: int


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


def merge_layers(
    layers: Mapping[str, gpd.GeoDataFrame],
    options: MergeOptions | None = None,
    *,
    progress: ProgressFn | None = None,
    **knobs: Unpack[MergeKnobs],
) -> Plan:
    """Merge departmental grids and communities into atomic units and base grids.

    The knobs are the fields of :class:`MergeOptions`, given as one *options* object or as keyword
    arguments (which override *options*).

    Parameters
    ----------
    layers
        Canonical layer name → GeoDataFrame (``gridplan.layers.read_layers``): ``city``,
        ``communities`` and ``dept_<name>`` layers are required; ``towns`` (names),
        ``buildings`` (households …), ``std_addresses`` (address counts) and ``roads`` / ``rivers``
        (lines that divide oversized units first) are used when present.
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
    split_units
        Divide atomic units above ``households_max`` along roads, then between buildings
        (:mod:`gridplan.merge.split`); off: such a unit is one grid above the band.
    progress
        Optional callback receiving the name of each step as it starts (for progress bars).

    Returns
    -------
    Plan
        ``atomic_units`` (with ``parent_unit_id``), ``base_grids``, ``crosswalk``
        (``dept_crosswalk``), ``dept_fit``, ``h3_cells``, ``qa_issues`` and ``meta``; extra summary
        figures in ``meta.params["summary"]`` (grids in band, grids outside by reason, units split).

    Raises
    ------
    InputError
        A required layer or field is missing, a code is malformed, an unknown department is
        requested, or the band is empty.
    CRSError
        Layers are not in one projected CRS.

    """
    opts = replace(options or MergeOptions(), **knobs)
    return merge_with(layers, opts, progress=progress)


def _stage(inp: MergeInputs, opts: MergeOptions, pts: Points,
           pieces: np.ndarray | None = None, previous: _Stage | None = None) -> _Stage:
    """Faces, lineage and atomic units; with *previous*, refined from it (see :func:`_split`)."""
    ov_layers = {"communities": np.asarray(inp.comm_gdf.geometry.array)}
    for d in inp.depts:
        ov_layers[f"dept_{d}"] = np.asarray(inp.dept_gdfs[d].geometry.array)
    if pieces is not None:
        ov_layers["_pieces"] = pieces
    faces = overlay_faces(inp.city_geom, ov_layers, grid_size_m=opts.grid_size_m,
                          previous=None if previous is None else previous.faces)
    if len(faces.geoms) == 0:
        raise InputError("the city polygon has no area", layer="city")
    fadj = face_adjacency(faces.geoms) if previous is None else refined_adjacency(faces, previous.fl.fadj)
    faces, fadj, specks = drop_isolated_specks(faces, fadj, opts.min_area_m2, (pts.b_pts, pts.a_pts))
    fl = face_lineage(faces, inp, n_pieces=0 if pieces is None else len(pieces), fadj=fadj,
                      min_area_m2=opts.min_area_m2, max_thinness=opts.max_thinness,
                      max_width_m=opts.max_width_m)
    for g in specks:
        fl.qa_rows.append({"layer": "city", "feature_id": "", "issue": "sliver",
                           "detail": f"merge: {shapely.area(g):.3f} m² speck touching the rest of the city "
                                     "at a vertex only, with no building or address: left out of the "
                                     "atomic units",
                           "geometry": g})
    units = atomic_units(fl, pts, len(inp.depts), refined=faces.refined,
                         previous=None if previous is None else previous.units, **opts.sliver_args())
    return _Stage(faces=faces, fl=fl, units=units)


def _face_gaps(faces: Faces, inp: MergeInputs) -> list[gpd.GeoDataFrame]:
    """``gap`` QA rows of communities and departmental layers: the faces no feature of a layer covers.

    The overlay knows them (a face missing from ``faces.members[layer]``), so the inputs are read
    with the gap check skipped and the rows are built here from the union of those few faces.
    """
    from gridplan.validate import gap_qa

    out = []
    for layer in ["communities", *(f"dept_{d}" for d in inp.depts)]:
        covered = np.zeros(len(faces.geoms), bool)
        covered[faces.members[layer][0]] = True
        if not covered.all():
            # the faces are a coverage (noded, shared edges identical): the coverage union is exact
            # and 5-6x faster than union_all (city sample: 2.5 s instead of 15 s for six layers)
            out.append(gap_qa(layer, shapely.coverage_union_all(faces.geoms[~covered]), inp.crs))
    return out


def _lines(layers: Mapping[str, gpd.GeoDataFrame]) -> np.ndarray:
    parts = []
    for name in LINEAR_LAYERS:
        if name in layers and len(layers[name]):
            g = shapely.get_parts(np.asarray(layers[name].geometry.array))
            g = g[~shapely.is_empty(g)]
            parts.append(g[np.isin(shapely.get_type_id(g), (1, 2))])
    return np.concatenate(parts) if parts else np.empty(0, dtype=object)


def _split(layers: Mapping[str, gpd.GeoDataFrame], inp: MergeInputs, opts: MergeOptions, pts: Points,
           st: _Stage) -> tuple[_Stage, _Split]:
    """Divide units above the band; refine the faces, lineage and units with the pieces' outlines.

    The second stage is the first one refined, not redone: only the overlay tiles the pieces'
    outlines cross are noded again, and only the faces that come out different are attributed,
    located and dissolved again (:func:`~gridplan.merge.overlay.overlay_faces` with ``previous``,
    :func:`~gridplan.merge.lineage.face_lineage`, :func:`~gridplan.merge.units.atomic_units`).
    On the city sample (2 units split of 67,621) that is a few thousand faces of ~400,000; the
    whole-city recomputation was half of the merge's CPU.  Each refinement step says why its
    result equals the recomputation; tests/test_split_units.py compares the two.
    """
    units, hi = st.units, opts.households_max
    over = units.stats[:, 0] > hi
    flags = np.zeros(units.n, np.int64)
    none = np.full(units.n, -1, np.int64)
    if not over.any():
        return st, _Split(none, units.geom, flags, 0)
    if not opts.split_units:
        flags[over] = UNIT_NOT_SPLIT
        return st, _Split(none, units.geom, flags, 0)
    b_hh = pts.b_vals[:, 0] if len(pts.b_vals) else np.zeros(0)
    sp = plan_splits(units.geom, units.stats[:, 0], Buildings(units.b_unit, pts.b_geoms, pts.b_pts, b_hh),
                     _lines(layers), lo=opts.households_min, hi=hi)
    if len(sp.pieces) == 0:
        flags[over] = UNIT_SINGLE_BUILDING
        return st, _Split(none, units.geom, flags, 0)
    st2 = _stage(inp, opts, pts, sp.pieces, previous=st)
    u2 = st2.units
    piece = u2.lineage[:, -1]
    parent = np.where(piece >= 0, sp.parent[np.maximum(piece, 0)], -1)
    ok = u2.b_unit >= 0
    biggest = np.zeros(u2.n)
    np.maximum.at(biggest, u2.b_unit[ok], b_hh[ok])
    flags = np.where(biggest > hi, UNIT_SINGLE_BUILDING, UNIT_SPLIT_SHORT) * (u2.stats[:, 0] > hi)
    return st2, _Split(parent, units.geom, flags.astype(np.int64), sp.n_split)


def merge_with(layers: Mapping[str, gpd.GeoDataFrame], opts: MergeOptions, *,
               progress: ProgressFn | None = None) -> Plan:
    """:func:`merge_layers` with its knobs as one :class:`MergeOptions`."""
    t0 = time.perf_counter()
    step = progress or (lambda _s: None)
    check_band(opts.households_min, opts.households_max)
    depts, used, crs = check_layers(layers, opts.departments)
    step("validate layers")
    inp = read_inputs(layers, depts, used, crs)
    step("overlay")
    pts = point_stats(layers)
    step("atomic units and slivers")
    st = _stage(inp, opts, pts)
    inp.qa_parts.extend(_face_gaps(st.faces, inp))
    step("households and addresses")
    step("split units")
    st, split = _split(layers, inp, opts, pts, st)
    step("base grids")
    units, fl = st.units, st.fl
    glabel, notes = partition_units(units.lineage[:, 0], units.stats[:, 0], units.stats[:, 1], units.x,
                                    units.y, units.adj, units.outer, households_min=opts.households_min,
                                    households_max=opts.households_max, flags=split.flags)
    grids = grids_of(units, fl, glabel, notes)
    atomic, uid = unit_table(units, grids, inp, fl, split.parent, split.parent_geom)
    base = base_grid_table(grids, inp, fl)
    step("crosswalk")
    crosswalk, fit = crosswalk_tables(st.faces.members, inp, fl, units, grids)
    qa_all = _qa(inp, fl, units, uid, base, opts)
    step("H3 index")
    tables = {"base_grids": base, "atomic_units": atomic, "crosswalk": crosswalk, "dept_fit": fit,
              "qa_issues": qa_all}
    plan = _plan(layers, inp, opts, tables, {
        "faces": len(fl.fg), "atomic_units": units.n, "slivers_removed": units.slivers_removed,
        "slivers_kept": int(units.kept_sliver.sum()),
        "crumbs_joined_other_community": len(units.crumbs), "base_grids": grids.n,
        "units_split": split.n_split})
    log.info("merged %d layers into %s atomic units, %s base grids in %.1f s", len(depts),
             f"{units.n:,}", f"{grids.n:,}", time.perf_counter() - t0)
    return plan


def _qa(inp: MergeInputs, fl: FaceLineage, units: Units, uid: np.ndarray, base: gpd.GeoDataFrame,
        opts: MergeOptions) -> gpd.GeoDataFrame:
    qa_rows = list(fl.qa_rows)
    ucode_str = fl.comm_codes_u[units.lineage[:, 0]]
    for i in np.flatnonzero(units.kept_sliver):
        qa_rows.append({"layer": "atomic_units", "feature_id": uid[i], "issue": "sliver",
                        "detail": f"{units.area[i]:.1f} m² sliver kept: no non-sliver neighbour in community "
                                  f"{ucode_str[i]}", "geometry": units.geom[i]})
    for u, comm, area in units.crumbs:
        k = int(u)
        qa_rows.append({"layer": "atomic_units", "feature_id": uid[k], "issue": "sliver",
                        "detail": f"{area:.2f} m² of community {fl.comm_codes_u[int(comm)]} cut off from it "
                                  f"(no neighbour in it) joined this unit of community {ucode_str[k]}",
                        "geometry": units.geom[k]})
    for g in np.flatnonzero(base["band_status"].to_numpy() != "ok"):
        r = base.iloc[g]
        qa_rows.append({"layer": "base_grids", "feature_id": r["grid_code"], "issue": "band",
                        "detail": f"{r['band_status']}: {r['households']} households outside "
                                  f"{opts.households_min}-{opts.households_max}; {r['band_reason']}",
                        "geometry": r.geometry})
    qa_parts = [*inp.qa_parts, qa_frame(qa_rows, inp.crs)]
    qa_all = pd.concat([q for q in qa_parts if len(q)], ignore_index=True) if any(
        len(q) for q in qa_parts) else qa_frame([], inp.crs)
    return gpd.GeoDataFrame(qa_all, geometry="geometry", crs=inp.crs)


def _plan(layers: Mapping[str, gpd.GeoDataFrame], inp: MergeInputs, opts: MergeOptions,
          tables: dict[str, Any], summary: dict[str, Any]) -> Plan:
    base = tables["base_grids"]
    from gridplan.hexindex import build_h3_index

    h3_cells = build_h3_index(base, res=opts.h3_res)
    try:
        from gridplan.plans import new_plan_id

        plan_id = new_plan_id()
    except ImportError:  # pragma: no cover - plans.new_plan_id not written yet
        plan_id = uuid.uuid4().hex
    in_band = base["band_status"].to_numpy() == "ok"
    reasons = base["band_reason"].astype(str).str.split(":").str[0].to_numpy()[~in_band]
    summary = {
        **summary,
        "grids_in_band_pct": round(100 * float(in_band.mean()), 2),
        "households_in_band_pct": round(100 * float(base["households"].to_numpy()[in_band].sum())
                                        / max(float(base["households"].sum()), 1.0), 2),
        "grids_in_band": int(in_band.sum()),
        "grids_outside_by_reason": {str(k): int(v) for k, v in
                                    sorted(pd.Series(reasons).value_counts().items())},
    }
    params = {"min_area_m2": opts.min_area_m2, "max_thinness": opts.max_thinness,
              "max_width_m": opts.max_width_m, "households_min": opts.households_min,
              "households_max": opts.households_max, "h3_res": opts.h3_res, "grid_size_m": opts.grid_size_m,
              "split_units": opts.split_units, "departments": list(inp.depts), "summary": summary}
    inputs = {name: fingerprint_gdf(layers[name]) for name in sorted(layers)
              if name in inp.used or name in ("towns", "buildings", "std_addresses", *LINEAR_LAYERS)}
    meta = PlanMeta(plan_id=plan_id, parent_id=None, created_at=iso_utc(), params=params, inputs=inputs,
                    county_code=inp.county_code, crs=inp.crs.to_string(), h3_res=opts.h3_res,
                    departments=tuple(inp.depts), kind="merge")
    return Plan(atomic_units=tables["atomic_units"], base_grids=base, crosswalk=tables["crosswalk"],
                dept_fit=tables["dept_fit"], h3_cells=h3_cells, qa_issues=tables["qa_issues"], meta=meta)
