"""Running the long steps of an analysis in batches: here, or on a Dask cluster.

A long step that can be split (geocoding partitions, Gi* permutation batches) is written as one
function ``fn(shared, item)`` applied to a list of items; a :data:`BatchRunner` applies it and
reports each finished item.  :func:`run_local` runs the items one after the other in this process;
:func:`dask_runner` submits them to a ``distributed.Client`` (*shared* is scattered to every worker
once) and reports them as they complete, in any order.  The results come back in item order, so a
step that combines them in order gives the same answer on both.

:func:`dask_client` opens the client: ``"local"`` starts a ``LocalCluster`` of worker processes,
anything else is the address of a running scheduler.  Workers import gridplan themselves: on a
real cluster they need the same gridplan version, and for steps that read or write files (the
geocoding partitions) the same paths as the client (a shared file system).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from gridplan.errors import InputError

logger = logging.getLogger(__name__)

R = TypeVar("R")

__all__ = ["BatchRunner", "dask_client", "dask_runner", "run_local"]


class BatchRunner(Protocol):
    """Apply ``fn(shared, item)`` to every item; return the results in item order.

    ``on_done(k)`` is called each time a further item has finished (``k`` items so far).
    """

    def __call__(
        self,
        fn: Callable[[Any, Any], R],
        shared: Any,
        items: Sequence[Any],
        *,
        on_done: Callable[[int], None] | None = None,
    ) -> list[R]:
        """Run the batches (see the class docstring)."""
        ...


def run_local(
    fn: Callable[[Any, Any], R],
    shared: Any,
    items: Sequence[Any],
    *,
    on_done: Callable[[int], None] | None = None,
) -> list[R]:
    """Run the items one after the other in this process (the :data:`BatchRunner` without a cluster).

    Examples
    --------
    >>> run_local(lambda base, k: base + k, 10, [1, 2, 3])
    [11, 12, 13]

    """
    out: list[R] = []
    for k, item in enumerate(items, 1):
        out.append(fn(shared, item))
        if on_done is not None:
            on_done(k)
    return out


def dask_runner(client: Any) -> BatchRunner:
    """Return a :data:`BatchRunner` on the cluster behind *client* (a ``distributed.Client``).

    *shared* is scattered to every worker once (``broadcast=True``); each item is one task; the
    results are gathered in item order.
    """
    from distributed import as_completed

    def run(
        fn: Callable[[Any, Any], R],
        shared: Any,
        items: Sequence[Any],
        *,
        on_done: Callable[[int], None] | None = None,
    ) -> list[R]:
        if not items:
            return []
        [shared_f] = client.scatter([shared], broadcast=True)
        futures = [client.submit(fn, shared_f, item, pure=False) for item in items]
        for k, _ in enumerate(as_completed(futures), 1):
            if on_done is not None:
                on_done(k)
        results: list[R] = client.gather(futures)
        del shared_f
        return results

    return run


@contextmanager
def dask_client(scheduler: str, *, n_workers: int = 2) -> Iterator[Any]:
    """Open a ``distributed.Client`` for *scheduler*.

    ``"local"`` starts a ``LocalCluster`` of *n_workers* processes of one thread each (closed on
    exit); anything else is a scheduler address (``tcp://host:8786``).

    Raises
    ------
    InputError
        Dask/distributed not installed, or the scheduler cannot be reached.

    """
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - dask is an optional extra
        raise InputError("--scheduler needs dask[distributed]; pip install 'gridplan[dask]'") from exc
    if scheduler == "local":
        cluster = LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()
    else:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise InputError(
                f"cannot reach the Dask scheduler at {scheduler}: {exc}", field="scheduler"
            ) from None
        try:
            yield client
        finally:
            client.close()
