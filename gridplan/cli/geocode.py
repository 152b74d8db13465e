"""``gridplan geocode`` and ``gridplan reverse-geocode``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from gridplan.cli._app import SCHEDULER_HELP, app, console, dask_session, example, progress, user_errors
from gridplan.errors import InputError

if TYPE_CHECKING:
    import pandas as pd
    from rich.progress import Progress

    from gridplan.geocode import Geocoder


def _read_input(path: Path) -> pd.DataFrame:
    """Read a CSV as text columns (UTF-8 with or without BOM, else GB18030); empty cells stay ''."""
    from gridplan.layers.csvparts import read_text_csv

    return read_text_csv(path)


def _build(layers: Path, plan: Path | None) -> Geocoder:
    from gridplan.geocode import Geocoder

    if not layers.exists():
        raise InputError("file not found", file=layers)
    if plan is not None and not plan.exists():
        raise InputError("file not found", file=plan)
    return Geocoder.from_files(layers, plan)


@app.command(
    epilog=example(
        "gridplan geocode cases.csv --layers layers.gpkg --plan plan.gpkg -o cases_located.csv",
        "gridplan geocode cases_located.csv --layers layers.gpkg --plan plan.gpkg --rematch -o again.csv",
    )
)
@user_errors
def geocode(
    input_csv: Path = typer.Argument(
        ..., metavar="INPUT.csv", help="Records with an 'address' column and optional lon, lat, coord_sys."
    ),
    layers: Path = typer.Option(
        ..., "--layers", help="LAYERS.gpkg with std_addresses (+ towns, communities, city)."
    ),
    plan: Path | None = typer.Option(
        None, "--plan", help="PLAN.gpkg whose base grids the rows are assigned to."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output CSV (input columns + geocoding columns)."),
    min_score: float = typer.Option(
        80.0, "--min-score", min=0, max=100, help="Address matches scoring below this (0-100) are U."
    ),
    scheduler: str | None = typer.Option(None, "--scheduler", help=SCHEDULER_HELP),
    rematch: bool = typer.Option(
        False,
        "--rematch",
        help="INPUT.csv is a previous output: re-run only its U rows (edited addresses, "
        "new --min-score); other rows are kept as they are.",
    ),
    rematch_ties: bool = typer.Option(False, "--rematch-ties", help="With --rematch, re-run T rows too."),
    address_col: str = typer.Option("address", "--address-col", help="Name of the address column."),
    chunk_rows: int = typer.Option(
        200_000,
        "--chunk-rows",
        min=1000,
        help="Rows per batch: the progress step, and with --scheduler the rows of each Dask partition "
        "(ceil(rows / N) partitions, each read, geocoded and written by a worker).",
    ),
    bom: bool = typer.Option(
        True, "--bom/--no-bom", help="UTF-8 with a BOM, so Excel shows Chinese (default); --no-bom: without."
    ),
) -> None:
    """Geocode records against the standard address library and assign them to base grids.

    Output columns: status (M matched / T tied / U unmatched), score (0-100), match_level
    (house, road, community, town, coordinate), address_id, matched_address, lon/lat (CGCS2000),
    coord_sys (cgcs2000), grid_code, community_code, town_code, candidates (ties, '|'-joined),
    reason, located_by (address|coordinates|both), address_extra (noise, floors, rooms kept aside);
    the input lon/lat/coord_sys are kept as in_lon/in_lat/in_coord_sys.
    """
    from gridplan import params
    from gridplan.geocode import rematch as rematch_rows
    from gridplan.geocode.geocoder import summary_counts
    from gridplan.layers import write_table_csv

    params.output_file(out)
    if scheduler and not rematch:
        _geocode_on_dask(
            input_csv, out, layers=layers, plan=plan, scheduler=scheduler, chunk_rows=chunk_rows, bom=bom,
            min_score=min_score, address_col=address_col,
        )
        return
    table = _read_input(input_csv)
    if address_col not in table.columns and not {"lon", "lat"} <= set(table.columns):
        raise InputError(f"needs an '{address_col}' column or 'lon' and 'lat' columns", file=input_csv,
                         field=address_col)
    with progress() as prog:
        index_task = prog.add_task("build address index", total=None)  # pulses: its size is unknown
        geocoder = _build(layers, plan)
        prog.update(index_task, total=1, completed=1)
        task = prog.add_task("geocode", total=max(len(table), 1))
        t0 = time.perf_counter()
        if rematch:
            prog.update(task, description="rematch")
            statuses = ("U", "T") if rematch_ties else ("U",)
            result = rematch_rows(
                table,
                geocoder,
                min_score=min_score,
                statuses=statuses,
                address_col=address_col,
            )
            n_run = int(table["status"].isin(list(statuses)).sum())
        else:
            prog.update(task, description="geocode")
            result = geocoder.geocode_chunks(
                table,
                chunk_rows=chunk_rows,
                min_score=min_score,
                address_col=address_col,
                on_progress=lambda done: prog.update(task, completed=done),
            )
            n_run = len(table)
        secs = time.perf_counter() - t0
        prog.update(task, description="write", completed=max(len(table), 1))
        write_table_csv(result, out, bom=bom)
    _summary(summary_counts(result), out=out, n_run=n_run, secs=secs, build_s=geocoder.build_s)


class _DaskBars:
    """The progress bars of the ``--scheduler`` path (:class:`~gridplan.geocode._dask.CsvGeocodeProgress`)."""

    def __init__(self, prog: Progress, scheduler: str) -> None:
        self.prog = prog
        self.split_task = prog.add_task("read input", total=None)
        self.index_task = prog.add_task("build address index on a worker", total=None, start=False)
        self.task = prog.add_task(f"geocode on Dask ({scheduler})", total=None, start=False)

    def split(self, rows: int, partitions: int) -> None:
        text = f"read input: {partitions} partitions"
        self.prog.update(self.split_task, total=1, completed=1, description=text)
        self.prog.start_task(self.index_task)
        self.prog.update(self.task, total=max(rows, 1))

    def built(self, build_s: float) -> None:
        self.prog.update(self.index_task, total=1, completed=1)
        self.prog.start_task(self.task)

    def rows_done(self, rows: int) -> None:
        self.prog.update(self.task, completed=rows)


def _geocode_on_dask(
    input_csv: Path,
    out: Path,
    *,
    layers: Path,
    plan: Path | None,
    scheduler: str,
    chunk_rows: int,
    bom: bool,
    min_score: float,
    address_col: str,
) -> None:
    """Run the ``--scheduler`` path: parts read, geocoded and written on the workers (file to file)."""
    from gridplan.geocode._dask import geocode_csv_dask

    for path in (input_csv, layers, plan):
        if path is not None and not path.exists():
            raise InputError("file not found", file=path)
    with progress() as prog, dask_session(scheduler) as client:
        bars = _DaskBars(prog, scheduler)
        run = geocode_csv_dask(
            input_csv, out, layers=layers, plan=plan, client=client, chunk_rows=chunk_rows, bom=bom,
            progress=bars, address_col=address_col, min_score=min_score,
        )
        prog.update(bars.task, description="written", completed=max(run.rows, 1))
    _summary(run.counts, out=out, n_run=run.rows, secs=run.geocode_s, build_s=run.build_s,
             partitions=run.partitions)


def _summary(
    counts: dict[str, int],
    *,
    out: Path,
    n_run: int,
    secs: float,
    build_s: float,
    partitions: int | None = None,
) -> None:
    n = counts["rows"]
    table = Table(title=f"geocode → {out}")
    table.add_column("figure")
    table.add_column("rows", justify="right")
    table.add_column("share", justify="right")

    def row(label: str, k: int) -> None:
        table.add_row(label, f"{k:,}", f"{100 * k / n:.1f} %" if n else "-")

    for s, label in (("M", "M matched"), ("T", "T tied"), ("U", "U unmatched")):
        row(label, counts[f"status {s}"])
    for lv in ("house", "road", "community", "town", "coordinate"):
        row(f"  level {lv}", counts[f"level {lv}"])
    for b in ("address", "coordinates", "both"):
        row(f"  located by {b}", counts[f"by {b}"])
    row("M rows flagged (see reason)", counts["flagged"])
    row("in a base grid", counts["in grid"])
    table.add_row("index build", f"{build_s:.1f} s", "")
    rate = f"{n_run / secs:,.0f} rows/s" if secs > 0 else "-"
    table.add_row("geocoded", f"{n_run:,} rows in {secs:.1f} s", rate)
    if partitions is not None:
        table.add_row("Dask partitions", f"{partitions:,}", "")
    console.print(table)


@app.command(
    "reverse-geocode",
    epilog=example("gridplan reverse-geocode points.csv --layers layers.gpkg --plan plan.gpkg -o near.csv"),
)
@user_errors
def reverse_geocode(
    input_csv: Path = typer.Argument(
        ..., metavar="INPUT.csv", help="Points with lon, lat and optional coord_sys."
    ),
    layers: Path = typer.Option(
        ..., "--layers", help="LAYERS.gpkg with std_addresses (+ towns, communities, city)."
    ),
    plan: Path | None = typer.Option(None, "--plan", help="PLAN.gpkg for grid codes."),
    out: Path = typer.Option(..., "--out", "-o", help="Output CSV."),
    radius_m: float = typer.Option(
        50.0, "--radius-m", min=0.0, help="Largest distance to a std address (m)."
    ),
    bom: bool = typer.Option(
        True, "--bom/--no-bom", help="UTF-8 with a BOM, so Excel shows Chinese (default); --no-bom: without."
    ),
) -> None:
    """Nearest standard address within --radius-m of each point, plus grid, community and town codes."""
    from gridplan import params
    from gridplan.geocode import reverse_geocode as reverse
    from gridplan.layers import write_table_csv

    params.radius(radius_m)
    params.output_file(out)
    table = _read_input(input_csv)
    if not {"lon", "lat"} <= set(table.columns):
        raise InputError("needs 'lon' and 'lat' columns", file=input_csv, field="lon")
    with progress() as prog:
        task = prog.add_task("build address index", total=3)
        geocoder = _build(layers, plan)
        prog.update(task, description="reverse geocode", advance=1)
        result = reverse(table, geocoder, radius_m=radius_m)
        prog.update(task, description="write", advance=1)
        write_table_csv(result, out, bom=bom)
        prog.update(task, description="done", advance=1)
    t = Table(title=f"reverse-geocode → {out}")
    t.add_column("figure")
    t.add_column("rows", justify="right")
    t.add_row("points", f"{len(result):,}")
    t.add_row(f"with a std address within {radius_m:g} m", f"{int((result['status'] == 'M').sum()):,}")
    t.add_row("in a base grid", f"{int((result['grid_code'].astype(str) != '').sum()):,}")
    t.add_row("not placed (see reason)", f"{int(result['lon'].isna().sum()):,}")
    console.print(t)
