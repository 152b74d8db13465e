"""Analyses as jobs: heatmap, hotspots, balance, coverage and publish, run by the CLI itself.

A job runs ``gridplan <command> …`` in a child process with the same arguments a user would
type, so the service's output is the CLI's output byte for byte (the CLI owns the analysis code
paths; the service owns only where inputs come from and where results go).  A child process can
also be stopped: while it runs, the task polls its job's cancel flag every :data:`POLL_S`; a
cancel kills the child (its whole process group) and removes the files it wrote for the job, so a
cancelled analysis leaves no result.  (``publish`` writes the served maps folder atomically under
its lock: a cancel leaves it as it was — or published, when the child had finished writing.)
Inputs are the service's own: a plan id (written to a temporary GeoPackage when the plan lives in
PostGIS), an upload id (cases CSV or layers), or the result of an earlier job (e.g. a geocode).
Results land in ``<data>/results`` (publish: the served maps folder) and are downloaded from
``GET /jobs/{id}/result``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gridplan._atomic import TEMP_TAG
from gridplan.api.jobs import JobCancelledError, Progress
from gridplan.errors import GridplanError, InputError

if TYPE_CHECKING:
    from gridplan.api.service import Service

__all__ = ["OUTPUTS", "POLL_S", "analysis_task", "cli_args", "run_cli"]

#: Command → suffix of its main output file.
OUTPUTS = {"heatmap": ".tif", "hotspots": ".gpkg", "balance": ".gpkg", "coverage": ".gpkg", "publish": ""}
_RUN_CLI = "import sys; sys.argv[0] = 'gridplan'; from gridplan.cli import main; main()"
#: How often a running child process is checked for a cancel.
POLL_S = 0.25


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def cli_args(options: dict[str, Any]) -> list[str]:
    """CLI flags for *options* (``None`` skipped, ``True`` a bare flag, ``False`` skipped).

    >>> cli_args({"cell_m": 50.0, "category": None, "png": True, "by": "grid"})
    ['--cell-m', '50.0', '--png', '--by', 'grid']
    """
    out: list[str] = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        out += [_flag(key)] if value is True else [_flag(key), str(value)]
    return out


def _plan_file(service: Service, plan_id: str, tmp: Path) -> Path:
    """Return the plan as a GeoPackage the CLI can read (the workspace file, or a temporary copy)."""
    if service.plans.dir is not None:
        return service.plans.path(plan_id)
    from gridplan.plans import write_plan

    path = tmp / "plan.gpkg"
    write_plan(service.plans.load(plan_id), path)
    return path


def _input_file(service: Service, ref: dict[str, Any]) -> Path:
    """Return the file an input reference names: ``{"upload_id": …}`` or ``{"job_id": …}`` (its result)."""
    if ref.get("upload_id"):
        return Path(service.meta.get_upload(ref["upload_id"])["path"])
    job = service.meta.get_job(ref["job_id"])
    name = (job.get("result") or {}).get("file")
    if job["state"] != "succeeded" or not name:
        raise InputError(f"job {ref['job_id']} has no result file", field="job_id")
    return service.data_dir / "results" / Path(name).name


def _command(service: Service, params: dict[str, Any], tmp: Path, out: Path) -> list[str]:
    """Return the CLI command line of one analysis job."""
    cmd = params["command"]
    files = {k: _input_file(service, v) for k, v in params.get("inputs", {}).items()}
    plan = _plan_file(service, params["plan_id"], tmp) if params.get("plan_id") else None
    args: list[str] = [cmd]
    if cmd in ("heatmap", "hotspots"):
        args += [str(files["events"]), "--plan", str(plan)]
    elif cmd == "balance":
        args += [str(plan), "--layers", str(files["layers"])]
    elif cmd == "coverage":
        args += [str(files["layers"])]
    elif cmd == "publish":
        args += ["--plan", str(plan)]
        args += [a for k, f in files.items() for a in (_flag(k), str(f))]
    args += ["--out", str(out)]
    return args + cli_args(params.get("options", {}))


def _kill(proc: subprocess.Popen[str]) -> None:
    """Kill *proc* and every process it started (it leads its own process group), then reap it."""
    if os.name == "posix":
        with contextlib.suppress(ProcessLookupError):  # it ended on its own meanwhile
            os.killpg(proc.pid, signal.SIGKILL)
    else:  # pragma: no cover - Windows has no process groups to kill
        proc.kill()
    proc.communicate()


def run_cli(args: list[str], progress: Progress) -> subprocess.CompletedProcess[str]:
    """Run ``gridplan *args*`` in a child process; kill it and raise ``JobCancelledError`` on a cancel."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUN_CLI, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its own process group: a cancel kills what it started too
    )
    try:
        while True:
            try:
                out, err = proc.communicate(timeout=POLL_S)
                return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
            except subprocess.TimeoutExpired:
                progress.check()
    finally:
        if proc.poll() is None:
            _kill(proc)


def _remove_results(results: Path, result_name: str) -> None:
    """Remove what a killed child wrote for *result_name* (unique to its job): temp files, outputs.

    It may have renamed an output into place just before it was killed; a cancelled job keeps none.
    """
    for p in results.iterdir():
        name = p.name
        if name.startswith(result_name) or (name.startswith(f".{result_name}") and TEMP_TAG in name):
            p.unlink(missing_ok=True)


def analysis_task(service: Service, owner: str, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Run one analysis through the CLI in a child process; return its result file."""
    cmd = params["command"]
    results = service.data_dir / "results"
    out = service.maps_dir if cmd == "publish" else results / f"{params['result_name']}{OUTPUTS[cmd]}"
    with tempfile.TemporaryDirectory(prefix="gridplan-job-") as tmp:
        args = _command(service, params, Path(tmp), out)
        progress(0.05, f"running gridplan {cmd}")
        try:
            proc = run_cli(args, progress)
        except JobCancelledError:
            _remove_results(results, params["result_name"])
            raise
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        raise GridplanError(lines[-1] if lines else f"gridplan {cmd} failed (exit {proc.returncode})")
    if cmd == "publish":
        from gridplan.maps.publish import read_manifest

        maps = read_manifest(service.maps_dir)["maps"]
        return {"maps": len(maps), "href": "/maps/"}
    extra = sorted(p.name for p in results.glob(f"{params['result_name']}*") if p != out)
    return {"file": out.name, "extra_files": extra, "plan_id": params.get("plan_id")}
