"""Colours and Chinese labels of the published maps (ArcGIS hot-spot scheme, QA kinds, diff kinds).

The colours and labels of coded values come from the one labels table
(``gridplan/layers/labels.yml``), which QGIS styles and Excel output use too, so a hot spot has
the same red and the same name on the map, in QGIS and in the spreadsheet.
"""

from __future__ import annotations

from gridplan.layers.labels import vocabulary


def _coded(column: str) -> dict[str, tuple[str, str]]:
    """``value → (colour, Chinese label)`` of a coded column, from :mod:`gridplan.layers.labels`."""
    return {value: (color, zh) for value, (zh, color) in vocabulary(column).items()}


#: ArcGIS Hot Spot Analysis colours and Chinese legend labels for ``gi_bin`` −3..3.
GI_BINS: dict[int, tuple[str, str]] = {int(k): v for k, v in _coded("gi_bin").items()}

#: ArcGIS Emerging Hot Spot Analysis patterns: English label → (colour, Chinese label).
EMERGING_PATTERNS: dict[str, tuple[str, str]] = _coded("pattern")

#: Colours and labels of plan-diff change kinds (``plans.diff_plans(...).grids.change``).
CHANGE_KINDS: dict[str, tuple[str, str]] = _coded("change")

#: Chinese labels of QA issue kinds (contracts: QA issue vocabulary).
QA_ISSUES: dict[str, tuple[str, str]] = _coded("issue")

OTHER_COLORS = ("#8dd3c7", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69", "#fccde5", "#bc80bd")

#: Popup fields of base grids: column → Chinese label (missing columns are left out).
GRID_FIELDS: dict[str, str] = {
    "grid_code": "网格编码",
    "community_name": "村(社区)",
    "town_name": "镇街",
    "households": "户数",
    "residents": "人口",
    "staff": "网格员",
    "workload": "工作量",
    "band_status": "户数范围",
}

#: Chinese captions of numeric columns a grid map is commonly styled by.
COLUMN_LABELS: dict[str, str] = {
    "households": "户数",
    "residents": "人口",
    "floating_residents": "流动人口",
    "rental_rooms": "出租屋",
    "addresses": "标准地址数",
    "area_m2": "面积",
    "staff": "网格员",
    "workload": "工作量",
    "count": "事件数",
}

#: Colours of case categories (in order of first appearance).
CASE_COLORS = ("#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628", "#f781bf", "#999999")
