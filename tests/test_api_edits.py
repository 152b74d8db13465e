"""The editor engine over HTTP: preview and save of reassign / split / merge (issue 18, part 4).

The same hand-made plan as tests/test_edit.py (two communities, 16 units, 4 grids): the answers
over HTTP must be the engine's, saving makes a child version, a conflicting second save gets 409,
an illegal edit 422 with its reason, and a leader 403 — on both stores.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from common import C1, C2, X0, Y0, make_plan
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


def _lon_lat(x: float, y: float) -> list[float]:
    from pyproj import Transformer

    return list(Transformer.from_crs(4547, 4326, always_xy=True).transform(X0 + x, Y0 + y))


def _has_vertex(feature: dict[str, Any], x: float, y: float) -> bool:
    lon, lat = _lon_lat(x, y)
    ring = feature["geometry"]["coordinates"][0]
    return min(abs(a - lon) + abs(b - lat) for a, b in ring) < 1e-9


def test_a_vertex_move_in_lon_lat_is_previewed_with_its_new_shapes_and_saved(
    edit_client: tuple[TestClient, str],
) -> None:
    client, plan_id = edit_client
    planner = _auth(client, "planner")
    r = client.post(f"/plans/{plan_id}/edits/outline", json={"grid": G11}, headers=planner)
    assert r.status_code == 200, r.text
    assert _has_vertex(r.json(), 1000, 500)
    move = {"op": "move_vertex", "grid": G11, "from": _lon_lat(1000, 500), "to": _lon_lat(1200, 500),
            "crs": "EPSG:4326"}
    r = client.post(f"/plans/{plan_id}/edits/preview", json={"operations": [move]}, headers=planner)
    assert r.status_code == 200, r.text
    body = r.json()
    grids = {g["grid_code"]: g["households"] for g in body["grids"]}
    assert grids == {G11: 440, G12: 360}
    assert body["units_reshaped"] == 4
    assert sorted(f["properties"]["unit_id"] for f in body["changed_units"]["features"]) == [
        "U0005", "U0005-1", "U0006", "U0006-1"]
    assert body["addresses_moved"] == {"count": 4, "ids": [], "listed": False}
    r = client.post(f"/plans/{plan_id}/edits/outline", json={"grid": G11, "operations": [move]},
                    headers=planner)
    assert _has_vertex(r.json(), 1200, 500)  # the outline after the move
    r = client.post(f"/plans/{plan_id}/edits", json={"operations": [move]}, headers=planner)
    assert r.status_code == 201, r.text
    child = r.json()["plan_id"]
    d = client.get(f"/plans/{child}/diff", params={"against": "parent"}, headers=planner)
    assert d.status_code == 200, d.text
    d = d.json()
    assert d["old_plan_id"] == plan_id
    assert d["summary"]["households_moved"] == pytest.approx(40)
    for side in ("before", "after"):
        props = {f["properties"]["grid_code"]: f["properties"] for f in d[side]["features"]}
        assert {c for c, p in props.items() if p["changed"]} == {G11, G12}
        assert props[G11]["change"] == "reshaped"
        assert (props[G11]["households_old"], props[G11]["households_new"]) == (400, 440)
        assert not props[G21]["changed"]  # context around the change
    off = {**move, "from": _lon_lat(900, 500)}
    r = client.post(f"/plans/{plan_id}/edits/preview", json={"operations": [off]}, headers=planner)
    assert r.status_code == 422
    assert "no vertex of grid" in r.text


def test_a_diff_against_the_parent_of_a_first_version_is_refused(edit_client: tuple[TestClient, str]) -> None:
    client, plan_id = edit_client
    r = client.get(f"/plans/{plan_id}/diff", headers=_auth(client, "planner"))
    assert r.status_code == 422
    assert "has no parent" in r.text


def test_a_plan_merged_from_stored_layers_lists_the_addresses_and_buildings_that_change_grid(
    backend: dict[str, Any], tmp_path: Path
) -> None:
    """The plan's source upload holds B1 (30 households) and addresses A0–A2 in the piece cut off."""
    import geopandas as gpd
    import shapely

    inside, outside = (X0 + 1050, Y0 + 400), (X0 + 1400, Y0 + 100)
    gpkg = tmp_path / "layers.gpkg"
    buildings = {"building_id": ["B1", "B2"], "address_id": ["A0", "A3"], "households": [30, 70],
                 "residents": [80, 170], "floating_residents": [0, 0], "rental_rooms": [0, 0],
                 "use": ["住宅"] * 2}
    gpd.GeoDataFrame(
        buildings, geometry=[shapely.Point(inside).buffer(5), shapely.Point(outside).buffer(5)], crs=4547
    ).to_file(gpkg, layer="buildings")
    pts = [shapely.Point(inside[0] + i, inside[1]) for i in range(3)] + [shapely.Point(outside)]
    text = {k: ["x"] * 4 for k in ("town_name", "community_name", "road_name", "house_number", "building_no",
                                   "full_address")}
    gpd.GeoDataFrame({"address_id": ["A0", "A1", "A2", "A3"], **text}, geometry=pts, crs=4547).to_file(
        gpkg, layer="std_addresses"
    )
    with _make(backend) as client:
        svc = client.app.state.service
        svc.meta.add_upload({"upload_id": "feedc0de00000001", "kind": "layers", "filename": "layers.gpkg",
                             "path": str(gpkg), "features": 6, "owner": "test",
                             "layers_json": json.dumps({"buildings": 2, "std_addresses": 4})})
        plan_id = svc.plans.save(make_plan(), source_upload="feedc0de00000001", created_by="test")
        move = {"op": "move_vertex", "grid": G11, "from": [X0 + 1000, Y0 + 500], "to": [X0 + 1200, Y0 + 500]}
        r = client.post(f"/plans/{plan_id}/edits/preview", json={"operations": [move]},
                        headers=_auth(client, "planner"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["addresses_moved"] == {"count": 3, "ids": ["A0", "A1", "A2"], "listed": True}
        assert body["buildings_moved"] == {"count": 1, "ids": ["B1"], "listed": True}
        assert {g["grid_code"]: g["households"] for g in body["grids"]} == {G11: 450, G12: 350}  # 30 + 20
