"""Geometry of a vertex move (private helper of :mod:`gridplan.balance.edit`).

Owns the three geometric steps of :class:`~gridplan.balance.edit.MoveVertex`: finding the vertex
of a grid's outline the planner pointed at, the outline with that vertex moved (refused when it
would cross itself), and the division of a cut unit's counts between its parts (largest remainder,
so integer counts stay integers and every total is conserved exactly).
"""

from __future__ import annotations

import numpy as np
import shapely

from gridplan.errors import InputError

__all__ = ["divide_counts", "moved_outline", "nearest_vertex", "polygon_parts"]


def nearest_vertex(
    geom: shapely.Geometry | np.ndarray, xy: tuple[float, float], tolerance_m: float
) -> np.ndarray | None:
    """Return the vertex of *geom* (geometries) nearest to *xy* if within *tolerance_m*, else ``None``."""
    coords = shapely.get_coordinates(geom)
    if not len(coords):
        return None
    d = np.hypot(coords[:, 0] - xy[0], coords[:, 1] - xy[1])
    k = int(np.argmin(d))
    return coords[k] if d[k] <= tolerance_m else None


def polygon_parts(geom: shapely.Geometry, min_area_m2: float) -> list[shapely.Polygon]:
    """Return the polygons of *geom* larger than *min_area_m2*, largest first."""
    parts = [p for p in shapely.get_parts(geom) if shapely.get_type_id(p) == 3 and p.area > min_area_m2]
    return sorted(parts, key=lambda p: -p.area)


def moved_outline(
    outline: shapely.Geometry, vertex: np.ndarray, to_xy: np.ndarray, *, grid: str
) -> tuple[shapely.Polygon, shapely.Polygon]:
    """Return the polygon of *outline* holding *vertex*, before and after the vertex moves to *to_xy*.

    Every occurrence of the vertex in that polygon's rings moves (a ring's closing point too).

    Raises
    ------
    InputError
        The moved outline crosses itself or collapses (named by *grid*).

    """
    for poly in shapely.get_parts(outline):
        if shapely.get_type_id(poly) != 3:
            continue
        rings = [np.asarray(poly.exterior.coords), *(np.asarray(r.coords) for r in poly.interiors)]
        hit = [np.all(r == vertex, axis=1) for r in rings]
        if not any(h.any() for h in hit):
            continue
        moved = []
        for r, h in zip(rings, hit, strict=True):
            r = r.copy()
            r[h] = to_xy
            moved.append(r)
        new = shapely.Polygon(moved[0], moved[1:])
        if not new.is_valid or new.area <= 0:
            raise InputError(
                f"moving the vertex to ({to_xy[0]:.1f}, {to_xy[1]:.1f}) makes grid {grid}'s outline "
                "cross itself: move it less far, or in two steps",
                field="to",
            )
        return poly, new
    raise InputError(f"the vertex is not on grid {grid}'s outline", field="from")  # pragma: no cover


def divide_counts(total: np.ndarray, weights: np.ndarray, areas: np.ndarray) -> np.ndarray:
    """Divide a unit's counts between its parts: by *weights* where they hold any, else by area.

    Parameters
    ----------
    total
        The unit's counts, one per statistic (shape ``(s,)``).
    weights
        What each part holds of each statistic (buildings' households, addresses …), shape ``(k, s)``.
    areas
        Area of each part (m²), shape ``(k,)``.

    Returns
    -------
    numpy.ndarray
        Shape ``(k, s)``; each column sums to *total*; integral totals give integral parts
        (largest remainder).

    Examples
    --------
    >>> divide_counts(np.array([100.0, 7.0]), np.zeros((2, 2)), np.array([1.0, 4.0])).tolist()
    [[20.0, 1.0], [80.0, 6.0]]

    """
    k, s = weights.shape
    out = np.zeros((k, s))
    for j in range(s):
        w = weights[:, j] if weights[:, j].sum() > 0 else areas
        share = w / w.sum() if w.sum() > 0 else np.full(k, 1.0 / k)
        exact = total[j] * share
        if float(total[j]).is_integer():
            base = np.floor(exact)
            rest = round(float(total[j] - base.sum()))
            order = np.argsort(-(exact - base), kind="stable")
            base[order[:rest]] += 1
            out[:, j] = base
        else:
            out[:, j] = exact
    return out
