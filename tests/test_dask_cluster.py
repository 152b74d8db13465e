"""``--scheduler ADDRESS`` on a real dask.distributed cluster: the same bytes as the local run.

One ``LocalCluster`` of two worker processes (one thread each) serves the module; its scheduler
address is passed on the command line as a remote cluster's would be.  The workers import gridplan
from the same paths as the tests (they inherit the environment, ``PYTHONPATH`` included).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from gridplan.cli import app
from gridplan.errors import InputError
from gridplan.layers.csvparts import read_csv_part, read_text_csv, split_text_csv

distributed = pytest.importorskip("distributed")

runner = CliRunner()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A LocalCluster of 2 processes × 1 thread; yields it (``cluster.scheduler_address``)."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, scheduler_port=0
    ) as lc:
        yield lc


@pytest.fixture(scope="module")
def client(cluster: Any) -> Iterator[Any]:
    with distributed.Client(cluster.scheduler_address) as c:
        yield c


def _cases(small_city: Path, n: int) -> pd.DataFrame:
    return pd.read_csv(small_city / "cases.csv", dtype=str, keep_default_na=False).iloc[:n]


def _geocode(inp: Path, out: Path, base: list[str], *extra: str) -> str:
    res = runner.invoke(app, ["geocode", str(inp), *base, "--out", str(out), *extra])
    assert res.exit_code == 0, res.output
    return res.output


def _partitions(output: str) -> int:
    m = re.search(r"Dask partitions\s*│\s*([\d,]+)", output)
    assert m, output
    return int(m.group(1).replace(",", ""))


def test_geocode_on_the_cluster_is_byte_identical_and_chunked(
    cluster: Any, small_city: Path, small_plan: Path, tmp_path: Path
) -> None:
    inp = tmp_path / "cases.csv"
    _cases(small_city, 2500).to_csv(inp, index=False)
    base = ["--layers", str(small_city / "layers.gpkg"), "--plan", str(small_plan)]
    local = tmp_path / "local.csv"
    _geocode(inp, local, base, "--chunk-rows", "1000")
    for chunk, parts in (("1000", 3), ("200000", 1)):
        out = tmp_path / f"dask_{chunk}.csv"
        text = _geocode(inp, out, base, "--chunk-rows", chunk, "--scheduler", cluster.scheduler_address)
        assert _partitions(text) == parts
        assert out.read_bytes() == local.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cases.csv", "dask_1000.csv", "dask_200000.csv", "local.csv"
    ]  # no part file or pickled index left beside the output


def test_geocode_cluster_keeps_the_writer_rules_on_awkward_input(
    cluster: Any, small_city: Path, small_plan: Path, tmp_path: Path
) -> None:
    """GB18030 input, quoted commas and line breaks, formulas, no BOM: still the local bytes."""
    cases = _cases(small_city, 1500).copy()
    cases.loc[cases.index[::97], "address"] = "=HYPERLINK(\"http://x\",\"点我\")"
    cases.loc[cases.index[5::89], "address"] = cases["address"].iloc[5::89] + "，\n二楼,后门"
    inp = tmp_path / "cases_gbk.csv"
    inp.write_bytes(cases.to_csv(index=False, lineterminator="\r\n").encode("gb18030"))
    base = ["--layers", str(small_city / "layers.gpkg"), "--plan", str(small_plan), "--no-bom"]
    local, dask = tmp_path / "local.csv", tmp_path / "dask.csv"
    _geocode(inp, local, base)
    text = _geocode(inp, dask, base, "--chunk-rows", "1000", "--scheduler", cluster.scheduler_address)
    assert _partitions(text) == 2
    assert {"build_index", "geocode_part"} <= _prefixes_seen(cluster)  # dask drops the underscore
    assert dask.read_bytes() == local.read_bytes()
    assert not local.read_bytes().startswith(b"\xef\xbb\xbf")
    assert b"'=HYPERLINK" in local.read_bytes()


def test_geocode_cluster_errors_are_user_errors(cluster: Any, small_city: Path, tmp_path: Path) -> None:
    inp = tmp_path / "cases.csv"
    _cases(small_city, 10).to_csv(inp, index=False)
    bad = tmp_path / "no_library.gpkg"
    import geopandas as gpd
    from shapely import Point

    gpd.GeoDataFrame({"town_code": ["1"]}, geometry=[Point(0, 0)], crs=4547).to_file(bad, layer="towns")
    res = runner.invoke(app, ["geocode", str(inp), "--layers", str(bad), "--out", str(tmp_path / "o.csv"),
                              "--scheduler", cluster.scheduler_address])
    assert res.exit_code == 2, res.output
    assert "std_addresses" in res.output
    assert not (tmp_path / "o.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cases.csv", "no_library.gpkg"]


_STAMP = re.compile(r"'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z'")


def _prefixes_seen(cluster: Any) -> set[str]:
    """Names of the functions the cluster's scheduler has run tasks of."""
    with distributed.Client(cluster.scheduler_address) as c:
        return set(c.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes)))


def _gpkg_content(path: Path) -> list[str]:
    """Every table and row of a GeoPackage as SQL, its write times (gpkg_contents, styles) blanked."""
    import sqlite3

    con = sqlite3.connect(path)
    try:
        return [_STAMP.sub("'T'", line) for line in con.iterdump()]
    finally:
        con.close()


def test_hotspots_on_the_cluster_is_identical(
    cluster: Any, small_city: Path, small_plan: Path, tmp_path: Path
) -> None:
    import pyogrio
    from test_hotspots import _located

    ev = _located(small_city, "cases")
    ev = ev.assign(coord_sys="cgcs2000", reported_at=ev["reported_at"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
    src = tmp_path / "located.csv"
    ev.drop(columns=["x", "y"]).to_csv(src, index=False)
    args = ["hotspots", str(src), "--plan", str(small_plan), "--by", "grid", "--permutations", "999",
            "--time-step", "quarter", "--seed", "7"]
    one, two = tmp_path / "local.gpkg", tmp_path / "dask.gpkg"
    r1 = runner.invoke(app, [*args, "--out", str(one)])
    r2 = runner.invoke(app, [*args, "--out", str(two), "--scheduler", cluster.scheduler_address])
    assert r1.exit_code == 0, r1.output
    assert r2.exit_code == 0, r2.output
    for layer in ("hotspots", "emerging", "yoy"):
        a = pyogrio.read_dataframe(one, layer=layer)
        b = pyogrio.read_dataframe(two, layer=layer)
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert _gpkg_content(one) == _gpkg_content(two)  # the files differ only in their write times
    assert "999 in 4 batches of 250 on Dask" in r2.output
    assert "batch_counts" in _prefixes_seen(cluster)  # the batches ran on the workers


def test_gi_star_batches_on_workers_report_as_they_finish(client: Any) -> None:
    from test_gistar_permute import _h3_units

    from gridplan._dask import dask_runner
    from gridplan.hotspots import BatchOptions, gi_star, spatial_weights

    units = _h3_units(1, drop=0.2, seed=3)
    graph, _ = spatial_weights(units, by="h3")
    y = np.random.default_rng(1).gamma(2.0, size=len(units))
    seen: list[tuple[int, int]] = []
    here = gi_star(y, graph, permutations=999, seed=5)
    batches = BatchOptions(runner=dask_runner(client), on_progress=lambda d, t: seen.append((d, t)))
    there = gi_star(y, graph, permutations=999, seed=5, batches=batches)
    pd.testing.assert_frame_equal(here, there, check_exact=True)
    assert seen == [(k, 4) for k in range(5)]
    other = gi_star(y, graph, permutations=999, seed=6)
    assert not here["gi_p_sim"].equals(other["gi_p_sim"])


# --------------------------------------------------------------------------------------------
# splitting a CSV at record ends (no cluster needed)
# --------------------------------------------------------------------------------------------


def test_split_gives_ceil_rows_over_chunk_parts(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    pd.DataFrame({"address": [f"路{i}号" for i in range(2500)]}).to_csv(p, index=False)
    for chunk, parts in ((1000, 3), (2500, 1), (2499, 2), (200_000, 1), (1, 2500)):
        got = split_text_csv(p, chunk_rows=chunk)
        assert (got.rows, len(got.ranges)) == (2500, parts)
        assert sum(r.rows for r in got.ranges) == 2500
    empty = tmp_path / "empty.csv"
    empty.write_text("address\r\n\r\n")
    got = split_text_csv(empty, chunk_rows=10)
    assert (got.rows, len(got.ranges)) == (0, 1)
    assert read_csv_part(got, 0).columns.tolist() == ["address"]
    (tmp_path / "none.csv").write_text("\n \n")
    with pytest.raises(InputError, match="not a readable CSV"):
        split_text_csv(tmp_path / "none.csv", chunk_rows=10)
    (tmp_path / "latin.csv").write_bytes(b"a\n\xff\xfe\xff\n")
    with pytest.raises(InputError, match="neither UTF-8 nor GB18030"):
        split_text_csv(tmp_path / "latin.csv", chunk_rows=10)


_ALPHABET = ["a", "长", ",", '"', "\n", "\r", "\r\n", " ", "\t", "=", "1"]


def _random_csv(rng: random.Random) -> bytes:
    ncols = rng.randint(1, 3)
    lines = [",".join(f"c{i}" for i in range(ncols))]
    for _ in range(rng.randint(0, 10)):
        if rng.random() < 0.1:
            lines.append(rng.choice(["", " ", "\t "]))
            continue
        cells = []
        for _c in range(ncols):
            v = "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 5)))
            cells.append('"' + v.replace('"', '""') + '"' if rng.random() < 0.5 else v)
        lines.append(",".join(cells))
    term = rng.choice(["\n", "\r\n"])
    text = term.join(lines) + (term if rng.random() < 0.7 else "")
    return text.encode(rng.choice(["utf-8", "utf-8-sig", "gb18030"]))


def test_parts_read_as_the_whole_file_reads(tmp_path: Path) -> None:
    """Random CSVs with quotes, stray quotes, lone CRs and blank lines: parts == whole, or both refuse."""
    rng = random.Random(0)
    p = tmp_path / "r.csv"
    for _ in range(400):
        p.write_bytes(_random_csv(rng))
        try:
            whole: pd.DataFrame | None = read_text_csv(p)
        except InputError:
            whole = None
        try:
            parts = split_text_csv(p, chunk_rows=rng.randint(1, 4))
            got: pd.DataFrame | None = pd.concat([read_csv_part(parts, k) for k in range(len(parts.ranges))])
        except InputError:
            got = None
        if whole is None or got is None:
            assert whole is None, p.read_bytes()
            assert got is None, p.read_bytes()
            continue
        assert whole.equals(got), p.read_bytes()
        assert parts.rows == len(whole), p.read_bytes()
