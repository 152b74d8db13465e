"""Background jobs: a durable queue in the metadata store, worker threads in every server process.

A job is ``queued`` → ``running`` → ``succeeded`` | ``failed`` | ``cancelled``.

* :meth:`JobRunner.submit` only inserts a ``queued`` row.  Its kind and JSON parameters are all a
  worker needs: the task is looked up by kind in the runner's registry (filled from
  :data:`gridplan.api.tasks.TASKS`), so any server process on the same store may run it, and a
  queued job outlives a restart.
* The worker threads of every runner on the store *claim* the oldest queued job
  (:meth:`~gridplan.store.meta.MetaStore.claim_job`, atomic across processes) and hold a lease on
  it while it runs (renewed every *heartbeat_s*, valid *lease_s*).  At start-up and every *reap_s*
  a runner ends the running jobs whose lease ran out — the process running them died — as failed
  ("interrupted").  A job whose lease is live is never touched by another process, so two servers
  share one queue without failing each other's jobs.
* :meth:`JobRunner.cancel` ends a queued job at once; a running job gets a cancel flag in the
  store, which its heartbeat thread polls every *poll_s* (at once when it runs in this process).
  The task sees it through its :class:`Progress`: the next progress report raises
  :class:`JobCancelledError` (in-process tasks), and a task that waits calls
  :meth:`Progress.check` as it waits (an analysis then kills its child process).  The job ends
  ``cancelled``.

Tasks write their outputs atomically (plans through :class:`~gridplan.store.plans.PlanRepository`,
files to a temp name then ``os.replace``), so a failed or cancelled job leaves nothing half-done;
the job row keeps the message.  A cancel that arrives while a task stores its output comes too
late: the job then succeeds.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from gridplan.errors import GridplanError
from gridplan.store.meta import FINAL_STATES, MetaStore

logger = logging.getLogger(__name__)

__all__ = ["INTERRUPTED", "JobCancelledError", "JobFinishedError", "JobFn", "JobRunner", "Progress"]

#: Message of a running job whose server died (its lease ran out).
INTERRUPTED = "interrupted: the server running it stopped"
#: Message of a job cancelled while it ran.
CANCELLED = "cancelled while running; nothing was stored"


class JobCancelledError(GridplanError):
    """Raised inside a task whose job was cancelled: it stops before storing anything."""


class JobFinishedError(GridplanError):
    """A cancel of a job that has already succeeded or failed: HTTP 409."""

    http_status = 409


class Progress:
    """What a task reports its progress to, and how it learns that its job was cancelled.

    ``progress(fraction, message)`` records 0–1 and a one-line message (at most every
    *min_interval_s*, the last report always) and raises :class:`JobCancelledError` once the job is
    cancelled.  Calling a task outside a runner: ``task(service, owner, params, Progress())``.

    Parameters
    ----------
    report
        Where reports go (default: nowhere).
    cancel
        Set when the job is cancelled (default: an event nobody sets).
    min_interval_s
        Reports closer together than this are dropped (except ``fraction >= 1``).

    """

    def __init__(
        self,
        report: Callable[[float, str], None] | None = None,
        cancel: threading.Event | None = None,
        *,
        min_interval_s: float = 0.2,
    ) -> None:
        self._report = report
        self._cancel = cancel if cancel is not None else threading.Event()
        self._min_interval_s = min_interval_s
        self._last = float("-inf")
        self._lock = threading.Lock()

    def __call__(self, fraction: float, message: str) -> None:
        """Report *fraction* (0–1) done with *message*; raise :class:`JobCancelledError` if cancelled."""
        self.check()
        now = time.monotonic()
        with self._lock:
            if now - self._last < self._min_interval_s and fraction < 1.0:
                return
            self._last = now
        if self._report is not None:
            self._report(max(0.0, min(1.0, float(fraction))), message[:500])

    @property
    def cancelled(self) -> bool:
        """Whether the job was cancelled (the task should stop and store nothing)."""
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise :class:`JobCancelledError` if the job was cancelled."""
        if self._cancel.is_set():
            raise JobCancelledError(CANCELLED)

    def wait(self, timeout_s: float) -> bool:
        """Sleep up to *timeout_s*, waking early on a cancel; return whether the job was cancelled."""
        return self._cancel.wait(timeout_s)


#: What a runner calls for a claimed job: ``fn(owner, params, progress) -> result`` (JSON).
JobFn = Callable[[str, dict[str, Any], Progress], dict[str, Any]]


class JobRunner:
    """Claims queued jobs from the metadata store and runs them on worker threads.

    Parameters
    ----------
    meta
        The store holding the queue (shared by every server process on it).
    workers
        Worker threads, i.e. jobs this process runs at the same time.
    lease_s
        How long a claim holds without renewal; a running job whose lease ran out is failed.
    heartbeat_s
        How often a running job renews its lease (well under *lease_s*).
    poll_s
        How often idle workers look for queued jobs, and running jobs for a cancel flag.
    reap_s
        How often expired leases are looked for (default: *heartbeat_s*).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     meta = MetaStore(tmp)
    ...     runner = JobRunner(meta, poll_s=0.05)
    ...     _ = runner.start({"double": lambda owner, params, progress: {"n": 2 * params["n"]}})
    ...     job = runner.wait(runner.submit("double", "li", {"n": 21}))
    ...     runner.shutdown()
    ...     meta.close()
    >>> job["state"], job["result"]
    ('succeeded', {'n': 42})

    """

    def __init__(
        self,
        meta: MetaStore,
        *,
        workers: int = 1,
        lease_s: float = 60.0,
        heartbeat_s: float = 10.0,
        poll_s: float = 1.0,
        reap_s: float | None = None,
    ) -> None:
        if not 0 < heartbeat_s < lease_s:
            raise ValueError(f"heartbeat_s ({heartbeat_s}) must be positive and below lease_s ({lease_s})")
        self.meta = meta
        self.workers = workers
        self.lease_s, self.heartbeat_s, self.poll_s = lease_s, heartbeat_s, poll_s
        self.reap_s = heartbeat_s if reap_s is None else reap_s
        #: This runner's name in the ``worker`` column (thread number appended).
        self.name = f"{socket.gethostname()[:32]}:{os.getpid()}:{secrets.token_hex(3)}"
        self.tasks: dict[str, JobFn] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._running: dict[str, threading.Event] = {}  # job id → cancel event, jobs run here
        self._threads: list[threading.Thread] = []
        self._next_reap = 0.0

    # -- life cycle ---------------------------------------------------------------------------
    def start(self, tasks: Mapping[str, JobFn] | None = None) -> JobRunner:
        """Register *tasks* (kind → function), end expired jobs, and start the worker threads."""
        self.tasks.update(tasks or {})
        self.reap()
        if not self._threads:
            for n in range(self.workers):
                t = threading.Thread(
                    target=self._work, args=(f"{self.name}/{n}",), name=f"gridplan-job-{n}", daemon=True
                )
                t.start()
                self._threads.append(t)
        return self

    def register(self, kind: str, fn: JobFn) -> None:
        """Run jobs of *kind* with *fn* from now on (workers claim only kinds they know)."""
        self.tasks[kind] = fn
        self._wake.set()

    def shutdown(self, timeout_s: float | None = None) -> None:
        """Stop claiming jobs and wait for the running ones; queued jobs stay queued."""
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout_s)
        self._threads = [t for t in self._threads if t.is_alive()]

    # -- the queue ----------------------------------------------------------------------------
    def submit(self, kind: str, owner: str, params: dict[str, Any]) -> str:
        """Queue a job of *kind* for *owner*; return its id (any runner on the store may run it)."""
        job_id = secrets.token_hex(8)
        self.meta.add_job(job_id, kind, owner, params)
        self._wake.set()
        return job_id

    def cancel(self, job_id: str) -> str:
        """Cancel *job_id*; return its state afterwards (``running`` while its worker stops it).

        Cancelling a cancelled job changes nothing; a succeeded or failed one raises
        :class:`JobFinishedError`.
        """
        state = self.meta.cancel_job(job_id, "cancelled before it started")
        if state in ("succeeded", "failed"):
            raise JobFinishedError(f"job {job_id} has already {state}; there is nothing to cancel")
        if state == "running":
            with self._lock:
                event = self._running.get(job_id)
            if event is not None:  # it runs here: no need to wait for the next poll
                event.set()
        return state

    def reap(self) -> int:
        """End the running jobs of dead processes (lease run out) as failed; return how many."""
        self._next_reap = time.monotonic() + self.reap_s
        n = self.meta.fail_expired_jobs(INTERRUPTED)
        if n:
            logger.warning("ended %d job(s) whose server stopped while running them", n)
        return n

    def wait(self, job_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
        """Block until *job_id* has finished (whichever process runs it); return its row."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.meta.get_job(job_id)
            if job["state"] in FINAL_STATES:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['state']} after {timeout_s:g} s")
            time.sleep(0.05)

    # -- workers ------------------------------------------------------------------------------
    def _work(self, worker: str) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                if time.monotonic() >= self._next_reap:
                    self.reap()
                job = self.meta.claim_job(worker, lease_s=self.lease_s, kinds=list(self.tasks))
                if job is not None:
                    self._run(job, worker)
                failures = 0
            except Exception:
                failures += 1
                if failures == 1:
                    logger.exception("job worker %s: the store failed; retrying", worker)
                self._stop.wait(min(30.0, self.poll_s * 2**failures))
                continue
            if job is None:
                self._wake.wait(self.poll_s)
                self._wake.clear()

    def _run(self, job: dict[str, Any], worker: str) -> None:
        job_id, kind = job["job_id"], job["kind"]
        cancel, done = threading.Event(), threading.Event()
        with self._lock:
            self._running[job_id] = cancel
        beat = threading.Thread(
            target=self._heartbeat, args=(job_id, worker, cancel, done), name=f"gridplan-lease-{job_id}"
        )
        beat.daemon = True
        beat.start()

        def report(fraction: float, message: str) -> None:
            if not self.meta.update_job(job_id, worker=worker, progress=fraction, message=message):
                cancel.set()  # no longer ours: another process ended it

        t0 = time.perf_counter()
        try:
            result = self.tasks[kind](job["owner"], job["params"], Progress(report, cancel))
        except JobCancelledError:
            logger.info("job %s (%s) cancelled", job_id, kind)
            final: dict[str, Any] = {"state": "cancelled", "message": str(CANCELLED)}
        except GridplanError as exc:
            logger.info("job %s (%s) failed: %s", job_id, kind, exc)
            final = {"state": "failed", "message": str(exc)[:2000]}
        except Exception as exc:
            logger.exception("job %s (%s) crashed", job_id, kind)
            final = {"state": "failed", "message": f"internal error ({exc.__class__.__name__})"}
        else:
            took = time.perf_counter() - t0
            final = {
                "state": "succeeded",
                "progress": 1.0,
                "result": result,
                "message": f"done in {took:.1f} s",
            }
            logger.info("job %s (%s) succeeded in %.1f s", job_id, kind, took)
        finally:
            done.set()
            beat.join()
            with self._lock:
                self._running.pop(job_id, None)
        if not self.meta.update_job(job_id, worker=worker, lease_until=None, **final):
            logger.warning("job %s: ended elsewhere before it finished here (not %s)", job_id, final["state"])

    def _heartbeat(self, job_id: str, worker: str, cancel: threading.Event, done: threading.Event) -> None:
        """While *job_id* runs: renew its lease every heartbeat_s, look for a cancel every poll_s."""
        renew_at = time.monotonic() + self.heartbeat_s
        while not done.wait(min(self.poll_s, self.heartbeat_s)):
            try:
                if time.monotonic() >= renew_at:
                    renew_at = time.monotonic() + self.heartbeat_s
                    if not self.meta.renew_lease(job_id, worker, lease_s=self.lease_s):
                        cancel.set()  # its lease was taken: stop, another process ended it
                if not cancel.is_set() and self.meta.cancel_requested(job_id):
                    cancel.set()
            except Exception:
                logger.warning("job %s: cannot reach the store to renew its lease", job_id, exc_info=True)
