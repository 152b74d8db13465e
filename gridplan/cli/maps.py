"""``gridplan publish``: the standard set of offline maps for leaders.

The set itself (which maps, from which inputs, in which order) is
:func:`gridplan.maps.standard.publish_standard_set`; this command parses, calls it and prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer
from rich.table import Table

from gridplan.cli._app import app, console, err_console, example, user_errors
from gridplan.errors import InputError


@app.command(
    epilog=example(
        "gridplan publish --plan plan.gpkg --layers layers.gpkg --hotspots hot.gpkg --heatmap heat.tif "
        "--cases cases_located.csv -o maps/"
    )
)
@user_errors
def publish(
    plan_path: Path = typer.Option(
        ..., "--plan", metavar="PLAN.gpkg", help="Plan GeoPackage (gridplan merge)."
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", metavar="maps/", help="Folder to publish into (index.html)."
    ),
    layers_path: Path | None = typer.Option(
        None,
        "--layers",
        metavar="LAYERS.gpkg",
        help="City layers: city/towns/communities/roads background and the dept_* grids map.",
    ),
    hotspots_path: Path | None = typer.Option(
        None, "--hotspots", metavar="HOT.gpkg", help="gridplan hotspots output (layers hotspots, emerging)."
    ),
    heatmap_path: Path | None = typer.Option(
        None, "--heatmap", metavar="HEAT.tif", help="gridplan heatmap raster."
    ),
    cases_path: Path | None = typer.Option(
        None, "--cases", metavar="OUT.csv", help="Geocoded cases (gridplan geocode output; lon/lat CGCS2000)."
    ),
    proposal_path: Path | None = typer.Option(
        None,
        "--proposal",
        metavar="PROPOSAL.gpkg",
        help="gridplan balance output: workload map and before/after map.",
    ),
    diff_against: Path | None = typer.Option(
        None,
        "--diff-against",
        metavar="OLD_PLAN.gpkg",
        help="Older plan: publish a before/after map of the plan's changes.",
    ),
    tile_url: str | None = typer.Option(
        None,
        "--tile-url",
        help="Basemap tile URL template with {z}/{x}/{y} (intranet, 天地图, Amap). "
        "Default: no tiles, no request leaves the page; city/towns/communities/roads are the background.",
    ),
    tile_crs: Literal["wgs84", "gcj02"] = typer.Option(
        "wgs84",
        "--tile-crs",
        help="wgs84 (also CGCS2000/天地图) or gcj02 (Amap, "
        "Tencent): with gcj02 every overlay is shifted to GCJ-02 to line up.",
    ),
    tile_attribution: str = typer.Option(
        "底图", "--tile-attribution", help="Attribution text of the basemap."
    ),
    data_date: str | None = typer.Option(
        None, "--data-date", help="Date of the data shown in the index (default: the plan's creation date)."
    ),
    tolerance_m: float = typer.Option(
        3.0, "--tolerance-m", min=0.0, help="Display simplification in metres (topology kept)."
    ),
    max_cases: int = typer.Option(
        50_000, "--max-cases", min=1, help="Most recent cases drawn on the cases map."
    ),
    qgis_project: Path | None = typer.Option(
        None,
        "--qgis-project",
        metavar="PROJECT.qgs",
        help="Also write a QGIS project opening the plan, hotspots, proposal and heat raster, styled.",
    ),
) -> None:
    """Publish the standard offline maps into OUT, with index.html and manifest.json.

    Base grids and QA always; departmental grids, heatmap, hotspots, cases, proposal and diff
    when their inputs are given, each a self-contained HTML file that opens offline.  Prints the
    path of OUT/index.html on stdout (the table of maps goes to stderr).
    """
    from gridplan import params
    from gridplan.maps import MapOptions
    from gridplan.maps.standard import StandardInputs, StandardMapOptions, publish_standard_set
    from gridplan.plans import read_plan

    params.folder(out, what="maps")
    if qgis_project is not None:
        params.output_file(qgis_project, suffixes=(".qgs",))
    opts = MapOptions(
        tile_url=tile_url, tile_crs=tile_crs, tile_attribution=tile_attribution, tolerance_m=tolerance_m
    )
    plan = read_plan(plan_path)
    published = publish_standard_set(
        plan,
        out,
        inputs=StandardInputs(
            layers=layers_path,
            hotspots=hotspots_path,
            heatmap=heatmap_path,
            cases=cases_path,
            proposal=proposal_path,
            diff_against=diff_against,
        ),
        options=StandardMapOptions(map=opts, data_date=data_date, max_cases=max_cases),
    )
    if qgis_project is not None:
        from gridplan.layers.qgis_project import default_project_layers, write_qgis_project

        if qgis_project.suffix.lower() != ".qgs":
            raise InputError("--qgis-project must end in .qgs", file=qgis_project)
        layers = default_project_layers(
            plan=plan_path, hotspots=hotspots_path, proposal=proposal_path, heat=heatmap_path
        )
        write_qgis_project(layers, qgis_project, epsg=plan.base_grids.crs.to_epsg() or 4547)
    table = Table(title=f"publish → {out}", show_header=True)
    table.add_column("map")
    table.add_column("file")
    table.add_column("size", justify="right")
    for page in published:
        table.add_row(page.title, page.path.name, f"{page.path.stat().st_size / 1e6:.1f} MB")
    err_console.print(table)  # stdout holds only the paths, for scripts
    console.print(str((out / "index.html").resolve()), soft_wrap=True, highlight=False, markup=False)
    if qgis_project is not None:
        console.print(str(qgis_project.resolve()), soft_wrap=True, highlight=False, markup=False)
