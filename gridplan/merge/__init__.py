"""Merge: departmental grids → one base grid ("多网合一", PRODUCT §3.3).

* :mod:`~gridplan.merge.build` — :func:`merge_layers`, the whole merge;
* :mod:`~gridplan.merge.overlay` — the n-way overlay of every departmental and community boundary;
* :mod:`~gridplan.merge.slivers` — slivers eliminated inside their community;
* :mod:`~gridplan.merge.basegrids` — atomic units grouped into base grids in the household band, codes;
* :mod:`~gridplan.merge.crosswalk` — every departmental grid as a set of base grids, with fit;
* :mod:`~gridplan.merge.reimport` — a base-grid layer edited in QGIS back as a new plan version.
"""

from gridplan.merge.build import QA_COLUMNS, STAT_COLUMNS, fingerprint_gdf, merge_layers
from gridplan.merge.crosswalk import crosswalk_from_units
from gridplan.merge.reimport import reimport_base_grids

__all__ = [
    "QA_COLUMNS",
    "STAT_COLUMNS",
    "crosswalk_from_units",
    "fingerprint_gdf",
    "merge_layers",
    "reimport_base_grids",
]
