"""The same store tests on both backends: workspace folder and real PostGIS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import Polygon

from gridplan.errors import InputError, NotFoundError
from gridplan.store import LayerStore, open_store


def _grids() -> gpd.GeoDataFrame:
    polys = [Polygon([(400000 + i * 100, 2540000), (400100 + i * 100, 2540000),
                      (400100 + i * 100, 2540100), (400000 + i * 100, 2540100)]) for i in range(3)]
    return gpd.GeoDataFrame(
        {
            "grid_code": ["441900119001001", "441900119001002", "441900119002001"],
            "community_name": ["乌沙社区", "乌沙社区", "上沙社区<script>"],
            "households": [320, 410, 0],
        },
        geometry=polys,
        crs="EPSG:4547",
    )


@pytest.fixture(params=["workspace", "postgis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LayerStore]:
    if request.param == "workspace":
        yield open_store(tmp_path / "ws")
        return
    url = request.getfixturevalue("postgis_url")
    with open_store(url) as s:
        for name in s.list_layers():
            if name.startswith("t_"):
                s.drop_layer(name)
        yield s


def test_round_trip_keeps_chinese_text_crs_and_geometry(store: LayerStore) -> None:
    gdf = _grids()
    store.write_layer(gdf, "t_base_grids")
    back = store.read_layer("t_base_grids")
    assert back.crs.to_epsg() == 4547
    back = back.sort_values("grid_code").reset_index(drop=True)
    assert list(back["community_name"]) == ["乌沙社区", "乌沙社区", "上沙社区<script>"]
    assert list(back["households"]) == [320, 410, 0]
    assert back.geometry.geom_equals_exact(gdf.geometry, tolerance=1e-6).all()
    assert "t_base_grids" in store.list_layers()


def test_rewrite_replaces_whole_layer(store: LayerStore) -> None:
    store.write_layer(_grids(), "t_replace")
    store.write_layer(_grids().iloc[:1], "t_replace")
    assert len(store.read_layer("t_replace")) == 1


def test_missing_layer_and_bad_names_are_user_errors(store: LayerStore) -> None:
    with pytest.raises(NotFoundError, match="t_nope"):
        store.read_layer("t_nope")
    with pytest.raises(InputError, match="not a valid layer name"):
        store.write_layer(_grids(), 'x"; DROP TABLE y; --')
    with pytest.raises(InputError, match="no CRS"):
        store.write_layer(_grids().set_crs(None, allow_override=True), "t_nocrs")


@pytest.mark.postgis
def test_postgis_large_layer_round_trip(postgis_url: str) -> None:
    """10,000 features go in and come back whole (no timing: a shared CI machine is no clock)."""
    from shapely import box

    n = 10_000
    gdf = gpd.GeoDataFrame(
        {"dept_grid_id": [f"G{i:05d}" for i in range(n)], "dept_grid_name": ["东城网格"] * n},
        geometry=[
            box(
                400000 + (i % 100) * 50,
                2540000 + (i // 100) * 50,
                400050 + (i % 100) * 50,
                2540050 + (i // 100) * 50,
            )
            for i in range(n)
        ],
        crs="EPSG:4547",
    )
    with open_store(postgis_url) as s:
        s.write_layer(gdf, "t_big")
        back = s.read_layer("t_big")
        assert len(back) == n
        assert back.crs.to_epsg() == 4547
        assert set(back["dept_grid_id"]) == set(gdf["dept_grid_id"])
        assert set(back["dept_grid_name"]) == {"东城网格"}
        assert back.area.sum() == pytest.approx(n * 50 * 50)
        s.drop_layer("t_big")
        assert "t_big" not in s.list_layers()


def test_failed_write_leaves_previous_layer_intact(
    store: LayerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gridplan.errors import StoreError

    store.write_layer(_grids(), "t_keep")

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    # the writer fails after the old layer exists: PostGIS rolls back, the workspace keeps its file
    monkeypatch.setattr(gpd.GeoDataFrame, "to_postgis", boom)
    monkeypatch.setattr("pyogrio.write_dataframe", boom)
    with pytest.raises((StoreError, RuntimeError)):
        store.write_layer(_grids().iloc[:1], "t_keep")
    monkeypatch.undo()
    assert len(store.read_layer("t_keep")) == 3
