"""README's role table, the code's role matrix and the running service say the same thing.

The one table read here is README.md's; it must equal :data:`gridplan.api.auth.PERMISSIONS`, and
every route of the service must answer each role 403 exactly when the table denies it.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from gridplan.api import create_app
from gridplan.api.app import create_user_token
from gridplan.api.auth import PERMISSIONS
from gridplan.api.guard import route_rules
from gridplan.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def readme_matrix() -> dict[str, set[str]]:
    """Role → permissions, from the README's table (`| `perm` | what | ✓ | … |`)."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("| permission |"))
    roles = [c.strip() for c in lines[head].strip("|").split("|")][2:]
    out: dict[str, set[str]] = {r: set() for r in roles}
    for line in lines[head + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        perm = re.fullmatch(r"`([a-z:]+)`", cells[0])
        assert perm, line
        for role, cell in zip(roles, cells[2:], strict=True):
            if cell == "✓":
                out[role].add(perm.group(1))
    return out


def test_readme_table_is_the_code_matrix() -> None:
    table = readme_matrix()
    assert set(table) == set(PERMISSIONS)
    for role, perms in PERMISSIONS.items():
        assert table[role] == set(perms), role
    assert table["leader"] == {"maps:read"}  # "leader (read published maps only)"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    app = create_app(tmp_path_factory.mktemp("roles") / "ws", settings=Settings())
    return TestClient(app, follow_redirects=False)


def test_every_route_answers_each_role_as_the_table_says(service: TestClient) -> None:
    table = readme_matrix()
    meta = service.app.state.service.meta
    headers = {
        role: {"Authorization": f"Bearer {create_user_token(meta, f'u-{role}', role, days=1)[0]}"}
        for role in table
    }
    rules = [r for r in route_rules(service.app.router.routes) if r.permission]
    assert len(rules) >= 18
    checked = 0
    for rule in rules:
        path = re.sub(r"\(\?P<[^>]+>[^)]*\)", "x" * 16, rule.pattern.pattern.strip("^$"))
        for method in sorted(rule.methods - {"HEAD"}):
            for role, perms in table.items():
                r = service.request(method, path, headers=headers[role])
                if rule.permission in perms:
                    assert r.status_code not in (401, 403), (role, method, path, r.status_code, r.text)
                else:
                    assert r.status_code == 403, (role, method, path, r.status_code)
                    assert r.json()["error"] == "Forbidden"
                checked += 1
    assert checked >= 18 * 4
