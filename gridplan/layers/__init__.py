"""Layers: the catalog, readers that map any input onto canonical layers, events, atomic writers.

Data floor.  Rooms:

* :mod:`~gridplan.layers.catalog` — the layer catalog (``catalog.yml`` beside it, documented in
  ``layers/README.md``): canonical layers and fields of PRODUCT §4, Chinese/legacy aliases, coercion;
* :mod:`~gridplan.layers.formats` — format-specific raw readers (GPKG, Shapefile GBK/UTF-8,
  GeoJSON, GeoParquet, CSV) and text/code/datetime coercion;
* :mod:`~gridplan.layers.read` — :func:`read_layer` / :func:`read_layers`: any input onto canonical
  fields in the compute CRS, bad input refused with file, layer and field named;
* :mod:`~gridplan.layers.events` — :func:`read_events`: located cases/hazards as points;
* :mod:`~gridplan.layers.write` — :func:`write_layers`, :func:`write_table_csv`, :func:`write_table`
  (atomic; CSV with a UTF-8 BOM and formula neutralisation by default);
* :mod:`~gridplan.layers.labels` — the one table of Chinese headers, units and code values
  (``labels.yml``) used by Excel output, QGIS aliases and the maps;
* :mod:`~gridplan.layers.excel` — ``.xlsx`` workbooks for people (:func:`write_workbook`).
"""

from gridplan.layers.catalog import (
    GEOMETRY_TYPES,
    Catalog,
    FieldSpec,
    LayerSpec,
    coerce_fields,
    layer_kinds,
    load_catalog,
    map_fields,
    required_fields,
)
from gridplan.layers.events import EventTable, read_events
from gridplan.layers.excel import neutralize_formulas, write_workbook
from gridplan.layers.formats import parse_datetimes
from gridplan.layers.read import fingerprint, list_layers, read_layer, read_layers
from gridplan.layers.write import write_layers, write_table, write_table_csv

__all__ = [
    "GEOMETRY_TYPES",
    "Catalog",
    "EventTable",
    "FieldSpec",
    "LayerSpec",
    "coerce_fields",
    "fingerprint",
    "layer_kinds",
    "list_layers",
    "load_catalog",
    "map_fields",
    "neutralize_formulas",
    "parse_datetimes",
    "read_events",
    "read_layer",
    "read_layers",
    "required_fields",
    "write_layers",
    "write_table",
    "write_table_csv",
    "write_workbook",
]
