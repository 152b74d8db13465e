"""Background jobs: one worker thread, state and progress in the metadata store.

A job is ``queued`` → ``running`` → ``succeeded`` | ``failed``.  Its function writes its outputs
atomically (plans through :class:`~gridplan.store.plans.PlanRepository`, files to a temp name then
``os.replace``), so a failed job leaves nothing half-done; the job row keeps the failure message.
Jobs left ``queued``/``running`` by a process that died are marked failed at start-up.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from gridplan.errors import GridplanError
from gridplan.store.meta import MetaStore

logger = logging.getLogger(__name__)

__all__ = ["JobFn", "JobRunner", "Progress"]

Progress = Callable[[float, str], None]
JobFn = Callable[[dict[str, Any], Progress], dict[str, Any]]


class JobRunner:
    """Runs job functions on a small thread pool and records their life cycle."""

    def __init__(self, meta: MetaStore, *, workers: int = 1) -> None:
        self.meta = meta
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gridplan-job")
        self.futures: dict[str, Future[None]] = {}
        n = meta.fail_unfinished_jobs("interrupted: the server stopped before the job finished")
        if n:
            logger.warning("marked %d unfinished job(s) of a previous run as failed", n)

    def submit(self, kind: str, owner: str, params: dict[str, Any], fn: JobFn) -> str:
        """Queue *fn(params, progress)*; return the job id."""
        job_id = secrets.token_hex(8)
        self.meta.add_job(job_id, kind, owner, params)
        self.futures[job_id] = self.pool.submit(self._run, job_id, kind, params, fn)
        return job_id

    def _run(self, job_id: str, kind: str, params: dict[str, Any], fn: JobFn) -> None:
        last = [0.0]
        lock = threading.Lock()

        def progress(fraction: float, message: str) -> None:
            now = time.monotonic()
            with lock:
                if now - last[0] < 0.2 and fraction < 1.0:
                    return
                last[0] = now
            self.meta.update_job(job_id, progress=max(0.0, min(1.0, float(fraction))), message=message[:500])

        t0 = time.perf_counter()
        self.meta.update_job(job_id, state="running", message="running")
        try:
            result = fn(params, progress)
        except GridplanError as exc:
            logger.info("job %s (%s) failed: %s", job_id, kind, exc)
            self.meta.update_job(job_id, state="failed", message=str(exc)[:2000])
        except Exception as exc:
            logger.exception("job %s (%s) crashed", job_id, kind)
            self.meta.update_job(job_id, state="failed", message=f"internal error ({exc.__class__.__name__})")
        else:
            self.meta.update_job(
                job_id,
                state="succeeded",
                progress=1.0,
                result=result,
                message=f"done in {time.perf_counter() - t0:.1f} s",
            )
            logger.info("job %s (%s) succeeded in %.1f s", job_id, kind, time.perf_counter() - t0)
        finally:
            self.futures.pop(job_id, None)

    def wait(self, job_id: str, timeout_s: float = 60.0) -> None:
        """Block until *job_id* has finished (for tests and the CLI)."""
        fut = self.futures.get(job_id)
        if fut is not None:
            fut.result(timeout=timeout_s)

    def shutdown(self) -> None:
        """Stop accepting jobs and wait for the running one."""
        self.pool.shutdown(wait=True, cancel_futures=True)
