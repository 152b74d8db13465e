"""The FastAPI service on a workspace folder and on real PostGIS (same tests, both backends)."""

from __future__ import annotations

import datetime as dt
import io
import re
import secrets
import socket
import subprocess
import sys
import time
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.routing import APIRoute

with warnings.catch_warnings():
    # starlette 1.x nudges towards httpx2; httpx (installed) works the same for TestClient
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from conftest import drop_schemas

from gridplan._clock import utc_now
from gridplan.api import create_app
from gridplan.api.app import PUBLIC_PATHS, create_user_token
from gridplan.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


_drop_schemas = drop_schemas  # other test modules import it from here


def _make(backend: dict[str, Any], **settings: Any) -> TestClient:
    kw = dict(backend)
    target = kw.pop("target")
    app = create_app(target, settings=Settings(**settings), **kw)
    return TestClient(app)


def _auth(client: TestClient, role: str, name: str | None = None) -> dict[str, str]:
    meta = client.app.state.service.meta
    token, _, _ = create_user_token(meta, name or f"{role}-{secrets.token_hex(3)}", role, days=1)
    return {"Authorization": f"Bearer {token}"}


def _api_routes(client: TestClient) -> list[Any]:
    """Every API route of the app, routes of included routers too.

    FastAPI >= 0.137 keeps an included ``APIRouter`` as one node of ``app.routes``;
    ``fastapi.routing.iter_route_contexts`` (0.137.2) flattens the tree. Older FastAPI copies the
    routes into ``app.routes``.
    """
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:
        return [r for r in client.app.routes if isinstance(r, APIRoute)]
    return [c for c in iter_route_contexts(client.app.routes) if isinstance(c.original_route, APIRoute)]


def _routes(client: TestClient) -> list[tuple[str, str]]:
    out = []
    for r in _api_routes(client):
        if r.path not in PUBLIC_PATHS:
            path = re.sub(r"\{[^}]+\}", "x", r.path)
            out.extend((m, path) for m in sorted(r.methods - {"HEAD"}))
    return out


def _wait(client: TestClient, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    client.app.state.service.jobs.wait(job_id, timeout_s=120)
    job = client.get(f"/jobs/{job_id}", headers=headers).json()
    assert job["state"] in ("succeeded", "failed"), job
    return job


# ---------------------------------------------------------------------------------------------
# authentication and roles
# ---------------------------------------------------------------------------------------------


def test_anonymous_gets_401_on_everything_but_health_and_login(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"
    routes = _routes(client)
    assert len(routes) >= 20
    for method, path in routes:
        r = client.request(method, path)
        assert r.status_code == 401, (method, path, r.status_code)
        assert r.headers["www-authenticate"] == "Bearer"
    assert client.get("/plans", headers={"Authorization": "Bearer gp_nope_nope"}).status_code == 401
    assert client.post("/login", json={"username": "nobody", "password": "x" * 12}).status_code == 401


def test_leader_gets_403_on_every_write_route(client: TestClient) -> None:
    leader = _auth(client, "leader")
    writes = [(m, p) for m, p in _routes(client) if m != "GET" and p != "/signout"]  # anyone signs out
    assert {p for _, p in writes} >= {
        "/uploads/layers",
        "/jobs/merge",
        "/jobs/geocode",
        "/plans/x/reimport",
        "/admin/tokens",
        "/admin/users",
    }
    for method, path in writes:
        r = client.request(method, path, headers=leader)
        assert r.status_code == 403, (method, path, r.status_code, r.text)
    # with a plausible body too
    files = {"file": ("layers.gpkg", b"x", "application/octet-stream")}
    assert client.post("/uploads/layers", files=files, headers=leader).status_code == 403
    assert client.post("/jobs/merge", json={"upload_id": "a" * 16}, headers=leader).status_code == 403
    # leaders read published maps only (README's role table)
    assert client.get("/plans", headers=leader).status_code == 403
    assert client.get("/jobs", headers=leader).status_code == 403
    analyst = _auth(client, "analyst")
    assert client.post("/uploads/layers", files=files, headers=analyst).status_code == 403
    assert client.get("/admin/tokens", headers=analyst).status_code == 403


def test_tokens_are_stored_hashed_and_login_works(client: TestClient) -> None:
    admin = _auth(client, "admin", "root")
    r = client.post("/admin/tokens", json={"name": "ana", "role": "analyst", "days": 1}, headers=admin)
    assert r.status_code == 201
    token = r.json()["token"]
    r = client.post(
        "/admin/users", json={"name": "pia", "role": "planner", "password": "correct horse 1"}, headers=admin
    )
    assert r.status_code == 201
    meta = client.app.state.service.meta
    with meta.engine.connect() as conn:
        tokens = conn.execute(sa.select(meta.t["tokens"])).mappings().all()
        users = conn.execute(sa.select(meta.t["users"])).mappings().all()
    secret = token.split("_", 2)[2]
    dump = repr(tokens) + repr(users)
    assert secret not in dump
    assert token not in dump
    assert "correct horse 1" not in dump
    assert all(t["token_hash"].startswith("scrypt$") for t in tokens)
    assert len({t["token_hash"].split("$")[4] for t in tokens}) == len(tokens)  # per-token salt
    assert "token_hash" not in client.get("/admin/tokens", headers=admin).text
    # login with the API token and with the password
    r = client.post("/login", json={"token": token})
    assert r.status_code == 200
    assert r.json()["role"] == "analyst"
    session = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert client.get("/me", headers=session).json()["user"] == "ana"
    assert client.post("/login", json={"token": r.json()["access_token"]}).status_code == 401
    r = client.post("/login", json={"username": "pia", "password": "correct horse 1"})
    assert r.status_code == 200
    assert r.json()["role"] == "planner"
    assert client.post("/login", json={"username": "pia", "password": "wrong horse 12"}).status_code == 401
    # password guessing backs off per (user name, address): 4 more wrong tries, then 429
    codes = [
        client.post("/login", json={"username": "pia", "password": f"guess {i:06d}"}).status_code
        for i in range(10)
    ]
    assert codes == [401] * 4 + [429] * 6
    r = client.post("/login", json={"username": "pia", "password": "correct horse 1"})
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    # revoke: the token stops working at once
    token_id = token.split("_", 2)[1]
    assert client.delete(f"/admin/tokens/{token_id}", headers=admin).status_code == 200
    assert client.get("/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    # expired tokens are refused
    old, _, _ = create_user_token(meta, "ana", None, days=1)
    with meta.engine.begin() as conn:
        t = meta.t["tokens"]
        conn.execute(
            t.update()
            .where(t.c.token_id == old.split("_", 2)[1])
            .values(expires_at=utc_now() - dt.timedelta(days=1))
        )
    assert client.get("/me", headers={"Authorization": f"Bearer {old}"}).status_code == 401


# ---------------------------------------------------------------------------------------------
# uploads, jobs, plans
# ---------------------------------------------------------------------------------------------


def test_merge_job_runs_and_plan_is_listed(client: TestClient, small_city: Path, tmp_path: Path) -> None:
    planner = _auth(client, "planner")
    with open(small_city / "layers.gpkg", "rb") as fh:
        r = client.post(
            "/uploads/layers",
            files={"file": ("layers.gpkg", fh, "application/geopackage+sqlite3")},
            headers=planner,
        )
    assert r.status_code == 201, r.text
    up = r.json()
    assert up["layers"]["dept_police"] > 0
    r = client.post(
        "/jobs/merge", json={"upload_id": up["upload_id"], "departments": ["nope"]}, headers=planner
    )
    assert r.status_code == 422
    assert r.json()["field"] == "departments"
    assert "dept_nope" in r.json()["detail"]
    # two departments keep the test fast; the merge itself is tested in test_merge.py
    body = {"upload_id": up["upload_id"], "departments": ["police", "fire"]}
    r = client.post("/jobs/merge", json=body, headers=planner)
    assert r.status_code == 202, r.text
    job = _wait(client, r.json()["job_id"], planner)
    assert job["state"] == "succeeded", job
    assert job["progress"] == 1.0
    plan_id = job["result"]["plan_id"]
    plans = client.get("/plans", headers=planner).json()
    assert [p["plan_id"] for p in plans] == [plan_id]
    assert plans[0]["grid_count"] == job["result"]["grids"] > 0
    assert plans[0]["kind"] == "merge"
    # GeoJSON page in EPSG:4326
    r = client.get(f"/plans/{plan_id}/grids", params={"limit": 5}, headers=planner)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    assert fc["numberReturned"] == 5
    assert fc["numberMatched"] == plans[0]["grid_count"]
    assert "next" in fc
    lon, lat = fc["features"][0]["geometry"]["coordinates"][0][0][:2]
    assert 113.0 < lon < 115.0
    assert 22.0 < lat < 24.0
    assert len(fc["features"][0]["properties"]["grid_code"]) == 15
    page2 = client.get(fc["next"], headers=planner).json()
    assert {f["properties"]["grid_code"] for f in page2["features"]}.isdisjoint(
        {f["properties"]["grid_code"] for f in fc["features"]}
    )
    assert client.get(f"/plans/{plan_id}/grids", params={"limit": 10**6}, headers=planner).status_code == 422
    # summary for leaders, data for planners only
    leader = _auth(client, "leader")
    assert client.get(f"/plans/{plan_id}", headers=leader).status_code == 403
    s = client.get(f"/plans/{plan_id}", headers=planner).json()
    assert s["grid_count"] == plans[0]["grid_count"]
    assert s["totals"]["households"] > 0
    assert client.get(f"/plans/{plan_id}/grids", headers=leader).status_code == 403
    # diff of a plan with itself: everything unchanged
    d = client.get(f"/plans/{plan_id}/diff/{plan_id}", headers=planner).json()
    assert d["summary"]["unchanged"] == plans[0]["grid_count"]
    assert d["summary"]["added"] == 0
    assert client.get("/plans/nope/diff/x", headers=planner).status_code == 404
    assert client.get("/plans/..%2Fx", headers=planner).status_code == 404

    if client.app.state.service.meta.is_postgres:
        return  # the follow-ups below only read the plan back, which test_api_postgis.py covers on PostGIS
    # analyst: geocode a few cases against this plan and download the result
    analyst = _auth(client, "analyst")
    lines = (small_city / "cases.csv").read_text(encoding="utf-8").splitlines()[:101]
    r = client.post(
        "/uploads/cases",
        files={"file": ("cases.csv", "\n".join(lines).encode(), "text/csv")},
        headers=analyst,
    )
    assert r.status_code == 201, r.text
    r = client.post(
        "/jobs/geocode", json={"upload_id": r.json()["upload_id"], "plan_id": plan_id}, headers=analyst
    )
    assert r.status_code == 202, r.text
    job = _wait(client, r.json()["job_id"], analyst)
    assert job["state"] == "succeeded", job
    assert job["result"]["rows"] == 100
    assert job["result"]["href"].endswith("/result")
    r = client.get(job["result"]["href"], headers=analyst)
    assert r.status_code == 200
    assert r.text.splitlines()[0].count("grid_code") == 1
    assert len(r.text.strip().splitlines()) == 101
    # jobs are private to their owner
    assert client.get(f"/jobs/{job['job_id']}", headers=planner).status_code == 404

    # planner: re-import an edited base-grid layer (two grids of one community joined in QGIS)
    grids = client.app.state.service.plans.load(plan_id).base_grids
    community = grids["community_code"].value_counts().index[0]
    a, b = grids.index[grids["community_code"] == community][:2]
    edited = grids.drop(index=b)
    edited.loc[a, "geometry"] = grids.loc[a, "geometry"].union(grids.loc[b, "geometry"])
    buf = tmp_path / "edited.gpkg"
    edited.to_file(buf, layer="base_grids", driver="GPKG")
    r = client.post(
        f"/plans/{plan_id}/reimport",
        files={"file": ("edited.gpkg", buf.read_bytes(), "application/octet-stream")},
        headers=planner,
    )
    assert r.status_code == 202, r.text
    job = _wait(client, r.json()["job_id"], planner)
    assert job["state"] == "succeeded", job
    child = job["result"]["plan_id"]
    listed = {p["plan_id"]: p for p in client.get("/plans", headers=planner).json()}
    assert listed[child]["parent_id"] == plan_id
    assert listed[child]["kind"] == "edit"
    d = client.get(f"/plans/{plan_id}/diff/{child}", headers=analyst).json()
    assert d["summary"]["grids_new"] == d["summary"]["grids_old"] - 1
    assert d["summary"]["removed"] + d["summary"]["reshaped"] >= 1
    assert (
        client.post(
            f"/plans/{plan_id}/reimport", files={"file": ("e.gpkg", b"x", "x/y")}, headers=analyst
        ).status_code
        == 403
    )


def test_failing_job_ends_failed_and_stores_nothing(
    client: TestClient, small_city: Path, tmp_path: Path
) -> None:
    import geopandas as gpd

    planner = _auth(client, "planner")
    # a valid GeoPackage holding only the city: the merge needs communities and dept layers
    city = gpd.read_file(small_city / "layers.gpkg", layer="city")
    bad = tmp_path / "only_city.gpkg"
    city.to_file(bad, layer="city", driver="GPKG")
    r = client.post(
        "/uploads/layers",
        files={"file": ("only_city.gpkg", bad.read_bytes(), "application/octet-stream")},
        headers=planner,
    )
    assert r.status_code == 201, r.text
    r = client.post("/jobs/merge", json={"upload_id": r.json()["upload_id"]}, headers=planner)
    job = _wait(client, r.json()["job_id"], planner)
    assert job["state"] == "failed"
    assert job["message"]
    assert "result" not in job
    assert client.get("/plans", headers=planner).json() == []
    svc = client.app.state.service
    if svc.plans.dir is not None:
        assert list(svc.plans.dir.iterdir()) == []
    else:
        names = sa.inspect(svc.meta.engine).get_table_names(schema=svc.plans.schema)
        assert names == []
    # a corrupt GeoPackage is refused at upload with a message naming the file
    r = client.post(
        "/uploads/layers",
        files={"file": ("broken.gpkg", b"SQLite format 3\x00garbage", "x/y")},
        headers=planner,
    )
    assert r.status_code == 422
    assert "broken.gpkg" in r.json()["detail"]
    assert list((svc.data_dir / "uploads").iterdir())
    assert all((p / "layers.gpkg").exists() for p in (svc.data_dir / "uploads").iterdir())


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_archives_are_checked(client: TestClient, tmp_path: Path) -> None:
    planner = _auth(client, "planner")

    def post(name: str, data: bytes) -> Any:
        return client.post(
            "/uploads/layers", files={"file": (name, data, "application/zip")}, headers=planner
        )

    r = post("evil.zip", _zip({"../evil.shp": b"x", "ok.dbf": b"y"}))
    assert r.status_code == 422
    assert "../evil.shp" in r.json()["detail"]
    assert "evil.zip" in r.json()["detail"]
    assert post("abs.zip", _zip({"/etc/evil.shp": b"x"})).status_code == 422
    r = post("bomb.zip", _zip({"bomb.shp": b"\0" * (50 * 2**20)}))
    assert r.status_code == 422
    assert "zip bomb" in r.json()["detail"]
    r = post("exe.zip", _zip({"run.exe": b"MZ"}))
    assert r.status_code == 422
    assert "run.exe" in r.json()["detail"]
    r = post("notes.txt", b"hello")
    assert r.status_code == 422
    assert r.json()["field"] == "file"
    assert post("bad.zip", b"PK\x03\x04 not really").status_code == 422
    assert not (tmp_path / "evil.shp").exists()
    assert not Path("/etc/evil.shp").exists()
    assert list((client.app.state.service.data_dir / "uploads").iterdir()) == []
    # a real zipped shapefile is accepted and converted
    import geopandas as gpd
    from shapely.geometry import box

    shp = tmp_path / "shp"
    shp.mkdir()
    square = box(420_000, 2_540_000, 420_010, 2_540_010)  # metres in EPSG:4547 (Dongguan)
    gpd.GeoDataFrame({"WGBM": ["P1"], "WGMC": ["一"]}, geometry=[square], crs=4547).to_file(
        shp / "dept_police.shp", encoding="utf-8"
    )
    r = post("police.zip", _zip({f"police/{p.name}": p.read_bytes() for p in shp.iterdir()}))
    assert r.status_code == 201, r.text
    assert r.json()["layers"] == {"dept_police": 1}


def test_upload_limits(backend: dict[str, Any], small_city: Path) -> None:
    with _make(backend, max_upload_mb=0.01, max_upload_features=5) as c:
        planner = _auth(c, "planner")
        r = c.post("/uploads/layers", files={"file": ("big.gpkg", b"0" * 200_000, "x/y")}, headers=planner)
        assert r.status_code == 413
        assert "max_upload_mb" in r.json()["detail"]
        assert r.headers["x-content-type-options"] == "nosniff"

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
            yield (
                b'--zz\r\nContent-Disposition: form-data; name="file"; filename="a.gpkg"\r\n'
                b"Content-Type: application/octet-stream\r\n\r\n"
            )
            for _ in range(40):
                yield b"0" * 10_000

        r = c.post(
            "/uploads/layers",
            content=chunks(),
            headers={**planner, "content-type": "multipart/form-data; boundary=zz"},
        )
        assert r.status_code == 413, r.text
        analyst = _auth(c, "analyst")
        csv = "case_id,category,reported_at,address\n" + "".join(
            f"C{i},治安,2024-01-01,长安镇{i}号\n" for i in range(9)
        )
        r = c.post("/uploads/cases", files={"file": ("cases.csv", csv.encode(), "text/csv")}, headers=analyst)
        assert r.status_code == 413
        assert "cases.csv" in r.json()["detail"]
        r = c.post(
            "/uploads/cases", files={"file": ("c.csv", b"foo,bar\n1,2\n", "text/csv")}, headers=analyst
        )
        assert r.status_code == 422
        assert r.json()["field"] == "address"


# ---------------------------------------------------------------------------------------------
# maps, docs, headers
# ---------------------------------------------------------------------------------------------


def test_published_maps_are_served_safely(client: TestClient) -> None:
    svc = client.app.state.service
    (svc.maps_dir / "index.html").write_text("<html><body>maps</body></html>", encoding="utf-8")
    (svc.maps_dir / "base-grids.html").write_text("<html>grids</html>", encoding="utf-8")
    (svc.maps_dir.parent / "secret.html").write_text("TOP-SECRET-CONTENT", encoding="utf-8")
    leader = _auth(client, "leader")
    r = client.get("/maps/", headers=leader)
    assert r.status_code == 200
    assert "maps" in r.text
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "http" not in csp
    assert "script-src 'self'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert client.get("/maps/base-grids.html", headers=leader).text == "<html>grids</html>"
    for bad in (
        "..%2Fsecret.html",
        "%2e%2e/secret.html",
        "..%5Csecret.html",
        "%2Fetc%2Fpasswd",
        "sub/../../secret.html",
        "x%00.html",
    ):
        r = client.get(f"/maps/{bad}", headers=leader)
        assert 400 <= r.status_code < 500, bad
        assert "TOP-SECRET" not in r.text, bad
    assert client.get("/maps/missing.html", headers=leader).status_code == 404
    assert client.get("/maps/", headers=_auth(client, "planner")).status_code == 200
    assert client.get("/maps/").status_code == 401


@pytest.mark.parametrize("offline_package", [True, False])
def test_docs_are_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline_package: bool) -> None:
    if not offline_package:  # without fastapi-offline: a minimal local page, still no CDN
        monkeypatch.setitem(sys.modules, "fastapi_offline", None)
    client = _make({"target": tmp_path / "ws"})
    r = client.get("/docs")
    assert r.status_code == 200
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", r.text) + re.findall(
        r"""url:\s*['"]([^'"]+)""", r.text
    )
    assert refs
    assert all(ref.startswith("/") and not ref.startswith("//") for ref in refs), refs
    assert not re.search(r"https?://", r.text.replace("http://www.w3.org", ""))
    for ref in refs:
        assert client.get(ref).status_code == 200, ref
    spec = client.get("/openapi.json").json()
    assert "/jobs/merge" in spec["paths"]
    assert "default-src 'self'" in r.headers["content-security-policy"]


def test_cli_serve_help_and_real_uvicorn(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from gridplan.cli import app

    runner = CliRunner()
    out = runner.invoke(app, ["serve", "--help"])
    assert out.exit_code == 0
    assert "--workspace" in out.output
    assert "--db" in out.output
    assert "--port" in out.output
    ws = tmp_path / "ws"
    out = runner.invoke(app, ["token", "create", "--role", "admin", "--name", "boss", "--workspace", str(ws)])
    assert out.exit_code == 0, out.output
    token = out.output.strip().splitlines()[-1]
    assert token.startswith("gp_")
    assert token.split("_", 2)[2] not in (ws / "meta.sqlite").read_bytes().decode("latin-1")
    out = runner.invoke(app, ["token", "create", "--role", "boss", "--name", "x", "--workspace", str(ws)])
    assert out.exit_code == 2
    assert "role" in out.output
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = str(ROOT / ".venv/bin/gridplan") if (ROOT / ".venv/bin/gridplan").exists() else "gridplan"
    log = tmp_path / "serve.log"
    with (
        open(log, "wb") as fh,
        subprocess.Popen(
            [exe, "serve", "--workspace", str(ws), "--port", str(port), "--log-level", "warning"],
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        ) as proc,
    ):
        try:
            import httpx

            deadline = time.monotonic() + 45
            while True:
                try:
                    r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                    break
                except httpx.TransportError:
                    assert proc.poll() is None, log.read_text()[-2000:]
                    assert time.monotonic() < deadline, "server did not start"
                    time.sleep(0.3)
            assert r.status_code == 200
            assert r.json()["status"] == "ok"
            assert httpx.get(f"http://127.0.0.1:{port}/plans", timeout=5).status_code == 401
            me = httpx.get(
                f"http://127.0.0.1:{port}/me", headers={"Authorization": f"Bearer {token}"}, timeout=10
            )
            assert me.json()["role"] == "admin"
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    assert token not in log.read_text()


def test_job_progress_is_polled_and_interrupted_jobs_fail(tmp_path: Path) -> None:
    import threading

    client = _make({"target": tmp_path / "ws"})
    svc = client.app.state.service
    planner = _auth(client, "planner", "pia")
    started, release = threading.Event(), threading.Event()

    def slow(owner: str, params: dict[str, Any], progress: Any) -> dict[str, Any]:
        progress(0.5, "half way")
        started.set()
        assert release.wait(30)
        return {"answer": params["n"] * 2}

    svc.jobs.register("test", slow)
    job_id = svc.jobs.submit("test", "pia", {"n": 21})
    assert started.wait(30)
    job = client.get(f"/jobs/{job_id}", headers=planner).json()
    assert job["state"] == "running"
    assert job["progress"] == 0.5
    assert job["message"] == "half way"
    assert [j["job_id"] for j in client.get("/jobs", headers=planner).json()] == [job_id]
    release.set()
    job = _wait(client, job_id, planner)
    assert job["state"] == "succeeded"
    assert job["result"] == {"answer": 42}
    # a job left running by a process that died (no live lease) is failed when the service starts again
    svc.meta.add_job("0123456789abcdef", "merge", "pia", {})
    svc.meta.update_job("0123456789abcdef", state="running")
    again = _make({"target": tmp_path / "ws"})
    job = again.get("/jobs/0123456789abcdef", headers=planner).json()
    assert job["state"] == "failed"
    assert "interrupted" in job["message"]
