"""Imports only point down the floors of DESIGN.md; analyses do not import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "gridplan"

FLOORS: dict[str, int] = {
    "errors": 1, "settings": 1, "crs": 1,
    "layers": 2, "_readers": 2, "validate": 2, "sample": 2, "_sample_names": 2, "_sample_geo": 2,
    "_sample_dept": 2, "_sample_events": 2,
    "merge": 3, "_overlay": 3, "_slivers": 3, "_basegrids": 3, "hexindex": 3, "plans": 3,
    "_plan_edit": 3,
    "geocode": 4, "raster": 4, "hotspots": 4, "emerging": 4, "workload": 4, "balance": 4,
    "_balance_graph": 4, "_balance_search": 4, "_balance_output": 4, "coverage": 4,
    "maps": 5, "cli": 5, "store": 5, "api": 5,
}
# analysis rooms (floor 4) and the other analysis rooms each may use (same room)
ROOM = {
    "geocode": "geocode", "raster": "hotspots", "hotspots": "hotspots", "emerging": "hotspots",
    "workload": "balance", "balance": "balance", "_balance_graph": "balance",
    "_balance_search": "balance", "_balance_output": "balance", "coverage": "coverage",
}


def _room(module: str) -> str:
    return module.split(".")[1] if module.count(".") else module


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gridplan."):
            out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[1] for a in node.names if a.name.startswith("gridplan.")}
    return out


MODULES = sorted(p for p in PKG.rglob("*.py") if p.name != "__init__.py" or p.parent != PKG)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_imports_point_down(path: Path) -> None:
    rel = path.relative_to(PKG)
    own = rel.parts[0] if len(rel.parts) > 1 else rel.stem
    assert own in FLOORS, f"{rel}: add the module to a floor in DESIGN.md and this test"
    for dep in _imports(path) - {own}:
        assert dep in FLOORS, f"{rel} imports unknown gridplan.{dep}"
        assert FLOORS[dep] <= FLOORS[own], f"{rel} (floor {FLOORS[own]}) imports up: gridplan.{dep}"
        if FLOORS[own] == FLOORS[dep] == 4:
            assert ROOM[dep] == ROOM[own], f"{rel}: analysis imports another analysis gridplan.{dep}"
