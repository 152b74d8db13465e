"""``gridplan validate``: the QA report of a layers GeoPackage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gridplan.cli._app import app, console, err_console, example, user_errors
from gridplan.errors import InputError


@app.command(epilog=example("gridplan validate layers.gpkg -o qa.gpkg --repaired fixed.gpkg"))
@user_errors
def validate(
    layers_path: Annotated[Path, typer.Argument(
        metavar="LAYERS.gpkg",
        help="GeoPackage with the layers of the data contract (city, towns, communities, buildings, …, "
        "dept_*; gridplan/layers/catalog.yml).",
    )],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o",
        help="Write the QA table: .csv (geometry as WKT) or .gpkg (layer qa_issues, opens in QGIS).",
    )] = None,
    repaired: Annotated[Path | None, typer.Option(
        "--repaired", help="Also write the checked layers, invalid geometries repaired, to this .gpkg.",
    )] = None,
    only: Annotated[str | None, typer.Option(
        "--layers", help="Comma-separated layer names to check (default: every layer the catalog knows).",
    )] = None,
    min_overlap_m2: Annotated[float, typer.Option(
        "--min-overlap-m2", min=0.0, help="Smallest overlap between two features reported (m²).",
    )] = 1.0,
    min_gap_m2: Annotated[float, typer.Option(
        "--min-gap-m2", min=0.0, help="Smallest uncovered part of the city reported (m²).",
    )] = 1.0,
    min_outside_m2: Annotated[float, typer.Option(
        "--min-outside-m2", min=0.0, help="Smallest area of a feature outside the city reported (m²).",
    )] = 25.0,
    max_cross_share: Annotated[float, typer.Option(
        "--max-cross-share", min=0.0, max=1.0,
        help="A departmental grid crosses a community line when more than this share of its area lies "
             "outside its main community.",
    )] = 0.05,
) -> None:
    """Check layers: geometry, ids, required values, overlaps, gaps, city boundary, community lines.

    Prints the number of QA issues per layer and kind.  Exit code 2 when the input cannot be read.
    """
    from gridplan import params
    from gridplan.layers import read_layers, write_layers, write_table_csv
    from gridplan.validate import QAOptions, qa_summary, validate_layers

    if out is not None and out.suffix.lower() not in (".csv", ".gpkg"):
        raise InputError("--out must end in .csv or .gpkg", file=out)
    if repaired is not None and repaired.suffix.lower() != ".gpkg":
        raise InputError("--repaired must end in .gpkg", file=repaired)
    for path in (out, repaired):
        if path is not None:
            params.output_file(path)
    with err_console.status(f"reading {layers_path} …"):
        every = read_layers(layers_path)
    layers = every
    if only:
        wanted = [name.strip() for name in only.split(",") if name.strip()]
        unknown = [name for name in wanted if name not in every]
        if unknown:
            raise InputError(
                f"no layer {', '.join(unknown)}; available layers: {', '.join(every)}", file=layers_path
            )
        layers = {name: every[name] for name in wanted}
    with err_console.status("validating …"):
        fixed, qa = validate_layers(
            layers,
            boundary=every.get("city"),
            communities=every.get("communities"),
            options=QAOptions(
                min_overlap_m2=min_overlap_m2,
                min_gap_m2=min_gap_m2,
                min_outside_m2=min_outside_m2,
                max_cross_share=max_cross_share,
            ),
        )
    if out is not None:
        if out.suffix.lower() == ".gpkg":
            write_layers({"qa_issues": qa}, out)
        else:
            write_table_csv(qa, out)
    if repaired is not None:
        write_layers(fixed, repaired)

    summary = qa_summary(qa)
    table = Table(title=f"QA issues in {layers_path.name}")
    table.add_column("layer")
    table.add_column("features", justify="right")
    table.add_column("issues", justify="right", style="bold")
    table.add_column("by kind")
    for name, gdf in layers.items():
        row = summary.loc[name] if name in summary.index else None
        kinds = [(issue, int(row[issue])) for issue in summary.columns if row is not None and row[issue]]
        total = sum(count for _, count in kinds)
        breakdown = ", ".join(f"{issue.replace('_', ' ')} {count:,}" for issue, count in kinds) or "—"
        table.add_row(name, f"{len(gdf):,}", f"{total:,}", breakdown)
    console.print(table)
    note = f"{len(qa):,} QA issues in {len(layers)} layers"
    if out is not None:
        note += f"; written to {out}"
    console.print(note)
