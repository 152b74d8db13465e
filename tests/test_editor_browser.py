"""The planners' editor page in real headless Chromium (issue 18): edit, see consequences, save.

The plan is tests/common.make_plan: two communities side by side, each 4 columns × 2 rows of
500 m units (100 households each), grids ``…001`` (western two columns) and ``…002`` (eastern two)
in each community, band 300–500.  The page is driven as a planner would: clicks on units, clicks
on the map to draw a split line, the merge fields, undo/redo, save.  The answers on screen come
from the server's engine, and the saved version's diff must hold the households of the units moved.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from common import C1, C2, X0, Y0, make_plan
from pyproj import Transformer

from gridplan.api import create_app
from gridplan.api.auth import create_user_token

G11, G12, G13, G21, G22 = C1 + "001", C1 + "002", C1 + "003", C2 + "001", C2 + "002"
TO_WGS84 = Transformer.from_crs(4547, 4326, always_xy=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import uvicorn

    app = create_app(tmp_path_factory.mktemp("ws") / "ws")
    service = app.state.service
    plan_id = service.plans.save(make_plan(), created_by="test")
    tokens = {role: create_user_token(service.meta, f"{role}-1", role, days=1)[0]
              for role in ("planner", "leader")}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    yield {"url": f"http://127.0.0.1:{port}", "plan_id": plan_id, "tokens": tokens, "service": service}
    srv.should_exit = True
    th.join(timeout=10)


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def _page(browser: Any, server: dict[str, Any], role: str) -> Any:
    ctx = browser.new_context(viewport={"width": 1300, "height": 800},
                              extra_http_headers={"Authorization": f"Bearer {server['tokens'][role]}"})
    page = ctx.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda e: page.errors.append(str(e)))  # type: ignore[attr-defined]
    page.on("request", lambda r: r.url.startswith(server["url"]) or page.errors.append(r.url))  # type: ignore[attr-defined]
    return page


def _click_at(page: Any, x: float, y: float) -> None:
    """Click the map at local plan coordinates (metres from X0, Y0)."""
    lon, lat = TO_WGS84.transform(X0 + x, Y0 + y)
    pt = page.evaluate(
        """([lat, lon]) => { const m = window.gridplanEditor.map, p = m.latLngToContainerPoint([lat, lon]);
                             const r = m.getContainer().getBoundingClientRect();
                             return [r.left + p.x, r.top + p.y]; }""",
        [lat, lon],
    )
    page.mouse.click(pt[0], pt[1])


def _settled(page: Any) -> None:
    page.wait_for_function("() => window.gridplanEditor.busy === 0")


def _grid_row(page: Any, code: str) -> list[str]:
    return page.locator(f'#grids tr[data-grid="{code}"] td').all_inner_texts()


def test_a_planner_edits_sees_the_counts_and_saves_a_version(browser: Any, server: dict[str, Any]) -> None:
    page = _page(browser, server, "planner")
    page.goto(f"{server['url']}/plans/{server['plan_id']}/edit")
    page.wait_for_function("() => window.gridplanEditor.loaded === 16")
    # reassign: the two units of community 1's second column (…001) go to …002
    _click_at(page, 750, 250)
    _click_at(page, 750, 750)
    assert page.inner_text("#selected-count") == "2"
    page.fill("#target", G12)
    page.click("#do-reassign")
    _settled(page)
    assert _grid_row(page, G11)[1:5] == ["200", "500", "2", "偏少"]
    assert _grid_row(page, G12)[1:5] == ["600", "1500", "6", "偏多"]
    assert page.inner_text("#hh-moved") == "200"
    # split …002 (now columns 2–4) by a line walked south → north at x = 1500 m: the west becomes …003
    page.click("#mode-split")
    _click_at(page, 1500, -100)
    _click_at(page, 1500, 1100)
    page.fill("#split-grid", G12)
    page.click("#do-split")
    _settled(page)
    assert _grid_row(page, G13)[1] == "400"
    assert _grid_row(page, G12)[1] == "200"
    # merge community 2's two grids
    page.fill("#merge-keep", G21)
    page.fill("#merge-absorb", G22)
    page.click("#do-merge")
    _settled(page)
    assert _grid_row(page, G21)[1] == "800"
    assert page.inner_text("#hh-moved") == "800"  # U3, U4, U5, U6 to …003; four units of …002 in C2
    # undo / redo
    page.click("#undo")
    _settled(page)
    assert page.inner_text("#hh-moved") == "400"
    page.click("#redo")
    _settled(page)
    assert page.inner_text("#hh-moved") == "800"
    assert page.inner_text("#op-count") == "3"
    # save: a new version whose parent is the plan, with the households moved in its diff
    page.fill("#message", "两列调整、切分、合并")
    page.click("#save")
    page.wait_for_function("() => window.gridplanEditor.saved !== null")
    child = page.evaluate("() => window.gridplanEditor.saved")
    page.wait_for_selector(f'#history li[data-plan="{child}"]')
    svc = server["service"]
    from gridplan.plans import diff_plans

    d = diff_plans(svc.plans.load(server["plan_id"]), svc.plans.load(child))
    assert d.summary["households_moved"] == 800
    assert svc.meta.get_plan(child)["parent_id"] == server["plan_id"]
    assert page.errors == []  # type: ignore[attr-defined]


def test_an_edit_across_a_community_line_is_shown_and_blocked(browser: Any, server: dict[str, Any]) -> None:
    page = _page(browser, server, "planner")
    page.goto(f"{server['url']}/plans/{server['plan_id']}/edit")
    page.wait_for_function("() => window.gridplanEditor.loaded === 16")
    _click_at(page, 1750, 250)  # community 1's easternmost unit, to community 2's grid
    page.fill("#target", G21)
    page.click("#do-reassign")
    _settled(page)
    assert "spans 2 communities" in page.inner_text("#violations")
    assert page.is_disabled("#save")


def test_a_leader_gets_403_on_the_editor(browser: Any, server: dict[str, Any]) -> None:
    page = _page(browser, server, "leader")
    r = page.goto(f"{server['url']}/plans/{server['plan_id']}/edit")
    assert r.status == 403
