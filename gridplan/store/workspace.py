"""Embedded store: a workspace folder with one GeoPackage per layer (opens in QGIS).

One file per layer keeps writes atomic with nothing more than a temp file and ``os.replace``.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd

from gridplan.errors import InputError, NotFoundError
from gridplan.layers import write_layers
from gridplan.store.base import LayerStore, check_layer_name


class WorkspaceStore(LayerStore):
    """Layers as ``<root>/layers/<name>.gpkg`` files."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.layer_dir = self.root / "layers"
        self.layer_dir.mkdir(parents=True, exist_ok=True)

    def _path(self, name: str) -> Path:
        return self.layer_dir / f"{check_layer_name(name)}.gpkg"

    def write_layer(self, gdf: gpd.GeoDataFrame, name: str) -> None:
        """Write *gdf* as its own GeoPackage (atomically: :func:`gridplan.layers.write_layers`)."""
        path = self._path(name)
        if gdf.crs is None:
            raise InputError("layer has no CRS; set one before storing it", layer=name)
        write_layers({name: gdf}, path)

    def read_layer(self, name: str) -> gpd.GeoDataFrame:
        """Read the layer *name*."""
        path = self._path(name)
        if not path.exists():
            raise NotFoundError(f"layer {name} is not in workspace {self.root}")
        return gpd.read_file(path, layer=name)

    def list_layers(self) -> list[str]:
        """Names of the stored layers."""
        return sorted(p.stem for p in self.layer_dir.glob("*.gpkg") if not p.name.startswith("."))

    def drop_layer(self, name: str) -> None:
        """Delete the layer file if present."""
        self._path(name).unlink(missing_ok=True)
