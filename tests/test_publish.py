"""Publishing: slugs, atomic writes under a lock, index/manifest, kill mid-publish, CLI end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import geopandas as gpd
import pytest
from shapely import box
from typer.testing import CliRunner

from gridplan import maps
from gridplan.errors import InputError
from gridplan.maps import publish as pub

ROOT = Path(__file__).resolve().parents[1]


def tiny_map(title: str = "测试") -> object:
    g = gpd.GeoDataFrame(
        {"grid_code": ["441900119001001"], "households": [400]},
        geometry=[box(500000, 2550000, 500500, 2550500)],
        crs=4547,
    )
    return maps.base_grid_map(g, title=title)


@pytest.fixture(scope="module")
def html_a() -> str:
    return maps.render_html(tiny_map("版本A"))


@pytest.fixture(scope="module")
def html_b() -> str:
    return maps.render_html(tiny_map("版本B"))


def test_slugify_is_safe_and_distinct() -> None:
    assert maps.slugify("Base grids") == "base-grids"
    assert maps.slugify("../../x/../index") == "x-index"
    assert maps.slugify("index") == "index-map"
    a, b = maps.slugify("基础网格"), maps.slugify("热点分析")
    assert a != b
    assert a.startswith("map-")
    assert b.startswith("map-")
    for s in (a, b, maps.slugify("<script>"), maps.slugify("")):
        assert pub._SLUG_RE.match(s)


@pytest.mark.parametrize("bad", ["../evil", "UPPER", "a/b", "index", "-x", "x-", "a--b", "", "x" * 80, "名"])
def test_bad_slugs_are_rejected(tmp_path: Path, html_a: str, bad: str) -> None:
    with pytest.raises(InputError, match="slug"):
        maps.publish_map(None, tmp_path, title="t", slug=bad, html=html_a)


def test_publish_twice_replaces_and_lists_once(tmp_path: Path, html_a: str, html_b: str) -> None:
    p1 = maps.publish_map(
        None,
        tmp_path,
        title="基础网格",
        slug="base",
        plan_id="P1",
        data_date="2025-12-31",
        summary="<b>62</b> 个网格",
        html=html_a,
    )
    p2 = maps.publish_map(
        None,
        tmp_path,
        title="基础网格",
        slug="base",
        plan_id="P2",
        data_date="2026-01-31",
        summary="second",
        html=html_b,
    )
    assert p1 == p2 == tmp_path / "base.html"
    assert all(
        (tmp_path / f).stat().st_mode & 0o777 == 0o644 for f in ("base.html", "index.html", "manifest.json")
    )
    assert "版本B" in p2.read_text(encoding="utf-8")
    man = maps.read_manifest(tmp_path)
    assert [e["slug"] for e in man["maps"]] == ["base"]
    assert man["maps"][0]["plan_id"] == "P2"
    maps.publish_map(None, tmp_path, title="<script>alert(1)</script>", html=html_a, summary="<b>")
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;&#x2F;script&gt;" in index
    assert "<script>" not in index
    assert index.count("<tr>") == 3  # header + 2 maps
    assert not list(tmp_path.glob(".*.gptmp-*"))


def test_failure_mid_publish_keeps_previous_version(
    tmp_path: Path, html_a: str, html_b: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    maps.publish_map(None, tmp_path, title="基础网格", slug="base", plan_id="P1", html=html_a)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if not p.name.startswith(".")}
    real_replace = os.replace
    calls = []

    def failing_replace(src: str, dst: str) -> None:
        calls.append(dst)
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(pub.os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated"):
        maps.publish_map(None, tmp_path, title="基础网格", slug="base", plan_id="P2", html=html_b)
    monkeypatch.setattr(pub.os, "replace", real_replace)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if not p.name.startswith(".")}
    assert after == before
    assert calls
    assert not list(tmp_path.glob(".*.gptmp-*"))  # the failed publisher cleaned its temp files


_KILL_SCRIPT = r"""
import sys, time
from pathlib import Path
from gridplan.maps import publish as pub
out, html_path = Path(sys.argv[1]), Path(sys.argv[2])
real = pub.staged_bytes
def slow(data, target):
    if target.suffix == ".html" and target.name != "index.html":
        tmp = real(data[: len(data) // 2], target)         # half a map on disk ...
        print("HALF", flush=True)
        time.sleep(60)                                     # ... and killed here
    return real(data, target)
pub.staged_bytes = slow
html = html_path.read_text(encoding="utf-8")
pub.publish_map(None, out, title="基础网格", slug="base", plan_id="P2", html=html)
"""


def test_killed_publisher_leaves_previous_version(tmp_path: Path, html_a: str, html_b: str) -> None:
    out = tmp_path / "maps"
    maps.publish_map(None, out, title="基础网格", slug="base", plan_id="P1", html=html_a)
    good = (out / "base.html").read_bytes()
    index = (out / "index.html").read_bytes()
    src = tmp_path / "b.html"
    src.write_text(html_b, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILL_SCRIPT, str(out), str(src)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "HALF"
        # while the publisher holds the lock a reader still sees the complete old files
        assert (out / "base.html").read_bytes() == good
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert (out / "base.html").read_bytes() == good
    assert (out / "index.html").read_bytes() == index
    assert maps.read_manifest(out)["maps"][0]["plan_id"] == "P1"
    assert list(out.glob(".*.gptmp-*"))  # the killed process left its half temp file ...
    maps.publish_map(None, out, title="基础网格", slug="base", plan_id="P3", html=html_b)
    assert not list(out.glob(".*.gptmp-*"))  # ... which the next publish removes
    assert maps.read_manifest(out)["maps"][0]["plan_id"] == "P3"


def test_concurrent_publishers_keep_a_valid_index(tmp_path: Path, html_a: str) -> None:
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            maps.publish_map(None, tmp_path, title=f"map {i}", slug=f"m{i % 3}", html=html_a, plan_id=str(i))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    man = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert sorted(e["slug"] for e in man["maps"]) == ["m0", "m1", "m2"]
    assert (tmp_path / "index.html").read_text(encoding="utf-8").count('href="m') == 3


def test_corrupt_manifest_is_an_input_error(tmp_path: Path, html_a: str) -> None:
    (tmp_path / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="manifest"):
        maps.publish_map(None, tmp_path, title="x", html=html_a)


def test_remote_assets_are_refused() -> None:
    import folium

    m = tiny_map()
    folium.Element('<script src="https://cdn.example.com/evil.js"></script>').add_to(m.get_root().header)
    from gridplan.maps.assets import AssetError

    with pytest.raises(AssetError, match="remote"):
        maps.render_html(m)


def _proposal_heat_hot(small_plan: Path, tmp: Path) -> tuple[Path, Path, Path]:
    """A proposal (plan + staff/workload), a tiny heat raster and a HOT.gpkg for the CLI test."""
    import dataclasses

    import numpy as np
    import rasterio
    from affine import Affine

    from gridplan.plans import new_plan_id, read_plan, write_plan

    plan = read_plan(small_plan)
    grids = plan.base_grids.assign(staff=1, workload=np.linspace(10, 50, len(plan.base_grids)))
    prop = dataclasses.replace(
        plan,
        base_grids=grids,
        meta=dataclasses.replace(
            plan.meta, plan_id=new_plan_id(), parent_id=plan.meta.plan_id, kind="proposal"
        ),
    )
    prop_path = write_plan(prop, tmp / "proposal.gpkg")
    x0, y0, x1, y1 = grids.total_bounds
    tif = tmp / "heat.tif"
    with rasterio.open(
        tif,
        "w",
        driver="GTiff",
        width=20,
        height=20,
        count=1,
        dtype="float32",
        crs="EPSG:4547",
        transform=Affine((x1 - x0) / 20, 0, x0, 0, -(y1 - y0) / 20, y1),
        nodata=-1,
    ) as dst:
        dst.write(np.arange(400, dtype="float32").reshape(20, 20), 1)
    hot = grids[["grid_code", "geometry"]].assign(gi_bin=(np.arange(len(grids)) % 7) - 3, count=1)
    hot_path = tmp / "hot.gpkg"
    hot.to_file(hot_path, layer="hotspots", driver="GPKG")
    emerging = gpd.GeoDataFrame(
        grids[["grid_code"]].assign(pattern="New Hot Spot", trend_z=1.0, trend_p=0.01)
    )
    emerging.to_file(hot_path, layer="emerging", driver="GPKG")  # a table: geometry joined from hotspots
    return prop_path, tif, hot_path


def test_cli_publish_end_to_end(small_city: Path, small_plan: Path, tmp_path: Path) -> None:
    from gridplan.cli import app

    prop, tif, hot = _proposal_heat_hot(small_plan, tmp_path)
    out = tmp_path / "maps"
    args = [
        "publish",
        "--plan",
        str(small_plan),
        "--layers",
        str(small_city / "layers.gpkg"),
        "--cases",
        str(small_city / "cases.csv"),
        "--diff-against",
        str(small_plan),
        "--proposal",
        str(prop),
        "--heatmap",
        str(tif),
        "--hotspots",
        str(hot),
        "--out",
        str(out),
        "--qgis-project",
        str(tmp_path / "gridplan.qgs"),
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert str((out / "index.html").resolve()) in res.output
    import xml.etree.ElementTree as ET

    qgs = ET.parse(tmp_path / "gridplan.qgs").getroot()
    sources = {e.text or "" for e in qgs.iter("datasource")}
    assert any(Path(small_plan).name in s for s in sources)  # the plan, the hotspots, the raster
    assert any(Path(hot).name in s for s in sources)
    assert any(Path(tif).name in s for s in sources)
    files = sorted(p.name for p in out.glob("*.html"))
    assert files == [
        "base-grids.html",
        "cases.html",
        "dept-grids.html",
        "heatmap.html",
        "hotspots.html",
        "index.html",
        "plan-diff.html",
        "proposal-compare.html",
        "proposal.html",
        "qa-issues.html",
    ]
    man = maps.read_manifest(out)
    assert all(e["plan_id"] for e in man["maps"])
    assert all(e["data_date"] for e in man["maps"])
    assert "工作量" in (out / "proposal.html").read_text(encoding="utf-8")
    assert "新增热点" in (out / "hotspots.html").read_text(encoding="utf-8")
    bad = CliRunner().invoke(app, ["publish", "--plan", str(tmp_path / "nope.gpkg"), "--out", str(out)])
    assert bad.exit_code == 2
    bad = CliRunner().invoke(
        app, ["publish", "--plan", str(small_plan), "--out", str(out), "--tile-url", "x"]
    )
    assert bad.exit_code == 2
    assert "tile" in bad.output


def test_standard_set_publishes_in_order_and_keeps_what_was_published(
    small_plan: Path, tmp_path: Path
) -> None:
    from gridplan.maps.standard import StandardInputs, StandardMapOptions, publish_standard_set
    from gridplan.plans import read_plan

    plan = read_plan(small_plan)
    out = tmp_path / "maps"
    got = publish_standard_set(plan, out, options=StandardMapOptions(data_date="2026-01-02"))
    assert [p.slug for p in got] == ["base-grids", "qa-issues"]
    assert [p.path for p in got] == [out / "base-grids.html", out / "qa-issues.html"]
    assert got[0].title == "基础网格"
    man = maps.read_manifest(out)
    assert sorted(e["slug"] for e in man["maps"]) == ["base-grids", "qa-issues"]
    assert {e["plan_id"] for e in man["maps"]} == {plan.meta.plan_id}
    assert {e["data_date"] for e in man["maps"]} == {"2026-01-02"}
    # a bad input met after the first maps: a clear error naming the file; the maps before stay
    wrong = tmp_path / "wrong.gpkg"
    plan.base_grids[["grid_code", "geometry"]].to_file(wrong, layer="not_hotspots", driver="GPKG")
    with pytest.raises(InputError, match="no layer 'hotspots'") as err:
        publish_standard_set(plan, out, inputs=StandardInputs(hotspots=wrong))
    assert "wrong.gpkg" in str(err.value.file)
    assert sorted(e["slug"] for e in maps.read_manifest(out)["maps"]) == ["base-grids", "qa-issues"]
    assert not (out / "hotspots.html").exists()

def test_index_shows_beijing_time_and_plan_names(tmp_path) -> None:
    from gridplan.maps.publish import beijing_time, index_html, plan_label

    entry = {"file": "base.html", "title": "基础网格", "plan_id": "20261207T161020-70a9b39d",
             "published_at": "2026-12-07T16:30:00Z", "bytes": 1000}
    page = index_html([entry])
    assert "2026-12-08 00:30" in page  # UTC 16:30 is past midnight in Beijing
    assert "2026-12-08 00:10 版（70a9b39d）" in page
    assert "发布时间（北京时间）" in page
    assert "UTC" not in page
    assert "<code>20261207T161020-70a9b39d</code>" not in page  # the raw id only as a hover title
    assert plan_label("P1") == "P1"
    assert beijing_time("not a time") == "not a time"
