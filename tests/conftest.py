"""Shared fixtures: the `small` sample city and its merged plan, built once per test session; the
service's two stores (``backend``: a workspace folder, and PostGIS in throwaway schemas) and a
``client`` on each."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def small_city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder with the `small` sample city (layers.gpkg, cases.csv, hazards.csv, truth, manifest)."""
    from gridplan.sample import write_sample

    out = tmp_path_factory.mktemp("small_city")
    write_sample(out, scale="small", seed=0)
    return out


@pytest.fixture(scope="session")
def small_plan(small_city: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PLAN.gpkg merged from the `small` sample city with default parameters."""
    from gridplan.layers import read_layers
    from gridplan.merge import merge_layers
    from gridplan.plans import write_plan

    plan = merge_layers(read_layers(small_city / "layers.gpkg"))
    out = tmp_path_factory.mktemp("small_plan") / "plan.gpkg"
    write_plan(plan, out)
    return out


@pytest.fixture(scope="session")
def variant_city(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Build (once per session) a generated variant of the sample city and its merged plan.

    ``variant_city("compounds")`` → folder with layers.gpkg, cases/hazards CSVs, truth, manifest
    (``gridplan sample --variant``, small scale, seed 0 or ``variant_city(name, seed)``) and
    plan.gpkg (default merge).
    """
    from gridplan.layers import read_layers
    from gridplan.merge import merge_layers
    from gridplan.plans import write_plan
    from gridplan.sample import write_sample

    built: dict[tuple[str, int], Path] = {}

    def build(name: str, seed: int = 0) -> Path:
        if (name, seed) not in built:
            out = tmp_path_factory.mktemp(f"variant_{name}_{seed}")
            write_sample(out, scale="small", seed=seed, variant=name)
            write_plan(merge_layers(read_layers(out / "layers.gpkg")), out / "plan.gpkg")
            built[name, seed] = out
        return built[name, seed]

    return build


@pytest.fixture(scope="session")
def postgis_url() -> str:
    """URL of a throwaway PostGIS database; skip (or fail in CI) when there is none."""
    url = os.environ.get("GRIDPLAN_TEST_DATABASE_URL")
    if not url:
        if os.environ.get("GRIDPLAN_REQUIRE_POSTGIS") == "1":
            pytest.fail("GRIDPLAN_REQUIRE_POSTGIS=1 but GRIDPLAN_TEST_DATABASE_URL is not set")
        pytest.skip("no PostGIS database (set GRIDPLAN_TEST_DATABASE_URL)")
    return url


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Path of a headless-capable Chromium; skip (or fail in CI) when there is none."""
    path = os.environ.get("GRIDPLAN_CHROMIUM", "/usr/bin/chromium")
    if not Path(path).exists():
        if os.environ.get("GRIDPLAN_REQUIRE_BROWSER") == "1":
            pytest.fail(f"GRIDPLAN_REQUIRE_BROWSER=1 but {path} does not exist")
        pytest.skip(f"no Chromium at {path}")
    return path


def drop_schemas(url: str, *schemas: str) -> None:
    """Drop the throwaway PostGIS schemas of a test (``postgresql://`` URLs accepted)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        for s in schemas:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{s}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["workspace", "postgis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Keyword arguments of create_app for one store (PostGIS in throwaway schemas)."""
    if request.param == "workspace":
        yield {"target": tmp_path / "ws"}
        return
    url = request.getfixturevalue("postgis_url")
    tag = secrets.token_hex(4)
    kw = {
        "target": url,
        "meta_schema": f"t_meta_{tag}",
        "plans_schema": f"t_plans_{tag}",
        "data_dir": tmp_path / "data",
        "maps_dir": tmp_path / "maps",
    }
    yield kw
    drop_schemas(url, kw["meta_schema"], kw["plans_schema"])


@pytest.fixture
def client(backend: dict[str, Any]) -> Iterator[Any]:
    """A TestClient of the service on each store."""
    from test_api import _make

    with _make(backend) as c:
        yield c
