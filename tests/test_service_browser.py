"""A leader in real headless Chromium: sign in, the map list, a map that draws, sign out.

The service runs in a uvicorn thread on a free local port; Playwright drives Debian's Chromium
(``GRIDPLAN_CHROMIUM``).  Also: a revoked token's browser session and an expired one get 401 at
their next request, and cookie POSTs without CSRF proof are refused.
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gridplan._clock import utc_now
from gridplan.api import create_app
from gridplan.api.app import create_user_token
from gridplan.api.auth import hash_secret
from gridplan.settings import Settings

pytestmark = pytest.mark.browser

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


@pytest.fixture(scope="module")
def server(small_plan: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The service on a workspace with one published base-grid map, served by uvicorn."""
    import uvicorn

    from gridplan import maps
    from gridplan.plans import read_plan

    root = tmp_path_factory.mktemp("svc_browser")
    app = create_app(root / "ws", settings=Settings())
    svc = app.state.service
    plan = read_plan(small_plan)
    maps.publish_map(maps.base_grid_map(plan.base_grids), svc.maps_dir, title="基础网格", slug="base")
    svc.meta.add_user("lea", "leader", password_hash=hash_secret("correct horse 1"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started
    yield {"url": f"http://127.0.0.1:{port}", "app": app, "n_grids": len(plan.base_grids)}
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=ARGS)
        yield b
        b.close()


def test_leader_signs_in_opens_a_map_and_signs_out(browser: Any, server: dict[str, Any]) -> None:
    base = server["url"]
    ctx = browser.new_context()
    page = ctx.new_page()
    foreign: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: foreign.append(r.url) if not r.url.startswith((base, "data:")) else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base + "/maps/")
    assert page.url.startswith(base + "/signin?next=/maps/")
    page.fill("#username", "lea")
    page.fill("#password", "correct horse 1")
    page.click("#signin")
    page.wait_for_load_state()
    assert page.url == base + "/maps/", (page.url, page.content()[:3000])
    cookie = next(c for c in ctx.cookies() if c["name"] == "gp_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    links = page.locator("a.map")
    assert links.count() == 1
    assert links.first.inner_text() == "基础网格"
    links.first.click()
    page.wait_for_url(base + "/maps/base.html")
    page.wait_for_function("() => window.gridplan && window.gridplan.maps.length > 0")
    drawn = page.evaluate("() => window.gridplan.maps[0].layers.grids.getLayers().length")
    assert drawn == server["n_grids"]
    assert _pixels_near(page.screenshot(), (0x1F, 0x4E, 0x79)) > 200  # the grid outlines are on screen
    page.go_back()
    page.wait_for_url(base + "/maps/")
    page.click("#signout")
    page.wait_for_url(base + "/signin")
    assert not [c for c in ctx.cookies() if c["name"] == "gp_session"]
    page.goto(base + "/maps/base.html")
    assert page.url.startswith(base + "/signin?next=/maps/base.html")
    assert foreign == []
    assert errors == []
    ctx.close()


def _pixels_near(png: bytes, rgb: tuple[int, int, int], tol: int = 40) -> int:
    import io

    import numpy as np
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return int((np.abs(img - np.array(rgb)).sum(axis=2) <= tol).sum())


def _token_session(browser: Any, base: str, token: str) -> Any:
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(base + "/signin")
    page.fill("#token", token)
    page.click("#signin")
    page.wait_for_url(base + "/maps/")
    return ctx


def test_revoked_and_expired_tokens_end_their_browser_sessions(browser: Any, server: dict[str, Any]) -> None:
    base, meta = server["url"], server["app"].state.service.meta
    token, token_id, _ = create_user_token(meta, "lea", None, days=1)
    ctx = _token_session(browser, base, token)
    assert ctx.request.get(base + "/me").status == 200
    meta.revoke_token(token_id)
    r = ctx.request.get(base + "/me")
    assert r.status == 401
    assert "revoked" in r.json()["detail"]
    ctx.close()
    token, token_id, _ = create_user_token(meta, "lea", None, days=1)
    ctx = _token_session(browser, base, token)
    assert ctx.request.get(base + "/me").status == 200
    t = meta.t["tokens"]
    with meta.engine.begin() as conn:
        conn.execute(
            t.update().where(t.c.token_id == token_id).values(expires_at=utc_now() - dt.timedelta(seconds=1))
        )
    assert ctx.request.get(base + "/me").status == 401
    page = ctx.new_page()
    page.goto(base + "/maps/")
    assert page.url.startswith(base + "/signin")
    ctx.close()


def test_cookie_posts_without_csrf_proof_are_refused(browser: Any, server: dict[str, Any]) -> None:
    base, meta = server["url"], server["app"].state.service.meta
    meta.add_user("root", "admin", password_hash=hash_secret("correct horse 2"))
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(base + "/signin")
    page.fill("#username", "root")
    page.fill("#password", "correct horse 2")
    page.click("#signin")
    page.wait_for_url(base + "/maps/")
    body = {"name": "made-by-csrf", "role": "leader"}
    r = ctx.request.post(base + "/admin/users", data=body)  # cookie sent, no token, no Origin
    assert r.status == 403
    r = ctx.request.post(base + "/admin/users", data=body, headers={"Origin": "http://evil.example"})
    assert r.status == 403
    assert ctx.request.post(base + "/signout", max_redirects=0).status == 403
    csrf = next(c["value"] for c in ctx.cookies() if c["name"] == "gp_csrf")
    r = ctx.request.post(base + "/admin/users", data=body, headers={"X-CSRF-Token": csrf})
    assert r.status == 201
    # the page's own fetch (same origin: Chromium sends Origin) passes
    status = page.evaluate(
        "() => fetch('/admin/users', {method: 'POST', headers: {'Content-Type': 'application/json'},"
        " body: JSON.stringify({name: 'made-by-page', role: 'leader'})}).then(r => r.status)"
    )
    assert status == 201
    ctx.close()
