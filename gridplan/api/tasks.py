"""The background work behind the job routes: merge, geocode, re-import, and how a job is started.

Each task is ``task(service, owner, params, progress) -> result``: it reads its inputs from the
stores, calls the library, and stores its outputs atomically (plans through
:class:`~gridplan.store.plans.PlanRepository`, files through :mod:`gridplan._atomic` writers), so a
failed or cancelled job leaves nothing behind.  Its ``progress`` raises
:class:`~gridplan.api.jobs.JobCancelledError` once the job is cancelled, which stops it at its next report.

:data:`TASKS` is the registry kind → task a worker looks a claimed job up in (the queue stores only
the kind and the JSON parameters, so any server process can run any job); :func:`bind_tasks` gives
it to the service's :class:`~gridplan.api.jobs.JobRunner`.  :func:`start_job` queues one and
returns the body every job route answers with.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from gridplan.api.analyses import OUTPUTS, analysis_task
from gridplan.api.jobs import JobFn, Progress

if TYPE_CHECKING:
    from gridplan.api.service import Service

__all__ = ["TASKS", "Task", "bind_tasks", "geocode_task", "merge_task", "reimport_task", "start_job"]

Task = Callable[["Service", str, dict[str, Any], Progress], dict[str, Any]]


def start_job(service: Service, kind: str, owner: str, params: dict[str, Any]) -> dict[str, Any]:
    """Queue a job of *kind* for *owner*; return ``{"job_id", "href"}`` (the body of a 202 answer).

    *params* must be JSON and hold everything the task of *kind* in :data:`TASKS` needs.
    """
    if kind not in TASKS:
        raise KeyError(f"no task for job kind {kind!r}")
    job_id = service.jobs.submit(kind, owner, params)
    return {"job_id": job_id, "href": f"/jobs/{job_id}"}


def bind_tasks(service: Service) -> dict[str, JobFn]:
    """Every task of :data:`TASKS` bound to *service*: what the service's runner runs."""
    return {kind: functools.partial(task, service) for kind, task in TASKS.items()}


def reimport_task(service: Service, owner: str, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Turn an uploaded, QGIS-edited base-grid layer into a child version of a plan."""
    from gridplan.merge import reimport_base_grids

    repo, meta = service.plans, service.meta
    progress(0.1, "reading the parent plan")
    parent = repo.load(params["plan_id"])
    up = meta.get_upload(params["upload_id"])
    progress(0.3, "re-validating the edited grids")
    new = reimport_base_grids(parent, up["path"])
    progress(0.9, "storing the new version")
    source = meta.get_plan(params["plan_id"])["source_upload"]
    # optimistic concurrency: unless branching on purpose, the parent must still have no child
    plan_id = repo.save(
        new, source_upload=source, created_by=owner, sole_child=not params.get("branch", False)
    )
    return {"plan_id": plan_id, "parent_id": params["plan_id"], "href": f"/plans/{plan_id}"}


def merge_task(service: Service, owner: str, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Merge an uploaded layers GeoPackage into a new plan."""
    from gridplan.layers import read_layers
    from gridplan.merge import merge_layers

    up = service.meta.get_upload(params["upload_id"])
    progress(0.02, "reading layers")
    layers = read_layers(up["path"])
    steps = [0]

    def step(message: str) -> None:
        steps[0] += 1
        progress(min(0.9, 0.05 + 0.07 * steps[0]), message)

    plan = merge_layers(
        layers,
        departments=params["departments"],
        min_area_m2=params["min_area_m2"],
        households_min=params["households_min"],
        households_max=params["households_max"],
        h3_res=params["h3_res"],
        progress=step,
    )
    progress(0.95, "storing the plan")
    plan_id = service.plans.save(plan, source_upload=params["upload_id"], created_by=owner)
    return {"plan_id": plan_id, "href": f"/plans/{plan_id}", "grids": len(plan.base_grids)}


def geocode_task(service: Service, owner: str, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Geocode an uploaded cases/hazards CSV; the result is a CSV in ``<data>/results``."""
    from gridplan.geocode import Geocoder
    from gridplan.layers import list_layers, read_layer, write_table_csv

    meta = service.meta
    cases = meta.get_upload(params["upload_id"])
    table = pd.read_csv(cases["path"], dtype=str, keep_default_na=False, encoding="utf-8")
    lpath = meta.get_upload(params["layers_upload_id"])["path"]
    progress(0.05, "building the address index")
    present = set(list_layers(lpath))
    layers: dict[str, Any] = {
        n: read_layer(lpath, n) for n in ("std_addresses", "towns", "communities", "city") if n in present
    }
    plan = service.plans.load(params["plan_id"]) if params["plan_id"] else None
    geocoder = Geocoder.from_layers(layers, plan=plan)
    total = max(len(table), 1)
    result = geocoder.geocode_chunks(
        table,
        chunk_rows=20_000,
        min_score=params["min_score"],
        on_progress=lambda n: progress(0.1 + 0.85 * n / total, f"geocoded {n} of {len(table)} rows"),
    )
    out = service.data_dir / "results" / f"{params['result_name']}.csv"
    write_table_csv(result, out)
    status = result["status"].value_counts().to_dict() if "status" in result.columns else {}
    return {
        "rows": len(result),
        "status": {str(k): int(v) for k, v in status.items()},
        "file": out.name,
        "plan_id": params["plan_id"],
    }


#: Job kind → task.  Analysis jobs (``heatmap``, ``hotspots``, …) are their CLI command's name.
TASKS: dict[str, Task] = {
    "merge": merge_task,
    "geocode": geocode_task,
    "reimport": reimport_task,
    **dict.fromkeys(OUTPUTS, analysis_task),
}
