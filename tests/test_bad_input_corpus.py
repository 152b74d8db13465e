"""The bad-input corpus: every way a careful tester broke gridplan, through the CLI and the service.

Each CLI case is (command line, input maker, expected message fragments).  Every case must:

* exit 2 (the code of :class:`gridplan.errors.InputError`), never 1 (a bug) or 0 (a silent answer);
* print exactly one line on stderr, ``error: …``, naming the thing to fix (the fragments);
* create no file (outputs, temporary files, crash logs) and change none already there (a plan, a
  workspace, a file given where a folder is expected).

The service cases answer 422 with one message and leave the store as it was, on both stores
(workspace folder and PostGIS).  Then hypothesis breaks layers at random (self-intersections,
duplicate vertices, NaN/inf, Z, empty parts): each must merge to a valid plan or be refused in one
line.
"""

from __future__ import annotations

import hashlib
import io
import math
import secrets
import shutil
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gridplan.cli import app
from gridplan.errors import InputError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

Raw = dict[str, gpd.GeoDataFrame]


# ---- inputs ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw_layers(small_city: Path) -> Raw:
    """The small city's layers as stored (file CRS, file fields), to break one at a time."""
    src = small_city / "layers.gpkg"
    return {str(n): pyogrio.read_dataframe(src, layer=str(n)) for n, _ in pyogrio.list_layers(src)}


def _write_gpkg(layers: Raw, path: Path) -> Path:
    for name, gdf in layers.items():
        pyogrio.write_dataframe(gdf, path, layer=name, driver="GPKG", append=path.exists())
    return path


def _changed(raw: Raw, **changes: Callable[[gpd.GeoDataFrame], gpd.GeoDataFrame | None]) -> Raw:
    """A copy of *raw* with each named layer replaced by ``change(layer)`` (``None``: renamed away)."""
    out: Raw = {}
    for name, gdf in raw.items():
        change = changes.get(name)
        out[name] = gdf.copy() if change is None else change(gdf.copy())
    return {k: v for k, v in out.items() if v is not None}


def _poke(gdf: gpd.GeoDataFrame, row: int, value: float, axis: int = 0) -> gpd.GeoDataFrame:
    """Set one coordinate of feature *row* to *value* (NaN, inf) as a broken export would."""
    geoms = gdf.geometry.to_numpy().copy()

    def put(c: np.ndarray) -> np.ndarray:
        c = c.copy()
        c[1, axis] = value
        return c

    geoms[row] = shapely.transform(geoms[row], put)
    return gdf.set_geometry(gpd.GeoSeries(geoms, index=gdf.index, crs=gdf.crs))


def _relabel(gdf: gpd.GeoDataFrame, crs: int) -> gpd.GeoDataFrame:
    return gdf.set_crs(crs, allow_override=True)


def _to_degrees_labelled_metres(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return gdf.to_crs(4490).set_crs(4547, allow_override=True)


def _shifted(gdf: gpd.GeoDataFrame, dx: float) -> gpd.GeoDataFrame:
    return gdf.set_geometry(gdf.geometry.translate(xoff=dx))


#: Shapefile field names have at most 10 bytes: the catalog's short aliases, as real exports use.
_SHORT = {"community_code": "SQBM", "community_name": "SQMC", "town_code": "ZJBM",
          "dept_grid_id": "WGBM", "dept_grid_name": "WGMC"}


def _write_shapefile(gdf: gpd.GeoDataFrame, path: Path) -> None:
    pyogrio.write_dataframe(gdf.rename(columns=_SHORT), path, encoding="UTF-8")


def _emptied(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return gdf.iloc[:0]


def _with_z(gdf: gpd.GeoDataFrame, z: float = 12.5) -> gpd.GeoDataFrame:
    return gdf.set_geometry(gpd.GeoSeries(shapely.force_3d(gdf.geometry.to_numpy(), z), index=gdf.index,
                                          crs=gdf.crs))


@dataclass
class Inputs:
    """What a maker may use: the stored small city and plan, the broken-layer helpers, the case folder."""

    raw: Raw
    city: Path
    plan: Path
    dir: Path

    def layers(self, **changes: Callable[[gpd.GeoDataFrame], gpd.GeoDataFrame | None]) -> None:
        _write_gpkg(_changed(self.raw, **changes), self.dir / "layers.gpkg")

    def renamed(self, renames: dict[str, str]) -> None:
        _write_gpkg({renames.get(k, k): v for k, v in self.raw.items()}, self.dir / "layers.gpkg")

    def copy_plan(self, name: str = "plan.gpkg") -> None:
        shutil.copyfile(self.plan, self.dir / name)

    def copy_city(self) -> None:
        shutil.copyfile(self.city / "layers.gpkg", self.dir / "layers.gpkg")

    def shapefile(self, layer: str, *, drop: tuple[str, ...]) -> None:
        """Write *layer* as ``<layer>.shp`` and delete the sidecars in *drop* (``.dbf``, ``.prj``)."""
        _write_shapefile(self.raw[layer], self.dir / f"{layer}.shp")
        for ext in drop:
            (self.dir / f"{layer}{ext}").unlink()

    def file(self, name: str, text: str = "not a folder\n") -> None:
        (self.dir / name).write_text(text, encoding="utf-8")

    def workspace(self) -> None:
        from gridplan.store.meta import MetaStore

        MetaStore(self.dir / "ws").close()


@dataclass(frozen=True)
class Case:
    """One bad-input probe: argv (``{d}`` is the case folder), how to make its inputs, what it must say."""

    id: str
    argv: tuple[str, ...]
    make: Callable[[Inputs], None]
    expect: tuple[str, ...]
    refuse: tuple[str, ...] = ()  # fragments the message must NOT hold (blaming the wrong thing)
    process: bool = False  # run as a real process (usage errors come from the console script)


def _merge(*extra: str) -> tuple[str, ...]:
    return ("merge", "{d}/layers.gpkg", "--out", "{d}/plan.gpkg", "--overwrite", *extra)


def _city_and_plan(i: Inputs) -> None:
    i.copy_city()
    i.copy_plan()


CLI_CASES: tuple[Case, ...] = (
    # -- a layer whose coordinates contradict its CRS -------------------------------------------
    Case("merge-metres-labelled-4326", _merge(),
         lambda i: (i.layers(dept_police=lambda g: _relabel(g, 4326)), i.copy_plan()),
         ("layer dept_police", "metres", "EPSG:4547")),
    Case("validate-metres-labelled-4326", ("validate", "{d}/layers.gpkg"),
         lambda i: i.layers(dept_police=lambda g: _relabel(g, 4326)),
         ("layer dept_police", "metres")),
    Case("merge-degrees-labelled-metres", _merge(),
         lambda i: (i.layers(dept_fire=_to_degrees_labelled_metres), i.copy_plan()),
         ("layer dept_fire", "degrees")),
    Case("merge-department-far-away", _merge(),
         lambda i: (i.layers(dept_civil=lambda g: _shifted(g, 400_000.0)), i.copy_plan()),
         ("layer dept_civil", "km away")),
    # -- coordinates that are not numbers ---------------------------------------------------------
    Case("validate-infinite-coordinate", ("validate", "{d}/layers.gpkg"),
         lambda i: i.layers(buildings=lambda g: _poke(g, 3, math.inf)),
         ("layer buildings", "row 4", "infinite")),
    Case("merge-infinite-coordinate", _merge(),
         lambda i: (i.layers(dept_police=lambda g: _poke(g, 0, -math.inf, 1)), i.copy_plan()),
         ("layer dept_police", "row 1", "infinite")),
    Case("merge-nan-coordinate", _merge(),
         lambda i: (i.layers(communities=lambda g: _poke(g, 2, math.nan)), i.copy_plan()),
         ("layer communities", "row 3", "NaN")),
    # -- empty and unknown layers, incomplete shapefiles ------------------------------------------
    Case("validate-empty-layer", ("validate", "{d}/layers.gpkg"),
         lambda i: i.layers(communities=_emptied), ("layer communities", "empty")),
    Case("merge-empty-layer", _merge(),
         lambda i: (i.layers(dept_police=_emptied), i.copy_plan()), ("layer dept_police", "empty")),
    Case("merge-misspelt-layer", _merge(),
         lambda i: (i.renamed({"communities": "comunities"}), i.copy_plan()),
         ("comunities", "communities")),
    Case("validate-no-known-layer", ("validate", "{d}/layers.gpkg"),
         lambda i: _write_gpkg({"grids_a": i.raw["dept_police"], "grids_b": i.raw["dept_fire"]},
                               i.dir / "layers.gpkg"),
         ("grids_a", "communities", "dept_<name>")),
    Case("validate-unknown-layer-option", ("validate", "{d}/layers.gpkg", "--layers", "comunities"),
         lambda i: i.copy_city(), ("comunities", "communities")),
    Case("validate-shapefile-without-dbf", ("validate", "{d}/communities.shp"),
         lambda i: i.shapefile("communities", drop=(".dbf",)), ("communities.shp", ".dbf")),
    Case("validate-shapefile-without-prj", ("validate", "{d}/communities.shp"),
         lambda i: i.shapefile("communities", drop=(".prj",)), ("communities.shp", ".prj")),
    # -- parameters, refused before any work -------------------------------------------------------
    Case("merge-band-0-1", _merge("--households-min", "0", "--households-max", "1"), _city_and_plan,
         ("households_max", "300")),
    Case("merge-band-inverted", _merge("--households-min", "500", "--households-max", "300"),
         _city_and_plan, ("households_min", "500", "300")),
    Case("merge-band-negative", _merge("--households-min", "-5"), _city_and_plan, ("households_min",)),
    Case("merge-h3-res-out-of-range", _merge("--h3-res", "16"), _city_and_plan, ("h3-res", "15")),
    Case("merge-min-area-negative", _merge("--min-area-m2", "-1"), _city_and_plan, ("min_area_m2",)),
    Case("coverage-radius-0",
         ("coverage", "{d}/layers.gpkg", "--radius-m", "0", "--posts", "3", "--out", "{d}/cover.gpkg"),
         lambda i: i.copy_city(), ("radius_m",), refuse=("spacing",)),
    Case("coverage-radius-nan",
         ("coverage", "{d}/layers.gpkg", "--radius-m", "nan", "--cover-all", "--out", "{d}/cover.gpkg"),
         lambda i: i.copy_city(), ("radius_m",), refuse=("spacing",)),
    Case("coverage-posts-0",
         ("coverage", "{d}/layers.gpkg", "--posts", "0", "--out", "{d}/cover.gpkg"),
         lambda i: i.copy_city(), ("posts",)),
    Case("reverse-geocode-radius-negative",
         ("reverse-geocode", "{d}/pts.csv", "--layers", "{d}/layers.gpkg", "--radius-m", "-3",
          "--out", "{d}/out.csv"),
         lambda i: (i.copy_city(), i.file("pts.csv", "lon,lat\n113.75,23.02\n")), ("radius", "0")),
    Case("reverse-geocode-radius-0",
         ("reverse-geocode", "{d}/pts.csv", "--layers", "{d}/layers.gpkg", "--radius-m", "0",
          "--out", "{d}/out.csv"),
         lambda i: (i.copy_city(), i.file("pts.csv", "lon,lat\n113.75,23.02\n")), ("radius_m",)),
    Case("balance-staff-0",
         ("balance", "{d}/plan.gpkg", "--layers", "{d}/layers.gpkg", "--staff", "0",
          "--out", "{d}/proposal.gpkg"),
         _city_and_plan, ("staff",)),
    Case("balance-staff-band-inverted",
         ("balance", "{d}/plan.gpkg", "--layers", "{d}/layers.gpkg", "--staff", "100",
          "--min-staff", "5", "--max-staff", "2", "--out", "{d}/proposal.gpkg"),
         _city_and_plan, ("max_staff",)),
    Case("heatmap-cell-nan",
         ("heatmap", "{d}/events.csv", "--plan", "{d}/plan.gpkg", "--cell-m", "nan", "--out", "{d}/heat.tif"),
         lambda i: (i.copy_plan(), i.file("events.csv", "lon,lat\n113.75,23.02\n")), ("cell",)),
    Case("hotspots-distance-band-0",
         ("hotspots", "{d}/events.csv", "--plan", "{d}/plan.gpkg", "--distance-band-m", "0",
          "--out", "{d}/hot.gpkg"),
         lambda i: (i.copy_plan(), i.file("events.csv", "lon,lat\n113.75,23.02\n")), ("distance_band_m",)),
    Case("balance-out-folder-missing",
         ("balance", "{d}/plan.gpkg", "--layers", "{d}/layers.gpkg", "--staff", "100",
          "--out", "{d}/nowhere/proposal.gpkg"),
         _city_and_plan, ("nowhere", "does not exist")),
    Case("validate-out-is-a-folder", ("validate", "{d}/layers.gpkg", "--out", "{d}/qa.csv"),
         lambda i: (i.copy_city(), (i.dir / "qa.csv").mkdir()), ("qa.csv", "folder")),
    Case("usage-h3-res-box", _merge("--h3-res", "99"), _city_and_plan, ("h3",), process=True),
    Case("usage-missing-out", ("merge", "{d}/layers.gpkg"), lambda i: i.copy_city(), ("--out",),
         process=True),
    # -- paths: a file where a folder is expected, a folder where a file is ------------------------
    Case("publish-out-is-a-file", ("publish", "--plan", "{d}/plan.gpkg", "--out", "{d}/maps"),
         lambda i: (i.copy_plan(), i.file("maps")), ("maps", "not a folder")),
    Case("token-create-workspace-is-a-file",
         ("token", "create", "--name", "alice", "--role", "admin", "-w", "{d}/ws"),
         lambda i: i.file("ws"), ("ws", "not a folder")),
    Case("serve-workspace-is-a-file", ("serve", "-w", "{d}/ws"), lambda i: i.file("ws"),
         ("ws", "not a folder")),
    Case("merge-out-is-a-folder", ("merge", "{d}/layers.gpkg", "--out", "{d}/plans"),
         lambda i: (i.copy_city(), (i.dir / "plans").mkdir()), ("plans", "folder")),
    Case("merge-out-folder-missing", ("merge", "{d}/layers.gpkg", "--out", "{d}/nowhere/plan.gpkg"),
         lambda i: i.copy_city(), ("nowhere", "does not exist")),
    Case("merge-input-missing", ("merge", "{d}/nothing.gpkg", "--out", "{d}/plan.gpkg"),
         lambda i: None, ("nothing.gpkg", "not found")),
    Case("geocode-out-is-a-folder",
         ("geocode", "{d}/cases.csv", "--layers", "{d}/layers.gpkg", "--out", "{d}/res"),
         lambda i: (i.copy_city(), i.file("cases.csv", "address\n东莞市\n"), (i.dir / "res").mkdir()),
         ("res", "folder")),
    Case("geocode-no-address-column",
         ("geocode", "{d}/cases.csv", "--layers", "{d}/layers.gpkg", "--out", "{d}/out.csv"),
         lambda i: (i.copy_city(), i.file("cases.csv", "foo\nbar\n")), ("cases.csv", "field address")),
    Case("reverse-geocode-no-lon-lat",
         ("reverse-geocode", "{d}/pts.csv", "--layers", "{d}/layers.gpkg", "--out", "{d}/out.csv"),
         lambda i: (i.copy_city(), i.file("pts.csv", "x,y\n1,2\n")), ("pts.csv", "field lon")),
    # -- names the API refuses ---------------------------------------------------------------------
    Case("token-create-bad-name",
         ("token", "create", "--name", "../../x y", "--role", "admin", "-w", "{d}/ws"),
         lambda i: i.workspace(), ("--name", "../../x y")),
    Case("token-create-unknown-role",
         ("token", "create", "--name", "alice", "--role", "boss", "-w", "{d}/ws"),
         lambda i: i.workspace(), ("--role", "boss")),
)


def _snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file under *folder* (hidden ones too): mode and content hash."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(folder))] = (p.stat().st_mode, hashlib.sha256(p.read_bytes()).hexdigest())
    return out


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str


def _run(argv: list[str], *, process: bool, cwd: Path) -> Outcome:
    if process:
        script = "import sys; sys.argv[0] = 'gridplan'; from gridplan.cli import main; main()"
        res = subprocess.run(
            [sys.executable, "-c", script, *argv],
            cwd=cwd, capture_output=True, text=True, timeout=300,
        )
        return Outcome(res.returncode, res.stdout, res.stderr)
    r = CliRunner().invoke(app, argv)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return Outcome(r.exit_code, r.stdout, r.stderr)


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """A probe of ``serve`` that got past its checks would start a server: fail instead."""
    import uvicorn

    def refuse(*_a: Any, **_k: Any) -> None:
        raise AssertionError("serve started a server on bad input")

    monkeypatch.setattr(uvicorn, "run", refuse)


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_cli_bad_input_is_one_line_exit_2_and_changes_nothing(
    case: Case, raw_layers: Raw, small_city: Path, small_plan: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, no_server: None,
) -> None:
    folder = tmp_path / "case"
    folder.mkdir()
    crash = tmp_path / "tmp"
    crash.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(crash))
    monkeypatch.setenv("TMPDIR", str(crash))
    case.make(Inputs(raw_layers, small_city, small_plan, folder))
    before = _snapshot(folder)
    res = _run([a.replace("{d}", str(folder)) for a in case.argv], process=case.process, cwd=folder)
    lines = res.stderr.strip().splitlines()
    assert res.code == 2, (res.code, res.stderr, res.stdout)
    assert len(lines) == 1, res.stderr
    line = lines[0]
    assert line.startswith("error: "), line
    assert "Traceback" not in res.stderr + res.stdout
    for fragment in case.expect:
        assert fragment in line, (fragment, line)
    for wrong in case.refuse:
        assert wrong not in line, (wrong, line)
    assert _snapshot(folder) == before, "a refused command created or changed a file"
    assert not list(crash.iterdir()), "a crash log was written"


# ---- cases that must work: 3D input is its 2D version ---------------------------------------------


def test_cli_merge_of_3d_layers_equals_merge_of_2d(raw_layers: Raw, tmp_path: Path) -> None:
    flat = _write_gpkg(raw_layers, tmp_path / "flat.gpkg")
    solid = _write_gpkg({k: _with_z(v, 7.0 + len(k)) for k, v in raw_layers.items()}, tmp_path / "z.gpkg")
    for src, out in ((flat, "flat_plan.gpkg"), (solid, "z_plan.gpkg")):
        r = CliRunner().invoke(app, ["merge", str(src), "--out", str(tmp_path / out)])
        assert r.exit_code == 0, r.output
    a = pyogrio.read_dataframe(tmp_path / "flat_plan.gpkg", layer="base_grids")
    b = pyogrio.read_dataframe(tmp_path / "z_plan.gpkg", layer="base_grids")
    assert not shapely.has_z(b.geometry.to_numpy()).any()
    assert np.isfinite(shapely.get_coordinates(b.geometry.to_numpy())).all()
    assert a.drop(columns="geometry").equals(b.drop(columns="geometry"))
    assert shapely.equals_exact(a.geometry.to_numpy(), b.geometry.to_numpy(), tolerance=0).all()


def test_cli_publish_of_a_3d_plan_publishes(small_plan: Path, tmp_path: Path) -> None:
    plan3d = tmp_path / "plan3d.gpkg"
    shutil.copyfile(small_plan, plan3d)
    for layer in ("base_grids", "atomic_units"):
        gdf = pyogrio.read_dataframe(small_plan, layer=layer)
        pyogrio.write_dataframe(_with_z(gdf, 3.0), plan3d, layer=layer, driver="GPKG")
    r = CliRunner().invoke(app, ["publish", "--plan", str(plan3d), "--out", str(tmp_path / "maps")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "maps" / "index.html").exists()


def test_usage_errors_are_one_line_but_help_is_still_help() -> None:
    """The one-line usage error must not swallow ``--help`` or the help shown for no arguments."""
    helped = CliRunner().invoke(app, ["merge", "--help"])
    assert helped.exit_code == 0
    assert "--households-max" in helped.stdout
    bare = CliRunner().invoke(app, [])
    assert "merge" in bare.stdout + bare.stderr
    assert "error:" not in bare.stdout + bare.stderr
    unknown = CliRunner().invoke(app, ["merge", "x.gpkg", "--out", "p.gpkg", "--no-such-option"])
    assert unknown.exit_code == 2
    assert unknown.stderr.strip().splitlines() == [
        "error: No such option: --no-such-option (see 'gridplan merge --help')"
    ]


def test_serve_without_the_service_extra_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn → ImportError
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    r = CliRunner().invoke(app, ["serve", "-w", str(tmp_path / "ws")])
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2, r.output
    assert len(lines) == 1, lines
    assert "gridplan[service]" in lines[0], lines
    assert not list(tmp_path.glob("gridplan-crash-*"))


# ---- the service: refused at upload or at job start, 422, one message, nothing stored -------------


@pytest.fixture
def api(backend: dict[str, Any]) -> Iterator[tuple[TestClient, dict[str, str], Path]]:
    """A service on either store (conftest's ``backend``), an admin's headers and its data folder."""
    from test_api import _make

    from gridplan.api.auth import create_user_token

    with _make(backend) as client:
        token, _, _ = create_user_token(client.app.state.service.meta, "admin1", "admin", days=1)
        yield client, {"Authorization": f"Bearer {token}"}, Path(backend.get("data_dir", backend["target"]))


def _gpkg_bytes(layers: Raw, tmp: Path) -> bytes:
    path = tmp / f"up-{secrets.token_hex(3)}.gpkg"
    _write_gpkg(layers, path)
    data = path.read_bytes()
    path.unlink()
    return data


def _shapefile_zip(gdf: gpd.GeoDataFrame, name: str, tmp: Path, drop: tuple[str, ...]) -> bytes:
    folder = tmp / f"shp-{secrets.token_hex(3)}"
    folder.mkdir()
    _write_shapefile(gdf, folder / f"{name}.shp")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted(folder.iterdir()):
            if p.suffix not in drop:
                zf.write(p, p.name)
    return buf.getvalue()


UploadMaker = Callable[[Raw, Path], tuple[str, bytes]]

UPLOAD_CASES: tuple[tuple[str, UploadMaker, tuple[str, ...]], ...] = (
    ("zero-features", lambda r, t: ("layers.gpkg", _gpkg_bytes(_changed(r, dept_police=_emptied), t)),
     ("layer dept_police", "empty")),
    ("shapefile-without-dbf",
     lambda r, t: ("police.zip", _shapefile_zip(r["dept_police"], "dept_police", t, (".dbf",))),
     ("dept_police.shp", ".dbf")),
    ("shapefile-without-prj",
     lambda r, t: ("police.zip", _shapefile_zip(r["dept_police"], "dept_police", t, (".prj",))),
     ("dept_police.shp", ".prj")),
    ("unknown-layer-names",
     lambda r, t: ("layers.gpkg", _gpkg_bytes({"grids_a": r["dept_police"], "grids_b": r["dept_fire"]}, t)),
     ("grids_a", "communities", "dept_<name>")),
    ("misspelt-layer-name",
     lambda r, t: ("layers.gpkg", _gpkg_bytes({("comunities" if k == "communities" else k): v
                                               for k, v in r.items()}, t)),
     ("comunities", "communities")),
    ("infinite-coordinate",
     lambda r, t: ("layers.gpkg", _gpkg_bytes(_changed(r, dept_police=lambda g: _poke(g, 0, math.inf)), t)),
     ("layer dept_police", "infinite")),
    ("metres-labelled-4326",
     lambda r, t: ("layers.gpkg", _gpkg_bytes(_changed(r, dept_police=lambda g: _relabel(g, 4326)), t)),
     ("layer dept_police", "metres")),
)


def _stored(data: Path) -> list[str]:
    """Every file and folder under the service's uploads folder."""
    return sorted(str(p.relative_to(data)) for p in (data / "uploads").rglob("*"))


@pytest.mark.parametrize("case", UPLOAD_CASES, ids=[c[0] for c in UPLOAD_CASES])
def test_api_bad_upload_is_422_one_message_nothing_stored(
    case: tuple[str, UploadMaker, tuple[str, ...]], api: tuple[TestClient, dict[str, str], Path],
    raw_layers: Raw, tmp_path: Path,
) -> None:
    client, headers, data = api
    _, make, expect = case
    filename, body = make(raw_layers, tmp_path)
    before = _stored(data)
    r = client.post("/uploads/layers", files={"file": (filename, body)}, headers=headers)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str), detail
    assert "\n" not in detail, detail
    for fragment in expect:
        assert fragment in detail, (fragment, detail)
    assert _stored(data) == before


def _upload_city(client: TestClient, headers: dict[str, str], small_city: Path) -> str:
    body = (small_city / "layers.gpkg").read_bytes()
    r = client.post("/uploads/layers", files={"file": ("layers.gpkg", body)}, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["upload_id"])


@pytest.mark.parametrize(
    ("params", "expect"),
    [
        ({"households_min": 0, "households_max": 1}, ("households_max", "300")),
        ({"households_min": 500, "households_max": 300}, ("households_min", "500", "300")),
    ],
    ids=["band-0-1", "band-inverted"],
)
def test_api_bad_merge_parameters_are_422_with_the_cli_message(
    params: dict[str, Any], expect: tuple[str, ...], api: tuple[TestClient, dict[str, str], Path],
    small_city: Path, tmp_path: Path,
) -> None:
    client, headers, _ = api
    upload = _upload_city(client, headers, small_city)
    jobs_before = client.get("/jobs", headers=headers).json()
    r = client.post("/jobs/merge", json={"upload_id": upload, **params}, headers=headers)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str), detail
    assert "\n" not in detail, detail
    for fragment in expect:
        assert fragment in detail, (fragment, detail)
    assert client.get("/jobs", headers=headers).json() == jobs_before
    # the CLI says the same words
    from gridplan.params import merge_params

    with pytest.raises(InputError) as cli:
        merge_params(**{"households_min": 300, "households_max": 500, "min_area_m2": 50.0,
                        "h3_res": 10, **params})
    assert str(cli.value) in detail


# ---- hypothesis: randomly broken departmental grids -----------------------------------------------

X0, Y0 = 420_000.0, 2_540_000.0


def _tiny_layers(police: list[shapely.Geometry]) -> Raw:
    """A 1 km square city, two communities, 40 buildings, a clean fire layer and the given police grids."""
    left, right = shapely.box(X0, Y0, X0 + 500, Y0 + 1000), shapely.box(X0 + 500, Y0, X0 + 1000, Y0 + 1000)
    city = shapely.box(X0, Y0, X0 + 1000, Y0 + 1000)
    crs = 4547
    xy = [(X0 + 50 + 100 * (k % 10) - 1, Y0 + 100 + 200 * (k // 10)) for k in range(40)]
    return {
        "city": gpd.GeoDataFrame({"name": ["东莞市"], "county_code": ["441900"]}, geometry=[city], crs=crs),
        "communities": gpd.GeoDataFrame(
            {"community_code": ["441900119001", "441900119002"], "community_name": ["甲社区", "乙社区"],
             "town_code": ["441900119", "441900119"]}, geometry=[left, right], crs=crs),
        "buildings": gpd.GeoDataFrame(
            {"building_id": [f"B{k}" for k in range(40)], "address_id": [f"A{k}" for k in range(40)],
             "households": [20] * 40, "residents": [50] * 40, "floating_residents": [5] * 40,
             "rental_rooms": [1] * 40, "use": ["住宅"] * 40},
            geometry=[shapely.box(x, y, x + 2, y + 2) for x, y in xy], crs=crs),
        "dept_fire": gpd.GeoDataFrame(
            {"dept_grid_id": ["F1", "F2"], "dept_grid_name": ["消防1", "消防2"]},
            geometry=[shapely.box(X0, Y0, X0 + 1000, Y0 + 400),
                      shapely.box(X0, Y0 + 400, X0 + 1000, Y0 + 1000)],
            crs=crs),
        "dept_police": gpd.GeoDataFrame(
            {"dept_grid_id": [f"P{k}" for k in range(len(police))],
             "dept_grid_name": [f"警务{k}" for k in range(len(police))]},
            geometry=police, crs=crs),
    }


_coord = st.floats(0, 1000, allow_nan=False, allow_infinity=False)
_special = st.sampled_from([math.nan, math.inf, -math.inf])


@st.composite
def _broken_polygon(draw: st.DrawFn) -> shapely.Geometry:
    """A police grid broken the ways exports break: bow-ties, repeated vertices, NaN/inf, Z, empty parts."""
    x0, y0 = draw(_coord), draw(_coord)
    w, h = draw(st.floats(5, 500)), draw(st.floats(5, 500))
    ring = [(x0, y0), (x0 + w, y0), (x0 + w, y0 + h), (x0, y0 + h)]
    kind = draw(st.sampled_from(["bowtie", "duplicates", "special", "z", "empty_part", "spike", "clean"]))
    if kind == "bowtie":
        ring[1], ring[2] = ring[2], ring[1]
    elif kind == "duplicates":
        k = draw(st.integers(0, 3))
        ring = ring[: k + 1] + [ring[k]] * draw(st.integers(1, 4)) + ring[k + 1 :]
    elif kind == "spike":
        ring.insert(2, (x0 + w + draw(st.floats(0, 300)), y0 + h / 2))
        ring.insert(3, (x0 + w, y0 + h / 2))
    coords = [(X0 + x, Y0 + y) for x, y in ring]
    if kind == "z":
        poly: shapely.Geometry = shapely.Polygon([(x, y, draw(st.floats(-50, 50))) for x, y in coords])
    else:
        poly = shapely.Polygon(coords)
    if kind == "special":  # an inner vertex (the ring stays closed) becomes NaN or ±inf
        k, value, axis = draw(st.integers(1, 2)), draw(_special), draw(st.integers(0, 1))

        def put(c: np.ndarray) -> np.ndarray:
            c = c.copy()
            c[k, axis] = value
            return c

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            poly = shapely.transform(poly, put)
    if kind == "empty_part":
        poly = shapely.GeometryCollection([poly, shapely.Polygon()]) if draw(st.booleans()) else \
            shapely.MultiPolygon([poly, shapely.Polygon()])
    return poly


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(police=st.lists(_broken_polygon(), min_size=1, max_size=6))
def test_randomly_broken_layers_merge_to_a_valid_plan_or_are_refused_in_one_line(
    police: list[shapely.Geometry], tmp_path: Path,
) -> None:
    from gridplan.layers import read_layers
    from gridplan.merge import merge_layers
    from gridplan.plans import read_plan, write_plan

    folder = tmp_path / secrets.token_hex(4)
    folder.mkdir()
    src = folder / "layers.gpkg"
    try:
        _write_gpkg(_tiny_layers(police), src)
    except Exception:  # GDAL itself cannot write this geometry: nothing for gridplan to read
        return
    try:
        plan = merge_layers(read_layers(src), min_area_m2=1.0)
    except InputError as exc:
        message = str(exc)
    else:
        message = ""
    if message:  # refused: one line naming what to fix
        assert "\n" not in message, message
        assert message.startswith(str(src)) or "layer" in message, message
        return
    write_plan(plan, folder / "plan.gpkg")
    back = read_plan(folder / "plan.gpkg")
    for layer in (back.atomic_units, back.base_grids):
        geoms = layer.geometry.to_numpy()
        assert shapely.is_valid(geoms).all()
        assert not shapely.has_z(geoms).any()
        assert np.isfinite(shapely.get_coordinates(geoms)).all()
    assert abs(shapely.area(back.base_grids.geometry.to_numpy()).sum() - 1e6) < 1.0
    assert back.base_grids["households"].sum() == 800
