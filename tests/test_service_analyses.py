"""Every analysis as a job over HTTP, with the same output as the CLI on the sample city."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
from typer.testing import CliRunner

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from test_api import _auth, _wait

from gridplan.api import create_app
from gridplan.plans import read_plan
from gridplan.settings import Settings

VOLATILE = {"seconds", "plan_id", "created_at"}


@pytest.fixture(scope="module")
def located(small_city: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's cases with their true lon/lat (what a geocode job would give)."""
    ev = pd.read_csv(small_city / "cases.csv", usecols=["case_id", "category", "reported_at"])
    truth = pd.read_csv(small_city / "truth_cases.csv", usecols=["case_id", "lon", "lat"])
    out = tmp_path_factory.mktemp("located") / "located.csv"
    ev.merge(truth, on="case_id").assign(coord_sys="cgcs2000").to_csv(out, index=False)
    return out


@pytest.fixture(scope="module")
def service(
    small_plan: Path, small_city: Path, located: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    app = create_app(tmp_path_factory.mktemp("analyses") / "ws", settings=Settings())
    with TestClient(app) as client:
        svc = app.state.service
        plan_id = svc.plans.save(read_plan(small_plan))
        analyst = _auth(client, "analyst")
        r = client.post(
            "/uploads/cases",
            files={"file": ("located.csv", located.read_bytes(), "text/csv")},
            headers=analyst,
        )
        assert r.status_code == 201, r.text
        cases = r.json()["upload_id"]
        with open(small_city / "layers.gpkg", "rb") as fh:
            r = client.post(
                "/uploads/layers",
                files={"file": ("layers.gpkg", fh, "application/octet-stream")},
                headers=_auth(client, "planner"),
            )
        assert r.status_code == 201, r.text
        yield {
            "client": client,
            "plan_id": plan_id,
            "cases": cases,
            "layers": r.json()["upload_id"],
            "analyst": analyst,
        }


def _run_job(s: dict[str, Any], kind: str, body: dict[str, Any], tmp_path: Path) -> Path:
    client, analyst = s["client"], s["analyst"]
    r = client.post(f"/jobs/{kind}", json=body, headers=analyst)
    assert r.status_code == 202, r.text
    job = _wait(client, r.json()["job_id"], analyst)
    assert job["state"] == "succeeded", job["message"]
    r = client.get(job["result"]["href"], headers=analyst)
    assert r.status_code == 200
    suffix = {"image/tiff": ".tif", "application/geopackage+sqlite3": ".gpkg"}[r.headers["content-type"]]
    out = tmp_path / f"job-{kind}{suffix}"
    out.write_bytes(r.content)
    return out


def _cli(args: list[str]) -> None:
    from gridplan.cli import app

    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output


def _same_gpkg(a: Path, b: Path) -> None:
    layers_a = sorted(pyogrio.list_layers(a)[:, 0])
    assert layers_a == sorted(pyogrio.list_layers(b)[:, 0])
    for layer in layers_a:
        fa, fb = gpd.read_file(a, layer=layer), gpd.read_file(b, layer=layer)
        if list(fa.columns)[:2] == ["key", "value"] or layer == "summary":
            # what two runs never share: a new version's id and time, a solver's wall time
            fa, fb = (f[~f.iloc[:, 0].isin(VOLATILE)].reset_index(drop=True) for f in (fa, fb))
        pd.testing.assert_frame_equal(pd.DataFrame(fa), pd.DataFrame(fb), check_like=True)


def test_heatmap_job_equals_the_cli(
    service: dict[str, Any], small_plan: Path, located: Path, tmp_path: Path
) -> None:
    import rasterio

    body = {
        "plan_id": service["plan_id"],
        "events_upload_id": service["cases"],
        "bandwidth_m": "300",
        "category": "治安",
    }
    got = _run_job(service, "heatmap", body, tmp_path)
    want = tmp_path / "cli.tif"
    _cli(
        [
            "heatmap",
            str(located),
            "--plan",
            str(small_plan),
            "--out",
            str(want),
            "--bandwidth-m",
            "300",
            "--category",
            "治安",
        ]
    )
    with rasterio.open(got) as g, rasterio.open(want) as w:
        assert np.array_equal(g.read(1), w.read(1))
        assert g.transform == w.transform
        assert g.crs == w.crs
        tg, tw = g.tags(), w.tags()
        assert {k: v for k, v in tg.items() if k != "source"} == {
            k: v for k, v in tw.items() if k != "source"
        }


def test_hotspots_job_equals_the_cli(
    service: dict[str, Any], small_plan: Path, located: Path, tmp_path: Path
) -> None:
    body = {
        "plan_id": service["plan_id"],
        "events_upload_id": service["cases"],
        "by": "grid",
        "time_step": "none",
        "permutations": 0,
    }
    got = _run_job(service, "hotspots", body, tmp_path)
    want = tmp_path / "cli.gpkg"
    _cli(
        [
            "hotspots",
            str(located),
            "--plan",
            str(small_plan),
            "--out",
            str(want),
            "--by",
            "grid",
            "--time-step",
            "none",
            "--permutations",
            "0",
        ]
    )
    _same_gpkg(got, want)


def test_coverage_job_equals_the_cli(service: dict[str, Any], small_city: Path, tmp_path: Path) -> None:
    body = {"layers_upload_id": service["layers"], "radius_m": 800, "posts": 3}
    got = _run_job(service, "coverage", body, tmp_path)
    want = tmp_path / "cli-cover.gpkg"
    _cli(
        [
            "coverage",
            str(small_city / "layers.gpkg"),
            "--radius-m",
            "800.0",
            "--posts",
            "3",
            "--out",
            str(want),
        ]
    )
    _same_gpkg(got, want)


def test_analysis_jobs_check_inputs_and_roles(service: dict[str, Any]) -> None:
    client, analyst = service["client"], service["analyst"]
    r = client.post(
        "/jobs/heatmap", json={"plan_id": "nope", "events_upload_id": service["cases"]}, headers=analyst
    )
    assert r.status_code == 404
    r = client.post(
        "/jobs/heatmap",
        json={"plan_id": service["plan_id"], "events_upload_id": service["layers"]},
        headers=analyst,
    )
    assert r.status_code == 422
    assert r.json()["field"] == "events_upload_id"
    planner = _auth(client, "planner")
    assert (
        client.post(
            "/jobs/coverage", json={"layers_upload_id": service["layers"]}, headers=planner
        ).status_code
        == 403
    )


def test_balance_job_equals_the_cli(
    service: dict[str, Any], small_plan: Path, small_city: Path, tmp_path: Path
) -> None:
    body = {"plan_id": service["plan_id"], "layers_upload_id": service["layers"], "staff": 100}
    got = _run_job(service, "balance", body, tmp_path)
    want = tmp_path / "cli-proposal.gpkg"
    _cli(
        [
            "balance",
            str(small_plan),
            "--layers",
            str(small_city / "layers.gpkg"),
            "--out",
            str(want),
            "--staff",
            "100",
        ]
    )
    _same_gpkg(got, want)


def test_publish_job_equals_the_cli_and_leaders_see_it(
    service: dict[str, Any], small_plan: Path, small_city: Path, tmp_path: Path
) -> None:
    from gridplan.maps.publish import read_manifest

    client, analyst = service["client"], service["analyst"]
    body = {"plan_id": service["plan_id"], "layers_upload_id": service["layers"], "data_date": "2026-01-31"}
    r = client.post("/jobs/publish", json=body, headers=analyst)
    assert r.status_code == 202, r.text
    job = _wait(client, r.json()["job_id"], analyst)
    assert job["state"] == "succeeded", job
    want = tmp_path / "maps"
    _cli(
        [
            "publish",
            "--plan",
            str(small_plan),
            "--layers",
            str(small_city / "layers.gpkg"),
            "--out",
            str(want),
            "--data-date",
            "2026-01-31",
        ]
    )
    served = client.app.state.service.maps_dir
    got_maps = {e["file"]: e for e in read_manifest(served)["maps"]}
    want_maps = {e["file"]: e for e in read_manifest(want)["maps"]}
    assert set(got_maps) == set(want_maps)
    assert len(got_maps) >= 3
    for name, e in want_maps.items():
        assert got_maps[name]["title"] == e["title"]
        assert got_maps[name]["bytes"] == e["bytes"]
    leader = _auth(client, "leader")
    home = client.get("/maps/", headers=leader).text
    for name in want_maps:
        assert f'href="/maps/{name}"' in home


def test_heatmap_job_on_postgis_equals_the_cli(
    postgis_url: str, small_plan: Path, located: Path, tmp_path: Path
) -> None:
    import secrets

    import rasterio
    from test_api import _drop_schemas

    tag = secrets.token_hex(4)
    kw = {"meta_schema": f"t_meta_{tag}", "plans_schema": f"t_plans_{tag}"}
    app = create_app(
        postgis_url, settings=Settings(), data_dir=tmp_path / "data", maps_dir=tmp_path / "maps", **kw
    )
    try:
        with TestClient(app) as client:
            plan_id = app.state.service.plans.save(read_plan(small_plan))
            analyst = _auth(client, "analyst")
            r = client.post(
                "/uploads/cases",
                files={"file": ("located.csv", located.read_bytes(), "text/csv")},
                headers=analyst,
            )
            s = {"client": client, "analyst": analyst}
            body = {"plan_id": plan_id, "events_upload_id": r.json()["upload_id"], "bandwidth_m": "300"}
            got = _run_job(s, "heatmap", body, tmp_path)  # the plan is read back from PostGIS
        want = tmp_path / "cli.tif"
        _cli(["heatmap", str(located), "--plan", str(small_plan), "--out", str(want), "--bandwidth-m", "300"])
        with rasterio.open(got) as g, rasterio.open(want) as w:
            assert np.array_equal(g.read(1), w.read(1))
    finally:
        _drop_schemas(postgis_url.replace("postgresql://", "postgresql+psycopg://", 1), *kw.values())


def test_a_planner_adopts_a_proposal_as_a_version_and_a_second_one_gets_409(service: dict[str, Any]) -> None:
    """A proposal names its parent: adopting it makes the child; a second proposal of the same
    parent is refused with the first one's diff unless it branches on purpose."""
    client, analyst = service["client"], service["analyst"]
    planner = _auth(client, "planner")
    parent = service["plan_id"]
    body = {"plan_id": parent, "layers_upload_id": service["layers"], "staff": 100}
    jobs = []
    for _ in range(2):
        r = client.post("/jobs/balance", json=body, headers=analyst)
        assert r.status_code == 202, r.text
        job = _wait(client, r.json()["job_id"], analyst)
        assert job["state"] == "succeeded", job["message"]
        jobs.append(job["job_id"])

    url = f"/plans/{parent}/proposals"
    assert client.post(url, json={"job_id": jobs[0]}, headers=analyst).status_code == 403  # no plans:write
    r = client.post(url, json={"job_id": jobs[0]}, headers=planner)
    assert r.status_code == 201, r.text
    first = r.json()["plan_id"]
    assert r.json()["parent_id"] == parent
    listed = {row["plan_id"]: row for row in client.get("/plans", headers=planner).json()}
    assert listed[first]["parent_id"] == parent
    assert listed[first]["kind"] == "proposal"

    r = client.post(url, json={"job_id": jobs[1]}, headers=planner)
    assert r.status_code == 409, r.text
    assert r.json()["newer_id"] == first
    assert r.json()["diff"]["units_moved"] >= 0
    again = client.post(url, json={"job_id": jobs[0]}, headers=planner)
    assert again.status_code == 422
    assert "already" in again.json()["detail"]
    r = client.post(url + "?branch=true", json={"job_id": jobs[1]}, headers=planner)
    assert r.status_code == 201, r.text
    rows = client.get("/plans", headers=planner).json()
    children = {row["plan_id"] for row in rows if row["parent_id"] == parent}
    assert children == {first, r.json()["plan_id"]}

    # a job of another plan and an unknown job are refused
    other = client.post(f"/plans/{first}/proposals", json={"job_id": jobs[1]}, headers=planner)
    assert other.status_code == 422
    assert client.post(url, json={"job_id": "0" * 16}, headers=planner).status_code == 404
