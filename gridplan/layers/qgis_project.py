"""A QGIS project (``.qgs``) a planner double-clicks: plan, hot spots, proposal and heat raster, styled.

The project refers to the GeoPackages and the GeoTIFF by paths relative to the project file (so
the folder can be copied or zipped as a whole), groups the layers in Chinese (方案 / 热点分析 /
调整方案 / 热力图), names every layer in Chinese, and embeds each vector layer's style and field
aliases — the same QML that :func:`gridplan.layers.styles.style_geopackage` stores in the
GeoPackage, so the project and the file look alike.  The heat raster gets a pseudocolour ramp
(events per km², 0 → its 99th percentile).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gridplan._atomic import atomic_path
from gridplan.errors import InputError
from gridplan.layers.styles import STYLE_NAME, layer_style, style_qml

logger = logging.getLogger(__name__)

__all__ = ["ProjectLayer", "default_project_layers", "write_qgis_project", "write_raster_style"]

_HEAT_RAMP = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")


@dataclass(frozen=True)
class ProjectLayer:
    """One layer of the project: a GeoPackage layer (``layer`` given) or a raster file."""

    source: Path
    name: str
    group: str
    layer: str | None = None
    visible: bool = True


def default_project_layers(
    *,
    plan: str | os.PathLike[str] | None = None,
    hotspots: str | os.PathLike[str] | None = None,
    proposal: str | os.PathLike[str] | None = None,
    heat: str | os.PathLike[str] | None = None,
) -> list[ProjectLayer]:
    """Return the standard map layers of the outputs given (missing ones left out), in drawing order."""
    out: list[ProjectLayer] = []

    def add(
        path: str | os.PathLike[str] | None, group: str, items: Sequence[tuple[str | None, str, bool]]
    ) -> None:
        if path is None or not Path(path).exists():
            return
        names = _gpkg_layers(Path(path)) if Path(path).suffix.lower() == ".gpkg" else set()
        for layer, name, visible in items:
            if layer is None or layer in names:
                out.append(ProjectLayer(Path(path), name, group, layer, visible))

    add(
        plan,
        "方案",
        [
            ("base_grids", "基础网格", True),
            ("atomic_units", "最小单元", False),
            ("qa_issues", "数据质量问题", False),
        ],
    )
    add(hotspots, "热点分析", [("hotspots", "热点 / 冷点 (Gi*)", True), ("emerging", "时空热点模式", False)])
    add(
        proposal,
        "调整方案",
        [("base_grids", "调整后基础网格", False), ("atomic_units", "调整后最小单元", False)],
    )
    add(heat, "热力图", [(None, "事件热力图（件/km²）", True)])
    return out


def _gpkg_layers(path: Path) -> set[str]:
    """Map layers of a GeoPackage (tables without geometry, e.g. a bare ``emerging`` table, left out)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        return {
            r[0] for r in con.execute("SELECT table_name FROM gpkg_contents WHERE data_type = 'features'")
        }


def _srs(parent: ET.Element, epsg: int) -> None:
    from pyproj import CRS

    crs = CRS.from_epsg(epsg)
    srs = ET.SubElement(parent, "spatialrefsys", nativeFormat="Wkt")
    ET.SubElement(srs, "wkt").text = crs.to_wkt()
    ET.SubElement(srs, "authid").text = f"EPSG:{epsg}"
    ET.SubElement(srs, "description").text = crs.name
    ET.SubElement(srs, "geographicflag").text = "true" if crs.is_geographic else "false"


def _vector_style(path: Path, layer: str) -> tuple[ET.Element, str]:
    """Return the stored QML of *layer* (from style_geopackage) or a fresh one, and its geometry type."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        geom = con.execute(
            "SELECT geometry_type_name FROM gpkg_geometry_columns WHERE table_name = ?", (layer,)
        ).fetchone()
        if geom is None:
            raise InputError(
                "is not a layer with geometries; a QGIS project shows map layers", file=path, layer=layer
            )
        try:
            row = con.execute(
                "SELECT styleQML FROM layer_styles WHERE f_table_name = ? AND styleName = ?",
                (layer, STYLE_NAME),
            ).fetchone()
        except sqlite3.OperationalError:  # no layer_styles table: not written by gridplan
            row = None
        if row is None:
            cols = [r[1] for r in con.execute(f'PRAGMA table_info("{layer}")') if not r[5]]
            row = (style_qml(layer_style(layer, cols, geom[0]), cols),)
    return ET.fromstring(row[0]), str(geom[0])


def _heat_renderer(path: Path) -> ET.Element:
    import numpy as np
    import rasterio

    with rasterio.open(path) as src:
        data = src.read(1, masked=True)
    values = np.asarray(data.compressed(), dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    vmax = float(np.quantile(values, 0.99)) if values.size else 1.0
    pipe = ET.Element("pipe")
    ren = ET.SubElement(
        pipe,
        "rasterrenderer",
        type="singlebandpseudocolor",
        band="1",
        opacity="0.8",
        alphaBand="-1",
        classificationMin="0",
        classificationMax=f"{vmax:.6g}",
    )
    shader = ET.SubElement(
        ET.SubElement(ren, "rastershader"),
        "colorrampshader",
        colorRampType="INTERPOLATED",
        classificationMode="1",
        clip="0",
    )
    for i, color in enumerate(_HEAT_RAMP):
        v = vmax * i / (len(_HEAT_RAMP) - 1)
        ET.SubElement(
            shader,
            "item",
            value=f"{v:.6g}",
            color=color,
            alpha="0" if i == 0 else "255",
            label=f"{'≥ ' if i == len(_HEAT_RAMP) - 1 else ''}{v:.1f} 件/km²",
        )
    return pipe


def write_raster_style(tif: str | os.PathLike[str]) -> Path:
    """Write ``HEAT.qml`` beside ``HEAT.tif``: QGIS applies it on open, so the raster opens coloured.

    The float band stays as it is for analysts; the sidecar is a single-band pseudocolour renderer
    of band 1 (transparent at 0, the heat ramp up to the 99th percentile, events per km²).
    """
    path = Path(tif)
    doc = ET.Element("qgis", version="3.28", styleCategories="AllStyleCategories")
    doc.append(_heat_renderer(path))
    head = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
    text = head + ET.tostring(doc, encoding="unicode")
    out = path.with_suffix(".qml")
    with atomic_path(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return out


def _maplayer(item: ProjectLayer, lid: str, source: str, epsg: int) -> ET.Element:
    if item.layer is None:
        ml = ET.Element("maplayer", type="raster")
    else:
        qml, geom = _vector_style(item.source, item.layer)
        kind = "Point" if "POINT" in geom else "Line" if "LINE" in geom else "Polygon"
        ml = ET.Element("maplayer", type="vector", geometry=kind)
    ET.SubElement(ml, "id").text = lid
    ET.SubElement(ml, "datasource").text = source
    ET.SubElement(ml, "layername").text = item.name
    _srs(ET.SubElement(ml, "srs"), epsg)
    provider = ET.SubElement(ml, "provider", encoding="UTF-8")
    provider.text = "gdal" if item.layer is None else "ogr"
    if item.layer is None:
        ml.append(_heat_renderer(item.source))
    else:
        for child in qml:
            if child.tag in ("renderer-v2", "aliases"):
                ml.append(child)
    return ml


def _relative(source: Path, project_dir: Path) -> str:
    try:
        rel = os.path.relpath(source.resolve(), project_dir.resolve())
    except ValueError:  # another drive on Windows
        return str(source.resolve())
    return "./" + Path(rel).as_posix()


def write_qgis_project(
    layers: Sequence[ProjectLayer],
    path: str | os.PathLike[str],
    *,
    title: str = "网格化管理方案",
    epsg: int = 4547,
) -> Path:
    """Write a QGIS project (``.qgs``) showing *layers*, grouped and styled, atomically.

    Parameters
    ----------
    layers
        The layers in drawing order (first on top), e.g. :func:`default_project_layers`.
    path
        Target ``.qgs``; its folder must exist.  Sources are written relative to it.
    title
        Project title (shown in QGIS's title bar).
    epsg
        Project CRS (the compute CRS of the outputs).

    Raises
    ------
    InputError
        No layers, a missing source file, or a target that is not ``.qgs``.

    """
    target = Path(path)
    if target.suffix.lower() != ".qgs":
        raise InputError("a QGIS project must be written to a .qgs file", file=target)
    if not layers:
        raise InputError("no layers for the QGIS project (none of the outputs exists)", file=target)
    root = ET.Element("qgis", projectname=title, version="3.28.0-Firenze")
    ET.SubElement(root, "title").text = title
    _srs(ET.SubElement(root, "projectCrs"), epsg)
    tree = ET.SubElement(root, "layer-tree-group")
    groups: dict[str, ET.Element] = {}
    project_layers = ET.SubElement(root, "projectlayers")
    order = ET.SubElement(tree, "custom-order", enabled="0")
    for item in layers:
        if not item.source.exists():
            raise InputError("missing layer file for the QGIS project", file=item.source)
        lid = f"{item.layer or item.source.stem}_{uuid.uuid4().hex[:12]}"
        source = _relative(item.source, target.parent) + (f"|layername={item.layer}" if item.layer else "")
        group = groups.get(item.group)
        if group is None:
            group = groups[item.group] = ET.SubElement(
                tree, "layer-tree-group", name=item.group, checked="Qt::Checked", expanded="1"
            )
        ET.SubElement(
            group,
            "layer-tree-layer",
            id=lid,
            name=item.name,
            source=source,
            providerKey="gdal" if item.layer is None else "ogr",
            checked="Qt::Checked" if item.visible else "Qt::Unchecked",
            expanded="1",
        )
        ET.SubElement(order, "item").text = lid
        project_layers.append(_maplayer(item, lid, source, epsg))
    props = ET.SubElement(root, "properties")
    paths = ET.SubElement(props, "Paths")
    ET.SubElement(paths, "Absolute", type="bool").text = "false"
    body = b"<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + ET.tostring(
        root, encoding="utf-8"
    )
    with atomic_path(target) as tmp:
        Path(tmp).write_bytes(body)
    logger.info("wrote QGIS project %s (%d layers in %d groups)", target, len(layers), len(groups))
    return target
