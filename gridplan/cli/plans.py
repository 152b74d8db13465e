"""``gridplan diff`` / ``gridplan reimport``: compare plan versions, re-import a QGIS edit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from gridplan.cli._app import app, console, err_console, example, progress, refuse_existing, user_errors


def _summary_table(title: str, summary: dict[str, Any]) -> Table:
    table = Table(title=title, show_header=True)
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("old plan", str(summary["old_plan_id"]))
    table.add_row("new plan", str(summary["new_plan_id"]))
    table.add_row("base grids old → new", f"{summary['grids_old']:,} → {summary['grids_new']:,}")
    for change in ("added", "removed", "reshaped", "recoded", "unchanged"):
        table.add_row(f"grids {change}", f"{summary[change]:,}")
    table.add_row("atomic units that changed grid", f"{summary['units_moved']:,}")
    table.add_row("households that changed grid", f"{summary['households_moved']:,.0f}")
    table.add_row("residents that changed grid", f"{summary['residents_moved']:,.0f}")
    table.add_row("addresses that changed grid", f"{summary['addresses_moved']:,.0f}")
    table.add_row(
        "moves computed from", "unit ids" if summary["moves_method"] == "units" else "unit area overlap"
    )
    return table


@app.command(epilog=example("gridplan diff plan.gpkg proposal.gpkg -o diff.csv --moves-out moves.csv"))
@user_errors
def diff(
    old: Annotated[Path, typer.Argument(metavar="OLD.gpkg", help="Earlier plan version.")],
    new: Annotated[Path, typer.Argument(metavar="NEW.gpkg", help="Later plan version.")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="CSV with one row per grid (grid_code, old_code, new_code, change, areas, households).",
        ),
    ] = None,
    moves_out: Annotated[
        Path | None,
        typer.Option(
            "--moves-out", help="CSV with the atomic units (households, addresses) that changed grid."
        ),
    ] = None,
    tolerance_m2: Annotated[
        float,
        typer.Option(
            "--tolerance-m2", min=0.0, help="Shapes differing by at most this area (m²) count as unchanged."
        ),
    ] = 1.0,
) -> None:
    """Compare two plan versions: grids added/removed/reshaped/recoded and households that moved grid."""
    from gridplan.layers import write_table_csv
    from gridplan.plans import diff_plans, read_plan

    d = diff_plans(read_plan(old), read_plan(new), tolerance_m2=tolerance_m2)
    if out is not None:
        write_table_csv(d.grids, out)
    if moves_out is not None:
        write_table_csv(d.moves, moves_out)
    console.print(_summary_table(f"diff {old.name} → {new.name}", d.summary))
    changed = d.grids[d.grids["change"] != "unchanged"]
    if len(changed):
        t = Table(title="changed grids" + (" (first 20)" if len(changed) > 20 else ""))
        for col in ("grid_code", "change", "old_code", "households_old", "households_new", "changed_area_m2"):
            t.add_column(col, justify="right" if col.startswith(("households", "changed")) else "left")
        for r in changed.head(20).itertuples():
            t.add_row(
                r.grid_code,
                r.change,
                r.old_code,
                f"{r.households_old:,.0f}",
                f"{r.households_new:,.0f}",
                f"{r.changed_area_m2:,.1f}",
            )
        console.print(t)
    if out is not None:
        err_console.print(f"wrote {len(d.grids):,} grid rows to {out}")
    if moves_out is not None:
        err_console.print(f"wrote {len(d.moves):,} moves to {moves_out}")


@app.command(epilog=example("gridplan reimport plan.gpkg edited.gpkg -o plan_v2.gpkg"))
@user_errors
def reimport(
    plan_path: Annotated[
        Path, typer.Argument(metavar="PLAN.gpkg", help="The plan the edited layer came from.")
    ],
    edited: Annotated[
        Path,
        typer.Argument(
            metavar="EDITED.gpkg|.shp", help="Base-grid layer edited in QGIS (keep the grid_code field)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="New plan version to write (NEW_PLAN.gpkg).")],
    layer: Annotated[
        str | None, typer.Option("--layer", help="Layer of EDITED; default base_grids or the only one.")
    ] = None,
    tolerance_m2: Annotated[
        float,
        typer.Option(
            "--tolerance-m2",
            min=0.0,
            help="Overlaps, gaps and community crossings up to this area (m²) are ignored.",
        ),
    ] = 1.0,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing file holding another plan.")
    ] = False,
) -> None:
    """Re-import a base-grid layer edited in QGIS as a new plan version, and show what changed.

    The edit is re-validated (overlaps, gaps, community crossings in qa_issues), atomic units go to
    the edited grid covering most of them, split grids get new codes, the H3 index is rebuilt.
    """
    from gridplan.merge import reimport_base_grids
    from gridplan.plans import diff_plans, read_plan, write_plan

    refuse_existing(out, overwrite=overwrite)
    with progress() as prog:
        task = prog.add_task("read plan", total=4)
        plan = read_plan(plan_path)
        prog.update(task, description="re-import edited grids", advance=1)
        new = reimport_base_grids(plan, edited, layer=layer, tolerance_m2=tolerance_m2)
        prog.update(task, description="write plan", advance=1)
        write_plan(new, out, overwrite=overwrite)
        prog.update(task, description="diff", advance=1)
        d = diff_plans(plan, new, tolerance_m2=tolerance_m2)
        prog.update(task, description="done", completed=4)
    console.print(_summary_table(f"reimport {edited.name} → {out}", d.summary))
    qa = new.qa_issues
    edit_qa = qa[qa["layer"].astype(str) == "base_grids"] if len(qa) else qa
    t = Table(title="QA of the edited base grids")
    t.add_column("issue")
    t.add_column("count", justify="right")
    t.add_column("example")
    if len(edit_qa):
        for issue, grp in edit_qa.groupby("issue", sort=True):
            t.add_row(str(issue), f"{len(grp):,}", str(grp["detail"].iloc[0]))
    else:
        t.add_row("none", "0", "")
    console.print(t)
