"""``gridplan demo``: the whole pipeline on the sample city, step by step, through the real CLI.

Each step is the same command a user would type (so the demo also proves the CLI contract):
sample → validate → merge → geocode cases and hazards → heatmap → hotspots →
balance → coverage → diff → publish.  Outputs land in the workspace folder; the last line is the
path of the published ``maps/index.html``.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Literal

import typer
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from gridplan.cli._app import app, console, err_console, example, user_errors
from gridplan.errors import GridplanError

# Files the demo writes into the workspace (removed before a fresh run so plans are not refused).
_OUTPUTS = (
    "qa.csv", "plan.gpkg", "cases_located.csv", "hazards_located.csv", "heat.tif", "heat.png",
    "hot.gpkg", "yoy.xlsx", "proposal.gpkg", "cover.gpkg", "diff.csv", "diff_moves.csv",
)


def _run(step: str, args: list[str]) -> float:
    """Run one CLI command in-process; raise if it fails. Returns its wall time in seconds."""
    from typer.main import get_command

    header = f"{step}  gridplan {' '.join(args)}"
    if err_console.is_terminal:
        err_console.print(Rule(Text(header, style="bold"), align="left"))
    else:  # piped: the whole command line, never cut to a width
        err_console.print(f"── {header}")
    t0 = time.perf_counter()
    code = get_command(app).main(args=args, prog_name="gridplan", standalone_mode=False)
    if code not in (None, 0):
        raise GridplanError(f"demo step '{step}' failed with exit code {code}")
    return time.perf_counter() - t0


def _grid_count(plan: Path) -> int:
    import pyogrio

    return int(pyogrio.read_info(plan, layer="base_grids")["features"])


@app.command(epilog=example("gridplan demo --workspace demo/ --scale small"))
@user_errors
def demo(
    workspace: Path = typer.Option(
        Path("demo"), "--workspace", "-w", help="Folder for every output of the demo (replaced on a re-run)."
    ),
    scale: Literal["small", "city"] = typer.Option(
        "small", "--scale", help="small (seconds) or city (Dongguan scale, minutes)."
    ),
    seed: int = typer.Option(0, help="Sample-city seed."),
    workers_per_grid: float = typer.Option(2.0, help="Staff budget = this × number of base grids."),
) -> None:
    """Run the whole pipeline on the sample city and publish the maps (prints maps/index.html)."""
    ws = workspace
    ws.mkdir(parents=True, exist_ok=True)
    for name in _OUTPUTS:
        (ws / name).unlink(missing_ok=True)
    shutil.rmtree(ws / "maps", ignore_errors=True)
    sample, layers, plan = ws / "sample", ws / "sample" / "layers.gpkg", ws / "plan.gpkg"
    times: dict[str, float] = {}
    times["sample"] = _run("1 sample city", ["sample", "--out", str(sample), "--scale", scale,
                                            "--seed", str(seed)])
    times["validate"] = _run("2 validate layers", ["validate", str(layers), "--out", str(ws / "qa.csv")])
    times["merge"] = _run("3 merge departmental grids", ["merge", str(layers), "--out", str(plan)])
    for kind in ("cases", "hazards"):
        times[f"geocode {kind}"] = _run(
            f"4 geocode {kind}",
            ["geocode", str(sample / f"{kind}.csv"), "--layers", str(layers), "--plan", str(plan),
             "--out", str(ws / f"{kind}_located.csv")],
        )
    cases = ws / "cases_located.csv"
    times["heatmap"] = _run("5 heatmap", ["heatmap", str(cases), "--plan", str(plan),
                                         "--out", str(ws / "heat.tif"), "--png"])
    times["hotspots"] = _run("6 hotspots", ["hotspots", str(cases), "--plan", str(plan),
                                           "--out", str(ws / "hot.gpkg"),
                                           "--yoy-out", str(ws / "yoy.xlsx")])
    staff = max(1, round(workers_per_grid * _grid_count(plan)))
    times["balance"] = _run("7 staffing + rebalancing", [
        "balance", str(plan), "--layers", str(layers), "--staff", str(staff),
        "--cases", str(cases), "--hazards", str(ws / "hazards_located.csv"),
        "--out", str(ws / "proposal.gpkg")])
    times["coverage"] = _run("8 coverage of hazards", [
        "coverage", str(layers), "--radius-m", "1000", "--posts", "10",
        "--demand", str(ws / "hazards_located.csv"), "--out", str(ws / "cover.gpkg")])
    times["diff"] = _run("9 diff plan → proposal", [
        "diff", str(plan), str(ws / "proposal.gpkg"), "--out", str(ws / "diff.csv"),
        "--moves-out", str(ws / "diff_moves.csv")])
    times["publish"] = _run("10 publish maps", [
        "publish", "--plan", str(plan), "--layers", str(layers), "--hotspots", str(ws / "hot.gpkg"),
        "--heatmap", str(ws / "heat.tif"), "--cases", str(cases),
        "--proposal", str(ws / "proposal.gpkg"), "--out", str(ws / "maps")])

    table = Table(title=f"gridplan demo ({scale}) — step times")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for step, secs in times.items():
        table.add_row(step, f"{secs:.1f}")
    table.add_row(Text("total", style="bold"), Text(f"{sum(times.values()):.1f}", style="bold"))
    err_console.print(table)
    console.print(str((ws / "maps" / "index.html").resolve()), highlight=False)
