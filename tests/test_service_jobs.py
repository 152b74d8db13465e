"""The job queue: two runners (two server processes) on one store, leases, restarts, cancels.

A "process" here is a :class:`~gridplan.store.meta.MetaStore` object of its own (its own engine
and connections) with its own :class:`~gridplan.api.jobs.JobRunner`, on the same SQLite file or
the same PostgreSQL schema.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from conftest import drop_schemas
from test_api import _auth

from gridplan.api import analyses, create_app
from gridplan.api.jobs import INTERRUPTED, JobCancelledError, JobFinishedError, JobRunner, Progress
from gridplan.api.tasks import merge_task
from gridplan.settings import Settings
from gridplan.store.meta import MetaStore

Fast: dict[str, Any] = {"poll_s": 0.05, "heartbeat_s": 0.25, "lease_s": 5.0}


@pytest.fixture(params=["sqlite", "postgis"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], MetaStore]]:
    """Open another "process"'s MetaStore on one shared store (a workspace, or a PostGIS schema)."""
    opened: list[MetaStore] = []
    if request.param == "sqlite":
        target: str | Path = tmp_path / "ws"
        schema = "gridplan_meta"
    else:
        target = request.getfixturevalue("postgis_url")
        schema = f"t_jobs_{secrets.token_hex(4)}"

    def open_one() -> MetaStore:
        meta = MetaStore(target, schema=schema)
        opened.append(meta)
        return meta

    yield open_one
    for meta in opened:
        meta.close()
    if request.param == "postgis":
        drop_schemas(str(target), schema)


@pytest.fixture
def runners() -> Iterator[list[JobRunner]]:
    """Runners a test starts; shut down at its end."""
    started: list[JobRunner] = []
    yield started
    for r in started:
        r.shutdown(timeout_s=30)


def _start(runners: list[JobRunner], meta: MetaStore, tasks: dict[str, Any], **kw: Any) -> JobRunner:
    runner = JobRunner(meta, **{**Fast, **kw})
    runners.append(runner)
    return runner.start(tasks)


def _wait_state(meta: MetaStore, job_id: str, states: set[str], timeout_s: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while (job := meta.get_job(job_id))["state"] not in states:
        assert time.monotonic() < deadline, job
        time.sleep(0.02)
    return job


# ---------------------------------------------------------------------------------------------
# one queue, two processes
# ---------------------------------------------------------------------------------------------


def test_two_runners_share_one_queue_each_job_runs_exactly_once(
    stores: Callable[[], MetaStore], runners: list[JobRunner]
) -> None:
    runs: list[tuple[int, str]] = []
    lock = threading.Lock()

    def task(name: str) -> Any:
        def run(owner: str, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
            with lock:
                runs.append((params["n"], name))
            time.sleep(0.05)  # long enough that the other process's workers get their share
            return {"n": params["n"], "by": name}

        return run

    meta_a, meta_b = stores(), stores()
    a = _start(runners, meta_a, {"count": task("a")}, workers=2)
    _start(runners, meta_b, {"count": task("b")}, workers=2)
    ids = [a.submit("count", "li", {"n": n}) for n in range(40)]
    jobs = [a.wait(job_id, timeout_s=60) for job_id in ids]
    assert [j["state"] for j in jobs] == ["succeeded"] * 40
    assert sorted(n for n, _ in runs) == list(range(40))  # every job once, none twice
    assert [j["result"]["n"] for j in jobs] == list(range(40))
    by = {j["result"]["by"] for j in jobs}
    assert by == {"a", "b"}, runs
    # the worker column names the process (runner) that ran it
    workers = {meta_b.get_job(i)["worker"].rsplit("/", 1)[0] for i in ids}
    assert len(workers) == 2


def test_jobs_queued_before_a_restart_are_run_after_it(
    stores: Callable[[], MetaStore], runners: list[JobRunner]
) -> None:
    old = JobRunner(stores(), **Fast)  # a server that queued jobs and stopped before running them
    ids = [old.submit("echo", "li", {"n": n}) for n in range(3)]
    old.shutdown()
    assert {old.meta.get_job(i)["state"] for i in ids} == {"queued"}
    old.meta.close()
    new = _start(runners, stores(), {"echo": lambda owner, params, progress: {"n": params["n"], "by": owner}})
    assert [new.wait(i)["result"] for i in ids] == [{"n": n, "by": "li"} for n in range(3)]


def test_a_runner_claims_only_the_kinds_it_knows(
    stores: Callable[[], MetaStore], runners: list[JobRunner]
) -> None:
    meta = stores()
    runner = _start(runners, meta, {"known": lambda owner, params, progress: {}})
    unknown = runner.submit("newer-kind", "li", {})
    known = runner.submit("known", "li", {})
    assert runner.wait(known)["state"] == "succeeded"
    assert meta.get_job(unknown)["state"] == "queued"  # left for a server that knows it


# ---------------------------------------------------------------------------------------------
# leases
# ---------------------------------------------------------------------------------------------


def test_an_expired_lease_is_failed_by_the_other_runner_a_live_one_is_not(
    stores: Callable[[], MetaStore], runners: list[JobRunner]
) -> None:
    meta_a, meta_b = stores(), stores()
    dead, alive = "host:1:dead/0", "host:2:alive/0"
    meta_a.add_job("a" * 16, "merge", "li", {})
    meta_a.add_job("b" * 16, "merge", "li", {})
    assert meta_a.claim_job(dead, lease_s=-5, kinds=["merge"])["job_id"] == "a" * 16  # lease ran out
    assert meta_a.claim_job(alive, lease_s=600, kinds=["merge"])["job_id"] == "b" * 16
    assert meta_a.claim_job(alive, lease_s=600, kinds=["merge"]) is None  # nothing left to claim
    _start(runners, meta_b, {})  # start-up: ends jobs of dead processes
    expired = meta_b.get_job("a" * 16)
    assert (expired["state"], expired["message"]) == ("failed", INTERRUPTED)
    assert meta_b.get_job("b" * 16)["state"] == "running"
    # the dead worker, were it to come back, cannot overwrite that; the live one finishes its job
    assert not meta_a.update_job("a" * 16, worker=dead, state="succeeded")
    assert not meta_a.renew_lease("a" * 16, dead, lease_s=60)
    assert meta_a.renew_lease("b" * 16, alive, lease_s=60)
    assert meta_a.update_job("b" * 16, worker=alive, state="succeeded")
    assert meta_b.get_job("b" * 16)["state"] == "succeeded"


def test_a_lease_that_runs_out_later_is_failed_without_a_restart(
    stores: Callable[[], MetaStore], runners: list[JobRunner]
) -> None:
    meta_a, meta_b = stores(), stores()
    _start(runners, meta_b, {}, reap_s=0.1)
    meta_a.add_job("c" * 16, "merge", "li", {})
    meta_a.claim_job("host:3:gone/0", lease_s=1, kinds=["merge"])  # its process dies now
    assert meta_b.get_job("c" * 16)["state"] == "running"
    job = _wait_state(meta_b, "c" * 16, {"failed"}, timeout_s=10)
    assert job["message"] == INTERRUPTED


def test_a_running_job_renews_its_lease_so_no_one_fails_it(
    stores: Callable[[], MetaStore], runners: list[JobRunner]
) -> None:
    meta_a, meta_b = stores(), stores()

    def longer_than_its_lease(owner: str, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
        time.sleep(3.5)
        return {"ok": True}

    a = _start(runners, meta_a, {"long": longer_than_its_lease}, lease_s=2.0, heartbeat_s=0.25)
    _start(runners, meta_b, {}, reap_s=0.1)  # reaps all the time
    job_id = a.submit("long", "li", {})
    job = a.wait(job_id, timeout_s=30)
    assert (job["state"], job["result"]) == ("succeeded", {"ok": True}), job


def test_an_old_jobs_table_gets_the_queue_columns(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    engine = sa.create_engine(f"sqlite:///{ws / 'meta.sqlite'}")
    with engine.begin() as conn:  # the table as versions before the queue made it
        conn.execute(
            sa.text(
                "CREATE TABLE gp_jobs (job_id VARCHAR(32) PRIMARY KEY, kind VARCHAR(16) NOT NULL, "
                "state VARCHAR(16) NOT NULL, progress FLOAT NOT NULL, message TEXT NOT NULL, "
                "owner VARCHAR(64) NOT NULL, params_json TEXT NOT NULL, result_json TEXT, "
                "created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL)"
            )
        )
        for job_id, state in (("d" * 16, "queued"), ("e" * 16, "running")):
            conn.execute(
                sa.text(
                    "INSERT INTO gp_jobs VALUES (:id, 'echo', :s, 0, '', 'li', '{\"n\": 7}', NULL, "
                    "'2025-01-01 00:00:00', '2025-01-01 00:00:00')"
                ),
                {"id": job_id, "s": state},
            )
    engine.dispose()
    meta = MetaStore(ws)
    cols = {c["name"] for c in sa.inspect(meta.engine).get_columns("gp_jobs")}
    assert {"worker", "lease_until", "cancel_requested"} <= cols
    runner = JobRunner(meta, **Fast).start({"echo": lambda owner, params, progress: params})
    try:
        assert runner.wait("d" * 16)["result"] == {"n": 7}  # queued by the old version: runs
        assert meta.get_job("e" * 16)["state"] == "failed"  # running without a lease: interrupted
    finally:
        runner.shutdown()
        meta.close()


# ---------------------------------------------------------------------------------------------
# cancelling
# ---------------------------------------------------------------------------------------------


def test_a_cancelled_queued_job_never_runs(stores: Callable[[], MetaStore], runners: list[JobRunner]) -> None:
    ran: list[int] = []
    meta = stores()
    queue = JobRunner(meta, **Fast)  # not started: its jobs stay queued
    first = queue.submit("note", "li", {"n": 1})
    second = queue.submit("note", "li", {"n": 2})
    assert queue.cancel(first) == "cancelled"
    assert meta.get_job(first)["message"] == "cancelled before it started"
    note = lambda owner, params, progress: ran.append(params["n"]) or {}  # noqa: E731
    runner = _start(runners, stores(), {"note": note})
    assert runner.wait(second)["state"] == "succeeded"
    assert ran == [2]
    assert meta.get_job(first)["state"] == "cancelled"
    assert queue.cancel(first) == "cancelled"  # again: nothing changes
    with pytest.raises(JobFinishedError, match="already succeeded"):
        queue.cancel(second)


def test_a_running_job_cancelled_from_the_other_process_stops_and_writes_nothing(
    stores: Callable[[], MetaStore], runners: list[JobRunner], tmp_path: Path
) -> None:
    out = tmp_path / "out.txt"
    started = threading.Event()

    def slow_writer(owner: str, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
        for i in range(600):  # 30 s unless cancelled
            progress(i / 600, f"step {i}")
            started.set()
            time.sleep(0.05)
        out.write_text("done")
        return {"file": out.name}

    meta_a, meta_b = stores(), stores()
    a = _start(runners, meta_a, {"slow": slow_writer})
    other = JobRunner(meta_b, **Fast)  # the server the cancel request reached
    job_id = a.submit("slow", "li", {})
    assert started.wait(30)
    t0 = time.monotonic()
    assert other.cancel(job_id) == "running"  # flag set; the worker in "process" a stops it
    job = _wait_state(meta_b, job_id, {"succeeded", "failed", "cancelled"})
    assert time.monotonic() - t0 < 5
    assert job["state"] == "cancelled", job
    assert job["message"] == "cancelled while running; nothing was stored"
    assert job["result"] is None
    assert not out.exists()


def test_merge_task_stops_at_the_report_after_a_cancel_and_stores_no_plan(
    small_city: Path, tmp_path: Path
) -> None:
    app = create_app(tmp_path / "ws", settings=Settings())
    svc = app.state.service
    svc.jobs.shutdown()
    svc.meta.add_upload(
        {
            "upload_id": "f" * 16,
            "kind": "layers",
            "filename": "layers.gpkg",
            "path": str(small_city / "layers.gpkg"),
            "features": 0,
            "layers_json": "{}",
            "owner": "li",
        }
    )
    s = Settings()
    params = {
        "upload_id": "f" * 16,
        "departments": None,
        "min_area_m2": s.min_area_m2,
        "households_min": s.households_min,
        "households_max": s.households_max,
        "h3_res": s.h3_res,
    }
    cancel = threading.Event()
    reports: list[str] = []

    def report(fraction: float, message: str) -> None:
        reports.append(message)
        if len(reports) == 3:  # cancelled while merge_layers is part way through
            cancel.set()

    with pytest.raises(JobCancelledError):
        merge_task(svc, "li", params, Progress(report, cancel, min_interval_s=0))
    assert len(reports) == 3
    assert svc.meta.list_plans() == []
    assert not list((tmp_path / "ws").glob("**/*.gpkg"))


# a stand-in for `gridplan <command>`: writes a temporary output beside --out, starts a grandchild,
# and sleeps; it records both process ids so the test can check they were killed
_SLOW_CLI = """
import os, subprocess, sys, time
args = sys.argv[1:]
out = args[args.index('--out') + 1]
folder, name = os.path.split(out)
open(os.path.join(folder, '.' + name + '.gptmp-%d-ab12.gpkg' % os.getpid()), 'w').write('half')
child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
open(os.path.join(folder, 'pids.json'), 'w').write('[%d, %d]' % (os.getpid(), child.pid))
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (killed, not yet reaped by its parent) is dead too
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(sys.platform != "linux", reason="checks processes through /proc")
def test_cancelling_a_running_analysis_kills_its_child_processes_and_keeps_no_file(
    tmp_path: Path, small_city: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analyses, "_RUN_CLI", _SLOW_CLI)
    app = create_app(tmp_path / "ws", settings=Settings())
    svc = app.state.service
    results = svc.data_dir / "results"
    with TestClient(app) as client:
        analyst = _auth(client, "analyst", "ana")
        svc.meta.add_upload(
            {
                "upload_id": "a1" * 8,
                "kind": "layers",
                "filename": "layers.gpkg",
                "path": str(small_city / "layers.gpkg"),
                "features": 0,
                "layers_json": "{}",
                "owner": "ana",
            }
        )
        r = client.post("/jobs/coverage", json={"layers_upload_id": "a1" * 8}, headers=analyst)
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        deadline = time.monotonic() + 60
        while not (results / "pids.json").exists() or not (results / "pids.json").read_text():
            assert time.monotonic() < deadline, client.get(f"/jobs/{job_id}", headers=analyst).json()
            time.sleep(0.05)
        time.sleep(0.1)
        pids = json.loads((results / "pids.json").read_text())
        assert all(_alive(p) for p in pids)
        assert [p.name for p in results.iterdir() if ".gptmp-" in p.name]  # it has begun writing
        r = client.post(f"/jobs/{job_id}/cancel", headers=analyst)
        assert r.status_code == 200, r.text
        assert r.json()["state"] in ("running", "cancelled")
        job = _wait_state(svc.meta, job_id, {"succeeded", "failed", "cancelled"}, timeout_s=15)
        assert job["state"] == "cancelled", job
        deadline = time.monotonic() + 5
        while any(_alive(p) for p in pids):  # the child and its own child: the whole group
            assert time.monotonic() < deadline, [p for p in pids if _alive(p)]
            time.sleep(0.05)
        assert sorted(p.name for p in results.iterdir()) == ["pids.json"]  # no result, no temp file
        assert client.get(f"/jobs/{job_id}/result", headers=analyst).status_code == 404


# ---------------------------------------------------------------------------------------------
# the cancel route
# ---------------------------------------------------------------------------------------------


def test_cancel_route_roles_owners_and_states(client: TestClient) -> None:
    svc = client.app.state.service
    started, release = threading.Event(), threading.Event()

    def slow(owner: str, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
        started.set()
        while not release.is_set():
            progress(0.5, "working")
            time.sleep(0.02)
        return {"done": True}

    svc.jobs.register("slow", slow)
    pia, bob = _auth(client, "planner", "pia"), _auth(client, "analyst", "bob")
    admin, leader = _auth(client, "admin"), _auth(client, "leader")

    # a queued job (of a kind no worker here runs) is cancelled at once
    queued = svc.jobs.submit("not-here", "pia", {})
    r = client.post(f"/jobs/{queued}/cancel", headers=pia)
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["message"]) == ("cancelled", "cancelled before it started")
    assert client.post(f"/jobs/{queued}/cancel", headers=pia).json()["state"] == "cancelled"

    running = svc.jobs.submit("slow", "pia", {})
    assert started.wait(30)
    # someone else's job is as unknown as a job that does not exist; a leader may not cancel at all
    for job_id, who, status in (
        (running, bob, 404),
        ("0" * 16, pia, 404),
        ("not-an-id", pia, 404),
        (running, leader, 403),
    ):
        r = client.post(f"/jobs/{job_id}/cancel", headers=who)
        assert r.status_code == status, (job_id, r.text)
        assert r.json()["error"] == {404: "NotFoundError", 403: "Forbidden"}[status]
    assert client.get(f"/jobs/{running}", headers=pia).json()["state"] == "running"
    # an admin may cancel anyone's; a running job answers running + cancel_requested, then ends
    r = client.post(f"/jobs/{running}/cancel", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["state"] in ("running", "cancelled")
    if r.json()["state"] == "running":
        assert r.json()["cancel_requested"] is True
    job = _wait_state(svc.meta, running, {"succeeded", "failed", "cancelled"})
    assert job["state"] == "cancelled"
    assert client.get(f"/jobs/{running}", headers=pia).json()["message"] == (
        "cancelled while running; nothing was stored"
    )
    # a finished job: 409
    release.set()
    done = svc.jobs.submit("slow", "pia", {})
    assert svc.jobs.wait(done)["state"] == "succeeded"
    r = client.post(f"/jobs/{done}/cancel", headers=pia)
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "JobFinishedError"
    assert "already succeeded" in r.json()["detail"]


def test_cancel_route_is_documented(client: TestClient) -> None:
    op = client.get("/openapi.json").json()["paths"]["/jobs/{job_id}/cancel"]["post"]
    assert {"401", "403", "404", "409", "422"} <= set(op["responses"])
    assert "already finished" in op["responses"]["409"]["description"]
