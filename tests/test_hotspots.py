"""Aggregation, neighbourhoods, Gi* with FDR bins, year-on-year tables, writers and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from shapely import box
from typer.testing import CliRunner

from gridplan.errors import InputError
from gridplan.hotspots import (
    ALL_CATEGORIES,
    Areas,
    aggregate_events,
    analysis_units,
    fdr_bins,
    filter_events,
    gi_star,
    gi_star_analytic,
    hotspot_analysis,
    neighbour_matrix,
    resolve_value,
    spatial_weights,
    year_on_year,
)
from gridplan.layers import write_layers, write_table

X0, Y0 = 480000.0, 2545000.0


def _grids(n: int = 3, size: float = 1000.0) -> gpd.GeoDataFrame:
    """n × n square base grids of *size* m, two communities (west/east), one town."""
    rows = []
    for r in range(n):
        for c in range(n):
            comm = "441900003001" if c < (n + 1) // 2 else "441900003002"
            rows.append({
                "grid_code": f"{comm}{r * n + c + 1:03d}", "community_code": comm, "town_code": "441900003",
                "community_name": "甲社区" if comm.endswith("1") else "乙社区", "town_name": "东城街道",
                "households": 400, "residents": 1000,
                "geometry": box(X0 + c * size, Y0 - (r + 1) * size, X0 + (c + 1) * size, Y0 - r * size),
            })
    return gpd.GeoDataFrame(rows, crs=4547)


def _events(xy: list[tuple[float, float]], cats: list[str] | None = None,
            dates: list[str] | None = None) -> pd.DataFrame:
    n = len(xy)
    return pd.DataFrame({
        "x": [p[0] for p in xy], "y": [p[1] for p in xy],
        "category": cats or ["治安"] * n,
        "reported_at": pd.to_datetime(dates or ["2024-05-01"] * n),
    })


# --------------------------------------------------------------------------------------------
# aggregation
# --------------------------------------------------------------------------------------------


def test_aggregate_counts_rates_and_densities() -> None:
    grids = _grids()
    ev = _events([(X0 + 500, Y0 - 500)] * 3 + [(X0 + 2500, Y0 - 2500), (0.0, 0.0)])
    agg = aggregate_events(ev, grids)
    assert agg.attrs["n_outside"] == 1
    counts = dict(zip(agg["code"], agg["count"], strict=True))
    assert counts["441900003001001"] == 3
    assert counts["441900003002009"] == 1
    assert agg["count"].sum() == 4
    assert len(agg) == 9
    top = agg.loc[agg["code"] == "441900003001001"].iloc[0]
    assert top["rate"] == pytest.approx(3.0)  # per 1,000 residents
    assert top["rate_hh"] == pytest.approx(0.75)  # per 100 households
    assert top["density"] == pytest.approx(3.0)  # per km²


def test_aggregate_levels_and_splits() -> None:
    grids = _grids()
    ev = _events([(X0 + 500, Y0 - 500), (X0 + 2500, Y0 - 500), (X0 + 2500, Y0 - 1500)],
                 cats=["治安", "消防", "治安"], dates=["2024-01-03", "2024-03-09", "2024-03-10"])
    comm = aggregate_events(ev, grids, by="community")
    assert dict(zip(comm["code"], comm["count"], strict=True)) == {"441900003001": 1, "441900003002": 2}
    assert comm.loc[comm["code"] == "441900003002", "residents"].iloc[0] == 3000  # 3 grids summed
    town = aggregate_events(ev, grids, by="town")
    assert town["count"].tolist() == [3]
    assert town["area_m2"].iloc[0] == pytest.approx(9e6)
    split = aggregate_events(ev, grids, by="community", time_step="month", split_category=True)
    # 2 communities × 2 categories × 3 months (Jan..Mar, zeros included)
    assert len(split) == 12
    assert split["count"].sum() == 3
    row = split.query("code == '441900003002' and category == '治安' and period == '2024-03'")
    assert row["count"].tolist() == [1]
    only = aggregate_events(ev, grids, by="community", category="消防")
    assert only["count"].sum() == 1


def test_aggregate_h3_cells_cover_the_plan_and_keep_residents() -> None:
    grids = _grids()
    rng = np.random.default_rng(0)
    xy = list(zip(rng.uniform(X0, X0 + 3000, 200), rng.uniform(Y0 - 3000, Y0, 200), strict=True))
    agg = aggregate_events(_events(xy), grids, by="h3", h3_res=9)
    assert agg["count"].sum() == 200  # every point inside the plan lands in a cell
    assert agg["residents"].sum() == pytest.approx(9000, rel=1e-6)  # apportioned by area
    assert agg["code"].str.len().eq(15).all()


def test_aggregate_errors() -> None:
    grids = _grids()
    with pytest.raises(InputError, match="aggregation level"):
        aggregate_events(_events([(X0, Y0)]), grids, by="county")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="time step"):
        aggregate_events(_events([(X0 + 1, Y0 - 1)]), grids, time_step="day")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="x and y"):
        aggregate_events(pd.DataFrame({"lon": [1.0]}), grids)
    with pytest.raises(InputError, match="projected CRS"):
        aggregate_events(_events([(X0, Y0)]), grids.to_crs(4490))
    with pytest.raises(InputError, match="no category column"):
        filter_events(pd.DataFrame({"x": [1.0], "y": [1.0]}), category="治安")


def test_filter_events_dates_are_inclusive() -> None:
    ev = _events([(0, 0)] * 3, dates=["2024-01-01T00:00", "2024-01-31T23:59", "2024-02-01T00:00"])
    assert len(filter_events(ev, since="2024-01-01", until="2024-01-31")) == 2


# --------------------------------------------------------------------------------------------
# neighbourhoods and Gi*
# --------------------------------------------------------------------------------------------


def test_queen_contiguity_and_islands() -> None:
    grids = _grids()
    island = grids.iloc[[0]].copy()
    island["grid_code"] = "441900003002099"
    island["geometry"] = [box(X0 + 10000, Y0, X0 + 11000, Y0 + 1000)]
    units = analysis_units(pd.concat([grids, island], ignore_index=True).pipe(gpd.GeoDataFrame, crs=4547))
    _, n_nb = spatial_weights(units)
    assert n_nb.tolist() == [3, 5, 3, 5, 8, 5, 3, 5, 3, 0]
    band = neighbour_matrix(units, distance_band_m=1000.5)  # rook-like: centroids 1 km apart
    assert np.asarray(band.sum(axis=1)).ravel().tolist() == [2, 3, 2, 3, 4, 3, 2, 3, 2, 0]
    with pytest.raises(InputError, match="distance band"):
        neighbour_matrix(units, distance_band_m=-5)


def test_gi_star_with_an_island() -> None:
    grids = _grids()
    island = grids.iloc[[0]].copy()
    island["grid_code"] = "441900003002099"
    island["geometry"] = [box(X0 + 10000, Y0, X0 + 11000, Y0 + 1000)]
    both = gpd.GeoDataFrame(pd.concat([grids, island], ignore_index=True), crs=4547)
    ev = _events([(X0 + 500, Y0 - 500)] * 5 + [(X0 + 10500, Y0 + 500)] * 2 + [(X0 + 1500, Y0 - 1500)])
    hs = hotspot_analysis(ev, both, permutations=49)
    isl = hs.loc[hs["code"] == "441900003002099"].iloc[0]
    assert isl["n_neighbors"] == 0
    assert np.isfinite(hs["gi_z"]).all()
    assert hs["gi_p"].between(0, 1).all()


def test_h3_k_ring_neighbours() -> None:
    units = analysis_units(_grids(), "h3", h3_res=9)
    _, n_nb = spatial_weights(units, by="h3")
    assert n_nb.max() == 6
    assert n_nb.min() >= 1


def test_gi_star_matches_textbook_and_esda() -> None:
    units = analysis_units(_grids(5, 500.0))
    rng = np.random.default_rng(2)
    y = rng.poisson(4.0, len(units)).astype(float)
    nb = neighbour_matrix(units)
    # textbook Gi* with binary weights including the area itself
    w = nb.toarray() + np.eye(len(units))
    n, xbar, s = len(y), y.mean(), y.std()
    wi = w.sum(1)
    expected = (w @ y - xbar * wi) / (s * np.sqrt((n * (w**2).sum(1) - wi**2) / (n - 1)))
    np.testing.assert_allclose(gi_star_analytic(y, nb), expected, rtol=1e-10)
    graph, _ = spatial_weights(units)
    out = gi_star(y, graph, permutations=99, seed=1)
    np.testing.assert_allclose(out["gi_z"], expected, rtol=1e-10)
    assert out["gi_p_sim"].between(0.02, 1.0).all()  # two-sided: ≥ 2 / (99 + 1)
    again = gi_star(y, graph, permutations=99, seed=1)
    pd.testing.assert_frame_equal(out, again)  # seeded


def test_gi_star_constant_values_and_bad_input() -> None:
    graph, _ = spatial_weights(analysis_units(_grids()))
    out = gi_star(np.full(9, 2.0), graph, permutations=0)
    assert (out["gi_bin"] == 0).all()
    assert (out["gi_z"] == 0).all()
    with pytest.raises(InputError, match="NaN"):
        gi_star(np.r_[np.nan, np.ones(8)], graph)
    with pytest.raises(InputError, match="permutations"):
        gi_star(np.arange(9.0), graph, permutations=0, inference="permutation")


def test_fdr_bins() -> None:
    z = np.array([4.0, -3.0, 2.0, 1.8, 0.1])
    p = np.array([0.001, 0.004, 0.031, 0.07, 0.9])
    assert fdr_bins(z, p, fdr=False).tolist() == [3, -3, 2, 1, 0]
    # Benjamini-Hochberg over 5 tests: at 99 % cut-off k·0.01/5 → only p ≤ 0.002 passes
    # (0.004 is not < 2·0.01/5); at 95 %: 0.004 < 2·0.05/5 passes, 0.031 is not < 3·0.05/5;
    # at 90 %: 0.07 < 4·0.1/5 passes
    assert fdr_bins(z, p).tolist() == [3, -2, 1, 1, 0]
    assert fdr_bins([np.nan], [np.nan]).tolist() == [0]


def test_resolve_value() -> None:
    assert resolve_value("auto", "grid", pd.DataFrame({"residents": [5, 6]})) == "rate"
    assert resolve_value("auto", "grid", pd.DataFrame({"residents": [0, 6]})) == "density"
    assert resolve_value("count", "h3", None) == "count"
    with pytest.raises(InputError, match="analysis value"):
        resolve_value("mean", "grid", None)


def test_hotspot_on_a_planted_cluster() -> None:
    # Gi* finds clusters, not single-area spikes: the planted cluster spans a few grids
    grids = _grids(10, 500.0)
    rng = np.random.default_rng(5)
    xy = list(zip(rng.uniform(X0, X0 + 5000, 1000), rng.uniform(Y0 - 5000, Y0, 1000), strict=True))
    xy += list(zip(rng.normal(X0 + 2750, 400, 300), rng.normal(Y0 - 2750, 400, 300), strict=True))
    hs = hotspot_analysis(_events(xy), grids, permutations=0)
    centre = hs.loc[hs.geometry.contains(shapely.Point(X0 + 2750, Y0 - 2750))].iloc[0]
    assert centre["gi_bin"] == 3
    assert centre["n_neighbors"] == 8
    assert hs.attrs["value"] == "rate"
    assert hs.attrs["neighbourhood"] == "queen contiguity"
    assert set(hs.columns) >= {"count", "rate", "gi_z", "gi_p", "gi_bin", "n_neighbors", "grid_code"}
    with pytest.raises(InputError, match="no located events"):
        hotspot_analysis(_events([(0.0, 0.0)]), grids)


# --------------------------------------------------------------------------------------------
# year on year
# --------------------------------------------------------------------------------------------


def test_year_on_year_hand_counts() -> None:
    grids = _grids()
    a, b = (X0 + 500, Y0 - 500), (X0 + 2500, Y0 - 500)
    ev = _events([a, a, a, a, a, b, b],
                 cats=["治安"] * 4 + ["消防", "治安", "治安"],
                 dates=["2023-02-01", "2023-03-01", "2024-02-01", "2025-01-01", "2024-06-01",
                        "2023-05-05", "2025-05-05"])
    yoy = year_on_year(ev, grids)
    assert list(yoy.columns) == ["level", "code", "name", "category", "year", "count", "count_prev",
                                 "change_pct"]
    town = yoy.query("level == 'town' and category == '治安'").set_index("year")
    assert town["count"].tolist() == [3, 1, 2]
    assert pd.isna(town.loc[2023, "count_prev"])
    assert town.loc[2024, "count_prev"] == 3
    assert town.loc[2024, "change_pct"] == pytest.approx(-66.7)
    assert town.loc[2025, "change_pct"] == pytest.approx(100.0)
    allc = yoy[(yoy["level"] == "town") & (yoy["category"] == ALL_CATEGORIES)].set_index("year")
    assert allc["count"].tolist() == [3, 2, 2]
    g = yoy.query("level == 'grid' and code == '441900003002003' and category == '治安'").set_index("year")
    assert g["count"].tolist() == [1, 0, 1]
    assert pd.isna(g.loc[2025, "change_pct"])
    assert (yoy.query("level == 'community'")["name"].isin(["甲社区", "乙社区"])).all()
    # every grid × category (2 + all) × year
    assert len(yoy.query("level == 'grid'")) == 9 * 3 * 3
    with pytest.raises(InputError, match="unknown level"):
        year_on_year(ev, grids, levels=("county",))


# --------------------------------------------------------------------------------------------
# writers
# --------------------------------------------------------------------------------------------


def test_write_table_csv_and_xlsx(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    df = pd.DataFrame({"名称": ["长安镇", "虎门镇"], "count_prev": pd.array([None, 3], dtype="Int64")})
    csv = write_table(df, tmp_path / "t.csv")
    assert csv.read_bytes().startswith(b"\xef\xbb\xbf")
    assert pd.read_csv(csv, encoding="utf-8-sig")["名称"].tolist() == ["长安镇", "虎门镇"]
    xlsx = write_table(df, tmp_path / "t.xlsx")
    ws = load_workbook(xlsx)["t"]
    assert [c.value for c in ws[1]] == ["名称", "上年事件数（件）"]  # Chinese headers (issue 19)
    assert ws["B2"].value is None
    assert ws["B3"].value == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.xlsx"]  # no temp files left
    with pytest.raises(InputError, match=r"\.csv or \.xlsx"):
        write_table(df, tmp_path / "t.txt")
    with pytest.raises(InputError, match="does not exist"):
        write_table(df, tmp_path / "missing" / "t.csv")


def test_write_gpkg_layers_and_tables(tmp_path: Path) -> None:
    grids = _grids()
    out = write_layers({"hotspots": grids, "yoy": pd.DataFrame(
        {"code": ["a"], "count_prev": pd.array([None], dtype="Int64")})}, tmp_path / "hot.gpkg")
    assert [name for name, _ in pyogrio.list_layers(out)] == ["hotspots", "yoy"]
    assert len(pyogrio.read_dataframe(out, layer="hotspots")) == 9


# --------------------------------------------------------------------------------------------
# the sample city
# --------------------------------------------------------------------------------------------


def _located(city: Path, source: str) -> pd.DataFrame:
    idc = "case_id" if source == "cases" else "hazard_id"
    ev = pd.read_csv(city / f"{source}.csv", usecols=[idc, "category", "reported_at"])
    truth = pd.read_csv(city / f"truth_{source}.csv", usecols=[idc, "x", "y", "lon", "lat"])
    out = ev.merge(truth, on=idc)
    out["reported_at"] = pd.to_datetime(out["reported_at"])
    return out


@pytest.fixture(scope="module")
def plan(small_plan: Path):  # type: ignore[no-untyped-def]
    from gridplan.plans import read_plan

    return read_plan(small_plan)


@pytest.mark.parametrize("by", ["grid", "h3"])
def test_planted_hotspots_are_found(small_city: Path, plan, by: str) -> None:  # type: ignore[no-untyped-def]
    manifest = json.loads((small_city / "manifest.json").read_text())
    units = analysis_units(plan, by, h3_res=9)  # type: ignore[arg-type]
    for spot in manifest["hotspots"]:
        areas = Areas(by=by, h3_res=9, units=units)  # type: ignore[arg-type]
        hs = hotspot_analysis(_located(small_city, spot["source"]), plan, areas=areas,
                              category=spot["category"], permutations=0)
        hit = hs.loc[hs.geometry.contains(shapely.Point(spot["x"], spot["y"]))]
        assert len(hit) == 1
        assert hit["gi_bin"].iloc[0] == 3, (spot["id"], by, hit[["count", "gi_z", "gi_p"]].to_dict("records"))


def _uniform_in(geom, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    xmin, ymin, xmax, ymax = geom.bounds
    xs, ys = np.zeros(0), np.zeros(0)
    while len(xs) < n:
        x = rng.uniform(xmin, xmax, 4 * n + 16)
        y = rng.uniform(ymin, ymax, 4 * n + 16)
        keep = shapely.contains_xy(geom, x, y)
        xs, ys = np.r_[xs, x[keep]], np.r_[ys, y[keep]]
    return xs[:n], ys[:n]


def test_uniform_control_flags_about_the_fdr_level(plan) -> None:  # type: ignore[no-untyped-def]
    """No hot spots in, (almost) none out: the share of grids at 99 % stays near the FDR level (1 %).

    The null of a value is "events spread evenly over what it divides by": uniform points over the
    plan area for density, points spread in proportion to residents for rate (the default for
    grids).  Measured on the sample city (10 seeds): 0 % of grids flagged at 99 % for both.  The
    default (rate) on area-uniform points flags ~3 % (max 5 %): sparsely populated grids really do
    get more events per resident there, so that is signal, not false positives.
    """
    grids = plan.base_grids
    city = shapely.union_all(grids.geometry.to_numpy())
    units = analysis_units(plan)
    shares: dict[str, list[float]] = {"density/area": [], "rate/residents": [], "rate/area": []}
    for seed in range(2):
        rng = np.random.default_rng(seed)
        x, y = _uniform_in(city, 8000, rng)
        area_ev = pd.DataFrame({"x": x, "y": y})
        k = rng.multinomial(8000, grids["residents"].to_numpy(float) / grids["residents"].sum())
        parts = [_uniform_in(g, int(n), rng) for g, n in zip(grids.geometry, k, strict=True) if n]
        pop_ev = pd.DataFrame({"x": np.concatenate([p[0] for p in parts]),
                               "y": np.concatenate([p[1] for p in parts])})
        for key, ev, value in (("density/area", area_ev, "density"), ("rate/residents", pop_ev, "rate"),
                               ("rate/area", area_ev, "rate")):
            hs = hotspot_analysis(ev, plan, areas=Areas(units=units), value=value, permutations=0)  # type: ignore[arg-type]
            shares[key].append(float((hs["gi_bin"].abs() == 3).mean()))
    mean = {k: float(np.mean(v)) for k, v in shares.items()}
    assert mean["density/area"] <= 0.02, mean
    assert mean["rate/residents"] <= 0.02, mean
    assert mean["rate/area"] <= 0.06, mean


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def located_csv(small_city: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    ev = _located(small_city, "cases")
    ev = ev.assign(coord_sys="cgcs2000", reported_at=ev["reported_at"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
    ev.loc[ev.index[:25], ["lon", "lat"]] = np.nan  # a few rows the geocoder could not place
    out = tmp_path_factory.mktemp("located") / "located.csv"
    ev.drop(columns=["x", "y"]).to_csv(out, index=False)
    return out


def test_cli_heatmap_and_hotspots(located_csv: Path, small_plan: Path, tmp_path: Path) -> None:
    import rasterio

    from gridplan.cli import app

    runner = CliRunner()
    heat = tmp_path / "heat.tif"
    res = runner.invoke(app, ["heatmap", str(located_csv), "--plan", str(small_plan), "--out", str(heat),
                              "--bandwidth-m", "300", "--category", "治安", "--png"])
    assert res.exit_code == 0, res.output
    assert "no_coordinates 25" in res.output  # skipped rows are reported
    with rasterio.open(heat) as ds:
        assert ds.profile["tiled"]
        assert ds.tags()["units"] == "events per km²"
        assert ds.tags()["bandwidth_m"] == "300.0"
        assert ds.crs.to_epsg() == 4547
    assert heat.with_suffix(".png").exists()
    import xml.etree.ElementTree as ET

    qml = ET.parse(heat.with_suffix(".qml")).getroot()  # QGIS applies HEAT.qml on open: coloured
    renderer = qml.find("pipe/rasterrenderer")
    assert renderer is not None
    assert (renderer.get("type"), renderer.get("band")) == ("singlebandpseudocolor", "1")
    assert len(renderer.findall("rastershader/colorrampshader/item")) >= 3
    hot = tmp_path / "hot.gpkg"
    yoy = tmp_path / "yoy.xlsx"
    res = runner.invoke(app, ["hotspots", str(located_csv), "--plan", str(small_plan), "--out", str(hot),
                              "--by", "grid", "--permutations", "99", "--time-step", "quarter",
                              "--yoy-out", str(yoy)])
    assert res.exit_code == 0, res.output
    assert [n for n, _ in pyogrio.list_layers(hot)] == ["hotspots", "emerging", "yoy"]
    hs = pyogrio.read_dataframe(hot, layer="hotspots")
    assert {"count", "rate", "gi_z", "gi_p", "gi_bin", "n_neighbors", "grid_code"} <= set(hs.columns)
    em = pyogrio.read_dataframe(hot, layer="emerging")
    assert {"pattern", "trend_z", "trend_p", "count"} <= set(em.columns)
    assert yoy.exists()
    res = runner.invoke(app, ["hotspots", str(located_csv), "--plan", str(small_plan), "--out",
                              str(tmp_path / "hot_h3.gpkg"), "--by", "h3", "--time-step", "none",
                              "--permutations", "0"])
    assert res.exit_code == 0, res.output
    assert [n for n, _ in pyogrio.list_layers(tmp_path / "hot_h3.gpkg")] == ["hotspots", "yoy"]
    auto = tmp_path / "hot_auto.gpkg"  # the default: H3 cells and k-ring chosen from the events
    res = runner.invoke(app, ["hotspots", str(located_csv), "--plan", str(small_plan), "--out", str(auto),
                              "--time-step", "none", "--permutations", "0"])
    assert res.exit_code == 0, res.output
    assert "chosen (--by auto)" in res.output
    assert [n for n, _ in pyogrio.list_layers(auto)] == ["hotspots", "grid_hotspot_share", "yoy"]
    share = pyogrio.read_dataframe(auto, layer="grid_hotspot_share")
    assert {"grid_code", "hot99_share", "hot90_share", "max_gi_bin"} <= set(share.columns)
    assert len(share) == len(pyogrio.read_dataframe(small_plan, layer="base_grids"))
    assert share["hot90_share"].between(0, 1.0001).all()


@pytest.mark.parametrize(
    ("frame", "args", "message"),
    [
        (pd.DataFrame({"x": [1.0], "y": [2.0], "reported_at": ["2024-01-01"]}), [], "lon"),
        (pd.DataFrame({"lon": [None], "lat": [None], "reported_at": ["2024-01-01"]}), [], "no located rows"),
        (pd.DataFrame({"lon": [113.8], "lat": [23.0], "reported_at": ["2024-01-01"]}), ["--by", "county"],
         "--by"),
        (pd.DataFrame({"lon": [113.8], "lat": [23.0], "reported_at": ["2024-01-01"]}), ["--since", "soon"],
         "not a date"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(frame: pd.DataFrame, args: list[str], message: str,
                                             small_plan: Path, tmp_path: Path) -> None:
    from gridplan.cli import app

    src = tmp_path / "in.csv"
    frame.to_csv(src, index=False)
    res = CliRunner().invoke(app, ["hotspots", str(src), "--plan", str(small_plan), "--out",
                                   str(tmp_path / "o.gpkg"), *args])
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert "Traceback" not in res.output
    res = CliRunner().invoke(app, ["heatmap", str(src), "--plan", str(small_plan), "--out",
                                   str(tmp_path / "o.tif")])
    assert res.exit_code == 2
    assert "Traceback" not in res.output


def test_cli_heatmap_weight_column(located_csv: Path, small_plan: Path, tmp_path: Path) -> None:
    import rasterio

    from gridplan.cli import app

    df = pd.read_csv(located_csv).head(400).assign(w=2.0)
    src = tmp_path / "weighted.csv"
    df.to_csv(src, index=False)
    runner = CliRunner()
    out = tmp_path / "w.tif"
    res = runner.invoke(app, ["heatmap", str(src), "--plan", str(small_plan), "--out", str(out),
                              "--weight", "w", "--cell-m", "100"])
    assert res.exit_code == 0, res.output
    with rasterio.open(out) as ds:
        assert ds.tags()["weight"] == "w"
        assert ds.tags()["bandwidth_rule"].startswith("silverman")
    res = runner.invoke(app, ["heatmap", str(src), "--plan", str(small_plan), "--out", str(out),
                              "--weight", "nope"])
    assert res.exit_code == 2
    assert "no such column" in res.output
    df.assign(w=-1.0).to_csv(src, index=False)
    res = runner.invoke(app, ["heatmap", str(src), "--plan", str(small_plan), "--out", str(out),
                              "--weight", "w"])
    assert res.exit_code == 2
    assert "negative weight" in res.output
    res = runner.invoke(app, ["heatmap", str(src), "--plan", str(small_plan), "--out",
                              str(tmp_path / "x.png")])
    assert res.exit_code == 2
    assert ".tif" in res.output
