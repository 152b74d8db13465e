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
        if name.startswith("gridplan["):  # an extra naming other extras (all)
            continue
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


def test_vendored_map_assets_match_their_manifest() -> None:
    """Every vendored Leaflet file is listed with the SHA-256 it has; nothing unlisted ships."""
    from gridplan.maps.assets_vendor import VENDOR_DIR, verify

    assert verify() == []
    assert verify(VENDOR_DIR.parent / "no-such-folder") != []


def test_vendored_map_assets_cover_the_bundles_at_the_pinned_versions() -> None:
    import json

    from gridplan.maps.assets_vendor import MANIFEST, VENDOR_DIR, needed_files

    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    listed = {f["path"] for f in manifest["files"]}
    assert set(needed_files(VENDOR_DIR)) <= listed
    lock = json.loads((VENDOR_DIR.parent / "package-lock.json").read_text(encoding="utf-8"))
    pinned = {k.removeprefix("node_modules/"): v["version"] for k, v in lock["packages"].items() if k}
    assert {n: p["version"] for n, p in manifest["packages"].items()} == pinned
    for name, pkg in manifest["packages"].items():
        assert pkg["licence_files"], f"{name} is vendored without its licence"
        assert all(f in listed for f in pkg["licence_files"])


def test_a_changed_vendored_file_is_caught(tmp_path: Path) -> None:
    import shutil

    from gridplan.maps.assets_vendor import VENDOR_DIR, verify

    copy = tmp_path / "vendor"
    shutil.copytree(VENDOR_DIR, copy)
    (copy / "leaflet" / "dist" / "leaflet.js").write_text("alert(1)", encoding="utf-8")
    (copy / "extra.js").write_text("", encoding="utf-8")
    problems = verify(copy)
    assert any("leaflet.js: checksum" in p for p in problems)
    assert any("extra.js: not in MANIFEST" in p for p in problems)


def test_package_data_ships_the_vendored_assets_and_licences() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "maps/assets/vendor/**/*" in data["tool"]["setuptools"]["package-data"]["gridplan"]
    assert data["project"]["license"] == "Apache-2.0"  # SPDX, as LICENSE says
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    assert set(data["project"]["optional-dependencies"]) >= {"postgis", "service", "dask", "all"}


def test_notebook_view_of_a_map_inlines_the_assets(small_plan: Path) -> None:
    """``m`` shown in Jupyter: Leaflet inlined, not one http(s) script or stylesheet."""
    import html

    from gridplan import maps
    from gridplan.plans import read_plan

    grids = read_plan(small_plan).base_grids
    for m in (maps.base_grid_map(grids), maps.dual_grid_map(grids, grids)):
        view = m._repr_html_()
        assert view.startswith("<iframe srcdoc=")
        page = html.unescape(view)
        remote = re.findall(r"<(?:script|link)[^>]+(?:src|href)=[\"']?(?:https?:)?//[^>]*>", page)
        assert remote == [], remote[:3]
        assert 'data-gridplan-asset="leaflet"' in page
        assert "L.map(" in page or "L.map (" in page  # the map itself is in the page


def test_notebook_view_of_a_plain_folium_map_uses_cdns() -> None:
    """The check above can fail: folium's own view links its CDNs."""
    import html

    import folium

    page = html.unescape(folium.Map(location=(23.0, 113.7))._repr_html_())
    assert re.search(r"<script[^>]+src=\"https?://", page)
