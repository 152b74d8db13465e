"""The one door for input geometry: Z/M dropped, coordinates finite, coordinates that fit the CRS.

Every vector layer read by :func:`gridplan.layers.read_layer` passes here before anything else
looks at it.  What a user can get wrong, and what this module answers:

* **3D data** (survey exports, CAD conversions): Z and M are dropped at read, so a 3D layer merges
  exactly as its 2D version (GEOS overlay would otherwise interpolate Z and leave NaN Z values in
  new vertices, which JSON, PostGIS and the display simplifier all refuse later).
* **NaN or infinite coordinates**: refused, naming the features (GEOS raises on them deep inside an
  overlay, with no feature to point at).
* **A CRS that contradicts the coordinates**: metres labelled as degrees (x = 430,000 in EPSG:4326)
  or degrees labelled as metres (x = 113.7 in EPSG:4547) are refused with the likely CRS; a layer
  that lies far from the other layers of the same file (a department drawn in another CRS and
  labelled with ours) is refused by :func:`check_layers_agree`, naming it and the distance.

Written here rather than taken from a library: GDAL/pyogrio read what the file says, geopandas
trusts the declared CRS, and none of them checks one layer against the others.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from gridplan.errors import CRSError, InputError

logger = logging.getLogger(__name__)

__all__ = ["check_layers_agree", "clean_geometry"]

#: A layer whose bounding box is farther than this from the others' is in another CRS (metres).
FAR_APART_M = 50_000.0


def _feature_list(rows: np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(str(int(r) + 1) for r in rows[:limit])
    return shown + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def clean_geometry(gdf: gpd.GeoDataFrame, path: Path, layer: str) -> gpd.GeoDataFrame:
    """Return *gdf* with 2D geometries, after refusing non-finite coordinates and a contradicted CRS.

    Raises
    ------
    InputError
        Some features have NaN or infinite coordinates (the features are named, 1-based).
    CRSError
        The coordinates cannot be in the declared CRS (degrees out of range, or degree-sized
        numbers in a projected CRS).

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> g = gpd.GeoDataFrame(geometry=[shapely.Point(430_000, 2_540_000, 12.5)], crs=4547)
    >>> clean_geometry(g, Path("x.gpkg"), "buildings").geometry.has_z.tolist()
    [False]

    """
    geoms = gdf.geometry.to_numpy()
    has_z = shapely.has_z(geoms)
    if has_z.any():
        n = int(has_z.sum())
        logger.info("%s/%s: dropped Z/M values of %d features (2D analysis)", path.name, layer, n)
        gdf = gdf.set_geometry(gpd.GeoSeries(shapely.force_2d(geoms), index=gdf.index, crs=gdf.crs))
        geoms = gdf.geometry.to_numpy()
    coords, rows = shapely.get_coordinates(geoms, return_index=True)
    bad = ~np.isfinite(coords).all(axis=1)
    if bad.any():
        feats = np.unique(rows[bad])
        raise InputError(
            f"features {_feature_list(feats)} have NaN or infinite coordinates; fix or delete them",
            file=path,
            layer=layer,
            row=int(feats[0]) + 1,
        )
    if len(coords) and gdf.crs is not None:
        _check_coordinates_fit_crs(coords, gdf.crs, path, layer)
    return gdf


def _check_coordinates_fit_crs(coords: np.ndarray, crs: object, path: Path, layer: str) -> None:
    x, y = coords[:, 0], coords[:, 1]
    name = getattr(crs, "to_string", lambda: str(crs))()
    if getattr(crs, "is_geographic", False):
        if np.abs(x).max() > 180 or np.abs(y).max() > 90:
            raise CRSError(
                f"declares {name} (degrees) but its coordinates reach x = {np.abs(x).max():,.0f}, "
                f"y = {np.abs(y).max():,.0f}: they are metres; declare the projected CRS they are in "
                "(e.g. EPSG:4547, CGCS2000 / 3-degree Gauss-Kruger CM 114E)",
                file=path,
                layer=layer,
            )
        return
    if getattr(crs, "is_projected", False) and np.abs(x).max() <= 180 and np.abs(y).max() <= 90:
        raise CRSError(
            f"declares {name} (metres) but every coordinate is within ±180/±90 (x up to "
            f"{np.abs(x).max():.4f}): they are degrees; declare EPSG:4490 (CGCS2000) or EPSG:4326",
            file=path,
            layer=layer,
        )


def check_layers_agree(layers: Mapping[str, gpd.GeoDataFrame], path: Path) -> None:
    """Refuse a layer that lies far from the other layers of the same file (another CRS in disguise).

    All layers must already be in one CRS (metres).  A layer is compared with the bounding box of
    all the other layers together; one more than :data:`FAR_APART_M` away is refused.
    """
    boxes = {
        name: shapely.box(*gdf.total_bounds)
        for name, gdf in layers.items()
        if isinstance(gdf, gpd.GeoDataFrame) and len(gdf) and np.isfinite(gdf.total_bounds).all()
    }
    if len(boxes) < 3:  # with two layers there is no telling which one is off
        return
    for name, box in boxes.items():
        others = shapely.union_all([b for n, b in boxes.items() if n != name]).envelope
        gap = shapely.distance(box, others)
        if gap > FAR_APART_M:
            raise CRSError(
                f"lies {gap / 1000:,.0f} km away from the file's other layers; its declared CRS is "
                "probably not the one its coordinates are in (check the .prj / the layer's SRS)",
                file=path,
                layer=name,
            )
