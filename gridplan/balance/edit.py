"""Planner edits of a plan, with their consequences before saving: the engine behind editor and API.

A planner redraws grids by moving atomic units between them (boundaries follow atomic units, so an
edit never makes a sliver), and, for the rare unit that does not follow reality, by moving a vertex
of a grid's outline.  Four operations, each a small frozen dataclass so that the browser editor,
the HTTP API (JSON ``{"op": "reassign", …}``) and scripts send the same thing:

* :class:`Reassign` — give some units to a grid (usually a neighbour);
* :class:`SplitGrid` — cut a grid in two by a drawn line: units whose representative point lies
  left of the line (walking from its first to its last vertex) form a new grid with a fresh code;
* :class:`MergeGrids` — give all units of one grid to another;
* :class:`MoveVertex` — move one vertex of a grid's outline.  The land between the old and the new
  outline changes hands: the piece of each unit it covers is cut off as a new atomic unit (a fresh
  ``unit_id``, ``parent_unit_id`` naming the unit it came from) and given to the grid (land gained)
  or to the neighbouring grid it shares most edge with (land lost).  The cut unit's households,
  residents, rental rooms and addresses are divided between its parts by the buildings and
  standard addresses inside each part when the session has them (``buildings=``,
  ``addresses=``), else by area; integer counts stay integers and totals are conserved exactly.
  ``to`` snaps to an existing unit vertex within ``snap_m`` (1 m).  The units stay a partition
  (pieces are cut by exact overlay); the usual rules then apply, so a move across a community
  line is a violation ("spans 2 communities").

:class:`EditSession` applies operations to a working copy (undo/redo), and after each one reports
:class:`Consequences`: per affected grid its households, residents, band status, contiguity and
community nesting; the departmental grids newly cut; the units (and their households) that changed
grid; the standard addresses that change grid (their count from the units' ``addresses``, their
ids when the session was given the address library) and, when it was given the buildings, the
buildings that change grid; the units whose shape changed; and the rule violations that block
saving (a grid spanning two communities, a grid in two parts, a unit in no grid).  Geocoded cases
are not among them: a plan does not carry them (they are a geocode job's output).
:meth:`EditSession.to_plan` writes nothing: it returns the child plan (``Plan.derive(kind="edit")``)
or raises :class:`~gridplan.errors.InputError` naming the violation.

Written here, not taken from a library: QGIS's topological editing and ArcGIS's web editing know
polygons, not household bands, communities or departmental lineage.  Rook adjacency and connected
parts come from :mod:`gridplan.balance.graph` (shared with the rebalancer); the geometry of a vertex
move from :mod:`gridplan.balance._reshape`; the operations and consequences as values from
:mod:`gridplan.balance._edit_ops`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse.csgraph import connected_components

from gridplan.balance._edit_ops import (
    Consequences,
    GridState,
    MergeGrids,
    MoveVertex,
    Operation,
    PointsMoved,
    Reassign,
    SplitGrid,
    operation_from_json,
)
from gridplan.balance._reshape import Frame, Step, Units, VertexMove, locate, points_of
from gridplan.balance.graph import unit_adjacency
from gridplan.balance.proposal import band_qa
from gridplan.errors import InputError
from gridplan.hexindex import build_h3_index
from gridplan.merge import crosswalk_from_units
from gridplan.plans import UNIT_STATS, Plan, numeric_column, text_column

__all__ = [
    "Consequences",
    "EditSession",
    "GridState",
    "MergeGrids",
    "MoveVertex",
    "Operation",
    "PointsMoved",
    "Reassign",
    "SplitGrid",
    "operation_from_json",
]

@dataclass(frozen=True)
class _DeptIndex:
    """One department's grids over the parent's units: grid number per unit (-1: none), names, members."""

    codes: np.ndarray
    names: list[str]
    members: list[np.ndarray]
    before: np.ndarray


class EditSession:
    """A working copy of a plan's units and their grids, edited operation by operation.

    Parameters
    ----------
    plan
        The parent plan (its ``atomic_units`` carry ``unit_id``, ``community_code``,
        ``base_grid_code`` and the departmental lineage columns).
    buildings
        Optional buildings (polygons with ``building_id`` and the merge's figures ``households``,
        ``residents`` …; any CRS): a vertex move divides a cut unit's figures by the buildings in
        each part, and the consequences list the buildings that change grid.
    addresses
        Optional standard addresses (points with ``address_id``; any CRS): a cut unit's
        ``addresses`` are divided by the points in each part, and the consequences list the ids of
        the addresses that change grid.
    snap_m
        A vertex move's ``from`` must lie this close to a vertex of the grid's outline; its ``to``
        snaps to an existing unit vertex this close (metres).

    """

    def __init__(
        self,
        plan: Plan,
        *,
        buildings: gpd.GeoDataFrame | None = None,
        addresses: gpd.GeoDataFrame | None = None,
        snap_m: float = 1.0,
    ) -> None:
        self.plan = plan
        self.snap_m = float(snap_m)
        units = plan.atomic_units
        for col in ("unit_id", "community_code", "base_grid_code"):
            if col not in units.columns:
                raise InputError(f"the plan's atomic_units lack {col}", layer="atomic_units", field=col)
        ids = text_column(units, "unit_id")
        self._pos = {u: i for i, u in enumerate(ids)}
        self._comm = text_column(units, "community_code")
        geoms = np.asarray(units.geometry.values, dtype=object)
        self._tree = shapely.STRtree(geoms)
        self._n0 = len(units)
        parent = text_column(units, "base_grid_code")
        self._parent = parent
        stats = np.column_stack([numeric_column(units, s) for s in UNIT_STATS]) if len(units) else (
            np.zeros((0, len(UNIT_STATS))))
        adj = unit_adjacency(geoms, np.zeros(len(units), dtype=np.int64)).matrix().tocsr()
        self._points = {
            k: p
            for k, p in (
                ("buildings", points_of(buildings, "building_id", units.crs, True)),
                ("addresses", points_of(addresses, "address_id", units.crs, False)),
            )
            if p is not None
        }
        point_unit = {k: locate(p.pts, geoms, np.arange(len(geoms))) for k, p in self._points.items()}
        first = Units(ids, geoms, stats, np.arange(len(units), dtype=np.int64), parent, adj, {},
                       frozenset(), point_unit)
        self._dept_units = self._dept_index()
        self._start = Step(first, parent.copy())
        self._history: list[Step] = [self._start]
        self._cursor = 0
        params = plan.meta.params or {}
        retired = {str(c) for c in params.get("retired_grid_codes", []) or []}  # by earlier proposals
        self._codes_seen = set(parent) | set(text_column(plan.base_grids, "grid_code")) | retired
        self._ids_seen = set(ids)
        self.band = (float(params.get("households_min", 300)), float(params.get("households_max", 500)))

    def fresh(self) -> EditSession:
        """Return a new session on the same parent plan, sharing its (immutable) adjacency and indexes.

        Opening a session builds the unit adjacency (seconds on a city); a service keeps one
        session a plan and hands each request a fresh copy of it.
        """
        new = copy.copy(self)
        new._history = [self._start]
        new._cursor = 0
        new._codes_seen = set(self._codes_seen)
        new._ids_seen = set(self._ids_seen)
        return new

    # ---- the working state --------------------------------------------------------------------
    @property
    def assignment(self) -> np.ndarray:
        """Grid code of every unit now (``""``: in no grid); units cut off by vertex moves at the end."""
        return self._history[self._cursor].assignment

    @property
    def _units(self) -> Units:
        return self._history[self._cursor].units

    def units_now(self) -> gpd.GeoDataFrame:
        """Return the working units as a table: ``unit_id``, ``grid_code``, ``community_code``, figures."""
        u = self._units
        table: dict[str, Any] = {"unit_id": u.ids, "grid_code": self.assignment,
                                 "community_code": self._comm[u.root]}
        table.update({s: u.stats[:, j] for j, s in enumerate(UNIT_STATS)})
        return gpd.GeoDataFrame(table, geometry=gpd.GeoSeries(u.geoms, crs=self.plan.atomic_units.crs))

    def grid_outline(self, grid: str) -> shapely.Geometry:
        """Outline of *grid* now (the union of its units; plan CRS)."""
        return shapely.union_all(self._units.geoms[self._units_of(grid)])

    def _units_of(self, grid: str) -> np.ndarray:
        idx = np.flatnonzero(self.assignment == grid)
        if not len(idx):
            raise InputError(f"grid {grid} does not exist in the plan being edited", field="grid_code")
        return idx

    def _index_of(self, unit: str) -> int | None:
        pos = self._pos.get(unit)
        return pos if pos is not None else self._units.new_pos.get(unit)

    def _push(self, step: Step) -> Consequences:
        self._history = [*self._history[: self._cursor + 1], step]
        self._cursor += 1
        return self.consequences()

    def apply(self, op: Operation) -> Consequences:
        """Apply *op* and return the consequences of all edits so far (illegal edits are kept, flagged)."""
        if isinstance(op, MoveVertex):
            return self._push(self._move_vertex(op))
        new = self.assignment.copy()
        if isinstance(op, Reassign):
            self._units_of(op.to_grid)
            pos = [self._index_of(u) for u in op.units]
            missing = [u for u, p in zip(op.units, pos, strict=True) if p is None]
            if missing:
                raise InputError(f"no atomic unit {missing[0]} in the plan", field="units")
            new[[p for p in pos if p is not None]] = op.to_grid
        elif isinstance(op, MergeGrids):
            if op.keep == op.absorb:
                raise InputError("a grid cannot be merged with itself", field="absorb")
            self._units_of(op.keep)
            new[self._units_of(op.absorb)] = op.keep
        else:
            new[self._split_side(op)] = self._new_code(op.grid)
        return self._push(Step(self._units, new))

    def _split_side(self, op: SplitGrid) -> np.ndarray:
        idx = self._units_of(op.grid)
        pts = shapely.get_coordinates(shapely.point_on_surface(self._units.geoms[idx]))
        line = shapely.get_coordinates(op.line)
        if len(line) < 2:
            raise InputError("a split line needs at least two vertices", field="line")
        # side of the nearest segment: the sign of the cross product (left of the walking direction)
        a, b = line[:-1], line[1:]
        seg = shapely.linestrings(np.stack([a, b], axis=1))
        near = np.argmin(shapely.distance(seg[None, :], shapely.points(pts)[:, None]), axis=1)
        d, r = b[near] - a[near], pts - a[near]
        left = idx[(d[:, 0] * r[:, 1] - d[:, 1] * r[:, 0]) > 0]
        if len(left) in (0, len(idx)):
            raise InputError(
                f"the line does not divide grid {op.grid}: all its units lie on one side", field="line"
            )
        return left

    def _new_code(self, grid: str) -> str:
        """Return a code in *grid*'s community never used in this plan or session (retired ones too)."""
        prefix = grid[:-3]
        used = [int(c[-3:]) for c in self._codes_seen if c.startswith(prefix) and c[-3:].isdigit()]
        nxt = max(used, default=0) + 1
        if nxt > 999:
            raise InputError(f"community {prefix} has no free grid code left", field="grid_code")
        code = f"{prefix}{nxt:03d}"
        self._codes_seen.add(code)
        return code

    def _new_unit_id(self, source: str) -> str:
        """Return ``<source>-<k>``, the first such id never used in this plan or session."""
        k = 1
        while f"{source}-{k}" in self._ids_seen:
            k += 1
        self._ids_seen.add(f"{source}-{k}")
        return f"{source}-{k}"

    def undo(self) -> Consequences:
        """Step back one operation (no-op at the start)."""
        self._cursor = max(0, self._cursor - 1)
        return self.consequences()

    def redo(self) -> Consequences:
        """Step forward one undone operation (no-op at the end)."""
        self._cursor = min(len(self._history) - 1, self._cursor + 1)
        return self.consequences()

    # ---- moving a vertex ------------------------------------------------------------------------
    def _plan_xy(self, op: MoveVertex) -> tuple[np.ndarray, np.ndarray]:
        src, dst = np.array(op.from_xy, dtype=float), np.array(op.to_xy, dtype=float)
        if op.crs is not None:
            from pyproj import CRS, Transformer

            try:
                tr = Transformer.from_crs(CRS.from_user_input(op.crs), self.plan.atomic_units.crs,
                                          always_xy=True)
            except Exception as exc:  # pyproj raises its own CRSError for unknown codes
                raise InputError(f"unknown CRS {op.crs!r} for the vertex ({exc})", field="crs") from None
            src = np.array(tr.transform(*src), dtype=float)
            dst = np.array(tr.transform(*dst), dtype=float)
        if not (np.isfinite(src).all() and np.isfinite(dst).all()):
            raise InputError("the vertex coordinates are not finite numbers", field="to")
        return src, dst

    def _move_vertex(self, op: MoveVertex) -> Step:
        mine = self._units_of(op.grid)
        src, dst = self._plan_xy(op)
        frame = Frame(self._tree, self._n0, self._points, self.snap_m)
        return VertexMove(frame, self._units, self.assignment, self._new_unit_id).run(op.grid, mine, src, dst)

    # ---- consequences -------------------------------------------------------------------------
    def consequences(self, *, max_ids: int = 50) -> Consequences:
        """Consequences of the edits so far against the parent plan (see :class:`Consequences`).

        At most *max_ids* address and building ids are listed (all are counted).
        """
        u, now = self._units, self.assignment
        moved = np.flatnonzero(now != u.parent_grid)
        affected = sorted((set(now[moved]) | set(u.parent_grid[moved])) - {""})
        # units of the affected grids in one hashed pass (not one scan of every unit per grid)
        sel = np.flatnonzero(pd.Series(now).isin(affected).to_numpy())
        members = {str(g): sel[pos] for g, pos in pd.Series(sel).groupby(now[sel]).indices.items()}
        grids = tuple(self._grid_state(g, members[g]) for g in affected if g in members)
        unassigned = tuple(u.ids[now == ""])
        violations = [f"grid {s.grid_code}: {p}" for s in grids for p in s.problems]
        violations += [f"unit {x} is in no grid" for x in unassigned]
        hh = u.stats[:, UNIT_STATS.index("households")]
        moved_df = pd.DataFrame(
            {
                "unit_id": u.ids[moved],
                "from_grid": u.parent_grid[moved],
                "to_grid": now[moved],
                "households": hh[moved],
            }
        )
        is_moved = now != u.parent_grid
        addresses = self._points_moved("addresses", is_moved, max_ids)
        if addresses is None:
            count = u.stats[moved, UNIT_STATS.index("addresses")].sum()
            addresses = PointsMoved(round(float(count)), (), listed=False)
        return Consequences(
            grids=grids,
            moved_units=moved_df,
            households_moved=float(hh[moved].sum()),
            dept_grids_newly_cut=self._newly_cut(),
            violations=tuple(violations),
            unassigned_units=unassigned,
            addresses_moved=addresses,
            buildings_moved=self._points_moved("buildings", is_moved, max_ids),
            changed_units=self._changed_units(),
        )

    def _points_moved(self, kind: str, is_moved: np.ndarray, max_ids: int) -> PointsMoved | None:
        if kind not in self._points:
            return None
        where = self._units.point_unit[kind]
        hit = np.flatnonzero((where >= 0) & is_moved[np.maximum(where, 0)])
        ids = tuple(str(x) for x in self._points[kind].ids[hit[:max_ids]])
        return PointsMoved(len(hit), ids, listed=True)

    def _changed_units(self) -> gpd.GeoDataFrame | None:
        u = self._units
        idx = np.r_[np.array(sorted(u.reshaped), dtype=np.int64), np.arange(self._n0, len(u.ids))]
        if not len(idx):
            return None
        return gpd.GeoDataFrame(
            {
                "unit_id": u.ids[idx],
                "parent_unit_id": np.where(idx >= self._n0, u.ids[u.root[idx]], ""),
                "grid_code": self.assignment[idx],
                "community_code": self._comm[u.root[idx]],
                "households": u.stats[idx, UNIT_STATS.index("households")],
                "residents": u.stats[idx, UNIT_STATS.index("residents")],
            },
            geometry=gpd.GeoSeries(u.geoms[idx], crs=self.plan.atomic_units.crs),
        )

    def _grid_state(self, grid: str, idx: np.ndarray) -> GridState:
        u = self._units
        hh = float(u.stats[idx, UNIT_STATS.index("households")].sum())
        res = float(u.stats[idx, UNIT_STATS.index("residents")].sum())
        lo, hi = self.band
        comms = tuple(sorted(set(self._comm[u.root[idx]])))
        # parts of the grid: components of the adjacency restricted to its own units (a few dozen),
        # so an edit costs what the grids it touches hold, not what the city holds
        parts = int(connected_components(u.adj[idx][:, idx], directed=False)[0]) if len(idx) else 0
        problems = []
        if len(comms) > 1:
            problems.append(f"spans {len(comms)} communities ({', '.join(comms)})")
        if parts > 1:
            problems.append(f"is in {parts} separate parts")
        status = "below" if hh < lo else "above" if hh > hi else "ok"
        return GridState(grid, hh, res, len(idx), status, comms, parts, tuple(problems))

    def _dept_index(self) -> dict[str, _DeptIndex]:
        """Per department, the units of each departmental grid and its base-grid count in the parent."""
        units = self.plan.atomic_units
        out: dict[str, _DeptIndex] = {}
        for dept in self.plan.meta.departments:
            col = f"{dept}_grid_id"
            if col not in units.columns:
                continue
            codes, names = pd.factorize(pd.Series(text_column(units, col)).replace("", None))
            order = np.argsort(codes, kind="stable")
            bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
            members = [order[bounds[k] : bounds[k + 1]] for k in range(len(names))]
            before = np.array([len(set(self._parent[m])) for m in members], dtype=np.int64)
            out[dept] = _DeptIndex(codes, [str(n) for n in names], members, before)
        return out

    def _newly_cut(self) -> tuple[tuple[str, str], ...]:
        """Departmental grids whose units now lie in more base grids than in the parent plan.

        Only departmental grids holding a moved unit can change, so only those are counted again;
        a piece cut off by a vertex move belongs to its root unit's departmental grids.
        """
        u, now = self._units, self.assignment
        moved = np.flatnonzero(now != u.parent_grid)
        pieces = np.arange(self._n0, len(u.ids))
        out: list[tuple[str, str]] = []
        for dept, d in self._dept_units.items():
            piece_codes = d.codes[u.root[pieces]]
            for k in sorted(set(d.codes[u.root[moved]].tolist()) - {-1}):
                members = np.r_[d.members[k], pieces[piece_codes == k]]
                if len(set(now[members])) > d.before[k]:
                    out.append((dept, d.names[k]))
        return tuple(out)

    # ---- saving -------------------------------------------------------------------------------
    def to_plan(self, message: str = "") -> Plan:
        """Return the edited plan as a new version (``kind="edit"``, parent = the edited plan).

        Units cut by vertex moves carry their new shapes and figures; the pieces cut off are new
        rows (``parent_unit_id`` = the parent-plan unit they were cut from).

        Raises
        ------
        InputError
            The edits break a rule (the first violation is named); nothing is built.

        """
        cons = self.consequences()
        if not cons.legal:
            raise InputError(f"the edited plan cannot be saved: {cons.violations[0]}", field="edits")
        units = self._units_table()
        grids = grids_from_units(units, self.plan.base_grids, self.band,
                                 overlay=set(self.assignment[self._reshaped_index()]))
        crosswalk, fit = crosswalk_from_units(units, self.plan.meta.departments)
        params = {**(self.plan.meta.params or {}), "edit_message": message}
        params.pop("summary", None)
        return self.plan.derive(
            kind="edit",
            params={**params, "households_moved": cons.households_moved},
            atomic_units=units,
            base_grids=grids,
            crosswalk=crosswalk,
            dept_fit=fit,
            h3_cells=build_h3_index(grids, res=self.plan.meta.h3_res),
            qa_issues=band_qa(self.plan.qa_issues, grids, self.band),
        )

    def _reshaped_index(self) -> np.ndarray:
        u = self._units
        return np.r_[np.array(sorted(u.reshaped), dtype=np.int64), np.arange(self._n0, len(u.ids))]

    def _units_table(self) -> gpd.GeoDataFrame:
        """Return the parent's ``atomic_units`` with the working shapes, figures, grids; pieces appended."""
        u = self._units
        parent = self.plan.atomic_units
        units = pd.concat([parent, parent.iloc[u.root[self._n0:]]], ignore_index=True)
        units = gpd.GeoDataFrame(units, geometry=parent.geometry.name, crs=parent.crs)
        changed = self._reshaped_index()
        if len(changed):
            units["unit_id"] = u.ids
            if "parent_unit_id" not in units.columns:
                units["parent_unit_id"] = ""
            pieces = np.arange(self._n0, len(u.ids))
            units.loc[pieces, "parent_unit_id"] = u.ids[u.root[pieces]]
            units.loc[changed, units.geometry.name] = gpd.GeoSeries(u.geoms[changed], index=changed,
                                                                    crs=parent.crs)
            for j, s in enumerate(UNIT_STATS):
                if s in units.columns:
                    values = u.stats[changed, j]
                    if pd.api.types.is_integer_dtype(parent[s].dtype):
                        values = np.round(values).astype(parent[s].dtype)
                    units.loc[changed, s] = values
            if "area_m2" in units.columns:
                units.loc[changed, "area_m2"] = shapely.area(u.geoms[changed])
        units["base_grid_code"] = self.assignment.astype(object)
        return units


def grids_from_units(
    units: gpd.GeoDataFrame,
    old_grids: pd.DataFrame,
    band: tuple[float, float],
    *,
    overlay: set[str] | frozenset[str] = frozenset(),
) -> gpd.GeoDataFrame:
    """Dissolve units into base grids by ``base_grid_code``: geometry, summed counts, band status.

    Community and town names come from *old_grids* (by community code).  Grids are unioned as an
    exact coverage (units share identical edges) except the grids in *overlay* (holding units cut
    by a vertex move, whose new edges may meet an uncut neighbour's edge mid-segment): those by
    overlay union.
    """
    code = text_column(units, "base_grid_code")
    codes, inv = np.unique(code, return_inverse=True)
    geoms = np.asarray(units.geometry.values, dtype=object)
    shapes = np.array(
        [
            (shapely.union_all if c in overlay else shapely.coverage_union_all)(geoms[inv == k])
            for k, c in enumerate(codes)
        ],
        dtype=object,
    )
    comm = text_column(units, "community_code")
    first = np.array([np.flatnonzero(inv == k)[0] for k in range(len(codes))])
    names = old_grids.drop_duplicates("community_code").set_index("community_code")
    gcomm = comm[first]
    table: dict[str, Any] = {"grid_code": codes.astype(object), "community_code": gcomm.astype(object)}
    for col in ("town_code", "community_name", "town_name"):
        table[col] = names[col].reindex(gcomm).fillna("").to_numpy(dtype=object) if col in names else ""
    for s in UNIT_STATS:
        table[s] = np.bincount(inv, numeric_column(units, s), len(codes)).round().astype(np.int64)
    table["area_m2"] = shapely.area(shapes)
    table["units"] = np.bincount(inv, minlength=len(codes))
    lo, hi = band
    hh = table["households"]
    status = np.where(hh < lo, "below", np.where(hh > hi, "above", "ok")).astype(object)
    table["band_status"] = status
    table["band_reason"] = np.where(status == "ok", "", "edited by a planner").astype(object)
    return gpd.GeoDataFrame(table, geometry=gpd.GeoSeries(shapes, crs=units.crs), crs=units.crs)
