"""The edit operations and their consequences as values (private helper of :mod:`gridplan.balance.edit`).

Small frozen dataclasses that the browser editor, the HTTP API and scripts send and receive alike;
:func:`operation_from_json` reads the API's JSON.  :mod:`gridplan.balance.edit` documents what each
operation does and re-exports every public name here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

from gridplan.errors import InputError

__all__ = [
    "Consequences",
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


@dataclass(frozen=True)
class MoveVertex:
    """Move the vertex at *from_xy* of grid *grid*'s outline to *to_xy*.

    Coordinates are in *crs* (``"EPSG:4326"``: ``(lon, lat)``); ``None`` is the plan's CRS.
    *from_xy* must lie within the session's ``snap_m`` of a vertex of the outline.
    """

    grid: str
    from_xy: tuple[float, float]
    to_xy: tuple[float, float]
    crs: str | None = None


Operation = Reassign | SplitGrid | MergeGrids | MoveVertex


def _xy(value: Any) -> tuple[float, float]:
    x, y = value
    return float(x), float(y)


def operation_from_json(obj: dict[str, Any]) -> Operation:
    """Read one operation as the API sends it (``{"op": "reassign", "units": […], "to_grid": …}``).

    ``split`` takes ``"line": [[x, y], …]`` in the plan's CRS; ``move_vertex`` takes
    ``"grid"``, ``"from": [x, y]``, ``"to": [x, y]`` and an optional ``"crs"`` of those
    coordinates (``"EPSG:4326"``: longitude, latitude; default the plan's CRS).

    Raises
    ------
    InputError
        Unknown ``op`` or a missing/ill-typed field (named).

    Examples
    --------
    >>> operation_from_json({"op": "move_vertex", "grid": "G1", "from": [0, 0], "to": [5, 0]})
    MoveVertex(grid='G1', from_xy=(0.0, 0.0), to_xy=(5.0, 0.0), crs=None)

    """
    op = obj.get("op")
    try:
        if op == "reassign":
            return Reassign(tuple(str(u) for u in obj["units"]), str(obj["to_grid"]))
        if op == "split":
            return SplitGrid(str(obj["grid"]), shapely.LineString(obj["line"]))
        if op == "merge":
            return MergeGrids(str(obj["keep"]), str(obj["absorb"]))
        if op == "move_vertex":
            crs = obj.get("crs")
            return MoveVertex(str(obj["grid"]), _xy(obj["from"]), _xy(obj["to"]),
                              None if crs is None else str(crs))
    except (KeyError, TypeError, ValueError, shapely.errors.GEOSException) as exc:
        raise InputError(f"edit operation {op!r} is incomplete or malformed ({exc})", field=str(op)) from None
    raise InputError(f"unknown edit operation {op!r}; use reassign, split, merge or move_vertex", field="op")


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
class PointsMoved:
    """Addresses or buildings that change grid: how many, and the ids of the first ones."""

    count: int
    ids: tuple[str, ...]
    listed: bool  # False: counted from the units' figures, no ids known


@dataclass(frozen=True)
class Consequences:
    """What the edits so far do, against the parent plan.

    ``addresses_moved`` is always given (from the units' ``addresses``, with ids when the session
    holds the address library); ``buildings_moved`` only when the session holds the buildings.
    ``changed_units`` are the units whose shape differs from the parent's (vertex moves), with
    ``unit_id``, ``parent_unit_id``, ``grid_code``, ``households`` (plan CRS).
    """

    grids: tuple[GridState, ...]
    moved_units: pd.DataFrame
    households_moved: float
    dept_grids_newly_cut: tuple[tuple[str, str], ...]
    violations: tuple[str, ...]
    unassigned_units: tuple[str, ...] = field(default=())
    addresses_moved: PointsMoved | None = None
    buildings_moved: PointsMoved | None = None
    changed_units: gpd.GeoDataFrame | None = None

    @property
    def legal(self) -> bool:
        """True when the edited plan may be saved."""
        return not self.violations

    def to_json(self, max_units: int = 1000) -> dict[str, Any]:
        """Return the consequences as the API answers them (JSON types; *max_units* moves listed).

        ``changed_units`` (geometry) is left out: the API adds it as GeoJSON in EPSG:4326.
        """
        moved = self.moved_units.head(max_units)

        def points(p: PointsMoved | None) -> dict[str, Any] | None:
            return None if p is None else {"count": p.count, "ids": list(p.ids), "listed": p.listed}

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
            "addresses_moved": points(self.addresses_moved),
            "buildings_moved": points(self.buildings_moved),
            "units_reshaped": 0 if self.changed_units is None else len(self.changed_units),
        }
