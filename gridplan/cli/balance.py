"""``gridplan balance`` (staffing + rebalancing proposal) and ``gridplan coverage`` (fixed posts).

Thin: parse arguments, read the plan/layers/events, call :mod:`gridplan.balance.workload`,
:mod:`gridplan.balance` and :mod:`gridplan.coverage`, write the result atomically, print a summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer
from rich.table import Table

from gridplan.cli._app import app, console, err_console, example, progress, refuse_existing, user_errors
from gridplan.errors import InputError


def _read_optional_layer(path: Path, name: str):  # type: ignore[no-untyped-def]
    from gridplan.layers import list_layers, read_layer

    if name not in list_layers(path):
        return None
    return read_layer(path, name)


def _events(path: Path | None):  # type: ignore[no-untyped-def]
    if path is None:
        return None
    from gridplan.layers import read_events

    table = read_events(path)
    if table.n_skipped:
        err_console.print(
            f"{path.name}: {table.n_skipped:,} of {table.n_total:,} rows not located, "
            f"skipped ({', '.join(f'{k}: {v}' for k, v in table.skipped_reasons.items())})",
            style="yellow",
        )
    return table


@app.command(
    epilog=example(
        "gridplan balance plan.gpkg --layers layers.gpkg --staff 300 --cases cases.csv -o proposal.gpkg"
    )
)
@user_errors
def balance(
    plan_path: Path = typer.Argument(..., metavar="PLAN.gpkg", help="Current plan (from gridplan merge)."),
    layers: Path = typer.Option(..., "--layers", help="LAYERS.gpkg with `units` (businesses), `roads`."),
    staff: int = typer.Option(..., "--staff", help="Total grid workers to apportion."),
    out: Path = typer.Option(..., "--out", "-o", help="PROPOSAL.gpkg to write (a new plan version)."),
    cases: Path | None = typer.Option(None, "--cases", help="Located cases CSV (gridplan geocode output)."),
    hazards: Path | None = typer.Option(None, "--hazards", help="Located hazards CSV."),
    weights: Path | None = typer.Option(
        None,
        "--weights",
        help="Workload weights YAML (default: built-in, hours per month; see gridplan/data/workload.yml).",
    ),
    min_staff: int = typer.Option(1, "--min-staff", help="Fewest workers per grid."),
    max_staff: int = typer.Option(6, "--max-staff", help="Most workers per grid."),
    method: Literal["webster", "hamilton"] = typer.Option(
        "webster", "--method", help="Apportionment: webster (Sainte-Laguë) or hamilton (largest remainder)."
    ),
    target_cv: float = typer.Option(
        0.10,
        "--target-cv",
        help="Stop moving units once the city-wide CV of workload per worker is at most this.",
    ),
    max_moved_pct: float = typer.Option(
        15.0, "--max-moved-pct", help="Most households (% of all) that may change grid; chooses the proposal."
    ),
    max_moved_share: float | None = typer.Option(
        None, "--max-moved-share", hidden=True, help="Old spelling of --max-moved-pct, as a share (0-1)."
    ),
    split_merge: bool = typer.Option(
        True, "--split-merge/--no-split-merge", help="Also propose splitting and merging grids."
    ),
    band_slack: float = typer.Option(
        0.5,
        "--band-slack",
        help="Candidates may also stretch the household band by this share each side (0.5: 300-500 -> "
        "150-750); one inside the band is written when it reaches --target-cv.",
    ),
    min_compactness: float = typer.Option(
        0.2, "--min-compactness", help="Polsby-Popper floor for a changed grid (or not worse than before)."
    ),
    max_compactness_loss: float = typer.Option(
        0.5, "--max-compactness-loss", help="A changed grid keeps at least (1 - this) of its own compactness."
    ),
    seed: int = typer.Option(0, "--seed", help="Tie-break seed (same seed, same proposal)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
) -> None:
    """Staff every base grid and propose the fewest boundary moves that even out workload per worker.

    Workload (hours per month) comes from households, residents, floating residents, rental rooms,
    businesses, cases/hazards per year and area/roads, weighted by --weights.  Staff are apportioned
    by --method within --min-staff/--max-staff; then atomic units move between adjacent grids of the
    same community (grids stay contiguous, in the household band, compact) and overloaded grids are
    split / underloaded neighbours merged (--split-merge) until --target-cv.  Candidates under several
    budgets form a trade-off (households moved % vs CV vs grids changed): all are rows of the
    `proposals` table and of OUT_proposals.png; the one written is the least disruptive reaching
    --target-cv within --max-moved-pct (else the lowest CV).  The proposal is a plan version with
    `staff`/`workload` on base_grids plus `moves`, `metrics` and `proposals` tables.
    """
    from gridplan import params
    from gridplan.balance import RebalanceOptions, load_weights, rebalance, unit_workload
    from gridplan.balance.frontier import plot_proposals
    from gridplan.plans import read_plan, write_plan

    params.staff_band(min_staff, max_staff, staff)
    params.output_file(out, suffixes=(".gpkg",))
    if method not in ("webster", "hamilton"):
        raise InputError(f"unknown method {method!r}; use webster or hamilton", field="--method")
    if not 0 <= max_moved_pct <= 100:
        raise InputError("must be between 0 and 100", field="--max-moved-pct")
    refuse_existing(out, overwrite=overwrite)
    w = load_weights(weights)
    with progress() as prog:
        task = prog.add_task("reading plan and layers", total=4)
        plan = read_plan(plan_path)
        units = _read_optional_layer(layers, "units")
        roads = _read_optional_layer(layers, "roads")
        events = {"cases": _events(cases), "hazards": _events(hazards)}
        prog.update(task, advance=1, description="workload")
        wl = unit_workload(plan, units=units, events=events, roads=roads, weights=w)
        prog.update(task, advance=1, description="staffing and moves")
        options = RebalanceOptions(
            min_staff=min_staff,
            max_staff=max_staff,
            method=method,
            target_cv=target_cv,
            max_moved_share=max_moved_share if max_moved_share is not None else max_moved_pct / 100,
            min_compactness=min_compactness,
            max_compactness_loss=max_compactness_loss,
            seed=seed,
            split_merge=split_merge,
            band_slack=band_slack,
        )
        prop = rebalance(plan, wl, total_staff=staff, options=options)
        prog.update(task, advance=1, description="writing proposal")
        write_plan(prop.plan, out, overwrite=overwrite)
        png = plot_proposals(
            prop.proposals,
            out.with_name(f"{out.stem}_proposals.png"),
            target_cv=target_cv,
            max_moved_pct=100 * options.max_moved_share,
        )
        prog.update(task, advance=1)
    _print_summary(prop, plan, staff, method, float(wl["workload"].sum()), out, png)


def _print_summary(prop, plan, staff: int, method: str, workload: float, out: Path, png: Path) -> None:  # type: ignore[no-untyped-def]
    s = prop.summary
    t = Table(title=f"proposal {prop.plan.meta.plan_id} (parent {plan.meta.plan_id})")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("grids / staff", f"{int(s['grids_before']):,} → {int(s['grids']):,} / {staff:,} ({method})")
    t.add_row("workload (hours/month)", f"{workload:,.0f}")
    t.add_row("CV workload/worker as staffed today", f"{s['cv_as_staffed']:.3f}")
    t.add_row("CV (a) unchanged plan, best integer staffing", f"{s['cv_before']:.3f}")
    t.add_row("CV (b) staffing + unit moves", f"{s['cv_moves']:.3f}")
    t.add_row("CV (c) staffing + moves + split/merge", f"{s['cv_split_merge']:.3f}")
    reduction = 1 - s["cv_after"] / s["cv_before"] if s["cv_before"] else 0.0
    t.add_row("CV written (vs a)", f"{s['cv_after']:.3f} ({-100 * reduction:+.0f} %)")
    t.add_row("p90/p10 workload/worker", f"{s['p90_p10_before']:.2f} → {s['p90_p10_after']:.2f}")
    t.add_row(
        "grids split / merged / boundaries redrawn",
        f"{int(s['grids_split'])} / {int(s['grids_merged'])} / {int(s['boundaries_redrawn'])}",
    )
    t.add_row("atomic units moved", f"{int(s['units_moved']):,}")
    t.add_row(
        "households moved", f"{int(s['households_moved']):,} ({100 * s['households_moved_share']:.1f} %)"
    )
    t.add_row("addresses moved", f"{int(s['addresses_moved']):,}")
    t.add_row(
        "grids not contiguous (before → after)",
        f"{int(s['grids_not_contiguous_before'])} → {int(s['grids_not_contiguous_after'])}",
    )
    t.add_row(
        "candidate proposals (Pareto front)", f"{len(prop.proposals)} ({int(prop.proposals['pareto'].sum())})"
    )
    t.add_row("written", f"{out}, {png.name}")
    console.print(t)
    note = prop.plan.meta.params.get("balance", {}).get("note", "")
    if note:
        console.print(note, style="yellow")


def _demand(layers: Path, demand: Path | None):  # type: ignore[no-untyped-def]
    """Demand points and weights: located events (weight 1) or buildings (residents + floating)."""
    import numpy as np
    import shapely

    from gridplan.layers import read_layer

    if demand is not None:
        gdf = _events(demand).gdf
        return gdf[["geometry"]].reset_index(drop=True), np.ones(len(gdf)), f"{demand.name} events"
    b = read_layer(layers, "buildings")
    b = b[~(b.geometry.isna() | b.geometry.is_empty)].reset_index(drop=True)  # QA reports those
    geoms = b.geometry.to_numpy()
    bad = ~shapely.is_valid(geoms)
    geoms[bad] = shapely.make_valid(geoms[bad])
    pts = b.copy()
    pts["geometry"] = shapely.point_on_surface(geoms)
    wgt = sum(
        np.nan_to_num(np.asarray(b[c], dtype=float)) for c in ("residents", "floating_residents") if c in b
    )
    keep = np.asarray(wgt) > 0
    cols = [c for c in ("building_id", "address_id") if c in pts] + ["geometry"]
    return (
        pts.loc[keep, cols].reset_index(drop=True),
        np.asarray(wgt)[keep],
        "buildings (residents + floating)",
    )


@app.command(
    epilog=example(
        "gridplan coverage layers.gpkg --radius-m 1000 --posts 10 --demand hazards_located.csv -o cover.gpkg",
        "gridplan coverage layers.gpkg --cover-all --candidates facilities:police_station -o cover.gpkg",
    )
)
@user_errors
def coverage(
    layers: Path = typer.Argument(..., metavar="LAYERS.gpkg", help="City layers (buildings, facilities)."),
    radius_m: float = typer.Option(1000.0, "--radius-m", help="Coverage radius in metres."),
    posts: int | None = typer.Option(None, "--posts", help="Maximal covering: place this many posts."),
    cover_all: bool = typer.Option(
        False, "--cover-all", help="Set covering: fewest posts covering all coverable demand."
    ),
    candidates: str = typer.Option(
        "generated",
        "--candidates",
        help="facilities:<kind> (existing facilities "
        "of that kind) | generated (square lattice near the demand).",
    ),
    spacing_m: float | None = typer.Option(
        None, "--spacing-m", help="Lattice step for generated candidates (default radius/2)."
    ),
    demand: Path | None = typer.Option(
        None,
        "--demand",
        help="Located hazards/cases CSV as demand (weight 1 "
        "each); default: buildings weighted by residents + floating residents.",
    ),
    time_limit_s: float = typer.Option(60.0, "--time-limit-s", help="CBC time limit (the gap is reported)."),
    out: Path = typer.Option(..., "--out", "-o", help="COVER.gpkg: layers posts, uncovered, summary."),
) -> None:
    """Place fixed posts: N posts covering the most demand (MCLP) or the fewest covering all (LSCP)."""
    import geopandas as gpd

    from gridplan import params
    from gridplan.coverage import (
        coverage_layers,
        generated_candidates,
        maximal_covering,
        set_covering,
    )
    from gridplan.layers import read_layer, write_layers

    if (posts is None) == (not cover_all):
        raise InputError("give exactly one of --posts N or --cover-all", field="--posts")
    params.radius(radius_m)
    if posts is not None:
        params.positive_int(posts, "posts")
    if spacing_m is not None:
        params.radius(spacing_m, "spacing_m")
    params.output_file(out, suffixes=(".gpkg",))
    dem, wts, dem_name = _demand(layers, demand)
    if candidates.startswith("facilities:"):
        kind = candidates.split(":", 1)[1]
        fac = read_layer(layers, "facilities")
        kinds = sorted(set(fac["kind"].astype(str)))
        sites = fac[fac["kind"].astype(str) == kind].reset_index(drop=True)
        if sites.empty:
            raise InputError(
                f"no facilities of kind {kind!r}; kinds present: {', '.join(kinds)}", field="--candidates"
            )
    elif candidates == "generated":
        pts = generated_candidates(dem, spacing_m=spacing_m or radius_m / 2, radius_m=radius_m)
        sites = gpd.GeoDataFrame(
            {"site_id": [f"C{i + 1:06d}" for i in range(len(pts))]}, geometry=pts, crs=dem.crs
        )
    else:
        raise InputError(
            f"unknown candidates {candidates!r}; use facilities:<kind> or generated", field="--candidates"
        )
    if posts is not None:
        res = maximal_covering(sites, dem, radius_m=radius_m, p=posts, weights=wts, time_limit_s=time_limit_s)
    else:
        res = set_covering(sites, dem, radius_m=radius_m, time_limit_s=time_limit_s)
    out_layers = coverage_layers(sites, dem, res, radius_m=radius_m, weights=wts)
    write_layers(out_layers, out)
    t = Table(title=f"{'maximal covering' if posts is not None else 'set covering'} within {radius_m:g} m")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("demand", f"{len(dem):,} points from {dem_name}")
    t.add_row("candidate sites", f"{len(sites):,} ({candidates})")
    t.add_row("posts chosen", f"{len(res.selected):,}")
    share = res.covered_weight / res.total_weight if res.total_weight else 0.0
    t.add_row("covered demand", f"{res.covered_weight:,.0f} of {res.total_weight:,.0f} ({100 * share:.1f} %)")
    t.add_row(
        "uncovered points (of which no candidate in reach)",
        f"{int((~res.covered).sum()):,} ({int((~res.coverable).sum()):,})",
    )
    t.add_row("bound / optimality gap", f"{res.bound:,.1f} / {100 * res.gap:.2f} % ({res.status})")
    t.add_row("time", f"{res.seconds:.1f} s")
    t.add_row("written", str(out))
    console.print(t)
