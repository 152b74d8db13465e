"""An honest API: OPTIONS with Allow, documented error statuses and bodies, paging, no server paths."""

from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from test_api import _auth

from gridplan.plans import read_plan


def test_options_answers_with_allow(client: TestClient) -> None:
    r = client.options("/plans")
    assert r.status_code == 204
    assert r.headers["allow"] == "GET, HEAD, OPTIONS"
    assert client.options("/admin/users/someone").headers["allow"] == "DELETE, OPTIONS"
    assert client.options("/admin/users").headers["allow"] == "GET, HEAD, POST, OPTIONS"
    assert client.options("/nowhere").status_code == 404


def test_every_route_documents_its_errors_with_one_body_model(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    body = spec["components"]["schemas"]["ErrorBody"]
    assert set(body["required"]) == {"detail", "error"}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            codes = set(op["responses"])
            if path not in ("/health", "/signin"):
                assert "401" in codes, (method, path, codes)
            if op.get("parameters") or op.get("requestBody"):
                assert "422" in codes, (method, path, codes)
            for code, resp in op["responses"].items():
                if code.startswith(("4", "5")):
                    schema = resp["content"]["application/json"]["schema"]
                    assert schema["$ref"].endswith("/ErrorBody"), (method, path, code)
            if path.startswith(("/admin", "/plans", "/jobs", "/uploads")):
                assert {"401", "403", "404", "413", "422"} <= codes, (method, path)
    assert "409" in spec["paths"]["/plans/{plan_id}/reimport"]["post"]["responses"]
    assert "429" in spec["paths"]["/login"]["post"]["responses"]
    # and the bodies really have that shape
    admin = _auth(client, "admin")
    r = client.post("/admin/users", json={"name": "x y", "role": "boss"}, headers=admin)
    assert r.status_code == 422
    assert set(r.json()) >= {"detail", "error", "field"}
    assert isinstance(r.json()["detail"], str)
    assert client.get("/plans/nope", headers=admin).json()["error"] == "NotFoundError"


def test_paging_past_the_end_is_an_empty_page(client: TestClient, small_plan: Path) -> None:
    svc = client.app.state.service
    plan_id = svc.plans.save(read_plan(small_plan))
    n = len(read_plan(small_plan).base_grids)
    planner = _auth(client, "planner")
    seen: list[str] = []
    url: str | None = f"/plans/{plan_id}/grids?limit=7"
    while url:
        fc = client.get(url, headers=planner).json()
        assert fc["numberMatched"] == n
        seen += [f["properties"]["grid_code"] for f in fc["features"]]
        url = fc.get("next")
    assert len(seen) == len(set(seen)) == n
    for offset in (n, n + 1, 10 * n):
        fc = client.get(f"/plans/{plan_id}/grids", params={"offset": offset}, headers=planner).json()
        assert fc["features"] == []
        assert fc["numberReturned"] == 0
        assert "next" not in fc


def test_no_server_path_in_any_error_message(client: TestClient) -> None:
    svc = client.app.state.service
    planner = _auth(client, "planner")
    secrets_of_the_server = [str(svc.data_dir), str(svc.maps_dir), "/uploads/", "/tmp/"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("x.shp", b"not a shapefile")
    bads = [
        ("layers.zip", buf.getvalue()),
        ("layers.gpkg", b"SQLite format 3\x00 but not really"),
        ("layers.zip", b"PK\x03\x04 truncated"),
    ]
    for name, data in bads:
        r = client.post(
            "/uploads/layers", files={"file": (name, data, "application/octet-stream")}, headers=planner
        )
        assert 400 <= r.status_code < 500, (name, r.status_code)
        for s in secrets_of_the_server:
            assert s not in r.text, (name, r.text)
    (svc.maps_dir / "manifest.json").write_text("{broken", encoding="utf-8")
    r = client.get("/maps/", headers=planner)
    assert r.status_code == 422
    assert r.json()["file"] == "manifest.json"
    for s in secrets_of_the_server:
        assert s not in r.text
