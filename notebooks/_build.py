"""Generate the analyst notebooks of ``notebooks/`` from the cell texts below (outputs stripped).

The notebooks are written as JSON with nbformat, without outputs and with stable cell ids, so that
``git diff`` shows only real changes.  Edit the texts here, then run::

    .venv/bin/python notebooks/_build.py          # rewrite notebooks/*.ipynb
    .venv/bin/python notebooks/_build.py --check  # exit 1 if a notebook differs from this file

``tests/test_notebooks.py`` checks that the committed notebooks match this file and executes each of
them with nbclient.
"""
# ruff: noqa: E501  (cell texts: Markdown tables and notebook code keep their own line lengths)

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

#: Environment variable naming the working folder every notebook writes into.
WORKDIR_ENV = "GRIDPLAN_NB_WORKDIR"

# --------------------------------------------------------------------------------------------
# cells shared by every notebook
# --------------------------------------------------------------------------------------------

SETUP = '''
import json
import os
import tempfile
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from IPython.display import Image, display

pd.set_option("display.max_columns", 40)
pd.set_option("display.width", 160)
# tqdm (imported by the spatial-statistics libraries) asks for ipywidgets progress bars; we use none.
warnings.filterwarnings("ignore", message="IProgress not found")

# Every file this notebook writes goes into WORK (default: a folder in the system temp directory,
# shared by the three notebooks so that 02 and 03 reuse what 01 built).
WORK = Path(os.environ.get("GRIDPLAN_NB_WORKDIR") or Path(tempfile.gettempdir()) / "gridplan-notebooks")
WORK.mkdir(parents=True, exist_ok=True)
SAMPLE = WORK / "sample"          # the sample city (gridplan.sample.write_sample)
PLAN = WORK / "plan.gpkg"         # the merged base-grid plan (notebook 01)
print(f"working folder: {WORK}")
'''

ENSURE_PLAN = '''
from gridplan.layers import read_layers
from gridplan.merge import merge_layers
from gridplan.plans import read_plan, write_plan
from gridplan.sample import write_sample

# Notebook 01 builds these; if you open this notebook on its own they are built here (≈ 10 s).
if not (SAMPLE / "manifest.json").exists():
    write_sample(SAMPLE, scale="small", seed=0)
layers = read_layers(SAMPLE / "layers.gpkg")
if not PLAN.exists():
    write_plan(merge_layers(layers), PLAN, overwrite=True)
plan = read_plan(PLAN)
manifest = json.loads((SAMPLE / "manifest.json").read_text(encoding="utf-8"))
print(f"plan {plan.meta.plan_id}: {len(plan.base_grids)} base grids, {len(plan.atomic_units)} atomic units")
'''


def _src(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


# --------------------------------------------------------------------------------------------
# 01 — sample city, QA, merge, crosswalk and fit, H3 lookup
# --------------------------------------------------------------------------------------------

NB01: list[tuple[str, str]] = [
    ("md", r"""
# 01 · Sample city, data QA and the merge of departmental grids (多网合一)

Dongguan runs social governance on **grids (网格)**: every community (村/社区) is cut into base grids of
roughly 300–500 households, each looked after by grid workers (网格员). Before the 智网工程 each
department — police (公安), fire (消防), urban management (城管), civil affairs (民政), work safety (安监)
— drew its own grids, and none of them agreed. This notebook walks through what a planner/analyst
does to turn those layers into **one base grid**:

1. generate the **sample city** (a Dongguan-like city with every layer, including the defects of
   hand-drawn data) — the embedded demo data of gridplan;
2. run the **QA report** on every layer (invalid rings, gaps, overlaps, duplicate ids …) and check it
   finds the defects the sample planted;
3. **merge** the departmental grids into atomic units and base grids with 15-digit codes;
4. read the **crosswalk** and **fit** (how each departmental grid maps onto the base grid);
5. use the **H3 index / GridLookup** to assign points to grids, exactly at grid edges.

The same steps on the command line: `gridplan sample`, `gridplan validate`, `gridplan merge`.

All files go into a working folder: set the environment variable `GRIDPLAN_NB_WORKDIR` to choose it
(default: `gridplan-notebooks` in the system temp folder). Run the notebooks in order (01 → 02 → 03);
each one also runs on its own and builds what it needs.
"""),
    ("code", SETUP),
    ("md", r"""
## 1. The sample city (样例城市)

`write_sample(out_dir, scale="small", seed=0)` writes a deterministic city of 3 towns (镇街) and 18
communities. One GeoPackage, `layers.gpkg`, holds every layer of the data contract in EPSG:4547
(CGCS2000 3° Gauss-Krüger, metres):

| layer | what it is | 二标四实 |
|---|---|---|
| `city`, `towns`, `communities` | city outline, 镇街 and 村/社区 with their codes | — |
| `roads` | 街路巷 (road names used by addresses) | 标准作业图 |
| `buildings` | 实有房屋: households, residents, floating residents, rental rooms per building | 实有房屋 / 实有人口 |
| `units` | 实有单位: businesses and organisations (points) | 实有单位 |
| `facilities` | 实有设施: posts, fire stations, schools … (points) | 实有设施 |
| `std_addresses` | 标准地址库: one point per standard address | 标准地址 |
| `dept_police`, `dept_fire`, `dept_urban`, `dept_civil`, `dept_safety` | the departments' own grids | — |

Besides the layers it writes `cases.csv` / `hazards.csv` (free-text events, used in notebook 02),
`truth_*.csv` (where each event really is) and `manifest.json` (every planted defect, hotspot and
trend, so we can check that the analyses find them).
"""),
    ("code", r'''
from gridplan.layers import read_layers
from gridplan.sample import write_sample

write_sample(SAMPLE, scale="small", seed=0)
layers = read_layers(SAMPLE / "layers.gpkg")      # canonical field names, compute CRS EPSG:4547
manifest = json.loads((SAMPLE / "manifest.json").read_text(encoding="utf-8"))

overview = pd.DataFrame(
    {
        "features": {name: len(gdf) for name, gdf in layers.items()},
        "geometry": {name: ", ".join(sorted(set(gdf.geom_type.dropna()))) for name, gdf in layers.items()},
        "crs": {name: gdf.crs.to_string() for name, gdf in layers.items()},
    }
)
display(overview)
print(f"files in {SAMPLE.name}/:", ", ".join(sorted(p.name for p in SAMPLE.iterdir())))
print("city totals:", manifest["totals"])
'''),
    ("md", r"""
What a building (实有房屋) and a standard address (标准地址) look like. Fields are canonical names; the
layer catalog maps Chinese field names such as 户数, 网格编码 onto them when you load your own data:

* `households` 户数, `residents` 常住人口, `floating_residents` 流动人口 (Dongguan's ~70 % migrants),
  `rental_rooms` 出租屋间数, `use` 用途;
* `std_addresses`: `address_id` (18 digits: community code + sequence), `town_name`, `community_name`,
  `road_name` 街路巷, `house_number` 门牌号, `building_no` 楼栋号 (may be empty) and `full_address`.
"""),
    ("code", r'''
display(layers["buildings"].drop(columns="geometry").head(3))
display(layers["std_addresses"].drop(columns="geometry").head(3))
'''),
    ("md", r"""
## 2. QA report of every layer (数据质量检查)

`validate_layers(layers)` returns the repaired layers and one **QA table** with a row per problem:

| column | meaning |
|---|---|
| `layer` | layer name (`dept_police` …) |
| `feature_id` | id of the feature at fault (`dept_grid_id`, `building_id` …); empty for a gap |
| `issue` | `invalid_geometry` (repaired with `make_valid`), `empty_geometry`, `null_geometry`, `wrong_geometry_type`, `duplicate_id`, `missing_value` (a required field is NULL), `overlap` (two features of one layer overlap), `gap` (part of the city no feature covers), `outside_boundary` (sticks out of the city), `crosses_community` (a departmental grid crossing a community line) |
| `detail` | human-readable detail: GEOS reason, both ids and the area in m², the field name … |
| `geometry` | where the problem is (the gap or overlap polygon, the invalid feature); may be empty |

`qa_summary(qa)` counts rows per layer and issue. Hand-drawn departmental layers have hundreds of
small gaps and overlaps along shared edges — exactly why a merged base grid is needed.
"""),
    ("code", r'''
from gridplan.validate import qa_summary, validate_layers

repaired, qa = validate_layers(layers)
print(f"{len(qa):,} QA rows")
display(qa_summary(qa))
display(qa.drop(columns="geometry").groupby("issue").head(1).reset_index(drop=True))
'''),
    ("md", r"""
**Does the QA find what the sample planted?** `manifest.json` lists each planted defect with its layer,
issue, the id of the feature (if any) and a point inside it. A planted defect counts as *found* when a
QA row of the same layer and issue names its feature or lies within 1 m of its point.
"""),
    ("code", r'''
import shapely

planted = pd.DataFrame(manifest["defects"])
points = shapely.points(planted["x"].to_numpy(), planted["y"].to_numpy())
found = []
for i, d in planted.iterrows():
    rows = qa[(qa["layer"] == d["layer"]) & (qa["issue"] == d["issue"])]
    by_id = bool(d["feature_id"]) and rows["feature_id"].astype(str).str.contains(d["feature_id"], regex=False).any()
    geoms = rows.geometry.dropna()
    by_place = len(geoms) > 0 and bool((geoms.distance(points[i]) <= 1.0).any())
    found.append(bool(by_id or by_place))
planted["found"] = found
recall = planted.groupby(["layer", "issue"])["found"].agg(planted="size", found="sum")
display(recall)
print(f"planted defects found by the QA: {planted['found'].sum()} of {len(planted)}")
'''),
    ("md", r"""
## 3. Merge: departmental grids → base grid (多网合一)

`merge_layers(layers, min_area_m2=50, households_min=300, households_max=500, h3_res=10)` does, in
one call:

1. an n-way overlay of the five departmental layers and the communities into **faces**;
2. **atomic units** (最小单元): faces with the same lineage (same grid of every department, same
   community); **slivers** (smaller than `min_area_m2` or thin) are dissolved into the neighbour with
   the longest shared edge inside the same community;
3. **base grids** (基础网格): contiguous groups of atomic units inside one community, sized to the
   household band (300–500 households by default), numbered west→east, north→south;
4. the departmental **crosswalk** and **fit**, the **H3 index** and a plan QA table.

It returns a `Plan` (atomic units, base grids, crosswalk, fit, H3 cells, QA and metadata).
`write_plan` saves it as a versioned GeoPackage that opens in QGIS; plans are immutable — a new plan
gets a new `plan_id`, and `overwrite=True` is needed to replace a file holding another plan.
"""),
    ("code", r'''
from gridplan.merge import merge_layers
from gridplan.plans import read_plan, write_plan

plan = merge_layers(layers)
write_plan(plan, PLAN, overwrite=True)
print(f"plan {plan.meta.plan_id} written to {PLAN.name}; departments: {', '.join(plan.meta.departments)}")
display(pd.Series(plan.meta.params["summary"], name="merge summary").to_frame())
'''),
    ("md", r"""
### Base grids (基础网格)

A base-grid code has 15 digits: `441900` (county-level code of Dongguan) + 3 digits of the town/street
(镇街) + 3 digits of the community (村/社区) + a 3-digit sequence — so `441900003002001` is grid 001 of
community 002 of 东城街道 (003). Columns:

| column | meaning |
|---|---|
| `grid_code`, `community_code`, `town_code`, `community_name`, `town_name` | codes and names |
| `households`, `residents`, `floating_residents`, `rental_rooms` | sums over the buildings inside |
| `addresses` | standard addresses inside |
| `area_m2` | area in m² |
| `units` | number of atomic units the grid is made of |
| `band_status`, `band_reason` | `ok` inside the household band, `below`/`above` outside it, and why (e.g. one huge building cannot be split) |
"""),
    ("code", r'''
grids = plan.base_grids
display(grids.drop(columns="geometry").head().round(1))
display(grids["band_status"].value_counts().to_frame("grids"))
display(grids[["households", "residents", "area_m2"]].describe().T[["min", "50%", "max"]].round(0))
'''),
    ("code", r'''
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(7, 7))
grids.plot(ax=ax, column="households", cmap="YlGnBu", legend=True, edgecolor="white", linewidth=0.3,
           legend_kwds={"label": "households per base grid", "shrink": 0.6})
layers["communities"].boundary.plot(ax=ax, color="black", linewidth=0.8)
ax.set_title(f"{len(grids)} base grids (black: community lines)")
ax.set_axis_off()
'''),
    ("md", r"""
### Atomic units and their lineage

Each atomic unit records which grid of every department it lies in (`police_grid_id`,
`fire_grid_id` …; an empty string means the department has a **gap** there) and its base grid
(`base_grid_code`). Where two grids of one department overlap, the unit goes to the grid covering more
of the community and the overlap is recorded in the plan QA. Units are the building blocks that
rebalancing (notebook 03) moves between grids.
"""),
    ("code", r'''
units = plan.atomic_units
display(units.drop(columns="geometry").head().round(1))
gaps = {c: int((units[c].astype(str) == "").sum()) for c in units.columns if c.endswith("_grid_id")}
print("atomic units in a gap of each department:", gaps)
display(plan.qa_issues.drop(columns="geometry").groupby(["layer", "issue"]).size().unstack(fill_value=0))
'''),
    ("md", r"""
## 4. Crosswalk and fit (部门网格对照)

So that each department can keep working on the unified grid, every departmental grid is expressed as
a set of base grids:

* `plan.crosswalk` (`dept_crosswalk` layer): `department`, `dept_grid_id`, `grid_code`, `area_share`
  (share of the departmental grid's area in that base grid) and `household_share` (share of its
  households);
* `plan.dept_fit`: per departmental grid its `best_grid_code` (the base grid holding most of it),
  `area_kept` and `households_kept` (the share inside that best grid) and `base_grids` (how many base
  grids it touches); one summary row per department has `dept_grid_id = "*"`.

A fit near 1 means the department's grids already nest in the base grid; low values show the
departments whose boundaries disagree most with the community lines.
"""),
    ("code", r'''
cw = plan.crosswalk
example = cw[(cw["department"] == "police") & (cw["area_share"] >= 0.01)]
example = example[example["dept_grid_id"] == example["dept_grid_id"].iloc[0]]
display(example.sort_values("area_share", ascending=False).round(3))
fit = plan.dept_fit
display(fit[fit["dept_grid_id"] == "*"].set_index("department").drop(columns="dept_grid_id").round(3))
'''),
    ("md", r"""
## 5. H3 index and point → grid lookup

`plan.h3_cells` indexes every base grid with H3 cells (`h3`, `grid_code`, `res` — cells are
**compacted**, so big interior cells have coarser resolutions — and `edge`: the cell is cut by a grid
boundary and needs an exact point-in-polygon test). It is a true partition: no cell in two grids.

`GridLookup.from_plan(plan).assign_xy(x, y)` gives the grid code of each point (EPSG:4547 metres), or
`None` outside every grid — exact at edges (a point on a shared edge goes to the smaller code).
Below we assign every standard address and check the fast paths (`"raster"` default, `"h3"`) against
the exact reference `assign_exact`.
"""),
    ("code", r'''
from gridplan.hexindex import GridLookup

h3 = plan.h3_cells
print(f"{len(h3):,} H3 cells; cells per resolution {h3['res'].value_counts().sort_index().to_dict()}; "
      f"edge cells {h3['edge'].mean():.0%}")
assert not h3["h3"].duplicated().any(), "an H3 cell is in two grids"

plan = read_plan(PLAN)                       # the plan as saved: what notebooks 02 and 03 use
lookup = GridLookup.from_plan(plan)
addr = layers["std_addresses"]
x, y = addr.geometry.x.to_numpy(), addr.geometry.y.to_numpy()
codes = lookup.assign_xy(x, y)
exact = lookup.assign_exact(x, y)
via_h3 = lookup.assign_xy(x, y, method="h3")
assert (codes == exact).all() and (via_h3 == exact).all(), "fast paths disagree with the exact lookup"
print(f"{len(codes):,} standard addresses: {pd.isna(codes).sum()} outside every grid; raster, H3 and exact agree")

per_grid = pd.Series(codes).value_counts().rename("addresses (lookup)")
cmp = plan.base_grids.set_index("grid_code")[["addresses"]].join(per_grid)
print(f"grids whose address count matches the plan's `addresses` column: "
      f"{(cmp['addresses'] == cmp['addresses (lookup)']).mean():.0%}")
'''),
    ("md", r"""
**Next:** notebook 02 geocodes the cases and hazards against the standard address library and maps
hot spots (热点); notebook 03 staffs the grids and publishes maps.
"""),
]

# --------------------------------------------------------------------------------------------
# 02 — geocoding and hot spots
# --------------------------------------------------------------------------------------------

NB02: list[tuple[str, str]] = [
    ("md", r"""
# 02 · Geocoding against 二标 and hot spots (热点)

Cases (案件) and hazards (隐患) arrive as free text typed by grid workers and residents, sometimes with
coordinates from a phone app in WGS-84, GCJ-02 (Amap, Tencent) or BD-09 (Baidu). The analyst (研判)
has to:

1. **geocode** them against the two standards of 二标四实 — the standard address library (标准地址库)
   and the standard work map (标准作业图, here the base grids) — and check how good the matches are;
2. draw a **heatmap** (热力图, kernel density) and find statistically significant **hot spots** (热点,
   Getis-Ord Gi*);
3. see how hot spots **change over time** (emerging hot spots) and build the **year-on-year** table
   that leaders ask for ("robberies −77.6 %").

CLI equivalents: `gridplan geocode`, `gridplan heatmap`, `gridplan hotspots`.
"""),
    ("code", SETUP),
    ("code", ENSURE_PLAN),
    ("md", r"""
## 1. The raw records

`cases.csv` columns: `case_id`, `category` (治安 public order, 消防 fire, 安全生产 work safety, 城市管理
city management, 矛盾纠纷 disputes), `reported_at` (ISO 8601), `address` (free text), `lon`, `lat`
(empty when the record has only an address) and `coord_sys` (`cgcs2000`, `wgs84`, `gcj02`, `bd09`).
Read CSVs as text (`dtype=str, keep_default_na=False`) so codes keep their leading zeros.
"""),
    ("code", r'''
cases = pd.read_csv(SAMPLE / "cases.csv", dtype=str, keep_default_na=False)
hazards = pd.read_csv(SAMPLE / "hazards.csv", dtype=str, keep_default_na=False)
print(f"{len(cases):,} cases, {len(hazards):,} hazards")
display(cases.head())
display(pd.crosstab(cases["category"], cases["coord_sys"].replace("", "(address only)"), margins=True))
'''),
    ("md", r"""
## 2. Geocode (地址匹配)

`Geocoder.from_layers(layers, plan=plan)` indexes the standard address library once; `geocode(table)`
then normalises each address (full-width → half-width, 二十三号 → 23号, aliases such as 长安 ↔ 长安镇 and
乌沙村 ↔ 乌沙社区, noise like 附近/对面), parses it into town → community → road → house number →
building, matches it exactly then fuzzily, converts app coordinates and assigns the base grid.

Output columns (added to the input; the input `lon`, `lat`, `coord_sys` are kept as `in_lon`,
`in_lat`, `in_coord_sys`):

| column | meaning |
|---|---|
| `status` | `M` matched, `T` tied (several equally good candidates), `U` unmatched |
| `score` | 0–100 match score; below `min_score` (80) a row is `U` |
| `match_level` | `house` (门牌), `road` (街路巷), `community`, `town`, or `coordinate` (placed by its coordinates only) |
| `address_id`, `matched_address` | the standard address matched |
| `lon`, `lat`, `coord_sys` | position in CGCS2000 (`coord_sys` is always `cgcs2000` in the output) |
| `grid_code`, `community_code`, `town_code` | the base grid, community and town of the position |
| `candidates` | for `T` rows, the tied address ids |
| `reason` | why a row is `U`, or what was flagged: swapped lon/lat, outside the city, address and coordinates disagreeing, fuzzy road … |
| `located_by` | `address`, `coordinates` or `both` (agreeing) |
| `address_extra` | text kept aside: prefixes (广东省东莞市), noise, floors and rooms beyond the library's depth |
"""),
    ("code", r'''
from gridplan.geocode import Geocoder
from gridplan.layers import write_table_csv

geocoder = Geocoder.from_layers(layers, plan=plan)
located = geocoder.geocode(cases)
located_hz = geocoder.geocode(hazards)
write_table_csv(located, WORK / "cases_located.csv")       # the file `gridplan heatmap/hotspots` take
write_table_csv(located_hz, WORK / "hazards_located.csv")
display(located[["case_id", "address", "status", "score", "match_level", "matched_address",
                 "grid_code", "located_by", "reason"]].head(8))
summary = pd.DataFrame({
    "cases": located["status"].value_counts(),
    "hazards": located_hz["status"].value_counts(),
}).fillna(0).astype(int)
display(summary)
display(located["match_level"].replace("", "(none)").value_counts().to_frame("cases"))
'''),
    ("md", r"""
## 3. Match statistics against the truth file

The sample city knows where every case really is: `truth_cases.csv` has the true `address_id` (empty
when the address is not in the library), the true position `x`, `y` (EPSG:4547), `in_library`,
`variant` (how the text was perturbed: `exact`, `chinese_numerals`, `village_alias`, `road_typo`,
`house_not_in_library` …) and `coord_variant` (how coordinates were given: `none`, `wgs84`, `gcj02`,
`bd09`, `swapped`, `outside`).

Per variant we report the share matched (`M`), the share matched to the **right** standard address
and the position error in metres (median and 95th percentile). A house number missing from the
library can only be placed at road level, hence errors of a few hundred metres there.
"""),
    ("code", r'''
from gridplan.crs import lonlat_to_xy

truth = pd.read_csv(SAMPLE / "truth_cases.csv", dtype=str, keep_default_na=False)
m = located.merge(truth, on="case_id", suffixes=("", "_true"))
gx, gy = lonlat_to_xy(pd.to_numeric(m["lon"]).to_numpy(), pd.to_numeric(m["lat"]).to_numpy())
m["error_m"] = np.hypot(gx - m["x"].astype(float), gy - m["y"].astype(float))
m["right_address"] = (m["address_id"] == m["address_id_true"]) & (m["address_id_true"] != "")

def stats(g):
    return pd.Series({
        "rows": len(g),
        "matched_pct": 100 * (g["status"] == "M").mean(),
        "right_address_pct": 100 * g["right_address"].mean(),
        "error_median_m": g["error_m"].median(),
        "error_p95_m": g["error_m"].quantile(0.95),
    })

by_variant = m.groupby("variant")[["status", "right_address", "error_m"]].apply(stats)
by_variant.loc["ALL"] = stats(m)
display(by_variant.round(1).astype({"rows": int}))
in_lib = m[m["in_library"] == "True"]
print(f"addresses in the library: {100 * in_lib['right_address'].mean():.1f} % matched to the right standard address")
'''),
    ("md", r"""
**Coordinates.** Phone coordinates are converted from GCJ-02/BD-09 exactly; swapped latitude/longitude
and points outside the city are **flagged in `reason` and not placed** (the address is used instead).
The share flagged should be 100 % for `swapped` and `outside`:
"""),
    ("code", r'''
coords = m.groupby("coord_variant").agg(
    rows=("case_id", "size"),
    flagged_pct=("reason", lambda r: 100 * (r != "").mean()),
    swapped_flag_pct=("reason", lambda r: 100 * r.str.contains("swapped").mean()),
    outside_flag_pct=("reason", lambda r: 100 * r.str.contains("outside").mean()),
    located_by_coordinates_pct=("located_by", lambda s: 100 * (s == "coordinates").mean()),
    error_median_m=("error_m", "median"),
)
display(coords.round(1))
display(located.loc[located["status"] == "T", ["case_id", "address", "candidates", "reason"]].head())
'''),
    ("md", r"""
Unmatched or tied rows go back to the data clerks: after they correct the `address` column,
`gridplan.geocode.rematch(previous, geocoder)` (CLI: `gridplan geocode OUT.csv --rematch`) re-runs only
the `U` rows (and `T` with `statuses=("U", "T")`) and keeps the others. The reverse direction — a point
to its nearest standard address and grid — is `reverse_geocode_xy(x, y, geocoder, radius_m=50)`:
"""),
    ("code", r'''
from gridplan.geocode import reverse_geocode_xy

sample_pts = truth.head(5)
rev = reverse_geocode_xy(sample_pts["x"].astype(float).to_numpy(), sample_pts["y"].astype(float).to_numpy(),
                         geocoder, radius_m=50)
display(pd.concat([sample_pts[["case_id", "address_id"]].rename(columns={"address_id": "true_address_id"}),
                   rev[["status", "address_id", "matched_address", "distance_m", "grid_code"]]], axis=1))
'''),
    ("md", r"""
## 4. Heatmap (热力图)

`read_events(path)` reads located events (the geocoder output, or any CSV with `lon`, `lat`,
`reported_at`, `category`) into points in EPSG:4547 and counts the rows it cannot use
(`skipped_reasons`: e.g. `no_coordinates` for rows matched only to a community).

`kde_density(x, y, bandwidth_m=…, cell_m=50, clip=base_grids)` computes a Gaussian kernel density in
**events per km²** on 50 m cells; the default bandwidth is ArcGIS's spatial Silverman rule
(`silverman_bandwidth_m`). `write_cog` writes a Cloud-Optimized GeoTIFF (open it in QGIS), `write_png`
a picture for reports.
"""),
    ("code", r'''
from gridplan.layers import read_events
from gridplan.hotspots.kde import kde_density, silverman_bandwidth_m, write_cog, write_png

events = read_events(WORK / "cases_located.csv")
print(f"{events.n_total:,} rows, {len(events.gdf):,} located, skipped: {events.skipped_reasons}")
x, y = events.gdf["x"].to_numpy(), events.gdf["y"].to_numpy()
bandwidth_m = silverman_bandwidth_m(x, y)
density, transform = kde_density(x, y, bandwidth_m=bandwidth_m, cell_m=50, clip=plan.base_grids)
write_cog(density, WORK / "heat.tif", transform, plan.base_grids.crs,
          tags={"bandwidth_m": f"{bandwidth_m:.0f}", "cell_m": "50"})
png = write_png(density, WORK / "heat.png", transform, boundary=plan.base_grids,
                title=f"cases per km² (bandwidth {bandwidth_m:.0f} m)")
print(f"bandwidth {bandwidth_m:.0f} m, raster {density.shape[1]} × {density.shape[0]} cells, "
      f"max {np.nanmax(density):,.0f} events/km²")
display(Image(filename=str(png), width=600))
'''),
    ("md", r"""
## 5. Hot spots (热点): Getis-Ord Gi*

`assign_events(events, plan)` adds `grid_code`, `community_code`, `town_code` to every event;
`hotspot_analysis(events, plan, areas=Areas(by="grid"))` counts events per base grid and runs Gi* on the rate per
1,000 residents (`value="auto"`; `by="h3"` analyses H3 hexagons on density instead). One row per area:

| column | meaning |
|---|---|
| `code`, `name` | the area (grid code and name) plus its community/town columns |
| `count`, `density`, `rate`, `rate_hh` | events; per km²; per 1,000 residents; per 100 households |
| `gi_z`, `gi_p` | Gi* z-score and its two-sided p-value (raw, as ArcGIS `GiZScore`/`GiPValue`) |
| `gi_p_sim` | permutation pseudo p-value (`permutations`, 999 by default) |
| `gi_bin` | −3…3: ±3/±2/±1 = hot/cold spot at 99/95/90 % confidence after FDR correction; 0 = not significant |
| `n_neighbors` | neighbouring grids (queen contiguity) |
"""),
    ("code", r'''
from gridplan.hotspots import Areas, assign_events, hotspot_analysis

ev = assign_events(events, plan)
hot = hotspot_analysis(ev, plan, areas=Areas(by="grid"))
display(hot["gi_bin"].value_counts().sort_index(ascending=False).rename("grids").to_frame())
display(hot.sort_values("gi_z", ascending=False)
        [["code", "name", "count", "rate", "gi_z", "gi_p", "gi_p_sim", "gi_bin"]].head(8).round(4))
%matplotlib inline
import matplotlib.pyplot as plt

# (%matplotlib inline: write_png above switched matplotlib to its file-only Agg backend; switch back)
fig, ax = plt.subplots(figsize=(7, 7))
hot.plot(ax=ax, column="gi_bin", cmap="RdBu_r", vmin=-3, vmax=3, legend=True, edgecolor="grey", linewidth=0.3,
         legend_kwds={"label": "gi_bin (+3 = hot spot at 99 %)", "shrink": 0.6})
ax.set_title("Gi* bins of all cases per base grid (red = hot)")
ax.set_axis_off()
'''),
    ("md", r"""
Grids differ in size and shape; for a view that does not depend on where the boundaries run, analyse
**H3 hexagons** instead (`by="h3"`, resolution 9 ≈ 0.1 km² per cell; the value is then events per km²
and the neighbours are the ring of 6 cells around each one). The `code` column is then the H3 cell id.
"""),
    ("code", r'''
hot_h3 = hotspot_analysis(ev, plan, areas=Areas(by="h3", h3_res=9))
print(f"{len(hot_h3)} H3 cells ({hot_h3.attrs['neighbourhood']}, value {hot_h3.attrs['value']})")
display(hot_h3["gi_bin"].value_counts().sort_index(ascending=False).rename("cells").to_frame())
'''),
    ("md", r"""
**Are the planted hot spots found?** The sample planted hot spots of one category each (`manifest.json`
→ `hotspots`: id, category, centre, radius and trend). We run Gi* on that category alone and read the
base grid at each centre:
"""),
    ("code", r'''
from gridplan.hexindex import GridLookup

lookup = GridLookup.from_plan(plan)
located_events = {"cases": ev, "hazards": assign_events(read_events(WORK / "hazards_located.csv"), plan)}
planted = manifest["hotspots"]
rows = []
for h in planted:
    code = lookup.assign_xy([h["x"]], [h["y"]])[0]          # base grid at the planted centre
    hs = hotspot_analysis(located_events[h["source"]], plan, category=h["category"], permutations=0)
    hs = hs.set_index("code")
    rows.append({"hotspot": h["id"], "source": h["source"], "category": h["category"],
                 "planted_trend": h["trend"], "grid_at_centre": code,
                 "gi_z": round(hs.loc[code, "gi_z"], 2), "gi_bin": hs.loc[code, "gi_bin"]})
display(pd.DataFrame(rows))
'''),
    ("md", r"""
## 6. Emerging hot spots (时空热点)

`emerging_hotspots(events, plan, time_step="month")` builds a space-time cube (grid × month), runs Gi*
for every month and a Mann-Kendall trend test on each grid's z series, and labels each grid with one of
the 17 ArcGIS patterns (new, consecutive, intensifying, persistent, diminishing, sporadic, oscillating,
historical — hot and cold — or no pattern). Columns:

| column | meaning |
|---|---|
| `pattern`, `pattern_zh` | the pattern, in English (ArcGIS label) and Chinese |
| `trend_z`, `trend_p` | Mann-Kendall trend of the Gi* z-scores (positive = heating up) |
| `count`, `count_first`, `count_last` | events in all steps, in the first and in the last step |
| `n_steps`, `n_hot`, `n_cold` | time steps; steps that were a significant hot / cold spot |
| `last_bin`, `last_z` | Gi* bin and z of the last step |
| `bin_history` | the Gi* bin of every step, oldest first |

Per planted hot spot (its own category, quarterly steps) the trend should follow the planted one:
rising → positive `trend_z`, falling → negative.
"""),
    ("code", r'''
from gridplan.hotspots import emerging_hotspots

emerging = emerging_hotspots(ev, plan, time_step="month")
print(f"{len(emerging.attrs['periods'])} monthly steps ({emerging.attrs['periods'][0]} … {emerging.attrs['periods'][-1]})")
display(emerging.groupby(["pattern", "pattern_zh"]).size().rename("grids").to_frame())
rows = []
for h in planted:
    em = emerging_hotspots(located_events[h["source"]], plan, category=h["category"], time_step="quarter")
    em = em.set_index("code")
    code = lookup.assign_xy([h["x"]], [h["y"]])[0]
    rows.append({"hotspot": h["id"], "source": h["source"], "category": h["category"],
                 "planted_trend": h["trend"], "pattern": em.loc[code, "pattern"],
                 "trend_z": round(em.loc[code, "trend_z"], 2),
                 "bin_history": em.loc[code, "bin_history"]})
display(pd.DataFrame(rows))
'''),
    ("md", r"""
## 7. Year-on-year table (同比)

`year_on_year(events, plan)` counts events per area, category and year: `level` (`town`, `community`,
`grid`), `code`, `name`, `category` (one row per category plus `全部` = all categories), `year`,
`count`, `count_prev` (the year before; empty for the first year) and `change_pct`
(100 · (count − count_prev) / count_prev, rounded to 0.1 %; empty when last year had none).

Summed over the towns we get the city's change per category, to compare with the trends the sample
planted (`designed_yoy_pct`, e.g. public order −35 % a year).
"""),
    ("code", r'''
from gridplan.hotspots import year_on_year
from gridplan.layers import write_layers, write_table

yoy = year_on_year(ev, plan)
towns = yoy[(yoy["level"] == "town") & (yoy["category"] == "全部")]
display(towns.pivot(index=["code", "name"], columns="year", values="change_pct"))

city = yoy[yoy["level"] == "town"].groupby(["category", "year"])["count"].sum().unstack()
change = city.pct_change(axis=1).mul(100).round(1)
design = pd.Series({c: v["designed_yoy_pct"] for c, v in manifest["trends"]["cases"].items()}, name="designed_yoy_pct")
display(change.join(design))

write_table(yoy, WORK / "yoy.csv")              # UTF-8 with BOM: opens in Excel with Chinese intact
write_layers({"hotspots": hot, "emerging": emerging, "yoy": yoy}, WORK / "hot.gpkg")   # as `gridplan hotspots`
print("written:", ", ".join(p.name for p in (WORK / "heat.tif", WORK / "hot.gpkg", WORK / "yoy.csv")))
'''),
    ("md", r"""
**Next:** notebook 03 turns cases, hazards, households and businesses into workload, staffs the grids,
proposes boundary changes and publishes maps.
"""),
]

# --------------------------------------------------------------------------------------------
# 03 — workload, staffing, rebalancing, diff, coverage, maps
# --------------------------------------------------------------------------------------------

NB03: list[tuple[str, str]] = [
    ("md", r"""
# 03 · Workload, staffing, rebalancing, coverage and published maps

Every base grid (网格) has grid workers (网格员) who visit households, check rental rooms and
businesses and follow up cases and hazards. Grids of 300–500 households are not equal work: a grid full
of factories and dormitories takes far more time than a quiet residential one. This notebook:

1. computes the **workload** of every atomic unit and grid (hours of a worker per month);
2. **staffs** the grids under a total budget (integer workers, Webster apportionment);
3. proposes a **rebalancing** (调整方案): moves of atomic units between neighbouring grids of the same
   community that even out workload per worker while moving as few households as possible;
4. **diffs** the proposal against the current plan;
5. places **fixed posts** (e.g. 警务室/治安岗亭) to cover hazards within a radius (maximal covering);
6. builds a **folium map**, shows it here and **publishes** it offline for leaders (领导).

CLI equivalents: `gridplan balance`, `gridplan diff`, `gridplan coverage`, `gridplan publish`.
"""),
    ("code", SETUP),
    ("code", ENSURE_PLAN + r'''
from gridplan.geocode import Geocoder
from gridplan.layers import read_events, write_table_csv

# Located cases and hazards from notebook 02 (geocoded here if missing).
for kind in ("cases", "hazards"):
    if not (WORK / f"{kind}_located.csv").exists():
        geocoder = Geocoder.from_layers(layers, plan=plan)
        table = pd.read_csv(SAMPLE / f"{kind}.csv", dtype=str, keep_default_na=False)
        write_table_csv(geocoder.geocode(table), WORK / f"{kind}_located.csv")
cases = read_events(WORK / "cases_located.csv")
hazards = read_events(WORK / "hazards_located.csv")
print(f"located: {len(cases.gdf):,} cases, {len(hazards.gdf):,} hazards")
'''),
    ("md", r"""
## 1. Workload (工作量)

Workload is a weighted sum, in **hours per month**, of what a grid worker has to look after. The
default weights (`gridplan/data/workload.yml`, replace them with your own time studies via
`load_weights("my.yml")`): per household, resident, floating resident (流动人口) and rental room
(出租屋); per business (实有单位) by category; per case and hazard per year by category; per km² of area
and km of road (patrol time).

`unit_workload(plan, units=…, events={"cases": …, "hazards": …}, roads=…)` returns one row per atomic
unit: the drivers (`households` … `businesses`, `cases_per_year`, `hazards_per_year`, `area_km2`,
`road_km`), one `wl_<component>` column per component (hours/month) and `workload` (their sum).
`grid_workload` sums it per base grid and adds `share_<component>`: the share of the grid's workload
each component makes.
"""),
    ("code", r'''
from gridplan.balance import grid_workload, load_weights, unit_workload

weights = load_weights()
print("weights (hours per month per item):",
      {k: v for k, v in weights.items() if not isinstance(v, dict) and k != "unit"})
wl = unit_workload(plan, units=layers["units"], events={"cases": cases, "hazards": hazards}, roads=layers["roads"])
gwl = grid_workload(wl)
print(f"total workload {wl['workload'].sum():,.0f} hours/month over {len(gwl)} grids "
      f"(≈ {wl['workload'].sum() / 160:,.0f} full-time workers at 160 h/month)")
share_cols = [c for c in gwl.columns if c.startswith("share_")]
display(gwl.sort_values("workload", ascending=False)[["grid_code", "households", "businesses", "cases_per_year",
                                                      "workload", *share_cols[:5]]].head().round(3))
'''),
    ("md", r"""
## 2. Staffing (网格员配置)

`staffing_table(grid_workload, total, min_staff=1, method="webster")` hands out exactly `total`
workers, proportional to workload (Webster/Sainte-Laguë divisor method; `"hamilton"` for largest
remainders), with per-grid minimum and maximum. Columns: `grid_code`, `community_code`, `workload`,
`staff`, `workload_per_staff` (hours per worker per month) and `load_ratio` (workload per worker ÷ the
city-wide average: 1.0 = fair share, 1.3 = 30 % more work than average).

Here the budget is two workers per grid, about Dongguan's ratio (~6,300 workers for ~3,150 grids).
"""),
    ("code", r'''
from gridplan.balance import staffing_table

total_staff = 2 * len(plan.base_grids)
staffing = staffing_table(gwl, total_staff, min_staff=1)
print(f"{total_staff} workers over {len(staffing)} grids")
display(staffing["staff"].value_counts().sort_index().rename("grids").to_frame())
display(staffing.sort_values("load_ratio", ascending=False).head().round(3))


def cv(values):
    """Coefficient of variation: standard deviation / mean (0 = every worker has the same load)."""
    values = np.asarray(values, dtype=float)
    return float(values.std() / values.mean())


print(f"CV of workload per worker: {cv(gwl['workload'] / 2):.3f} with 2 workers in every grid, "
      f"{cv(staffing['workload_per_staff']):.3f} staffed by workload")
'''),
    ("md", r"""
## 3. Rebalancing proposal (调整方案)

Integer staffing cannot balance everything: a grid with 1.4 workers' worth of work gets 1 or 2.
`rebalance(plan, wl, total_staff=…)` first staffs communities and grids, then moves boundary atomic
units to an adjacent grid **of the same community** where that evens out workload per worker the most
per household moved, keeping grids contiguous, compact and in the household band, until the city-wide
coefficient of variation (CV) of workload per worker reaches `target_cv` (0.10) or
`max_moved_share` (15 %) of households have moved.

It returns a `Proposal`: `plan` (a new plan version whose parent is the current plan, with `staff` and
`workload` on every base grid), `moves` (`unit_id`, `from_grid`, `to_grid`, `households`, `residents`,
`addresses`, `workload`, `reason`), `metrics` (`metric`, `scope` = `city` or a community code,
`before`, `after`), `staffing` (per grid, before and after) and a `summary`.
"""),
    ("code", r'''
from gridplan.balance import rebalance
from gridplan.plans import diff_plans

proposal = rebalance(plan, wl, total_staff=total_staff)
s = proposal.summary
print(f"CV of workload per worker: {s['cv_before']:.3f} (even staffing) → {s['cv_staffing_only']:.3f} "
      f"(workload-based staffing) → {s['cv_after']:.3f} (after moves)")
print(f"moved {int(s['units_moved'])} atomic units, {int(s['households_moved'])} households "
      f"({100 * s['households_moved_share']:.1f} %), {int(s['addresses_moved'])} addresses")
metrics = proposal.metrics
display(metrics[metrics["scope"] == "city"].set_index("metric")[["before", "after"]].round(3))
display(proposal.moves.head().round(2))
PROPOSAL = WORK / "proposal.gpkg"
write_plan(proposal.plan, PROPOSAL, overwrite=True)
print(f"proposal {proposal.plan.meta.plan_id} (parent {proposal.plan.meta.parent_id}) written to {PROPOSAL.name}")
'''),
    ("md", r"""
## 4. Diff of two plan versions (方案对比)

`diff_plans(old, new)` matches grids by shape, then by code. `diff.grids` has one row per grid with
`change` ∈ `added`, `removed`, `reshaped`, `recoded`, `unchanged`, the old and new code, areas,
`changed_area_m2` and households before and after; `diff.moves` lists what changed grid (`unit_id`,
`from_grid`, `to_grid`, `share`, `area_m2`, `households`, `residents`, `addresses`); `diff.summary`
counts it all. This is how a planner reviews a proposal, or a grid layer redrawn in QGIS and
re-imported (`gridplan reimport`).
"""),
    ("code", r'''
old, new = read_plan(PLAN), read_plan(PROPOSAL)
diff = diff_plans(old, new)
display(diff.grids["change"].value_counts().rename("grids").to_frame())
display(pd.Series(diff.summary).to_frame("value"))
display(diff.grids.sort_values("changed_area_m2", ascending=False).head().round(0))
assert int(diff.summary["households_moved"]) == int(s["households_moved"])
'''),
    ("md", r"""
## 5. Coverage of hazards by fixed posts (岗亭覆盖)

Which 10 of the existing police–civilian posts (治安岗亭) should be staffed so that the most hazards
lie within 500 m of one? `maximal_covering(sites, demand, radius_m=500, p=10)` solves the maximal
covering location problem exactly (MILP with CBC; `gap` = proven distance from the optimum);
`set_covering` finds the fewest posts that cover everything coverable. The result
(`CoverageResult`) carries `selected` (indices of the chosen sites), `covered` per demand point,
`covered_weight`/`total_weight`, `bound`, `gap`, `solver`, `status`. `coverage_layers` turns it into map
layers `posts` (with `covered_points`), `uncovered` and a `summary` table; `gridplan.layers.write_layers` saves them.

The curve below shows what each extra post buys.
"""),
    ("code", r'''
from gridplan.coverage import coverage_layers, maximal_covering
from gridplan.layers import write_layers

fac = layers["facilities"]
sites = fac[fac["kind"] == "治安岗亭"].reset_index(drop=True)
demand = hazards.gdf[["geometry"]].reset_index(drop=True)
curve = []
for p in (2, 5, 10, 15, 20):
    r = maximal_covering(sites, demand, radius_m=500, p=p, time_limit_s=20)
    curve.append({"posts": p, "covered_pct": 100 * r.covered_weight / r.total_weight, "gap_pct": 100 * r.gap,
                  "solver": r.solver})
display(pd.DataFrame(curve).set_index("posts").round(1))
result = maximal_covering(sites, demand, radius_m=500, p=10, time_limit_s=20)
cover = coverage_layers(sites, demand, result, radius_m=500)
write_layers(cover, WORK / "cover.gpkg")
display(cover["posts"].drop(columns="geometry").head())
display(cover["summary"])
print(f"{len(sites)} candidate posts, {len(demand):,} hazards; 10 posts cover "
      f"{100 * result.covered_weight / result.total_weight:.1f} % ({result.status})")
'''),
    ("md", r"""
## 6. Maps for leaders (发布地图)

`gridplan.maps` builds folium maps with a Chinese interface (title, legend, layer control, scale bar,
search by grid code) from the tables above; without a tile server the city, towns, communities and
roads are drawn as the background, so nothing is loaded from the internet. A map shown in the notebook
(`m` as the last line of a cell) has Leaflet inlined too, so it displays on an intranet; `render_html(m)`
produces the same self-contained HTML page, and `publish_map(m, "maps/", title=…)` writes it atomically
into a folder with an `index.html` listing every map with its plan version and date. Every user string
(names, addresses, codes) is escaped.
"""),
    ("code", r'''
from gridplan import maps

background = {k: layers[k] for k in ("city", "towns", "communities", "roads")}
workload_map = maps.base_grid_map(new.base_grids, background=background, color_by="workload", cmap="YlOrRd_09",
                                  title="调整方案：网格工作量", subtitle=f"{total_staff} 名网格员")
workload_map  # displayed offline: the notebook view inlines Leaflet as a published page does
'''),
    ("code", r'''
MAPS = WORK / "maps"
maps.publish_map(workload_map, MAPS, title="调整方案：网格工作量", slug="proposal-workload",
                 plan_id=new.meta.plan_id, data_date=str(new.meta.created_at)[:10],
                 summary=f"{len(new.base_grids)} 个网格，按工作量着色")
compare = maps.dual_grid_map(old.base_grids, new.base_grids, changes=diff.grids[["grid_code", "change"]],
                             background=background, title="调整方案前后对比")
maps.publish_map(compare, MAPS, title="调整方案前后对比", slug="proposal-compare", plan_id=new.meta.plan_id,
                 summary=f"左：现行方案 {old.meta.plan_id}；右：调整方案 {new.meta.plan_id}")
published = pd.DataFrame(maps.read_manifest(MAPS)["maps"])
display(published[["slug", "title", "plan_id", "bytes"]])
print(f"open {MAPS / 'index.html'} in a browser (no network needed)")
'''),
    ("md", r"""
That is the whole pipeline. `gridplan demo --workspace DIR` runs the same steps through the command
line and publishes the full set of maps (base grids, departmental grids, QA, heatmap, hot spots,
cases, proposal).
"""),
]

NOTEBOOKS: dict[str, list[tuple[str, str]]] = {
    "01_sample_and_merge.ipynb": NB01,
    "02_geocode_and_hotspots.ipynb": NB02,
    "03_staffing_and_maps.ipynb": NB03,
}


def build_notebook(name: str) -> nbformat.NotebookNode:
    """Return the notebook *name* (outputs empty, stable cell ids)."""
    stem = name.split("_", 1)[0]
    cells = []
    for i, (kind, text) in enumerate(NOTEBOOKS[name]):
        make = new_markdown_cell if kind == "md" else new_code_cell
        cell = make(_src(text))
        cell["id"] = f"nb{stem}-{i:02d}"
        cells.append(cell)
    nb = new_notebook(cells=cells)
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    nbformat.validate(nb)
    return nb


def render(name: str) -> str:
    """Return the JSON text of notebook *name* as written to disk."""
    return nbformat.writes(build_notebook(name)) + "\n"


def main(argv: list[str]) -> int:
    """Write the notebooks (or, with ``--check``, report the ones that differ); returns the exit code."""
    check = "--check" in argv
    stale = []
    for name in NOTEBOOKS:
        path = HERE / name
        text = render(name)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not check:
            tmp = path.with_name(f".{name}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
    if check and stale:
        print("out of date (run python notebooks/_build.py):", ", ".join(stale))
        return 1
    print(f"wrote {', '.join(stale)}" if stale else "notebooks are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
