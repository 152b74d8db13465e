"""Colours and Chinese labels of the published maps (ArcGIS hot-spot scheme, QA kinds, diff kinds)."""

from __future__ import annotations

#: ArcGIS Hot Spot Analysis colours and Chinese legend labels for ``gi_bin`` −3..3.
GI_BINS: dict[int, tuple[str, str]] = {
    -3: ("#4575b5", "冷点 - 99% 置信度"),
    -2: ("#849eba", "冷点 - 95% 置信度"),
    -1: ("#c0ccbe", "冷点 - 90% 置信度"),
    0: ("#ffffbf", "不显著"),
    1: ("#fab984", "热点 - 90% 置信度"),
    2: ("#ed7551", "热点 - 95% 置信度"),
    3: ("#d62f27", "热点 - 99% 置信度"),
}

#: ArcGIS Emerging Hot Spot Analysis patterns: English label → (colour, Chinese label).
EMERGING_PATTERNS: dict[str, tuple[str, str]] = {
    "New Hot Spot": ("#8b0000", "新增热点"),
    "Consecutive Hot Spot": ("#b30000", "连续热点"),
    "Intensifying Hot Spot": ("#e34a33", "加强热点"),
    "Persistent Hot Spot": ("#fc8d59", "持续热点"),
    "Diminishing Hot Spot": ("#fdbb84", "减弱热点"),
    "Sporadic Hot Spot": ("#fdd49e", "零星热点"),
    "Oscillating Hot Spot": ("#d7a1c7", "振荡热点"),
    "Historical Hot Spot": ("#bcbddc", "历史热点"),
    "New Cold Spot": ("#08306b", "新增冷点"),
    "Consecutive Cold Spot": ("#08519c", "连续冷点"),
    "Intensifying Cold Spot": ("#2171b5", "加强冷点"),
    "Persistent Cold Spot": ("#4292c6", "持续冷点"),
    "Diminishing Cold Spot": ("#6baed6", "减弱冷点"),
    "Sporadic Cold Spot": ("#9ecae1", "零星冷点"),
    "Oscillating Cold Spot": ("#a6bddb", "振荡冷点"),
    "Historical Cold Spot": ("#c6dbef", "历史冷点"),
    "No Pattern Detected": ("#f0f0f0", "未检测到模式"),
}

#: Colours and labels of plan-diff change kinds (``plans.diff_plans(...).grids.change``).
CHANGE_KINDS: dict[str, tuple[str, str]] = {
    "added": ("#1a9850", "新增"),
    "removed": ("#d73027", "撤销"),
    "reshaped": ("#fc8d59", "边界调整"),
    "recoded": ("#7b3294", "重新编码"),
    "split": ("#fdae61", "拆分"),
    "merged": ("#4575b4", "合并"),
    "unchanged": ("#d9d9d9", "未变"),
}

#: Chinese labels of QA issue kinds (contracts: QA issue vocabulary).
QA_ISSUES: dict[str, tuple[str, str]] = {
    "invalid_geometry": ("#e41a1c", "几何无效"),
    "empty_geometry": ("#999999", "空几何"),
    "null_geometry": ("#999999", "缺少几何"),
    "wrong_geometry_type": ("#a65628", "几何类型错误"),
    "duplicate_id": ("#984ea3", "编号重复"),
    "missing_value": ("#f781bf", "缺少字段值"),
    "overlap": ("#ff7f00", "重叠"),
    "gap": ("#377eb8", "缝隙"),
    "outside_boundary": ("#4daf4a", "超出市界"),
    "crosses_community": ("#e7298a", "跨村(社区)"),
    "sliver": ("#ffff33", "碎片"),
    "band": ("#66c2a5", "户数超出范围"),
}

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
    "area_m2": "面积 (m²)",
    "staff": "网格员",
    "workload": "工作量",
    "count": "事件数",
}

#: Colours of case categories (in order of first appearance).
CASE_COLORS = ("#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628", "#f781bf", "#999999")
