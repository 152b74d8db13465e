"""The one door for input geometry (gridplan.layers.geometry): Z dropped, bad coordinates and CRSs refused."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely import box

from gridplan.errors import CRSError, InputError
from gridplan.layers import read_layer, read_layers
from gridplan.merge import merge_layers
from gridplan.testing import assert_plan_equal

X0, Y0 = 420_000.0, 2_540_000.0


def _with_z(gdf: gpd.GeoDataFrame, z: float = 12.5) -> gpd.GeoDataFrame:
    geoms = shapely.force_3d(gdf.geometry.to_numpy(), z)
    return gdf.set_geometry(gpd.GeoSeries(geoms, index=gdf.index, crs=gdf.crs))


def _communities(crs: int = 4547, dx: float = 0.0) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "community_code": ["441900119001", "441900119002"],
            "community_name": ["东村", "西村"],
            "town_code": ["441900119", "441900119"],
        },
        geometry=[
            box(X0 + dx, Y0, X0 + dx + 500, Y0 + 500),
            box(X0 + dx + 500, Y0, X0 + dx + 1000, Y0 + 500),
        ],
        crs=crs,
    )


def test_z_is_dropped_at_read(tmp_path: Path) -> None:
    path = tmp_path / "layers.gpkg"
    pyogrio.write_dataframe(_with_z(_communities()), path, layer="communities")
    got = read_layer(path, "communities")
    assert not got.geometry.has_z.any()
    assert got.geometry.geom_equals(_communities().geometry).all()


def test_merge_of_3d_layers_equals_merge_of_2d(small_city: Path, tmp_path: Path) -> None:
    flat = read_layers(small_city / "layers.gpkg")
    path = tmp_path / "layers3d.gpkg"
    for name, gdf in flat.items():
        shown = _with_z(gdf) if isinstance(gdf, gpd.GeoDataFrame) else gdf
        pyogrio.write_dataframe(shown, path, layer=name)
    raised = read_layers(path)
    for name, gdf in raised.items():
        assert not gdf.geometry.has_z.any(), name
    assert_plan_equal(merge_layers(raised), merge_layers(flat), check_meta=False)


@pytest.mark.filterwarnings("ignore:invalid value encountered")
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_coordinates_are_refused_naming_the_feature(tmp_path: Path, bad: float) -> None:
    gdf = _communities()
    ring = np.array([[X0, Y0], [X0 + 500, Y0], [X0 + 500, bad], [X0, Y0 + 500], [X0, Y0]])
    gdf.loc[1, "geometry"] = shapely.Polygon(ring)
    path = tmp_path / "layers.gpkg"
    pyogrio.write_dataframe(gdf, path, layer="communities")
    with pytest.raises(InputError, match="features 2 have NaN or infinite coordinates") as err:
        read_layer(path, "communities")
    assert err.value.layer == "communities"
    assert err.value.row == 2


def test_metres_labelled_as_degrees_are_refused(tmp_path: Path) -> None:
    gdf = _communities().set_crs(4326, allow_override=True)
    path = tmp_path / "layers.gpkg"
    pyogrio.write_dataframe(gdf, path, layer="communities")
    with pytest.raises(CRSError, match=r"declares EPSG:4326 \(degrees\).*they are metres"):
        read_layer(path, "communities")


def test_degrees_labelled_as_metres_are_refused(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame(
        {"community_code": ["441900119001"], "community_name": ["东村"], "town_code": ["441900119"]},
        geometry=[box(113.70, 23.00, 113.71, 23.01)],
        crs=4547,
    )
    path = tmp_path / "layers.gpkg"
    pyogrio.write_dataframe(gdf, path, layer="communities")
    with pytest.raises(CRSError, match="they are degrees; declare EPSG:4490"):
        read_layer(path, "communities")


def test_a_department_far_from_the_others_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "layers.gpkg"
    comm = _communities()
    pyogrio.write_dataframe(comm, path, layer="communities")
    towns = gpd.GeoDataFrame(
        {"town_code": ["441900119"], "town_name": ["东城"]}, geometry=[comm.union_all()], crs=4547
    )
    pyogrio.write_dataframe(towns, path, layer="towns")
    police = gpd.GeoDataFrame(
        {"dept_grid_id": ["P1"], "dept_grid_name": ["一号"]},
        geometry=[box(X0 + 300_000, Y0, X0 + 301_000, Y0 + 500)],
        crs=4547,
    )
    pyogrio.write_dataframe(police, path, layer="dept_police")
    with pytest.raises(CRSError, match="lies 299 km away") as err:
        read_layers(path)
    assert err.value.layer == "dept_police"


@settings(max_examples=25, deadline=None)
@given(z=st.floats(-1e4, 1e4, allow_nan=False), nan_every=st.integers(0, 3))
def test_any_z_value_reads_as_the_2d_shape(
    tmp_path_factory: pytest.TempPathFactory, z: float, nan_every: int
) -> None:
    """Z values, NaN ones included (as GEOS overlay leaves them in new vertices), never reach a plan."""
    layer = _with_z(_communities(), z)
    if nan_every:

        def holes(c: np.ndarray) -> np.ndarray:
            zz = np.where(np.arange(len(c)) % (nan_every + 1) == 0, np.nan, c[:, 2])
            return np.column_stack([c[:, :2], zz])

        layer = layer.set_geometry(
            shapely.transform(layer.geometry.to_numpy(), holes, include_z=True), crs=4547
        )
    path = tmp_path_factory.mktemp("z") / "layers.gpkg"
    pyogrio.write_dataframe(layer, path, layer="communities")
    got = read_layer(path, "communities")
    assert got.geometry.geom_equals(_communities().geometry).all()
