"""``gridplan merge``: departmental grids → base-grid plan GeoPackage."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from gridplan.cli._app import app, console, example, progress, refuse_existing, user_errors

_STEPS = ("read layers", "validate layers", "overlay", "atomic units and slivers", "households and addresses",
          "split units",
          "base grids", "crosswalk", "H3 index", "write plan")


@app.command(epilog=example("gridplan merge layers.gpkg -o plan.gpkg --departments police,fire"))
@user_errors
def merge(
    layers_path: Path = typer.Argument(..., metavar="LAYERS.gpkg",
                                       help="GeoPackage with city, communities and dept_* layers."),
    out: Path = typer.Option(..., "--out", "-o", help="Plan GeoPackage to write (PLAN.gpkg)."),
    departments: str | None = typer.Option(
        None, "--departments",
        help="Comma-separated departments (police,fire,…); default: all dept_* layers."),
    min_area_m2: float | None = typer.Option(
        None, "--min-area-m2",
        help="Atomic units smaller than this (m²) are slivers [GRIDPLAN_MIN_AREA_M2, 50]."),
    households_min: int | None = typer.Option(
        None, "--households-min", help="Lower end of the household band of a base grid [300]."),
    households_max: int | None = typer.Option(
        None, "--households-max", help="Upper end of the household band of a base grid [500]."),
    split_units: bool = typer.Option(
        True, "--split-units/--no-split-units",
        help="Divide atomic units above --households-max along roads, then between buildings "
             "(a building is never cut)."),
    h3_res: int | None = typer.Option(None, "--h3-res", min=0, max=15,
                                      help="H3 resolution of the plan's cell index [10]."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing plan file."),
) -> None:
    """Merge departmental grids into atomic units and base grids; write PLAN.gpkg.

    The plan holds atomic_units, base_grids (15-digit codes, household band status),
    dept_crosswalk, dept_fit, h3_cells, qa_issues and plan_meta, in EPSG:4547.  Units above the
    band are divided (pieces keep parent_unit_id) unless --no-split-units; the summary lists the
    grids outside the band by reason and the units split.
    """
    from gridplan import params
    from gridplan.layers import read_layers
    from gridplan.merge import merge_layers
    from gridplan.plans import write_plan
    from gridplan.settings import get_settings

    params.output_file(out, suffixes=(".gpkg",))  # a folder or an unwritable place first
    refuse_existing(out, overwrite=overwrite)
    s = get_settings()
    checked = params.merge_params(
        households_min=s.households_min if households_min is None else households_min,
        households_max=s.households_max if households_max is None else households_max,
        min_area_m2=s.min_area_m2 if min_area_m2 is None else min_area_m2,
        h3_res=s.h3_res if h3_res is None else h3_res,
    )
    depts = [d for d in departments.split(",") if d.strip()] if departments else None
    with progress() as prog:
        task = prog.add_task("read layers", total=len(_STEPS))

        def step(name: str) -> None:
            prog.update(task, description=name, advance=1)

        layers = read_layers(layers_path)
        plan = merge_layers(
            layers, departments=depts,
            min_area_m2=checked["min_area_m2"],
            households_min=checked["households_min"],
            households_max=checked["households_max"],
            h3_res=checked["h3_res"],
            split_units=split_units,
            progress=step,
        )
        prog.update(task, description="write plan", advance=1)
        write_plan(plan, out, overwrite=overwrite)
        prog.update(task, description="done", completed=len(_STEPS))
    summ = plan.meta.params.get("summary", {})
    table = Table(title=f"merge → {out}", show_header=True)
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("plan id", plan.meta.plan_id)
    table.add_row("departments", ", ".join(plan.meta.departments))
    table.add_row("atomic units", f"{summ.get('atomic_units', len(plan.atomic_units)):,}")
    table.add_row("slivers removed", f"{summ.get('slivers_removed', 0):,}")
    table.add_row("slivers kept (reported)", f"{summ.get('slivers_kept', 0):,}")
    table.add_row("base grids", f"{len(plan.base_grids):,}")
    band = plan.meta.params
    table.add_row(f"grids in band {band['households_min']}-{band['households_max']}",
                  f"{summ.get('grids_in_band', 0):,} ({summ.get('grids_in_band_pct', 0):.1f} %)")
    for reason, n in summ.get("grids_outside_by_reason", {}).items():
        table.add_row(f"  outside: {reason}", f"{n:,}")
    table.add_row("units split (between roads / buildings)", f"{summ.get('units_split', 0):,}")
    table.add_row("households in in-band grids", f"{summ.get('households_in_band_pct', 0):.1f} %")
    fit = plan.dept_fit[plan.dept_fit["dept_grid_id"] == "*"]
    for _, r in fit.iterrows():
        hh = "n/a" if r["households_kept"] != r["households_kept"] else f"{100 * r['households_kept']:.1f} %"
        table.add_row(f"fit {r['department']} (area / households kept)",
                      f"{100 * r['area_kept']:.1f} % / {hh}")
    table.add_row("QA issues", f"{len(plan.qa_issues):,}")
    table.add_row("H3 rows", f"{len(plan.h3_cells):,} (res {plan.meta.h3_res})")
    console.print(table)
