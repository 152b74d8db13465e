"""environment.yml (conda-forge) and pyproject.toml must list the same dependencies."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# PyPI name → conda-forge name where they differ; extras such as dask[distributed] expand here too.
PYPI_TO_CONDA = {"h3": "h3-py", "types-PyYAML": "types-pyyaml", "dask[distributed]": "dask,distributed"}


def _name_version(spec: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+(?:\[[^\]]+\])?)\s*(.*)$", spec)
    assert m, spec
    return m.group(1), m.group(2).strip()


def _pyproject() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    specs = list(data["project"]["dependencies"])
    for extra in data["project"]["optional-dependencies"].values():
        specs += extra
    out: dict[str, str] = {}
    for spec in specs:
        name, ver = _name_version(spec)
        conda = PYPI_TO_CONDA.get(name, re.sub(r"\[.*\]", "", name))
        for n in conda.split(","):
            out[n.lower()] = ver
    return out


def _conda() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    out: dict[str, str] = {}
    deps = list(env["dependencies"])
    for dep in env["dependencies"]:
        if isinstance(dep, dict):  # the pip: section, for packages conda-forge does not carry
            deps += [d for d in dep.get("pip", []) if not d.startswith("-e")]
    for dep in deps:
        if isinstance(dep, str):
            name, ver = _name_version(dep)
            if name not in ("python", "pip"):
                out[name.lower()] = ver
    return out


def test_environment_yml_matches_pyproject() -> None:
    py, conda = _pyproject(), _conda()
    assert sorted(set(py) - set(conda)) == [], "in pyproject.toml but not environment.yml"
    assert sorted(set(conda) - set(py)) == [], "in environment.yml but not pyproject.toml"
    differing = {n: (py[n], conda[n]) for n in py if py[n] != conda[n]}
    assert differing == {}, f"version bounds differ: {differing}"


def test_package_is_typed_and_has_console_script() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["project"]["scripts"]["gridplan"] == "gridplan.cli:main"
    assert (ROOT / "gridplan" / "py.typed").exists()
