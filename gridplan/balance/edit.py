"""Planner edits of a plan, with their consequences before saving: the engine behind editor and API.

A planner redraws grids by moving atomic units between them (boundaries follow atomic units, so an
edit never makes a sliver).  Three operations, each a small frozen dataclass so that the browser
editor, the HTTP API (JSON ``{"op": "reassign", …}``) and scripts send the same thing:

* :class:`Reassign` — give some units to a grid (usually a neighbour);
* :class:`SplitGrid` — cut a grid in two by a drawn line: units whose representative point lies
  left of the line (walking from its first to its last vertex) form a new grid with a fresh code;
* :class:`MergeGrids` — give all units of one grid to another.

:class:`EditSession` applies operations to a working copy (undo/redo), and after each one reports
:class:`Consequences`: per affected grid its households, residents, band status, contiguity and
community nesting; the departmental grids newly cut; the units (and their households) that changed
grid; and the rule violations that block saving (a grid spanning two communities, a grid in two
parts, a unit in no grid).  :meth:`EditSession.to_plan` writes nothing: it returns the child plan
(``Plan.derive(kind="edit")``) or raises :class:`~gridplan.errors.InputError` naming the violation.

Written here, not taken from a library: QGIS's topological editing and ArcGIS's web editing know
polygons, not household bands, communities or departmental lineage.  Rook adjacency and connected
parts come from :mod:`gridplan.balance.graph` (shared with the rebalancer).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse.csgraph import connected_components

from gridplan.balance.graph import UnitGraph, unit_adjacency
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
    "Reassign",
    "SplitGrid",
    "operation_from_json",
]


@dataclass(frozen=True)
class Reassign:
    """Give the units *units* (``unit_id``) to grid *to_grid*."""

    units: tuple[str, ...]
    to_grid: str


@dataclass(frozen=True)
class SplitGrid:
    """Cut grid *grid* by the line *line* (compute CRS); the units left of it become a new grid."""

    grid: str
    line: shapely.LineString


@dataclass(frozen=True)
class MergeGrids:
    """Give every unit of grid *absorb* to grid *keep* (*absorb* is retired)."""

    keep: str
    absorb: str


Operation = Reassign | SplitGrid | MergeGrids


def operation_from_json(obj: dict[str, Any]) -> Operation:
    """Read one operation as the API sends it (``{"op": "reassign", "units": […], "to_grid": …}``).

    ``split`` takes ``"line": [[x, y], …]`` in the plan's CRS.

    Raises
    ------
    InputError
        Unknown ``op`` or a missing/ill-typed field (named).

    """
    op = obj.get("op")
    try:
        if op == "reassign":
            return Reassign(tuple(str(u) for u in obj["units"]), str(obj["to_grid"]))
        if op == "split":
            return SplitGrid(str(obj["grid"]), shapely.LineString(obj["line"]))
        if op == "merge":
            return MergeGrids(str(obj["keep"]), str(obj["absorb"]))
    except (KeyError, TypeError, ValueError, shapely.errors.GEOSException) as exc:
        raise InputError(f"edit operation {op!r} is incomplete or malformed ({exc})", field=str(op)) from None
    raise InputError(f"unknown edit operation {op!r}; use reassign, split or merge", field="op")


@dataclass(frozen=True)
class GridState:
    """One grid after an edit: counts, band status and the rules it breaks (empty when legal)."""

    grid_code: str
    households: float
    residents: float
    units: int
    band_status: str
    communities: tuple[str, ...]
    parts: int
    problems: tuple[str, ...]


@dataclass(frozen=True)
class Consequences:
    """What the edits so far do, against the parent plan."""

    grids: tuple[GridState, ...]
    moved_units: pd.DataFrame
    households_moved: float
    dept_grids_newly_cut: tuple[tuple[str, str], ...]
    violations: tuple[str, ...]
    unassigned_units: tuple[str, ...] = field(default=())

    @property
    def legal(self) -> bool:
        """True when the edited plan may be saved."""
        return not self.violations

    def to_json(self, max_units: int = 1000) -> dict[str, Any]:
        """Return the consequences as the API answers them (JSON types; *max_units* moves listed)."""
        moved = self.moved_units.head(max_units)
        return {
            "legal": self.legal,
            "violations": list(self.violations),
            "households_moved": self.households_moved,
            "units_moved": len(self.moved_units),
            "grids": [
                {**{k: getattr(g, k) for k in ("grid_code", "households", "residents", "units",
                                                "band_status", "parts")},
                 "communities": list(g.communities), "problems": list(g.problems)}
                for g in self.grids
            ],
            "dept_grids_newly_cut": [
                {"department": d, "dept_grid_id": i} for d, i in self.dept_grids_newly_cut
            ],
            "moved": [
                {"unit_id": str(r.unit_id), "from_grid": str(r.from_grid), "to_grid": str(r.to_grid),
                 "households": float(r.households)}
                for r in moved.itertuples(index=False)
            ],
            "unassigned_units": list(self.unassigned_units),
        }


@dataclass(frozen=True)
class _DeptIndex:
    """One department's grids over the units: each unit's grid number (-1: none), names, members."""

    codes: np.ndarray
    names: list[str]
    members: list[np.ndarray]
    before: np.ndarray


class EditSession:
    """A working copy of a plan's unit → grid assignment, edited operation by operation.

    Parameters
    ----------
    plan
        The parent plan (its ``atomic_units`` carry ``unit_id``, ``community_code``,
        ``base_grid_code`` and the departmental lineage columns).

    """

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        units = plan.atomic_units
        for col in ("unit_id", "community_code", "base_grid_code"):
            if col not in units.columns:
                raise InputError(f"the plan's atomic_units lack {col}", layer="atomic_units", field=col)
        self._ids = text_column(units, "unit_id")
        self._pos = {u: i for i, u in enumerate(self._ids)}
        self._comm = text_column(units, "community_code")
        self._geoms = np.asarray(units.geometry.values, dtype=object)
        self._hh = numeric_column(units, "households")
        self._res = numeric_column(units, "residents")
        self._parent = text_column(units, "base_grid_code")
        self._graph: UnitGraph = unit_adjacency(self._geoms, np.zeros(len(units), dtype=np.int64))
        self._adj = self._graph.matrix().tocsr()
        self._dept_units = self._dept_index()
        self._history: list[np.ndarray] = [self._parent.copy()]
        self._cursor = 0
        params = plan.meta.params or {}
        retired = {str(c) for c in params.get("retired_grid_codes", []) or []}  # by earlier proposals
        self._codes_seen = set(self._parent) | set(text_column(plan.base_grids, "grid_code")) | retired
        self.band = (float(params.get("households_min", 300)), float(params.get("households_max", 500)))

    def fresh(self) -> EditSession:
        """Return a new session on the same parent plan, sharing its (immutable) adjacency and indexes.

        Opening a session builds the unit adjacency (seconds on a city); a service keeps one
        session a plan and hands each request a fresh copy of it.
        """
        new = copy.copy(self)
        new._history = [self._parent.copy()]
        new._cursor = 0
        new._codes_seen = set(self._codes_seen)
        return new

    # ---- the working assignment ---------------------------------------------------------------
    @property
    def assignment(self) -> np.ndarray:
        """Grid code of every unit now (``""``: in no grid)."""
        return self._history[self._cursor]

    def _units_of(self, grid: str) -> np.ndarray:
        idx = np.flatnonzero(self.assignment == grid)
        if not len(idx):
            raise InputError(f"grid {grid} does not exist in the plan being edited", field="grid_code")
        return idx

    def _push(self, new: np.ndarray) -> Consequences:
        self._history = [*self._history[: self._cursor + 1], new]
        self._cursor += 1
        return self.consequences()

    def apply(self, op: Operation) -> Consequences:
        """Apply *op* and return the consequences of all edits so far (illegal edits are kept, flagged)."""
        new = self.assignment.copy()
        if isinstance(op, Reassign):
            self._units_of(op.to_grid)
            missing = [u for u in op.units if u not in self._pos]
            if missing:
                raise InputError(f"no atomic unit {missing[0]} in the plan", field="units")
            new[[self._pos[u] for u in op.units]] = op.to_grid
        elif isinstance(op, MergeGrids):
            if op.keep == op.absorb:
                raise InputError("a grid cannot be merged with itself", field="absorb")
            self._units_of(op.keep)
            new[self._units_of(op.absorb)] = op.keep
        else:
            new[self._split_side(op)] = self._new_code(op.grid)
        return self._push(new)

    def _split_side(self, op: SplitGrid) -> np.ndarray:
        idx = self._units_of(op.grid)
        pts = shapely.get_coordinates(shapely.point_on_surface(self._geoms[idx]))
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

    def undo(self) -> Consequences:
        """Step back one operation (no-op at the start)."""
        self._cursor = max(0, self._cursor - 1)
        return self.consequences()

    def redo(self) -> Consequences:
        """Step forward one undone operation (no-op at the end)."""
        self._cursor = min(len(self._history) - 1, self._cursor + 1)
        return self.consequences()

    # ---- consequences -------------------------------------------------------------------------
    def consequences(self) -> Consequences:
        """Consequences of the edits so far against the parent plan (see :class:`Consequences`)."""
        now = self.assignment
        moved = np.flatnonzero(now != self._parent)
        affected = sorted(set(now[moved]) | set(self._parent[moved]) - {""})
        # units of the affected grids in one hashed pass (not one scan of every unit per grid)
        sel = np.flatnonzero(pd.Series(now).isin(affected).to_numpy())
        members = {str(g): sel[pos] for g, pos in pd.Series(sel).groupby(now[sel]).indices.items()}
        grids = tuple(self._grid_state(g, members[g]) for g in affected if g in members)
        unassigned = tuple(self._ids[now == ""])
        violations = [f"grid {s.grid_code}: {p}" for s in grids for p in s.problems]
        violations += [f"unit {u} is in no grid" for u in unassigned]
        moved_df = pd.DataFrame(
            {
                "unit_id": self._ids[moved],
                "from_grid": self._parent[moved],
                "to_grid": now[moved],
                "households": self._hh[moved],
            }
        )
        return Consequences(
            grids=grids,
            moved_units=moved_df,
            households_moved=float(self._hh[moved].sum()),
            dept_grids_newly_cut=self._newly_cut(),
            violations=tuple(violations),
            unassigned_units=unassigned,
        )

    def _grid_state(self, grid: str, idx: np.ndarray) -> GridState:
        hh, res = float(self._hh[idx].sum()), float(self._res[idx].sum())
        lo, hi = self.band
        comms = tuple(sorted(set(self._comm[idx])))
        # parts of the grid: components of the adjacency restricted to its own units (a few dozen),
        # so an edit costs what the grids it touches hold, not what the city holds
        parts = int(connected_components(self._adj[idx][:, idx], directed=False)[0]) if len(idx) else 0
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

        Only departmental grids holding a moved unit can change, so only those are counted again.
        """
        moved = np.flatnonzero(self.assignment != self._parent)
        out: list[tuple[str, str]] = []
        for dept, d in self._dept_units.items():
            for k in sorted(set(d.codes[moved].tolist()) - {-1}):
                if len(set(self.assignment[d.members[k]])) > d.before[k]:
                    out.append((dept, d.names[k]))
        return tuple(out)

    # ---- saving -------------------------------------------------------------------------------
    def to_plan(self, message: str = "") -> Plan:
        """Return the edited plan as a new version (``kind="edit"``, parent = the edited plan).

        Raises
        ------
        InputError
            The edits break a rule (the first violation is named); nothing is built.

        """
        cons = self.consequences()
        if not cons.legal:
            raise InputError(f"the edited plan cannot be saved: {cons.violations[0]}", field="edits")
        units = self.plan.atomic_units.copy()
        units["base_grid_code"] = self.assignment.astype(object)
        grids = grids_from_units(units, self.plan.base_grids, self.band)
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


def grids_from_units(
    units: gpd.GeoDataFrame, old_grids: pd.DataFrame, band: tuple[float, float]
) -> gpd.GeoDataFrame:
    """Dissolve units into base grids by ``base_grid_code``: geometry, summed counts, band status.

    Community and town names come from *old_grids* (by community code).
    """
    code = text_column(units, "base_grid_code")
    codes, inv = np.unique(code, return_inverse=True)
    geoms = np.asarray(units.geometry.values, dtype=object)
    shapes = np.array([shapely.coverage_union_all(geoms[inv == k]) for k in range(len(codes))], dtype=object)
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
