"""``gridplan heatmap`` and ``gridplan hotspots``: KDE GeoTIFFs, Gi*/emerging/yoy GeoPackages."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import typer
from rich.table import Table

from gridplan.cli._app import SCHEDULER_HELP, app, console, dask_session, example, progress, user_errors
from gridplan.errors import InputError


def _categories(value: str | None) -> list[str] | None:
    if not value:
        return None
    cats = [c.strip() for c in value.replace("，", ",").split(",") if c.strip()]
    return cats or None


def _read(
    input_path: Path, category: str | None, since: str | None, until: str | None, to_crs: Any
) -> tuple[Any, Any]:
    """Read located events into *to_crs*, apply filters; return (EventTable, filtered frame)."""
    import pandas as pd

    from gridplan.hotspots import filter_events
    from gridplan.layers import read_events

    for name, val in (("since", since), ("until", until)):
        if val is not None:
            try:
                pd.Timestamp(val)
            except (ValueError, TypeError):
                raise InputError(f"not a date: {val!r} (use YYYY-MM-DD)", field=f"--{name}") from None
    table = read_events(input_path, to_crs=to_crs)
    if len(table.gdf) == 0:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(table.skipped_reasons.items())) or "no rows"
        raise InputError(
            f"no located rows ({reasons}); geocode the file first (gridplan geocode)", file=input_path
        )
    events = filter_events(table.gdf, category=_categories(category), since=since, until=until)
    if len(events) == 0:
        raise InputError("no located rows match --category/--since/--until", file=input_path)
    return table, events


def _skipped_note(table: Any) -> str:
    if not table.n_skipped:
        return "0"
    reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(table.skipped_reasons.items()))
    return f"{table.n_skipped:,} ({reasons})"


@app.command(epilog=example("gridplan heatmap cases_located.csv --plan plan.gpkg -o heat.tif --png"))
@user_errors
def heatmap(
    input_path: Path = typer.Argument(
        ..., metavar="INPUT.csv", help="Located events (geocode output, or CSV with lon, lat)."
    ),
    plan_path: Path = typer.Option(..., "--plan", help="PLAN.gpkg: the raster is clipped to its base grids."),
    out: Path = typer.Option(..., "--out", "-o", help="Cloud-Optimized GeoTIFF to write (HEAT.tif)."),
    cell_m: float = typer.Option(50.0, "--cell-m", min=1.0, help="Cell size in metres."),
    bandwidth_m: str = typer.Option(
        "auto",
        "--bandwidth-m",
        help="Gaussian kernel σ in metres, or 'auto': ArcGIS's spatial Silverman rule "
        "0.9·min(SD, √(1/ln2)·Dm)·n^-0.2.",
    ),
    weight: str | None = typer.Option(None, "--weight", help="Numeric column to weight events by."),
    category: str | None = typer.Option(None, "--category", help="Only these categories (comma-separated)."),
    since: str | None = typer.Option(None, "--since", help="Only events on/after this date (YYYY-MM-DD)."),
    until: str | None = typer.Option(None, "--until", help="Only events on/before this date (YYYY-MM-DD)."),
    png: bool = typer.Option(False, "--png", help="Also write a PNG rendering next to the GeoTIFF."),
) -> None:
    """Kernel density heatmap (events per km²) of located events, as a COG clipped to the plan.

    Rows without usable coordinates are counted and skipped.
    Output: float32 Cloud-Optimized GeoTIFF in the plan's CRS (EPSG:4547), 512-pixel tiles,
    DEFLATE, overviews, nodata -9999 outside the base grids; tags: units, bandwidth, cell, filters.
    """
    import numpy as np
    import pandas as pd

    from gridplan import params
    from gridplan.hotspots import kde_density, silverman_bandwidth_m, write_cog, write_png
    from gridplan.layers.qgis_project import write_raster_style
    from gridplan.plans import read_plan

    if out.suffix.lower() not in (".tif", ".tiff"):
        raise InputError("the heatmap output must end in .tif", file=out)
    params.output_file(out)
    params.radius(cell_m, "cell_m")
    with progress() as prog:
        task = prog.add_task("read plan", total=4)
        plan = read_plan(plan_path)
        prog.update(task, description="read events", advance=1)
        table, events = _read(input_path, category, since, until, plan.base_grids.crs)
        weights = None
        if weight:
            if weight not in events.columns:
                raise InputError("no such column", file=input_path, field=weight)
            weights = pd.to_numeric(events[weight], errors="coerce").to_numpy(np.float64)
            bad = ~np.isfinite(weights) | (weights < 0)
            if bad.any():
                raise InputError(
                    f"{int(bad.sum())} rows have a missing or negative weight", file=input_path, field=weight
                )
        x = events["x"].to_numpy(np.float64)
        y = events["y"].to_numpy(np.float64)
        if bandwidth_m.strip().lower() == "auto":
            bw = silverman_bandwidth_m(x, y, weights)
            rule = "silverman (ArcGIS spatial variant)"
        else:
            try:
                bw = float(bandwidth_m)
            except ValueError:
                raise InputError(f"not a number or 'auto': {bandwidth_m!r}", field="--bandwidth-m") from None
            rule = "user"
        prog.update(task, description="kernel density", advance=1)
        dens, transform = kde_density(
            x, y, weights=weights, bandwidth_m=bw, cell_m=cell_m, clip=plan.base_grids
        )
        prog.update(task, description="write", advance=1)
        tags = {
            "bandwidth_m": f"{bw:.1f}",
            "bandwidth_rule": rule,
            "cell_m": f"{cell_m:g}",
            "kernel": "gaussian (sigma = bandwidth_m)",
            "method": "linear binning + gaussian filter",
            "events": len(events),
            "weight": weight or "",
            "category": category or "",
            "since": since or "",
            "until": until or "",
            "plan_id": plan.meta.plan_id,
            "source": input_path.name,
        }
        write_cog(dens, out, transform, plan.base_grids.crs, tags=tags)
        write_raster_style(out)  # HEAT.qml: QGIS opens the raster coloured
        png_path = None
        if png:
            png_path = write_png(
                dens,
                out.with_suffix(".png"),
                transform,
                boundary=plan.base_grids,
                title=f"热力图 {category or ''} (σ = {bw:.0f} m)",
            )
        prog.update(task, advance=1)
    t = Table(title="heatmap", show_header=False)
    t.add_row("rows read", f"{table.n_total:,}")
    t.add_row("skipped (not located)", _skipped_note(table))
    t.add_row("events mapped", f"{len(events):,}")
    t.add_row("bandwidth", f"{bw:.0f} m ({rule})")
    t.add_row("raster", f"{dens.shape[1]} × {dens.shape[0]} cells of {cell_m:g} m")
    t.add_row("max density", f"{float(np.nanmax(dens)):,.1f} events/km²")
    t.add_row("written", str(out) + (f", {png_path}" if png_path else ""))
    console.print(t)


@app.command(
    epilog=example(
        "gridplan hotspots cases_located.csv --plan plan.gpkg -o hot.gpkg",
        "gridplan hotspots cases_located.csv --plan plan.gpkg -o hot.gpkg --by grid --yoy-out yoy.xlsx",
        "gridplan hotspots cases_located.csv --plan plan.gpkg -o hot.gpkg --scheduler tcp://10.0.0.5:8786",
    )
)
@user_errors
def hotspots(
    input_path: Path = typer.Argument(
        ..., metavar="INPUT.csv", help="Located events (geocode output, or CSV with lon, lat)."
    ),
    plan_path: Path = typer.Option(..., "--plan", help="PLAN.gpkg with base grids."),
    out: Path = typer.Option(..., "--out", "-o", help="GeoPackage to write (HOT.gpkg)."),
    by: Literal["auto", "grid", "h3", "community", "town"] = typer.Option(
        "auto",
        "--by",
        help="Areas: auto (H3 cells and neighbourhood chosen from the events, as ArcGIS's Optimized Hot Spot "
        "Analysis; the per-grid share is written too) | grid | h3 | community | town.",
    ),
    h3_res: int = typer.Option(9, "--h3-res", min=0, max=15, help="H3 resolution for --by h3."),
    k_ring: int = typer.Option(
        1, "--k-ring", min=1, max=6, help="H3 neighbourhood (cells within k steps) for --by h3."
    ),
    time_step: Literal["auto", "week", "month", "quarter", "year", "none"] = typer.Option(
        "auto",
        "--time-step",
        case_sensitive=False,
        help="Emerging hot spots step: auto (the coarsest of quarter | month | week giving >= 10 steps, "
        "ArcGIS's minimum) | week | month | quarter | year | none (skip).",
    ),
    permutations: int = typer.Option(
        999, "--permutations", min=0, help="Permutations for gi_p_sim (0 = analytic only)."
    ),
    distance_band_m: float | None = typer.Option(
        None,
        "--distance-band-m",
        min=0.0,
        help="Neighbours = areas with centroids within this distance (m), instead of contiguity/k-ring.",
    ),
    value: Literal["auto", "rate", "density", "count"] = typer.Option(
        "auto",
        "--value",
        help="Analysed value: auto (rate for grids, density for H3), rate, density or count.",
    ),
    inference: Literal["analytic", "permutation"] = typer.Option(
        "analytic", "--inference", help="p-value behind gi_bin: analytic (as ArcGIS) or permutation."
    ),
    category: str | None = typer.Option(None, "--category", help="Only these categories (comma-separated)."),
    since: str | None = typer.Option(None, "--since", help="Only events on/after this date (YYYY-MM-DD)."),
    until: str | None = typer.Option(None, "--until", help="Only events on/before this date (YYYY-MM-DD)."),
    seed: int = typer.Option(
        0, "--seed", help="Permutation seed (same seed, same output, with or without --scheduler)."
    ),
    yoy_out: Path | None = typer.Option(
        None, "--yoy-out", help="Also export the year-on-year table (.csv UTF-8 with BOM, or .xlsx)."
    ),
    scheduler: str | None = typer.Option(None, "--scheduler", help=SCHEDULER_HELP),
) -> None:
    """Getis-Ord Gi* hot spots (FDR bins), emerging hot spots and year-on-year change → HOT.gpkg.

    hotspots: count, density, rate, rate_hh, gi_z, gi_p, gi_p_sim, gi_bin, n_neighbors.
    gi_bin −3..3: ±3/±2/±1 = hot/cold at 99/95/90 % after FDR (z and p raw, as in ArcGIS).
    emerging: pattern (17 ArcGIS labels), pattern_zh, trend_z, trend_p, counts, bin_history.
    yoy: level, code, name, category, year, count, count_prev, change_pct.
    The permutations run in batches of 250 (on the workers with --scheduler; same output).
    """
    from gridplan import params
    from gridplan.hotspots import (
        emerging_hotspots,
        grid_hotspot_share,
        year_on_year,
    )
    from gridplan.hotspots.aggregate import LEVELS, TIME_STEPS, TimeStep
    from gridplan.hotspots.gistar import VALUES
    from gridplan.layers import write_layers, write_table
    from gridplan.plans import read_plan

    params.output_file(out, suffixes=(".gpkg",))
    if distance_band_m is not None:
        params.radius(distance_band_m, "distance_band_m")
    if by not in (*LEVELS, "auto"):
        raise InputError(f"use auto or one of {', '.join(LEVELS)}", field="--by")
    step = None if time_step.lower() in ("none", "") else time_step.lower()
    if step is not None and step not in (*TIME_STEPS, "auto"):
        raise InputError(f"use auto, one of {', '.join(TIME_STEPS)} or none", field="--time-step")
    if value not in VALUES:
        raise InputError(f"use one of {', '.join(VALUES)}", field="--value")
    if inference not in ("analytic", "permutation"):
        raise InputError("use analytic or permutation", field="--inference")
    if out.suffix.lower() != ".gpkg":
        raise InputError("the hotspot output must end in .gpkg", file=out)
    if yoy_out is not None and yoy_out.suffix.lower() not in (".csv", ".xlsx"):
        raise InputError("the year-on-year output must end in .csv or .xlsx", file=yoy_out)
    cats = _categories(category)
    with progress() as prog:
        task = prog.add_task("read plan", total=6)
        plan = read_plan(plan_path)
        prog.update(task, description="read events", advance=1)
        table, events = _read(input_path, category, since, until, plan.base_grids.crs)
        from gridplan.hotspots import assign_events

        events = assign_events(events, plan)
        prog.update(task, description=f"{by} areas", advance=1)
        areas, choice = _choose_areas(events, plan, by, (h3_res, k_ring, distance_band_m), cats)
        prog.update(task, description="Gi*", advance=1)
        gi_options = {"value": value, "category": cats, "permutations": permutations, "seed": seed,
                      "inference": inference}
        hs = _gi_star_step(prog, events, plan, areas, scheduler, gi_options)
        prog.update(task, description="emerging hot spots", advance=1)
        layers: dict[str, Any] = {"hotspots": hs}
        if choice is not None:
            hs.attrs["optimized"] = choice.reason
            layers["grid_hotspot_share"] = grid_hotspot_share(hs, plan.base_grids)
        em = None
        if step is not None:
            em = emerging_hotspots(
                events,
                plan,
                areas=areas,
                time_step=cast(TimeStep, step),
                value=value,
                category=cats,
            )
            layers["emerging"] = em
        prog.update(task, description="year on year", advance=1)
        yoy = year_on_year(events, plan, category=cats)
        layers["yoy"] = yoy
        write_layers(layers, out)
        if yoy_out is not None:
            write_table(yoy, yoy_out)
        prog.update(task, advance=1)
    summary = _Summary(table, events, hs, em, yoy, choice, step, _permutations_text(permutations, scheduler))
    console.print(summary.table(areas, str(out) + (f", {yoy_out}" if yoy_out else "")))


def _permutations_text(permutations: int, scheduler: str | None) -> str:
    from gridplan.hotspots.permute import PERMUTATION_BATCH

    if not permutations:
        return "none (analytic p only)"
    n = -(-permutations // PERMUTATION_BATCH)
    where = f" on Dask ({scheduler})" if scheduler else ""
    return f"{permutations:,} in {n} batch{'es' if n > 1 else ''} of {PERMUTATION_BATCH}{where}"


def _gi_star_step(
    prog: Any, events: Any, plan: Any, areas: Any, scheduler: str | None, options: dict[str, Any]
) -> Any:
    """Run Gi* with a bar of its permutation batches (run on the cluster with ``--scheduler``)."""
    from gridplan._dask import dask_runner
    from gridplan.hotspots import BatchOptions, hotspot_analysis

    with contextlib.ExitStack() as stack:
        runner = None
        if scheduler and options["permutations"]:
            runner = dask_runner(stack.enter_context(dask_session(scheduler)))
        where = f" on Dask ({scheduler})" if runner else ""
        perm_task = prog.add_task(f"Gi* permutation batches{where}", total=None, start=False)

        def batches_done(done: int, total: int) -> None:
            if done == 0:
                prog.start_task(perm_task)
            prog.update(perm_task, total=total, completed=done)

        batches = BatchOptions(runner=runner, on_progress=batches_done)
        return hotspot_analysis(events, plan, areas=areas, batches=batches, **options)


@dataclass(frozen=True)
class _Summary:
    """What ``gridplan hotspots`` ran on and found, as the table it prints."""

    read: Any
    events: Any
    hs: Any
    em: Any
    yoy: Any
    choice: Any
    step: str | None
    permutations: str

    def table(self, areas: Any, written: str) -> Table:
        table, events, hs, em, yoy, choice, step = (
            self.read,
            self.events,
            self.hs,
            self.em,
            self.yoy,
            self.choice,
            self.step,
        )
        n_outside = int(hs.attrs.get("n_outside", 0))
        t = Table(title="hotspots", show_header=False)
        t.add_row("rows read", f"{table.n_total:,}")
        t.add_row("skipped (not located)", _skipped_note(table))
        t.add_row(
            "events analysed",
            f"{len(events) - n_outside:,}" + (f" ({n_outside:,} outside the plan)" if n_outside else ""),
        )
        how = f"{hs.attrs.get('neighbourhood')}, value {hs.attrs.get('value')}"
        t.add_row("areas", f"{len(hs):,} {areas.by} ({how})")
        t.add_row("permutations", self.permutations)
        if choice is not None:
            t.add_row("chosen (--by auto)", choice.reason)
        for label, bins in (("hot spots 99/95/90 %", (3, 2, 1)), ("cold spots 99/95/90 %", (-3, -2, -1))):
            t.add_row(label, " / ".join(str(int((hs["gi_bin"] == b).sum())) for b in bins))
        if em is not None:
            tally = em["pattern"].value_counts()
            shown = ", ".join(f"{k} {v}" for k, v in tally.items() if k != "No Pattern Detected") or "none"
            t.add_row(f"emerging ({len(em.attrs['periods'])} {em.attrs.get('time_step', step)}s)", shown)
        t.add_row("year-on-year rows", f"{len(yoy):,}")
        t.add_row("written", written)
        return t


def _choose_areas(
    events: Any, plan: Any, by: str, h3: tuple[int, int, float | None], cats: Any
) -> tuple[Any, Any]:
    """Choose the areas: from the events for ``--by auto``, else as the flags say."""
    from dataclasses import replace

    from gridplan.hotspots import Areas, analysis_units, optimized_areas
    from gridplan.hotspots.aggregate import Level

    h3_res, k_ring, distance_band_m = h3
    if by == "auto":
        areas, choice = optimized_areas(events, plan, category=cats)
        return replace(areas, distance_band_m=distance_band_m), choice
    level = cast(Level, by)
    units = analysis_units(plan, level, h3_res=h3_res)
    return Areas(by=level, h3_res=h3_res, distance_band_m=distance_band_m, k_ring=k_ring, units=units), None
