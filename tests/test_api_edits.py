"""The editor engine over HTTP: preview and save of reassign / split / merge (issue 18, part 4).

The same hand-made plan as tests/test_edit.py (two communities, 16 units, 4 grids): the answers
over HTTP must be the engine's, saving makes a child version, a conflicting second save gets 409,
an illegal edit 422 with its reason, and a leader 403 — on both stores.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from common import C1, C2, make_plan
from test_api import TestClient, _auth, _make

G11, G12, G21 = C1 + "001", C1 + "002", C2 + "001"


@pytest.fixture
def edit_client(backend: dict[str, Any]) -> Iterator[tuple[TestClient, str]]:
    with _make(backend) as c:
        plan_id = c.app.state.service.plans.save(make_plan(), created_by="test")
        yield c, plan_id


def _reassign(unit: str, to: str) -> dict[str, Any]:
    return {"op": "reassign", "units": [unit], "to_grid": to}


def test_preview_says_what_an_edit_does_and_stores_nothing(edit_client: tuple[TestClient, str]) -> None:
    client, plan_id = edit_client
    planner = _auth(client, "planner")
    before = client.get("/plans", headers=planner).json()
    r = client.post(f"/plans/{plan_id}/edits/preview", json={"operations": [_reassign("U0003", G12)]},
                    headers=planner)
    assert r.status_code == 200, r.text
    body = r.json()
    grids = {g["grid_code"]: g for g in body["grids"]}
    assert (grids[G11]["households"], grids[G12]["households"]) == (300, 500)
    assert body["legal"]
    assert body["households_moved"] == 100
    assert body["units_moved"] == 1
    assert body["moved"] == [{"unit_id": "U0003", "from_grid": G11, "to_grid": G12, "households": 100.0}]
    assert client.get("/plans", headers=planner).json() == before


def test_save_makes_a_child_and_a_second_save_on_the_same_parent_gets_409(
    edit_client: tuple[TestClient, str],
) -> None:
    client, plan_id = edit_client
    planner = _auth(client, "planner")
    ops = {"operations": [_reassign("U0003", G12), {"op": "merge", "keep": C2 + "001", "absorb": C2 + "002"}],
           "message": "east block to 002; merge community 2"}
    r = client.post(f"/plans/{plan_id}/edits", json=ops, headers=planner)
    assert r.status_code == 201, r.text
    child = r.json()["plan_id"]
    assert r.json()["parent_id"] == plan_id
    summary = client.get(f"/plans/{child}", headers=planner).json()
    assert summary["plan_id"] == child
    d = client.get(f"/plans/{plan_id}/diff/{child}", headers=planner).json()
    assert d["summary"]["households_moved"] == 100 + 400
    again = {"operations": [_reassign("U0004", G12)]}
    r2 = client.post(f"/plans/{plan_id}/edits", json=again, headers=planner)
    assert r2.status_code == 409, r2.text
    assert child in r2.json()["detail"]
    r3 = client.post(f"/plans/{plan_id}/edits", json={**again, "branch": True}, headers=planner)
    assert r3.status_code == 201, r3.text


def test_illegal_edits_are_refused_with_their_reason(edit_client: tuple[TestClient, str]) -> None:
    client, plan_id = edit_client
    planner = _auth(client, "planner")
    url = f"/plans/{plan_id}/edits"
    r = client.post(url, json={"operations": [_reassign("U0007", G21)]}, headers=planner)
    assert r.status_code == 422
    assert "spans 2 communities" in r.text
    r = client.post(url + "/preview", json={"operations": [{"op": "rotate"}]}, headers=planner)
    assert r.status_code == 422
    assert "operation 1" in r.text
    assert "unknown edit operation" in r.text
    r = client.post(f"/plans/{plan_id}/edits/preview", json={"operations": []}, headers=planner)
    assert r.status_code == 422
    r = client.post(f"/plans/{plan_id}/edits/preview", json={"operations": [_reassign("U9999", G12)]},
                    headers=planner)
    assert r.status_code == 422
    assert "U9999" in r.text
    assert client.post("/plans/nope/edits/preview", json={"operations": [_reassign("U0003", G12)]},
                       headers=planner).status_code == 404


def test_leaders_and_analysts_cannot_edit(edit_client: tuple[TestClient, str]) -> None:
    client, plan_id = edit_client
    for role in ("leader", "analyst"):
        r = client.post(f"/plans/{plan_id}/edits/preview", json={"operations": [_reassign("U0003", G12)]},
                        headers=_auth(client, role))
        assert r.status_code == 403, role
