"""Shared test data (as shapely's ``tests/common.py``): small geometries and plans whose answers are known.

Everything here is built by hand in local metres offset into the EPSG:4547 extent of Dongguan, so
areas, counts and codes can be checked by arithmetic.  Import it as ``from common import …``
(pytest puts ``tests/`` on the path).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from shapely import box

from gridplan.hexindex import build_h3_index
from gridplan.merge import crosswalk_from_units
from gridplan.plans import Plan, PlanMeta, new_plan_id

CRS = 4547


def local_box(
    x0: float, y0: float, x1: float, y1: float, *, origin: tuple[float, float] | None = None
) -> shapely.Polygon:
    """A box in local metres, offset by *origin* (default ``(X0, Y0)``) into EPSG:4547."""
    ox, oy = origin if origin is not None else (X0, Y0)
    return box(ox + x0, oy + y0, ox + x1, oy + y1)


def voronoi_cells(
    rng: np.random.Generator, n: int, frame: shapely.Geometry, *, wobble_m: float = 0.0, phase: float = 0.0
) -> np.ndarray:
    """A random partition of *frame* into about *n* Voronoi cells (empty and zero-area parts dropped).

    With *wobble_m* > 0 every vertex moves by up to that much (the same vertex the same way), as a
    hand-digitised layer disagrees with another by millimetres along the "same" line.
    """
    x0, y0, x1, y1 = frame.bounds
    pts = shapely.multipoints(np.column_stack([rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)]))
    cells = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=frame)), frame)
    if wobble_m > 0:
        cells = shapely.transform(cells, lambda c: c + wobble_m * np.sin(c[:, ::-1] * 7.3 + phase))
    return np.asarray([c for c in cells if not c.is_empty and c.area > 0], dtype=object)


def overlap_area(geoms: np.ndarray) -> float:
    """Total area where two of *geoms* overlap (0 for a partition)."""
    tree = shapely.STRtree(geoms)
    i, j = tree.query(geoms, predicate="intersects")
    m = i < j
    return float(shapely.area(shapely.intersection(geoms[i[m]], geoms[j[m]])).sum())


X0, Y0 = 440_000.0, 2_540_000.0
C1, C2 = "441900119001", "441900119002"


def make_plan(*, plan_id: str | None = None) -> Plan:
    """Two communities side by side (2 km × 1 km each), 16 units of 500 m, 2 grids per community.

    Units: 4 columns × 2 rows per community, 100 households / 250 residents / 10 addresses each.
    Grid ``…001`` = the western two columns of its community, ``…002`` = the eastern two.
    """
    rows = []
    k = 0
    for ci, comm in enumerate((C1, C2)):
        for col in range(4):
            for row in range(2):
                k += 1
                x = X0 + ci * 2000 + col * 500
                y = Y0 + row * 500
                rows.append(
                    {
                        "unit_id": f"U{k:04d}",
                        "community_code": comm,
                        "town_code": comm[:9],
                        "base_grid_code": f"{comm}{1 + col // 2:03d}",
                        "police_grid_id": f"P{ci * 2 + col // 2 + 1}" if col != 1 else f"P{ci * 2 + 2}",
                        "area_m2": 250_000.0,
                        "households": 100,
                        "residents": 250,
                        "floating_residents": 40,
                        "rental_rooms": 5,
                        "addresses": 10,
                        "geometry": box(x, y, x + 500, y + 500),
                    }
                )
    units = gpd.GeoDataFrame(rows, geometry="geometry", crs=4547)
    grids = units.dissolve(
        "base_grid_code",
        as_index=False,
        aggfunc={
            "community_code": "first",
            "town_code": "first",
            "households": "sum",
            "residents": "sum",
            "floating_residents": "sum",
            "rental_rooms": "sum",
            "addresses": "sum",
        },
    )
    grids = grids.rename(columns={"base_grid_code": "grid_code"})
    grids["community_name"] = grids["community_code"].map({C1: "乌沙社区", C2: "新安社区"})
    grids["town_name"] = "长安镇"
    grids["area_m2"] = grids.area
    grids["units"] = 4
    grids["band_status"] = "ok"
    grids["band_reason"] = ""
    grids = grids[
        [
            "grid_code",
            "community_code",
            "town_code",
            "community_name",
            "town_name",
            "households",
            "residents",
            "floating_residents",
            "rental_rooms",
            "addresses",
            "area_m2",
            "units",
            "band_status",
            "band_reason",
            "geometry",
        ]
    ]
    cw, fit = crosswalk_from_units(units, ("police",))
    qa = gpd.GeoDataFrame(
        {
            "layer": ["dept_police"],
            "feature_id": ["P1"],
            "issue": ["overlap"],
            "detail": ["P1 and P2 overlap by 3.0 m²"],
        },
        geometry=[box(X0, Y0, X0 + 1, Y0 + 3)],
        crs=4547,
    )
    meta = PlanMeta(
        plan_id=plan_id or new_plan_id(),
        parent_id=None,
        created_at="2025-06-01T08:00:00Z",
        params={"households_min": 300, "households_max": 500, "h3_res": 10},
        inputs={"dept_police": "ab" * 32},
        county_code="441900",
        h3_res=10,
        departments=("police",),
    )
    return Plan(
        atomic_units=units,
        base_grids=grids,
        crosswalk=cw,
        dept_fit=fit,
        h3_cells=build_h3_index(grids, res=10),
        qa_issues=qa,
        meta=meta,
    )
