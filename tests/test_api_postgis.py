"""Service storage on real PostGIS: metadata schema, plan round trip, all-or-nothing plan saves.

(The HTTP tests in test_api.py run on PostGIS too; these look under the hood.)
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from gridplan.api.auth import TokenVerifier, issue_token
from gridplan.errors import AuthError, InputError
from gridplan.plans import read_plan
from gridplan.store import open_store
from gridplan.store.meta import MetaStore
from gridplan.store.plans import PlanRepository


@pytest.fixture
def pg(postgis_url: str) -> Iterator[tuple[MetaStore, PlanRepository]]:
    tag = secrets.token_hex(4)
    meta = MetaStore(postgis_url, schema=f"t_meta_{tag}")
    repo = PlanRepository(meta, plans_schema=f"t_plans_{tag}")
    yield meta, repo
    with meta.engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "t_meta_{tag}" CASCADE'))
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "t_plans_{tag}" CASCADE'))
    meta.close()


def test_tokens_hashed_in_postgres_and_schema_kept_apart(
    pg: tuple[MetaStore, PlanRepository], postgis_url: str
) -> None:
    meta, _ = pg
    meta.add_user("ana", "analyst")
    token, _ = issue_token(meta, "ana", ttl_s=60)
    with meta.engine.connect() as conn:
        rows = conn.execute(sa.text(f'SELECT token_id, token_hash FROM "{meta.schema}".gp_tokens')).all()
    assert len(rows) == 1
    assert rows[0][1].startswith("scrypt$")
    assert token.split("_", 2)[2] not in rows[0][1]
    assert TokenVerifier(meta).verify(token).role == "analyst"
    with pytest.raises(AuthError, match="invalid"):
        TokenVerifier(meta).verify(token[:-2] + "xx")
    # the metadata tables are not layers of the PostGIS store
    with open_store(postgis_url) as store:
        assert not any(n.startswith("gp_") for n in store.list_layers())
    # parameterised: a hostile user name is data, not SQL
    meta.add_user("x'; DROP TABLE gp_users; --", "leader")
    assert meta.get_user("x'; DROP TABLE gp_users; --")["role"] == "leader"


def test_plan_round_trip_and_paging(pg: tuple[MetaStore, PlanRepository], small_plan: Path) -> None:
    _meta, repo = pg
    plan = read_plan(small_plan)
    plan_id = repo.save(plan, created_by="pia")
    back = repo.load(plan_id)
    assert back.meta == plan.meta
    key = ["grid_code", "households"]
    pd.testing.assert_frame_equal(
        back.base_grids[key].sort_values("grid_code").reset_index(drop=True),
        plan.base_grids[key].sort_values("grid_code").reset_index(drop=True),
        check_dtype=False,
    )
    assert back.base_grids.geometry.area.sum() == pytest.approx(plan.base_grids.geometry.area.sum())
    assert len(back.h3_cells) == len(plan.h3_cells)
    assert back.h3_cells["edge"].dtype == bool
    page, total = repo.base_grids_page(plan_id, offset=3, limit=4)
    assert total == len(plan.base_grids)
    assert list(page["grid_code"]) == sorted(plan.base_grids["grid_code"])[3:7]
    assert repo.summary(plan_id)["totals"]["households"] == pytest.approx(plan.base_grids["households"].sum())
    with pytest.raises(InputError, match="append-only"):
        repo.save(plan)


def test_failed_plan_save_rolls_back_every_table(
    pg: tuple[MetaStore, PlanRepository], small_plan: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    meta, repo = pg
    plan = read_plan(small_plan)

    def boom(row: dict, **kw: object) -> None:
        raise sa.exc.OperationalError("INSERT", {}, Exception("disk full"))

    monkeypatch.setattr(meta, "register_plan", boom)
    with pytest.raises(Exception, match="rolled back"):
        repo.save(plan)
    assert sa.inspect(meta.engine).get_table_names(schema=repo.schema) == []
    assert meta.list_plans() == []


def test_failed_plan_save_in_workspace_leaves_no_file(
    tmp_path: Path, small_plan: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    meta = MetaStore(tmp_path / "ws")
    repo = PlanRepository(meta, root=tmp_path / "ws")
    plan = read_plan(small_plan)

    def boom(row: dict, **kw: object) -> None:
        raise RuntimeError("registry unavailable")

    monkeypatch.setattr(meta, "register_plan", boom)
    with pytest.raises(RuntimeError):
        repo.save(plan)
    assert list((tmp_path / "ws" / "plans").iterdir()) == []
    monkeypatch.undo()
    plan_id = repo.save(plan)
    assert [p["plan_id"] for p in meta.list_plans()] == [plan_id]
    assert repo.load(plan_id).meta == plan.meta
