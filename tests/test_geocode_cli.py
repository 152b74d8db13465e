"""``gridplan geocode`` / ``reverse-geocode`` end to end on the small sample city, scored against truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from gridplan import crs
from gridplan.cli import app
from gridplan.geocode.assign import check_coordinates

runner = CliRunner()


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def geocoded(small_city: Path, small_plan: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("geocode") / "cases_geocoded.csv"
    res = runner.invoke(
        app,
        [
            "geocode",
            str(small_city / "cases.csv"),
            "--layers",
            str(small_city / "layers.gpkg"),
            "--plan",
            str(small_plan),
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "M matched" in res.output
    assert "level road" in res.output
    return out


def test_output_columns_and_codes(small_city: Path, geocoded: Path) -> None:
    cases = _read(small_city / "cases.csv")
    out = _read(geocoded)
    assert len(out) == len(cases)
    assert out["case_id"].tolist() == cases["case_id"].tolist()
    for col in (
        "status",
        "score",
        "match_level",
        "address_id",
        "matched_address",
        "lon",
        "lat",
        "coord_sys",
        "grid_code",
        "community_code",
        "town_code",
        "candidates",
        "reason",
        "located_by",
        "address_extra",
        "in_lon",
        "in_lat",
        "in_coord_sys",
    ):
        assert col in out.columns, col
    assert (out["in_lon"] == cases["lon"]).all()
    assert (out["in_coord_sys"] == cases["coord_sys"]).all()
    assert set(out["status"]) <= {"M", "T", "U"}
    assert set(out["match_level"]) <= {"house", "road", "community", "town", "coordinate", ""}
    assert (out["coord_sys"] == "cgcs2000").all()
    assert (out.loc[out["status"] == "U", "reason"] != "").all()
    assert (out.loc[out["status"] == "T", "candidates"].str.contains("|", regex=False)).all()
    gridded = out["grid_code"] != ""
    assert (out.loc[gridded, "grid_code"].str[:12] == out.loc[gridded, "community_code"]).all()
    assert (
        out.loc[out["community_code"] != "", "community_code"].str[:9]
        == out.loc[out["community_code"] != "", "town_code"]
    ).all()


def test_against_truth(small_city: Path, geocoded: Path) -> None:
    """The issue's acceptance figures on the sample city's cases (printed for the closing note)."""
    out = _read(geocoded)
    truth = _read(small_city / "truth_cases.csv")
    df = out.merge(truth, on="case_id", suffixes=("", "_true"))
    in_lib = df["in_library"] == "True"
    house = (df["status"] == "M") & (df["match_level"] == "house")
    right = house & (df["address_id"] == df["address_id_true"])
    match_rate = (right & in_lib).sum() / in_lib.sum()
    wrong = (house & (df["address_id"] != df["address_id_true"])).sum() / max(house.sum(), 1)
    not_house = (house & ~in_lib).sum()
    x, y = crs.lonlat_to_xy(pd.to_numeric(df["lon"]).to_numpy(), pd.to_numeric(df["lat"]).to_numpy())
    dist = np.hypot(x - pd.to_numeric(df["x"]).to_numpy(), y - pd.to_numeric(df["y"]).to_numpy())
    by_coord = (df["located_by"] == "coordinates").to_numpy()
    # every declared coordinate that is usable, converted on its own, against the true position
    usable = df["coord_variant"].isin(["wgs84", "gcj02", "bd09"]).to_numpy()
    chk = check_coordinates(
        pd.to_numeric(df["in_lon"], errors="coerce").to_numpy(),
        pd.to_numeric(df["in_lat"], errors="coerce").to_numpy(),
        df["in_coord_sys"].to_numpy(dtype=object),
        city=None,
        bbox_lonlat=None,
    )
    conv = np.hypot(chk.x - pd.to_numeric(df["x"]).to_numpy(), chk.y - pd.to_numeric(df["y"]).to_numpy())
    bad_coords = df["coord_variant"].isin(["swapped", "outside"])
    print(
        f"\nsmall sample cases: {len(df)} rows, {in_lib.sum()} in library; house-level match rate "
        f"{100 * match_rate:.2f} %, wrong {100 * wrong:.3f} % of {house.sum()} house-level rows, "
        f"{not_house} rows not in the library reported as house; coordinate conversion max "
        f"{conv[usable].max():.4f} m over {usable.sum()} rows; "
        f"located-by-coordinates max {dist[by_coord].max():.4f} m"
    )
    assert match_rate >= 0.97
    assert wrong <= 0.005
    assert not_house == 0
    assert (df.loc[df["variant"] == "house_not_in_library", "match_level"] != "house").all()
    assert conv[usable].max() < 1.0
    assert chk.ok[usable].all()
    assert dist[by_coord].max() < 1.0
    # swapped / outside coordinates are never what placed a row
    assert (df.loc[bad_coords, "located_by"] != "coordinates").all()
    assert df.loc[bad_coords, "reason"].str.contains("swapped|outside", regex=True).all()


def test_rematch_cli(small_city: Path, small_plan: Path, geocoded: Path, tmp_path: Path) -> None:
    prev = _read(geocoded)
    out = tmp_path / "again.csv"
    res = runner.invoke(
        app,
        [
            "geocode",
            str(geocoded),
            "--layers",
            str(small_city / "layers.gpkg"),
            "--plan",
            str(small_plan),
            "--out",
            str(out),
            "--rematch",
            "--rematch-ties",
            "--min-score",
            "60",
        ],
    )
    assert res.exit_code == 0, res.output
    again = _read(out)
    kept = ~prev["status"].isin(["U", "T"])
    pd.testing.assert_frame_equal(again[kept].reset_index(drop=True), prev[kept].reset_index(drop=True))
    assert list(again.columns) == list(prev.columns)
    assert (again.loc[~kept, "status"] != "").all()


def test_dask_local_cluster_gives_identical_output(
    small_city: Path, small_plan: Path, tmp_path: Path
) -> None:
    cases = _read(small_city / "cases.csv").iloc[:1000]
    inp = tmp_path / "cases.csv"
    cases.to_csv(inp, index=False)
    one, two = tmp_path / "single.csv", tmp_path / "dask.csv"
    base = ["--layers", str(small_city / "layers.gpkg"), "--plan", str(small_plan)]
    r1 = runner.invoke(app, ["geocode", str(inp), *base, "--out", str(one)])
    r2 = runner.invoke(app, ["geocode", str(inp), *base, "--out", str(two), "--scheduler", "local"])
    assert r1.exit_code == 0, r1.output
    assert r2.exit_code == 0, r2.output
    assert one.read_bytes() == two.read_bytes()


def test_reverse_geocode_cli(small_city: Path, small_plan: Path, tmp_path: Path) -> None:
    truth = _read(small_city / "truth_cases.csv")
    pts = truth[truth["in_library"] == "True"].iloc[:200][["case_id", "lon", "lat", "address_id"]]
    inp = tmp_path / "points.csv"
    pts.rename(columns={"address_id": "true_id"}).to_csv(inp, index=False)
    out = tmp_path / "rev.csv"
    res = runner.invoke(
        app,
        [
            "reverse-geocode",
            str(inp),
            "--layers",
            str(small_city / "layers.gpkg"),
            "--plan",
            str(small_plan),
            "--out",
            str(out),
            "--radius-m",
            "5",
        ],
    )
    assert res.exit_code == 0, res.output
    rev = _read(out)
    assert (rev["address_id"] == rev["true_id"]).all()
    assert (rev["grid_code"] != "").all()


def test_cli_user_errors(small_city: Path, tmp_path: Path) -> None:
    layers = str(small_city / "layers.gpkg")
    res = runner.invoke(
        app, ["geocode", str(tmp_path / "missing.csv"), "--layers", layers, "--out", str(tmp_path / "o.csv")]
    )
    assert res.exit_code == 2
    assert "missing.csv" in res.output
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"address": ["长安镇"], "lon": ["113.7"], "lat": ["23.0"], "coord_sys": ["mars"]}).to_csv(
        bad, index=False
    )
    res = runner.invoke(app, ["geocode", str(bad), "--layers", layers, "--out", str(tmp_path / "o.csv")])
    assert res.exit_code == 2
    assert "coord_sys" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(
        app, ["geocode", str(bad), "--layers", str(tmp_path / "nope.gpkg"), "--out", str(tmp_path / "o.csv")]
    )
    assert res.exit_code == 2
    assert "nope.gpkg" in res.output
    res = runner.invoke(
        app, ["geocode", str(bad), "--layers", layers, "--out", str(tmp_path / "o.csv"), "--rematch"]
    )
    assert res.exit_code == 2
    assert "status" in res.output
    assert not (tmp_path / "o.csv").exists()
