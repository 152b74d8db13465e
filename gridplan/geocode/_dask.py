"""The geocoding batch on a Dask cluster (``--scheduler ADDRESS`` or ``local``).

The columns the geocoder reads are split into partitions scattered to the workers and wrapped as
a ``dask.dataframe``; only the answer columns come back and join the input columns locally;
the :class:`Geocoder` is scattered to every worker once (``broadcast=True``) and each partition
runs the same :meth:`Geocoder.geocode` as the single-machine path (``map_partitions``), so the
output is identical row for row: a row's answer depends only on the row and the library.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gridplan.errors import InputError

if TYPE_CHECKING:
    from gridplan.geocode.geocoder import Geocoder

logger = logging.getLogger(__name__)


@contextmanager
def dask_client(scheduler: str, *, n_workers: int = 2) -> Iterator[Any]:
    """Open a ``distributed.Client`` for *scheduler*.

    ``"local"`` starts a ``LocalCluster`` of *n_workers* processes (closed on exit); anything else
    is a scheduler address.

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


def _geocode_part(part: pd.DataFrame, geocoder: Geocoder, kwargs: dict[str, Any]) -> pd.DataFrame:
    from gridplan.geocode.geocoder import OUTPUT_COLUMNS

    return geocoder.geocode(part, **kwargs)[list(OUTPUT_COLUMNS)]


def geocode_dask(
    table: pd.DataFrame, geocoder: Geocoder, *, client: Any, npartitions: int | None = None, **kwargs: Any
) -> pd.DataFrame:
    """Geocode *table* on the cluster behind *client*; same output as ``geocoder.geocode(table)``.

    Parameters
    ----------
    table
        Input rows (see :meth:`Geocoder.geocode`).
    geocoder
        The built geocoder, scattered to all workers once.
    client
        A ``distributed.Client`` (see :func:`dask_client`).
    npartitions
        Partitions (default: 2 per worker thread, at least 1).
    **kwargs
        Passed to :meth:`Geocoder.geocode` (``min_score`` …).

    """
    import dask
    import dask.dataframe as dd

    t0 = time.perf_counter()
    if npartitions is None:
        threads = sum(client.nthreads().values()) or 1
        npartitions = max(1, min(2 * threads, len(table) // 1000 or 1))
    from gridplan.geocode.geocoder import OUTPUT_COLUMNS, REPLACED_COLUMNS

    meta = geocoder.geocode(table.iloc[:0], **kwargs)
    out_cols = list(OUTPUT_COLUMNS)
    # only the columns the geocoder reads travel to the workers, only its answers come back
    address_col = kwargs.get("address_col", "address")
    needed = [c for c in (address_col, *REPLACED_COLUMNS) if c in table.columns]
    fut = client.scatter(geocoder, broadcast=True)
    bounds = np.linspace(0, len(table), npartitions + 1).astype(int)
    parts = client.scatter([table.iloc[a:b][needed] for a, b in itertools.pairwise(bounds)])
    with dask.config.set({"dataframe.convert-string": False}):
        ddf = dd.from_delayed(parts, meta=table.iloc[:0][needed], verify_meta=False)
        out = ddf.map_partitions(_geocode_part, fut, kwargs, meta=meta[out_cols], align_dataframes=False)
        answers = client.compute(out).result()
    result = table.rename(columns={c: f"in_{c}" for c in REPLACED_COLUMNS if c in table.columns})
    result = result.drop(columns=[c for c in out_cols if c in result.columns])
    for c in out_cols:
        result[c] = pd.Series(answers[c].to_numpy(), index=result.index, dtype=meta[c].dtype)
    result = result[list(meta.columns)]
    logger.info(
        "geocoded %d rows on %d Dask partitions in %.2f s", len(table), npartitions, time.perf_counter() - t0
    )
    return result


__all__ = ["dask_client", "geocode_dask"]
