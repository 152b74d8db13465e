"""Optimistic concurrency for plan versions: a re-import onto a version that already has a newer child."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from test_api import _auth, _wait

from gridplan.plans import read_plan
from gridplan.store.meta import PlanConflictError


def _edited(plan: Any, out: Path, k: int) -> bytes:
    """The plan's base grids with two grids of one community joined (the k-th pair)."""
    grids = plan.base_grids
    community = grids["community_code"].value_counts().index[0]
    a, b = grids.index[grids["community_code"] == community][2 * k : 2 * k + 2]
    edited = grids.drop(index=b)
    edited.loc[a, "geometry"] = grids.loc[a, "geometry"].union(grids.loc[b, "geometry"])
    path = out / f"edited{k}.gpkg"
    edited.to_file(path, layer="base_grids", driver="GPKG")
    return path.read_bytes()


def test_second_conflicting_reimport_gets_409_with_the_diff(
    client: TestClient, small_plan: Path, tmp_path: Path
) -> None:
    svc = client.app.state.service
    plan = read_plan(small_plan)
    parent = svc.plans.save(plan, created_by="seed")
    alice, bob = _auth(client, "planner", "alice"), _auth(client, "planner", "bob")
    first, second = _edited(plan, tmp_path, 0), _edited(plan, tmp_path, 1)

    def reimport(data: bytes, who: dict[str, str], **params: Any) -> Any:
        return client.post(
            f"/plans/{parent}/reimport",
            files={"file": ("edited.gpkg", data, "application/octet-stream")},
            params=params,
            headers=who,
        )

    r = reimport(first, alice)
    assert r.status_code == 202, r.text
    # while alice's job is still queued or running, bob is told already
    r_pending = reimport(second, bob)
    job = _wait(client, r.json()["job_id"], alice)
    assert job["state"] == "succeeded", job
    child = job["result"]["plan_id"]
    assert r_pending.status_code == 409
    # after it finished: 409 naming the newer version and what it changed
    r = reimport(second, bob)
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["error"] == "PlanConflictError"
    assert body["parent_id"] == parent
    assert body["newer_id"] == child
    assert body["newer_by"] == "alice"
    assert body["diff"]["grids_new"] == body["diff"]["grids_old"] - 1
    assert "branch=true" in body["detail"]
    assert len(svc.meta.children_of(parent)) == 1  # no sibling was made
    # onto the newer version it is fine; or a sibling on purpose
    r = reimport(second, bob, branch="true")
    assert r.status_code == 202, r.text
    job = _wait(client, r.json()["job_id"], bob)
    assert job["state"] == "succeeded", job
    assert {p["plan_id"] for p in svc.meta.children_of(parent)} == {child, job["result"]["plan_id"]}


def test_the_store_refuses_a_second_child_in_one_transaction(client: TestClient, small_plan: Path) -> None:
    from gridplan.merge import reimport_base_grids

    svc = client.app.state.service
    plan = read_plan(small_plan)
    parent_id = svc.plans.save(plan)
    path = small_plan.parent / "bg_only.gpkg"
    plan.base_grids.to_file(path, layer="base_grids", driver="GPKG")
    one = reimport_base_grids(plan, path)
    svc.plans.save(one, sole_child=True)
    two = reimport_base_grids(plan, path)
    with pytest.raises(PlanConflictError) as err:
        svc.plans.save(two, sole_child=True)
    assert err.value.newer_id == one.meta.plan_id
    assert two.meta.plan_id not in {p["plan_id"] for p in svc.meta.list_plans()}
    if svc.plans.dir is not None:
        assert not (svc.plans.dir / f"{two.meta.plan_id}.gpkg").exists()  # nothing half-stored
    assert parent_id in {p["plan_id"] for p in svc.meta.list_plans()}
