"""Tests for gridplan.plans: plan files (atomic, immutable), diff and re-import of edited grids."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from common import C1, C2, X0, Y0, make_plan
from shapely import box

from gridplan.errors import CRSError, InputError
from gridplan.merge import reimport_base_grids
from gridplan.plans import (
    PLAN_LAYERS,
    Plan,
    PlanMeta,
    diff_plans,
    new_plan_id,
    read_plan,
    read_plan_meta,
    write_plan,
)


@pytest.fixture(scope="module")
def plan() -> Plan:
    return make_plan()


def export_grids(gdf: gpd.GeoDataFrame, path: Path, *, layer: str = "base_grids") -> Path:
    pyogrio.write_dataframe(gdf, path, layer=layer)
    return path


def set_geom(grids: gpd.GeoDataFrame, code: str, geom: object) -> gpd.GeoDataFrame:
    out = grids.copy()
    out.loc[out["grid_code"] == code, "geometry"] = geom
    return out


# ---------------------------------------------------------------------------------------------
# write / read
# ---------------------------------------------------------------------------------------------


def test_round_trip(plan: Plan, tmp_path: Path) -> None:
    path = write_plan(plan, tmp_path / "plan.gpkg")
    back = read_plan(path)
    assert back.meta == plan.meta
    for name, frame in plan.layers().items():
        got = back.layers()[name]
        assert len(got) == len(frame), name
        assert list(got.columns) == list(frame.columns), name
    assert back.base_grids["grid_code"].tolist() == plan.base_grids["grid_code"].tolist()
    assert back.base_grids.geom_equals(plan.base_grids.geometry).all()
    assert back.base_grids.crs.to_epsg() == 4547
    pd.testing.assert_frame_equal(back.h3_cells, plan.h3_cells, check_dtype=False)
    assert back.h3_cells["edge"].dtype == bool
    assert back.atomic_units["households"].sum() == 1600
    assert back.qa_issues.geometry.iloc[0].equals(plan.qa_issues.geometry.iloc[0])


def test_gdal_opens_plan(plan: Plan, tmp_path: Path) -> None:
    """The file is a plain GeoPackage: layers, SRS and feature counts as GDAL reports them."""
    path = write_plan(plan, tmp_path / "plan.gpkg")
    layers = dict(pyogrio.list_layers(path).tolist())
    assert set(layers) == {*PLAN_LAYERS, "plan_meta"}
    assert layers["h3_cells"] is None
    assert layers["plan_meta"] is None
    for name, n in (("atomic_units", 16), ("base_grids", 4), ("h3_cells", len(plan.h3_cells))):
        info = pyogrio.read_info(path, layer=name)
        assert info["features"] == n
    info = pyogrio.read_info(path, layer="base_grids")
    assert info["crs"] == "EPSG:4547"
    assert info["geometry_type"] in ("Polygon", "MultiPolygon")


def test_extra_tables_round_trip(plan: Plan, tmp_path: Path) -> None:
    moves = pd.DataFrame(
        {
            "unit_id": ["U0001"],
            "from_grid": [C1 + "001"],
            "to_grid": [C1 + "002"],
            "households": [100],
            "residents": [250],
            "reason": ["workload"],
        }
    )
    metrics = pd.DataFrame({"metric": ["cv"], "scope": ["all"], "before": [0.4], "after": [0.2]})
    prop = dataclasses.replace(
        plan,
        meta=dataclasses.replace(
            plan.meta, plan_id=new_plan_id(), kind="proposal", parent_id=plan.meta.plan_id
        ),
        extra_tables={"moves": moves, "metrics": metrics},
    )
    back = read_plan(write_plan(prop, tmp_path / "proposal.gpkg"))
    assert back.meta.kind == "proposal"
    assert back.meta.parent_id == plan.meta.plan_id
    assert set(back.extra_tables) == {"moves", "metrics"}
    pd.testing.assert_frame_equal(back.extra_tables["metrics"], metrics, check_dtype=False)
    assert back.extra_tables["moves"]["to_grid"].tolist() == [C1 + "002"]


def test_empty_tables_round_trip(plan: Plan, tmp_path: Path) -> None:
    """Empty QA, an empty crosswalk and a table without columns survive the GeoPackage."""
    empty = dataclasses.replace(
        plan,
        qa_issues=pd.DataFrame(columns=["layer", "feature_id", "issue", "detail"]),
        crosswalk=plan.crosswalk.iloc[:0],
        dept_fit=pd.DataFrame(),
    )
    back = read_plan(write_plan(empty, tmp_path / "empty.gpkg"))
    assert isinstance(back.qa_issues, gpd.GeoDataFrame)
    assert len(back.qa_issues) == 0
    assert list(back.qa_issues.columns) == ["layer", "feature_id", "issue", "detail", "geometry"]
    assert list(back.crosswalk.columns) == list(plan.crosswalk.columns)
    assert len(back.crosswalk) == 0
    assert back.dept_fit.shape == (0, 0)


def test_plans_are_immutable(plan: Plan, tmp_path: Path) -> None:
    path = write_plan(plan, tmp_path / "plan.gpkg")
    write_plan(plan, path)  # same plan id: fine
    other = plan.with_meta(plan_id=new_plan_id())
    with pytest.raises(InputError, match="plans are immutable"):
        write_plan(other, path)
    assert read_plan_meta(path).plan_id == plan.meta.plan_id
    write_plan(other, path, overwrite=True)
    assert read_plan_meta(path).plan_id == other.meta.plan_id
    junk = tmp_path / "junk.gpkg"
    junk.write_text("not a geopackage")
    with pytest.raises(InputError, match="is not a gridplan plan"):
        write_plan(plan, junk)


def test_failed_write_leaves_old_file(plan: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gridplan.plans.io as plans_mod

    path = write_plan(plan, tmp_path / "plan.gpkg")
    before = path.read_bytes()
    real = plans_mod._write_layer
    calls = {"n": 0}

    def failing(*args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full (simulated)")
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(plans_mod, "_write_layer", failing)
    with pytest.raises(OSError, match="disk full"):
        write_plan(plan, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.gpkg"]
    calls["n"] = 0
    with pytest.raises(OSError, match="disk full"):
        write_plan(plan, tmp_path / "new.gpkg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.gpkg"]


def test_read_errors(plan: Plan, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_plan(tmp_path / "missing.gpkg")
    (tmp_path / "text.gpkg").write_text("hello")
    with pytest.raises(InputError, match="cannot be opened"):
        read_plan(tmp_path / "text.gpkg")
    with pytest.raises(InputError, match="is a folder"):
        read_plan(tmp_path)
    layers_only = tmp_path / "layers.gpkg"
    pyogrio.write_dataframe(plan.base_grids, layers_only, layer="base_grids")
    with pytest.raises(InputError, match="not a gridplan plan"):
        read_plan(layers_only)
    partial = tmp_path / "partial.gpkg"
    pyogrio.write_dataframe(plan.base_grids, partial, layer="base_grids")
    pyogrio.write_dataframe(plan.meta.to_table(), partial, layer="plan_meta")
    with pytest.raises(InputError, match="layer atomic_units: missing layer"):
        read_plan(partial)
    nometa = tmp_path / "nometa.gpkg"
    pyogrio.write_dataframe(pd.DataFrame({"key": ["format"], "value": ["x"]}), nometa, layer="plan_meta")
    with pytest.raises(InputError, match="no plan_id"):
        read_plan(nometa)


def test_write_errors(plan: Plan, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"must be written to a \.gpkg"):
        write_plan(plan, tmp_path / "plan.shp")
    with pytest.raises(InputError, match="folder does not exist"):
        write_plan(plan, tmp_path / "nope" / "plan.gpkg")
    bad = dataclasses.replace(plan, extra_tables={"base_grids": pd.DataFrame({"a": [1]})})
    with pytest.raises(InputError, match="clashes"):
        write_plan(bad, tmp_path / "x.gpkg")


# ---------------------------------------------------------------------------------------------
# diff
# ---------------------------------------------------------------------------------------------


def test_diff_identical(plan: Plan) -> None:
    d = diff_plans(plan, plan.with_meta(plan_id="other"))
    assert set(d.grids["change"]) == {"unchanged"}
    assert len(d.moves) == 0
    assert d.summary["unchanged"] == 4
    assert d.summary["households_moved"] == 0


def test_diff_recoded_is_not_a_move(plan: Plan) -> None:
    swap = {C1 + "001": C1 + "009"}
    grids = plan.base_grids.assign(grid_code=plan.base_grids["grid_code"].replace(swap))
    units = plan.atomic_units.assign(base_grid_code=plan.atomic_units["base_grid_code"].replace(swap))
    new = dataclasses.replace(
        plan, base_grids=grids, atomic_units=units, meta=dataclasses.replace(plan.meta, plan_id="p2")
    )
    d = diff_plans(plan, new)
    rec = d.grids[d.grids["change"] == "recoded"]
    assert rec[["old_code", "new_code"]].values.tolist() == [[C1 + "001", C1 + "009"]]
    assert d.summary["unchanged"] == 3
    assert len(d.moves) == 0


def test_diff_by_area_when_units_differ(plan: Plan) -> None:
    """Two unrelated unit sets: moves are spread by area (half a unit's households move)."""
    grids = plan.base_grids.copy()
    g1 = box(X0, Y0, X0 + 1250, Y0 + 1000)
    g2 = box(X0 + 1250, Y0, X0 + 2000, Y0 + 1000)
    grids = set_geom(set_geom(grids, C1 + "001", g1), C1 + "002", g2)
    units = plan.atomic_units.assign(unit_id=[f"V{i}" for i in range(16)])
    new = dataclasses.replace(
        plan, base_grids=grids, atomic_units=units, meta=dataclasses.replace(plan.meta, plan_id="p3")
    )
    d = diff_plans(plan, new)
    assert d.summary["moves_method"] == "area"
    assert sorted(d.grids.loc[d.grids["change"] == "reshaped", "grid_code"]) == [C1 + "001", C1 + "002"]
    assert d.summary["households_moved"] == pytest.approx(100.0)  # two half units
    assert set(d.moves["to_grid"]) == {C1 + "001"}
    assert d.moves["share"].tolist() == pytest.approx([0.5, 0.5])


# ---------------------------------------------------------------------------------------------
# re-import of an edited base-grid layer
# ---------------------------------------------------------------------------------------------


def test_reimport_vertex_move_and_split(plan: Plan, tmp_path: Path) -> None:
    """Shared edge of …001/…002 moved east by 500 m; …002 of community 2 split in two."""
    edited = plan.base_grids.copy()
    edited = set_geom(edited, C1 + "001", box(X0, Y0, X0 + 1500, Y0 + 1000))
    edited = set_geom(edited, C1 + "002", box(X0 + 1500, Y0, X0 + 2000, Y0 + 1000))
    split = edited[edited["grid_code"] == C2 + "002"].copy()
    west, east = split.copy(), split.copy()
    west["geometry"] = [box(X0 + 3000, Y0, X0 + 3500, Y0 + 1000)]
    east["geometry"] = [box(X0 + 3500, Y0, X0 + 4000, Y0 + 1000)]
    edited = pd.concat([edited[edited["grid_code"] != C2 + "002"], west, east], ignore_index=True)
    path = export_grids(gpd.GeoDataFrame(edited, crs=4547), tmp_path / "edited.gpkg")

    new = reimport_base_grids(plan, path)
    assert new.meta.kind == "edit"
    assert new.meta.parent_id == plan.meta.plan_id
    assert new.meta.plan_id != plan.meta.plan_id
    assert "edited_base_grids" in new.meta.inputs
    assert sorted(new.base_grids["grid_code"]) == [C1 + "001", C1 + "002", C2 + "001", C2 + "002", C2 + "003"]
    hh = dict(zip(new.base_grids["grid_code"], new.base_grids["households"], strict=True))
    assert hh == {C1 + "001": 600, C1 + "002": 200, C2 + "001": 400, C2 + "002": 200, C2 + "003": 200}
    assert new.base_grids["households"].sum() == 1600
    edit_qa = new.qa_issues[new.qa_issues["layer"] == "base_grids"]
    assert not edit_qa["issue"].isin(["overlap", "gap", "crosses_community"]).any()
    # band rows reflect the edit: 600 above, 200 below the 300–500 band
    band = new.qa_issues[new.qa_issues["issue"] == "band"]
    assert sorted(band["feature_id"]) == [C1 + "001", C1 + "002", C2 + "002", C2 + "003"]
    assert (new.qa_issues["layer"] == "dept_police").sum() == 1  # parent's departmental QA kept
    assert set(new.h3_cells["grid_code"]) == set(new.base_grids["grid_code"])
    assert set(new.crosswalk["grid_code"]) <= set(new.base_grids["grid_code"])

    d = diff_plans(plan, new)
    changes = dict(zip(d.grids["grid_code"], d.grids["change"], strict=True))
    assert changes == {
        C1 + "001": "reshaped",
        C1 + "002": "reshaped",
        C2 + "001": "unchanged",
        C2 + "002": "reshaped",
        C2 + "003": "added",
    }
    assert d.summary["moves_method"] == "units"
    assert d.summary["households_moved"] == 400
    assert d.summary["units_moved"] == 4
    assert d.summary["addresses_moved"] == 40
    moved = d.moves.groupby(["from_grid", "to_grid"])["households"].sum().to_dict()
    assert moved == {(C1 + "002", C1 + "001"): 200, (C2 + "002", C2 + "003"): 200}

    out = write_plan(new, tmp_path / "plan_v2.gpkg")
    assert read_plan(out).meta.parent_id == plan.meta.plan_id


def test_reimport_reports_overlap_gap_and_community_crossing(plan: Plan, tmp_path: Path) -> None:
    edited = plan.base_grids.copy()
    edited = set_geom(edited, C1 + "001", box(X0, Y0, X0 + 1100, Y0 + 1000))  # overlaps …002
    edited = set_geom(edited, C2 + "002", box(X0 + 3000, Y0, X0 + 3900, Y0 + 1000))  # leaves a gap
    edited = set_geom(edited, C1 + "002", box(X0 + 1000, Y0, X0 + 2050, Y0 + 1000))  # into community 2
    path = export_grids(edited, tmp_path / "edited.gpkg")
    new = reimport_base_grids(plan, path)
    qa = new.qa_issues[new.qa_issues["layer"] == "base_grids"]
    by_issue = {issue: grp for issue, grp in qa.groupby("issue")}  # noqa: C416 - dict(groupby) fails
    assert set(by_issue) >= {"overlap", "gap", "crosses_community"}
    overlap = by_issue["overlap"]
    assert len(overlap) == 2  # …001/…002 (100 m) and …002/community-2 …001 (50 m)
    assert sorted(overlap.geometry.area.round()) == [50_000.0, 100_000.0]
    assert "441900119001001 and 441900119001002 overlap by 100000.0 m²" in set(overlap["detail"])
    gap = by_issue["gap"]
    assert gap.geometry.area.sum() == pytest.approx(100_000.0)
    cross = by_issue["crosses_community"]
    assert cross["feature_id"].tolist() == [C1 + "002"]
    assert C2 in cross["detail"].iloc[0]
    assert cross.geometry.area.sum() == pytest.approx(50_000.0)
    # the units are not lost: a unit half in the gap still goes to its majority grid
    assert new.atomic_units["base_grid_code"].ne("").all()


def test_reimport_shapefile_new_feature_and_reprojection(plan: Plan, tmp_path: Path) -> None:
    """A Shapefile in EPSG:4490 with a redrawn grid that lost its code gets a new code."""
    edited = plan.base_grids.copy()
    edited.loc[edited["grid_code"] == C2 + "001", "grid_code"] = None
    path = tmp_path / "edited.shp"
    pyogrio.write_dataframe(edited[["grid_code", "households", "geometry"]].to_crs(4490), path)
    new = reimport_base_grids(plan, path)
    assert sorted(new.base_grids["grid_code"]) == [C1 + "001", C1 + "002", C2 + "002", C2 + "003"]
    assert new.base_grids.crs.to_epsg() == 4547
    d = diff_plans(plan, new)
    assert d.summary["recoded"] == 1
    assert d.summary["households_moved"] == 0


def test_reimport_errors(plan: Plan, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        reimport_base_grids(plan, tmp_path / "missing.gpkg")
    nocode = export_grids(plan.base_grids.drop(columns="grid_code"), tmp_path / "nocode.gpkg")
    with pytest.raises(InputError, match="field grid_code: no grid_code field"):
        reimport_base_grids(plan, nocode)
    two = export_grids(plan.base_grids, tmp_path / "two.gpkg", layer="a")
    export_grids(plan.base_grids, two, layer="b")
    with pytest.raises(InputError, match="several layers"):
        reimport_base_grids(plan, two)
    with pytest.raises(InputError, match="no such layer"):
        reimport_base_grids(plan, two, layer="zzz")
    nocrs = tmp_path / "nocrs.gpkg"
    with pytest.warns(UserWarning, match="crs"):
        pyogrio.write_dataframe(plan.base_grids.set_crs(None, allow_override=True), nocrs, layer="base_grids")
    with pytest.raises(CRSError, match="has no CRS"):
        reimport_base_grids(plan, nocrs)
    pts = plan.base_grids.copy()
    pts["geometry"] = shapely.centroid(pts.geometry.values)
    ptsf = export_grids(pts, tmp_path / "points.gpkg")
    with pytest.raises(InputError, match="no polygon left"):
        reimport_base_grids(plan, ptsf)


def test_reimport_repairs_invalid_geometry(plan: Plan, tmp_path: Path) -> None:
    bowtie = shapely.Polygon([(X0, Y0), (X0 + 1000, Y0 + 1000), (X0 + 1000, Y0), (X0, Y0 + 1000)])
    edited = set_geom(plan.base_grids, C1 + "001", bowtie)
    new = reimport_base_grids(plan, export_grids(edited, tmp_path / "e.gpkg"))
    issues = set(new.qa_issues["issue"])
    assert {"invalid_geometry", "gap"} <= issues
    assert shapely.is_valid(new.base_grids.geometry.values).all()


def test_meta_table_round_trip() -> None:
    m = PlanMeta(
        "p",
        "parent",
        "2025-01-01T00:00:00Z",
        params={"a": [1, 2], "名": "长安"},
        inputs={"x": "y"},
        county_code="441900",
        h3_res=9,
        departments=("police", "fire"),
        kind="edit",
    )
    assert PlanMeta.from_table(m.to_table()) == m
    with pytest.raises(InputError, match="key and value"):
        PlanMeta.from_table(pd.DataFrame({"k": [1]}))
    bad = m.to_table()
    bad.loc[bad["key"] == "params", "value"] = "{not json"
    with pytest.raises(InputError, match="damaged"):
        PlanMeta.from_table(bad)


def test_new_plan_id_unique() -> None:
    ids = {new_plan_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(np.char.str_len(np.array(sorted(ids))) == 24)


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def test_cli_reimport_and_diff(plan: Plan, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from gridplan.cli import app

    old = write_plan(plan, tmp_path / "plan.gpkg")
    edited = set_geom(plan.base_grids, C1 + "001", box(X0, Y0, X0 + 1500, Y0 + 1000))
    edited = set_geom(edited, C1 + "002", box(X0 + 1500, Y0, X0 + 2000, Y0 + 1000))
    edited_path = export_grids(edited, tmp_path / "edited.gpkg")
    runner = CliRunner()
    res = runner.invoke(app, ["reimport", str(old), str(edited_path), "--out", str(tmp_path / "v2.gpkg")])
    assert res.exit_code == 0, res.output
    assert "households that changed grid" in res.output
    assert "200" in res.output
    new = read_plan(tmp_path / "v2.gpkg")
    assert new.meta.parent_id == plan.meta.plan_id
    assert new.meta.kind == "edit"

    res = runner.invoke(
        app,
        [
            "diff",
            str(old),
            str(tmp_path / "v2.gpkg"),
            "--out",
            str(tmp_path / "d.csv"),
            "--moves-out",
            str(tmp_path / "m.csv"),
        ],
    )
    assert res.exit_code == 0, res.output
    grids = pd.read_csv(tmp_path / "d.csv", dtype={"grid_code": str, "old_code": str, "new_code": str})
    assert sorted(grids.loc[grids["change"] == "reshaped", "grid_code"]) == [C1 + "001", C1 + "002"]
    moves = pd.read_csv(tmp_path / "m.csv")
    assert moves["households"].sum() == 200

    res = runner.invoke(app, ["diff", str(old), str(tmp_path / "missing.gpkg")])
    assert res.exit_code == 2
    assert "does not exist" in res.output
    res = runner.invoke(app, ["reimport", str(old), str(edited_path), "--out", str(old)])
    assert res.exit_code == 2
    assert "plans are immutable" in res.output


def test_small_plan_split_grid_round_trip(small_plan: Path, tmp_path: Path) -> None:
    """On the merged sample: split one grid in two → reimport → diff names exactly that change."""
    plan = read_plan(small_plan)
    grids = plan.base_grids
    big = grids.sort_values("area_m2", ascending=False).iloc[0]
    code = big["grid_code"]
    minx, miny, maxx, maxy = big.geometry.bounds
    cx = big.geometry.centroid.x
    west = shapely.intersection(big.geometry, box(minx - 1, miny - 1, cx, maxy + 1))
    east = shapely.intersection(big.geometry, box(cx, miny - 1, maxx + 1, maxy + 1))
    parts = gpd.GeoDataFrame([big.drop("geometry").to_dict()] * 2, geometry=[west, east], crs=grids.crs)
    edited = pd.concat([grids[grids["grid_code"] != code], parts], ignore_index=True)
    new = reimport_base_grids(
        plan, export_grids(gpd.GeoDataFrame(edited, crs=grids.crs), tmp_path / "e.gpkg")
    )
    same_comm = [c for c in grids["grid_code"] if c[:12] == code[:12]]
    new_code = f"{code[:12]}{max(int(c[12:]) for c in same_comm) + 1:03d}"
    assert set(new.base_grids["grid_code"]) == set(grids["grid_code"]) | {new_code}
    d = diff_plans(plan, new)
    changed = d.grids[d.grids["change"] != "unchanged"]
    assert dict(zip(changed["grid_code"], changed["change"], strict=True)) == {
        code: "reshaped",
        new_code: "added",
    }
    units = new.atomic_units
    assert d.summary["households_moved"] == units.loc[units["base_grid_code"] == new_code, "households"].sum()
    assert set(d.moves["to_grid"]) == {new_code}
    assert set(d.moves["from_grid"]) == {code}
    edit_qa = new.qa_issues[new.qa_issues["layer"] == "base_grids"]
    assert not edit_qa["issue"].isin(["overlap", "gap", "crosses_community", "outside_boundary"]).any()
    assert new.base_grids["households"].sum() == plan.base_grids["households"].sum()
