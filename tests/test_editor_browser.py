"""The planners' editor page in real headless Chromium (issue 18): edit, see consequences, save, diff.

The plan is tests/common.make_plan: two communities side by side, each 4 columns × 2 rows of
500 m units (100 households each), grids ``…001`` (western two columns) and ``…002`` (eastern two)
in each community, band 300–500.  The page is driven as a planner would: clicks on units, clicks
on the map to draw a split line, the merge fields, undo/redo, a vertex dragged by two clicks, save,
and the version history's side-by-side diff.  The answers on screen come from the server's engine,
and the saved version's diff must hold the households of the units moved.
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
from gridplan.api.auth import create_user_token, hash_secret

G11, G12, G13, G21, G22 = C1 + "001", C1 + "002", C1 + "003", C2 + "001", C2 + "002"
TO_WGS84 = Transformer.from_crs(4547, 4326, always_xy=True)
PASSWORD = "correct horse 3"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import uvicorn

    app = create_app(tmp_path_factory.mktemp("ws") / "ws")
    service = app.state.service
    plan_id = service.plans.save(make_plan(), created_by="test")
    other_id = service.plans.save(make_plan(), created_by="test")  # for a second, independent save
    tokens = {role: create_user_token(service.meta, f"{role}-1", role, days=1)[0]
              for role in ("planner", "leader")}
    service.meta.add_user("pia", "planner", password_hash=hash_secret(PASSWORD))
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
    yield {"url": f"http://127.0.0.1:{port}", "plan_id": plan_id, "other_id": other_id, "tokens": tokens,
           "service": service}
    srv.should_exit = True
    th.join(timeout=10)


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def _page(browser: Any, server: dict[str, Any], role: str | None) -> Any:
    """A fresh browser page: with *role*'s bearer token, or (``None``) with no credentials at all."""
    headers = {"Authorization": f"Bearer {server['tokens'][role]}"} if role else {}
    ctx = browser.new_context(viewport={"width": 1300, "height": 800}, extra_http_headers=headers)
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
    page = _page(browser, server, None)  # signs in on the sign-in page: a cookie session, CSRF-guarded
    editor = f"/plans/{server['plan_id']}/edit"
    page.goto(f"{server['url']}/signin?next={editor}")
    page.fill("#username", "pia")
    page.fill("#password", PASSWORD)
    page.click("#signin")
    page.wait_for_url(f"{server['url']}{editor}")
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
    # the history opens the new version side by side against its parent
    _open_diff(page, child)
    assert page.inner_text("#diff-hh-moved") == "800"  # = the 8 units moved × 100 households
    assert page.inner_text("#diff-old") == server["plan_id"]
    rows = {r[0]: r[1:] for r in _table(page, "#diff-grids")}
    assert rows == {G13: ["added", "0", "400"], G22: ["removed", "400", "0"], G11: ["reshaped", "400", "200"],
                    G12: ["reshaped", "400", "200"], G21: ["reshaped", "400", "800"]}
    assert _changed_on(page, "before") == sorted([G11, G12, G21, G22])
    assert _changed_on(page, "after") == sorted([G11, G12, G13, G21])
    _maps_follow_each_other(page)
    page.click("#diff-close")
    assert page.is_hidden("#diff")
    assert page.errors == []  # type: ignore[attr-defined]


def _open_diff(page: Any, plan_id: str) -> None:
    page.click(f'#history button.compare[data-plan="{plan_id}"]')
    page.wait_for_function("(id) => window.gridplanEditor.diffShown === id", arg=plan_id)
    _settled(page)
    assert page.is_visible("#diff-before")
    assert page.is_visible("#diff-after")


def _table(page: Any, selector: str) -> list[list[str]]:
    return page.evaluate(
        """(sel) => Array.from(document.querySelectorAll(sel + " tbody tr"))
                     .map(tr => Array.from(tr.children).map(td => td.textContent))""",
        selector,
    )


def _changed_on(page: Any, side: str) -> list[str]:
    """Grid codes drawn highlighted (changed) on the *side* map of the diff."""
    codes = page.evaluate(
        """(side) => { const out = [], i = side === "before" ? 0 : 1;
                       window.gridplanEditor.diff.layers[i].eachLayer(l => {
                         if (l.feature.properties.changed) { out.push(l.feature.properties.grid_code); } });
                       return out; }""",
        side,
    )
    return sorted(codes)


def _maps_follow_each_other(page: Any) -> None:
    """Panning and zooming one map of the diff moves the other to the same view."""
    start = page.evaluate("() => window.gridplanEditor.diff.before.getCenter()")
    box = page.locator("#diff-before").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 80, box["y"] + box["height"] / 2 + 30, steps=5)
    page.mouse.up()
    page.wait_for_timeout(400)  # the drag's inertia
    # the before map's centre, in the after map's pixels: its centre too (within a pixel's rounding)
    off, zb, za = page.evaluate(
        """() => { const d = window.gridplanEditor.diff, s = d.after.getSize();
                   const p = d.after.latLngToContainerPoint(d.before.getCenter());
                   const off = Math.hypot(p.x - s.x / 2, p.y - s.y / 2);
                   return [off, d.before.getZoom(), d.after.getZoom()]; }"""
    )
    assert zb == za
    assert off <= 1.5
    moved = page.evaluate("() => window.gridplanEditor.diff.before.getCenter()")
    assert moved != start  # the drag did pan
    page.evaluate("() => window.gridplanEditor.diff.after.zoomIn(1, { animate: false })")
    assert page.evaluate("() => window.gridplanEditor.diff.before.getZoom()") == za + 1


def test_a_planner_moves_a_vertex_and_sees_the_cut_units(browser: Any, server: dict[str, Any]) -> None:
    """Grid …001's east-edge middle vertex (1000, 500) moved 200 m east: a fifth of each unit east of it."""
    page = _page(browser, server, "planner")
    page.goto(f"{server['url']}/plans/{server['other_id']}/edit")
    page.wait_for_function("() => window.gridplanEditor.loaded === 16")
    page.fill("#vertex-grid", G11)
    page.click("#show-vertices")
    _settled(page)
    assert page.evaluate("() => window.gridplanEditor.vertices") == 8  # the outline's corners and mid-edges
    _click_at(page, 1000, 500)  # on the vertex marker
    assert page.evaluate("() => window.gridplanEditor.vertexFrom") is not None
    _click_at(page, 1200, 500)
    _settled(page)
    assert _grid_row(page, G11)[1:4] == ["440", "1100", "6"]
    assert _grid_row(page, G12)[1:4] == ["360", "900", "4"]
    assert page.inner_text("#hh-moved") == "40"
    assert page.inner_text("#units-reshaped") == "4"
    assert page.inner_text("#addr-moved") == "4"
    drawn = page.evaluate(
        "() => window.gridplanEditor.reshaped.getLayers().map(l => l.feature.properties.unit_id)"
    )
    assert sorted(drawn) == ["U0005", "U0005-1", "U0006", "U0006-1"]
    assert page.evaluate("() => window.gridplanEditor.hidden.size") == 2  # the plan's U0005, U0006
    # undo restores the plan's shapes
    page.click("#undo")
    _settled(page)
    assert page.evaluate("() => window.gridplanEditor.reshaped.getLayers().length") == 0
    assert page.evaluate("() => window.gridplanEditor.units.getLayers().length") == 16
    page.click("#redo")
    _settled(page)
    page.click("#save")
    page.wait_for_function("() => window.gridplanEditor.saved !== null")
    child = page.evaluate("() => window.gridplanEditor.saved")
    page.wait_for_selector(f'#history li[data-plan="{child}"]')
    _open_diff(page, child)
    assert page.inner_text("#diff-hh-moved") == "40"
    assert _changed_on(page, "after") == sorted([G11, G12])
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
