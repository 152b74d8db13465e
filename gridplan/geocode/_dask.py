"""The geocoding batch on a Dask cluster (``--scheduler ADDRESS`` or ``local``).

:func:`geocode_csv_dask` is the CLI's path, file to file, so that the client never holds the table:

1. the client reads the input once as a stream (:func:`gridplan.layers.csvparts.split_text_csv`):
   its encoding and the byte ranges of ``ceil(rows / chunk_rows)`` parts, cut at record ends;
2. one worker builds the :class:`Geocoder` and pickles it to a file beside the output; every
   worker process loads that file once (cached for the run) instead of rebuilding the index;
3. each part is one task: the worker reads its byte range (header + rows, parsed as the
   single-machine reader parses the whole file), geocodes it with the same
   :meth:`Geocoder.geocode`, and writes its rows as :func:`gridplan.layers.write_table_csv` would
   (:func:`~gridplan.layers.write.write_csv_part`: BOM and header in part 0 only, formulas
   neutralised) to a part file beside the output, returning only its counts;
4. the client concatenates the part files in order, streaming, into the output through the
   atomic writer (:func:`gridplan._atomic.concat_files`).

A row's answer depends only on the row and the library, and every cell is written from its row
alone, so the output is byte for byte the single-machine output.  Workers must see the input, the
layers, the plan and the output's folder at the same paths as the client (a shared file system).

:func:`geocode_dask` is the in-memory variant for library users: a DataFrame in, one out.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import pickle
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from gridplan._atomic import check_output_path, clean_stale, concat_files, temp_name
from gridplan._dask import dask_client
from gridplan.errors import InputError
from gridplan.layers.csvparts import CsvParts, read_csv_part, split_text_csv

if TYPE_CHECKING:
    from gridplan.geocode.geocoder import Geocoder

logger = logging.getLogger(__name__)

__all__ = ["CsvGeocodeProgress", "CsvGeocodeRun", "dask_client", "geocode_csv_dask", "geocode_dask"]

_CACHE: dict[str, Any] = {}  # index file → Geocoder, one per worker process and run
_CACHE_LOCK = threading.Lock()


def _build_index(layers: str, plan: str | None, index_path: str) -> float:
    """On a worker: build the geocoder, pickle it to *index_path*, keep it; return its build time."""
    from gridplan.geocode.geocoder import Geocoder

    geocoder = Geocoder.from_files(layers, plan)
    with open(index_path, "wb") as fh:
        pickle.dump(geocoder, fh, protocol=pickle.HIGHEST_PROTOCOL)
    with _CACHE_LOCK:
        _CACHE.clear()
        _CACHE[index_path] = geocoder
    return geocoder.build_s


def _load_index(index_path: str) -> Geocoder:
    """Return the geocoder of *index_path*, loaded once per worker process (the previous run's dropped)."""
    with _CACHE_LOCK:
        if index_path not in _CACHE:
            _CACHE.clear()
            with open(index_path, "rb") as fh:
                _CACHE[index_path] = pickle.load(fh)  # our own file, written by this run
        geocoder: Geocoder = _CACHE[index_path]
    return geocoder


def _forget_index(index_path: str) -> None:
    with _CACHE_LOCK:
        _CACHE.pop(index_path, None)


def _geocode_part(
    index_path: str, parts: CsvParts, k: int, part_path: str, bom: bool, kwargs: dict[str, Any]
) -> dict[str, int]:
    """On a worker: read part *k*, geocode it, write it to *part_path*; return its counts."""
    from gridplan.geocode.geocoder import summary_counts
    from gridplan.layers.write import write_csv_part

    table = read_csv_part(parts, k)
    result = _load_index(index_path).geocode(table, **kwargs)
    write_csv_part(result, part_path, header=k == 0, bom=bom)
    return summary_counts(result)


class CsvGeocodeProgress(Protocol):
    """What :func:`geocode_csv_dask` reports as it goes (the CLI's progress bars)."""

    def split(self, rows: int, partitions: int) -> None:
        """Report that the input holds *rows* rows, split into *partitions* parts."""

    def built(self, build_s: float) -> None:
        """Report that a worker built the geocoder in *build_s* seconds."""

    def rows_done(self, rows: int) -> None:
        """Report that *rows* rows are geocoded and written so far."""


@dataclass(frozen=True)
class CsvGeocodeRun:
    """What :func:`geocode_csv_dask` did.

    Attributes
    ----------
    rows
        Rows geocoded.
    partitions
        Parts (tasks) the input was split into: ``ceil(rows / chunk_rows)``, at least 1.
    build_s
        Seconds the worker spent building the geocoder (``Geocoder.build_s``).
    geocode_s
        Seconds from the first part submitted to the last one written.
    counts
        :func:`~gridplan.geocode.geocoder.summary_counts` of the whole output.

    """

    rows: int
    partitions: int
    build_s: float
    geocode_s: float
    counts: dict[str, int] = field(default_factory=dict)


def geocode_csv_dask(
    input_csv: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    layers: str | os.PathLike[str],
    plan: str | os.PathLike[str] | None = None,
    client: Any,
    chunk_rows: int = 200_000,
    bom: bool = True,
    progress: CsvGeocodeProgress | None = None,
    **kwargs: Any,
) -> CsvGeocodeRun:
    """Geocode the CSV *input_csv* into *out* on the cluster behind *client* (see the module docstring).

    Parameters
    ----------
    input_csv
        Records (as ``gridplan geocode`` reads them: text columns, UTF-8 with or without BOM,
        else GB18030).
    out
        The output CSV; written atomically, byte for byte what ``write_table_csv(geocoder.geocode
        (table), out, bom=bom)`` writes.
    layers, plan
        The files the geocoder is built from (:meth:`Geocoder.from_files`), on a worker.
    client
        A ``distributed.Client`` (:func:`dask_client`).
    chunk_rows
        Rows per part (task).
    bom
        Start the output with a UTF-8 BOM.
    progress
        Told when the input is split, the geocoder built, and each part written
        (:class:`CsvGeocodeProgress`).
    **kwargs
        Passed to :meth:`Geocoder.geocode` (``min_score``, ``address_col`` …).

    Raises
    ------
    InputError
        Unreadable input, no address and no lon/lat columns, bad layers or plan.

    """
    t0 = time.perf_counter()
    address_col = kwargs.get("address_col", "address")
    parts = split_text_csv(input_csv, chunk_rows=chunk_rows)
    if address_col not in parts.columns and not {"lon", "lat"} <= set(parts.columns):
        raise InputError(
            f"needs an '{address_col}' column or 'lon' and 'lat' columns", file=parts.path, field=address_col
        )
    n = len(parts.ranges)
    if progress is not None:
        progress.split(parts.rows, n)
    target = check_output_path(out)
    clean_stale(target)
    stem = temp_name(target)  # .OUT.gptmp-<pid>-<hex>.csv: stale ones are removed by the next write
    index_path = stem.with_name(stem.name + ".geocoder.pkl")
    part_paths = [stem.with_name(f"{stem.name}.part{k:05d}") for k in range(n)]
    try:
        build = client.submit(
            _build_index, str(layers), None if plan is None else str(plan), str(index_path), pure=False
        )
        build_s = float(build.result())
        if progress is not None:
            progress.built(build_s)
        t1 = time.perf_counter()
        futures = [
            client.submit(
                _geocode_part, str(index_path), parts, k, str(part_paths[k]), bom, kwargs, pure=False
            )
            for k in range(n)
        ]
        done = 0
        from distributed import as_completed

        for fut in as_completed(futures):
            done += int(fut.result()["rows"])
            if progress is not None:
                progress.rows_done(done)
        counts: dict[str, int] = {}
        for fut in futures:
            for key, v in fut.result().items():
                counts[key] = counts.get(key, 0) + int(v)
        concat_files(part_paths, target)
        geocode_s = time.perf_counter() - t1
    finally:
        with contextlib.suppress(Exception):
            client.run(_forget_index, str(index_path))
        for p in (*part_paths, index_path):
            with contextlib.suppress(FileNotFoundError):
                Path(p).unlink()
    logger.info(
        "geocoded %d rows on %d Dask partitions of at most %d rows in %.2f s",
        counts.get("rows", 0),
        n,
        chunk_rows,
        time.perf_counter() - t0,
    )
    return CsvGeocodeRun(counts.get("rows", 0), n, build_s, geocode_s, counts)


def _geocode_frame(part: pd.DataFrame, geocoder: Geocoder, kwargs: dict[str, Any]) -> pd.DataFrame:
    from gridplan.geocode.geocoder import OUTPUT_COLUMNS

    return geocoder.geocode(part, **kwargs)[list(OUTPUT_COLUMNS)]


def geocode_dask(
    table: pd.DataFrame, geocoder: Geocoder, *, client: Any, npartitions: int | None = None, **kwargs: Any
) -> pd.DataFrame:
    """Geocode *table* on the cluster behind *client*; same output as ``geocoder.geocode(table)``.

    The table lives in this process: the columns the geocoder reads are scattered to the workers
    in *npartitions* parts and the answer columns gathered back (for files, use
    :func:`geocode_csv_dask`, which keeps neither here).

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
        out = ddf.map_partitions(_geocode_frame, fut, kwargs, meta=meta[out_cols], align_dataframes=False)
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
