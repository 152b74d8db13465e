"""Browser sign-in without a browser: cookies, CSRF, redirects, the maps home (TestClient)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from gridplan.api import create_app
from gridplan.api.app import create_user_token
from gridplan.api.auth import hash_secret
from gridplan.settings import Settings

HTML = {"accept": "text/html,application/xhtml+xml"}


def _client(tmp_path: Path) -> TestClient:
    app = create_app(tmp_path / "ws", settings=Settings())
    app.state.service.meta.add_user("lea", "leader", password_hash=hash_secret("correct horse 1"))
    return TestClient(app, follow_redirects=False)


def _signin(client: TestClient, **extra: str) -> None:
    r = client.post(
        "/signin", data={"username": "lea", "password": "correct horse 1", "next": "/maps/"}, headers=extra
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/maps/"


def test_signin_sets_strict_httponly_cookies_and_secure_behind_https(tmp_path: Path) -> None:
    client = _client(tmp_path)
    r = client.get("/maps/", headers=HTML)
    assert r.status_code == 303
    assert r.headers["location"] == "/signin?next=/maps/"
    assert client.get("/maps/").status_code == 401  # a script still gets 401 JSON
    page = client.get("/signin")
    assert page.status_code == 200
    assert page.text.index("登录") < page.text.index("Sign in")  # Chinese first
    assert "http://" not in page.text
    assert "https://" not in page.text
    _signin(client)
    set_cookie = "\n".join(
        v
        for k, v in client.post(
            "/signin", data={"username": "lea", "password": "correct horse 1"}
        ).headers.multi_items()
        if k == "set-cookie"
    )
    session_line = next(line for line in set_cookie.splitlines() if line.startswith("gp_session="))
    assert "HttpOnly" in session_line
    assert "SameSite=strict" in session_line or "SameSite=Strict" in session_line
    assert "Secure" not in session_line
    behind_proxy = client.post(
        "/signin",
        data={"username": "lea", "password": "correct horse 1"},
        headers={"x-forwarded-proto": "https"},
    )
    secure = [v for k, v in behind_proxy.headers.multi_items() if k == "set-cookie"]
    assert all("Secure" in v for v in secure)
    assert len(secure) == 2
    # wrong password: the page again, 401, with the message in both languages
    r = client.post("/signin", data={"username": "lea", "password": "wrong wrong 1"})
    assert r.status_code == 401
    assert "不正确" in r.text
    assert "Wrong" in r.text
    # next never leaves the server
    r = client.post(
        "/signin", data={"username": "lea", "password": "correct horse 1", "next": "//evil.example/x"}
    )
    assert r.headers["location"] == "/maps/"
    # a sign-in posted from another site is refused
    r = client.post(
        "/signin",
        data={"username": "lea", "password": "correct horse 1"},
        headers={"origin": "http://evil.example"},
    )
    assert r.status_code == 403


def test_maps_home_lists_published_maps_newest_first(tmp_path: Path) -> None:
    client = _client(tmp_path)
    maps_dir = client.app.state.service.maps_dir
    entries = []
    for slug, title, when in (
        ("old", "旧地图<b>", "2026-01-01T00:00:00Z"),
        ("new", "新地图", "2026-03-01T00:00:00Z"),
    ):
        (maps_dir / f"{slug}.html").write_text(f"<html>{slug}</html>", encoding="utf-8")
        entries.append({"slug": slug, "file": f"{slug}.html", "title": title, "published_at": when})
    (maps_dir / "manifest.json").write_text(json.dumps({"version": 1, "maps": entries}), encoding="utf-8")
    _signin(client)
    r = client.get("/maps/", headers=HTML)
    assert r.status_code == 200
    assert r.text.index("新地图") < r.text.index("旧地图")
    assert "&lt;b&gt;" in r.text
    assert "旧地图<b>" not in r.text
    assert 'href="/maps/new.html"' in r.text
    assert "2026-03-01 08:00 北京时间" in r.text
    assert client.get("/maps/new.html").text == "<html>new</html>"
    # bearer tokens keep working for scripts
    token, _, _ = create_user_token(client.app.state.service.meta, "bot", "leader", days=1)
    bare = TestClient(client.app)
    assert bare.get("/maps/", headers={"authorization": f"Bearer {token}"}).status_code == 200


def test_cookie_writes_need_csrf_proof(tmp_path: Path) -> None:
    client = _client(tmp_path)
    meta = client.app.state.service.meta
    meta.add_user("boss", "admin", password_hash=hash_secret("correct horse 2"))
    r = client.post("/signin", data={"username": "boss", "password": "correct horse 2"})
    assert r.status_code == 303
    body = {"name": "new-user", "role": "leader"}
    r = client.post("/admin/users", json=body)
    assert r.status_code == 403
    assert r.json()["error"] == "CSRFRefused"
    assert (
        client.post("/admin/users", json=body, headers={"origin": "http://evil.example"}).status_code == 403
    )
    assert client.post("/admin/users", json=body, headers={"x-csrf-token": "guess"}).status_code == 403
    assert client.delete("/admin/users/lea").status_code == 403
    assert client.post("/signout").status_code == 403
    # the double-submit token, or our own Origin, passes
    csrf = client.cookies.get("gp_csrf")
    assert csrf
    assert client.post("/admin/users", json=body, headers={"x-csrf-token": csrf}).status_code == 201
    r = client.post("/admin/users", json={**body, "name": "n2"}, headers={"origin": "http://testserver"})
    assert r.status_code == 201
    # reads need no proof; sign-out ends the session for good
    assert client.get("/admin/users").status_code == 200
    old = client.cookies.get("gp_session")
    r = client.post("/signout", headers={"x-csrf-token": csrf})
    assert r.status_code == 303
    assert r.headers["location"] == "/signin"
    assert client.get("/admin/users").status_code == 401  # the cookies are cleared …
    replay = TestClient(client.app, cookies={"gp_session": old})
    assert replay.get("/admin/users").status_code == 401  # … and the session is revoked server-side
