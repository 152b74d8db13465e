"""Authenticate before reading: the guard answers from the headers, before any body is read."""

from __future__ import annotations

import asyncio
import secrets
import warnings
from pathlib import Path
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from gridplan.api import create_app
from gridplan.api.app import create_user_token
from gridplan.settings import Settings


def _call(app: Any, method: str, path: str, headers: dict[str, str], chunks: int) -> tuple[int, int]:
    """Run *app* on one raw ASGI request whose body is *chunks* MiB; return (status, chunks read)."""
    read = [0]
    status = [0]

    async def receive() -> dict[str, Any]:
        read[0] += 1
        more = read[0] < chunks
        return {"type": "http.request", "body": b"x" * (1 << 20), "more_body": more}

    async def send(msg: dict[str, Any]) -> None:
        if msg["type"] == "http.response.start":
            status[0] = msg["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "state": {},
    }
    asyncio.run(app(scope, receive, send))
    return status[0], read[0]


def test_anonymous_upload_is_refused_unread(tmp_path: Path) -> None:
    app = create_app(tmp_path / "ws", settings=Settings(max_upload_mb=200))
    big = {"content-type": "multipart/form-data; boundary=x", "content-length": str(150 << 20)}
    status, read = _call(app, "POST", "/uploads/layers", big, chunks=150)
    assert (status, read) == (401, 0)
    # a bad token: still nothing read
    status, read = _call(
        app, "POST", "/uploads/layers", {**big, "authorization": "Bearer gp_a_b"}, chunks=150
    )
    assert (status, read) == (401, 0)
    # authenticated but over the cap by Content-Length: 413 before reading
    token, _, _ = create_user_token(app.state.service.meta, "pl", "planner", days=1)
    status, read = _call(
        app,
        "POST",
        "/uploads/layers",
        {**big, "content-length": str(300 << 20), "authorization": f"Bearer {token}"},
        chunks=300,
    )
    assert (status, read) == (413, 0)
    # a JSON body is capped far below the upload limit, before it is parsed
    admin, _, _ = create_user_token(app.state.service.meta, "root", "admin", days=1)
    json_hdr = {"content-type": "application/json", "authorization": f"Bearer {admin}"}
    status, read = _call(app, "POST", "/admin/users", {**json_hdr, "content-length": str(5 << 20)}, chunks=5)
    assert (status, read) == (413, 0)
    # a body that lies about its length (or sends none) is cut off while streaming
    status, read = _call(app, "POST", "/admin/users", json_hdr, chunks=50)
    assert status == 413
    assert read <= 2


def test_malformed_json_is_401_when_anonymous_and_422_when_not(tmp_path: Path) -> None:
    with TestClient(create_app(tmp_path / "ws", settings=Settings())) as client:
        bad = {"content-type": "application/json"}
        for path in ("/admin/users", "/admin/tokens", "/jobs/merge"):
            r = client.post(path, content=b"{not json", headers=bad)
            assert r.status_code == 401, (path, r.text)
            assert r.headers["www-authenticate"] == "Bearer"
        meta = client.app.state.service.meta
        token, _, _ = create_user_token(meta, f"adm-{secrets.token_hex(2)}", "admin", days=1)
        r = client.post(
            "/admin/users", content=b"{not json", headers={**bad, "authorization": f"Bearer {token}"}
        )
        assert r.status_code == 422
        # a leader is refused (403) before its body is looked at
        leader, _, _ = create_user_token(meta, "boss", "leader", days=1)
        r = client.post(
            "/admin/users", content=b"{not json", headers={**bad, "authorization": f"Bearer {leader}"}
        )
        assert r.status_code == 403
