"""``gridplan sample``: write the sample city."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Literal

import typer
from rich.table import Table

from gridplan.cli._app import app, console, err_console, example, user_errors
from gridplan.errors import InputError


class Variant(StrEnum):
    """The cities ``gridplan sample`` can make (gridplan.sample.variants)."""

    base = "base"
    coarse = "coarse"
    compounds = "compounds"
    villages = "villages"
    industrial = "industrial"


@app.command(epilog=example("gridplan sample -o city/ --scale small --seed 0 --variant villages"))
@user_errors
def sample(
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write (layers.gpkg, cases.csv, hazards.csv, "
                             "truth_*.csv, manifest.json); created if missing."),
    scale: Literal["small", "city"] = typer.Option(
        "small", "--scale", help="small (3 towns, seconds) or city (Dongguan scale, "
        "32 towns, ~1 M addresses, ~1 M cases; a few minutes)."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed writes the same files."),
    variant: Variant = typer.Option(
        Variant.base, "--variant", case_sensitive=False,
        help="base (the sample city) or a city unlike it: coarse (few big departmental grids), compounds "
        "(street blocks of 600-2,000 households no department line crosses), villages (dense rental "
        "buildings on irregular lanes, 城中村), industrial (a belt of factories, few households). Each "
        "plants hotspots of 200-800 m with a trend, recorded in manifest.json.",
    ),
) -> None:
    """Generate the deterministic Dongguan-like sample city with planted defects and hotspots."""
    from gridplan.sample import SCALES, write_sample

    if scale not in SCALES:
        raise InputError(f"unknown scale {scale!r}; use one of: {', '.join(SCALES)}", field="--scale")
    name = Variant(variant).value
    with err_console.status(f"generating the {scale} sample city ({name}) …"):
        folder = write_sample(out, scale=scale, seed=seed, variant=name)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    table = Table(title=f"sample city ({scale}, {name}, seed {seed}) → {folder}")
    table.add_column("item")
    table.add_column("count", justify="right")
    for name, count in manifest["counts"].items():
        table.add_row(name, f"{count:,}")
    for key, value in manifest["totals"].items():
        table.add_row(key, f"{value:,}")
    table.add_row("planted defects", f"{len(manifest['defects']):,}")
    table.add_row("planted hotspots", f"{len(manifest['hotspots']):,}")
    for kind in ("compound", "village", "industrial"):
        zones = [z for z in manifest.get("variant", {}).get("zones", []) if z["kind"] == kind]
        if zones:
            households = sum(z["households"] for z in zones)
            table.add_row(f"{kind} zones (households)", f"{len(zones):,} ({households:,})")
    console.print(table)
