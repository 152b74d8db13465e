"""Tests for gridplan.crs: projections, GCJ-02/BD-09 (vectors + round trips), detection helpers."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from shapely import Point, box

from gridplan import crs
from gridplan.errors import CRSError, InputError

# Dongguan city centre (南城/莞城), CGCS2000 ≈ WGS-84.
DG_LON, DG_LAT = 113.75, 23.02

# --------------------------------------------------------------------------------------------
# published test vectors
# --------------------------------------------------------------------------------------------

# googollee/eviltransform python/test.py (TESTS: wgsLat, wgsLng, gcjLat, gcjLng), given here as
# (wgs_lon, wgs_lat, gcj_lon, gcj_lat).
EVILTRANSFORM_WGS_GCJ = [
    (121.5272106, 31.1774276, 121.531541859215, 31.17530398364597),  # shanghai
    (113.912316, 22.543847, 113.9171764808363, 22.540796131694766),  # shenzhen
    (116.377817, 39.911954, 116.38404722455657, 39.91334545536069),  # beijing
]


@pytest.mark.parametrize(("wlon", "wlat", "glon", "glat"), EVILTRANSFORM_WGS_GCJ)
def test_wgs84_to_gcj02_matches_eviltransform(wlon, wlat, glon, glat):
    lon, lat = crs.wgs84_to_gcj02(wlon, wlat)
    assert lon == pytest.approx(glon, abs=1e-9)
    assert lat == pytest.approx(glat, abs=1e-9)
    # and our inverse recovers the WGS-84 input to well below 1e-6 degrees
    blon, blat = crs.gcj02_to_wgs84(glon, glat)
    assert abs(blon - wlon) < 1e-8
    assert abs(blat - wlat) < 1e-8


def test_coordtransform_vectors():
    # wandergis/coordtransform test/app.js, input (116.404, 39.915) for every function.
    exact = pytest.approx((116.41024449916938, 39.91640428150164), abs=1e-12)
    assert crs.wgs84_to_gcj02(116.404, 39.915) == exact
    bd = pytest.approx((116.41036949371029, 39.92133699351021), abs=1e-12)
    assert crs.gcj02_to_bd09(116.404, 39.915) == bd
    # coordtransform inverts with ONE step (bd09togcj02, gcj02towgs84); ours iterates, so it agrees
    # with theirs only to their own error (~1e-6 deg) while our forward image hits the input exactly.
    b = crs.bd09_to_gcj02(116.404, 39.915)
    assert b == pytest.approx((116.39762729119315, 39.90865673957631), abs=2e-6)
    assert crs.gcj02_to_bd09(*b) == pytest.approx((116.404, 39.915), abs=1e-9)
    g = crs.gcj02_to_wgs84(116.404, 39.915)
    assert g == pytest.approx((116.39775550083061, 39.91359571849836), abs=2e-6)
    assert crs.wgs84_to_gcj02(*g) == pytest.approx((116.404, 39.915), abs=1e-9)


def test_gcoord_vectors():
    # hujiulong/gcoord test/unit/crs/GCJ02.spec.js (toBeCloseTo(…, 5) → within 5e-6).
    assert crs.gcj02_to_wgs84(123, 45) == pytest.approx((122.99395597, 44.99804071), abs=5e-6)
    assert crs.gcj02_to_bd09(123, 45) == pytest.approx((123.00636499, 45.00636899), abs=5e-6)
    # not in China: unchanged
    assert crs.gcj02_to_wgs84(183, 45) == (183.0, 45.0)


# --------------------------------------------------------------------------------------------
# round trips (property-based) and magnitudes
# --------------------------------------------------------------------------------------------

china_lon = st.floats(min_value=73.0, max_value=135.0, allow_nan=False)
china_lat = st.floats(min_value=3.0, max_value=53.5, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(china_lon, china_lat)
@example(DG_LON, DG_LAT)
@example(105.0, 35.0)  # the formula's origin: sqrt(|x|) is not differentiable there
def test_gcj02_round_trip(lon, lat):
    glon, glat = crs.wgs84_to_gcj02(lon, lat)
    wlon, wlat = crs.gcj02_to_wgs84(glon, glat)
    assert abs(wlon - lon) < 1e-6
    assert abs(wlat - lat) < 1e-6
    # and the other way round: a GCJ-02 point → WGS-84 → back
    g2 = crs.wgs84_to_gcj02(*crs.gcj02_to_wgs84(lon, lat))
    assert abs(g2[0] - lon) < 1e-6
    assert abs(g2[1] - lat) < 1e-6


@settings(max_examples=300, deadline=None)
@given(china_lon, china_lat)
@example(DG_LON, DG_LAT)
def test_bd09_round_trips(lon, lat):
    for fwd, inv in (
        (crs.wgs84_to_bd09, crs.bd09_to_wgs84),
        (crs.gcj02_to_bd09, crs.bd09_to_gcj02),
        (crs.bd09_to_wgs84, crs.wgs84_to_bd09),
    ):
        blon, blat = inv(*fwd(lon, lat))
        assert abs(blon - lon) < 1e-6, fwd.__name__
        assert abs(blat - lat) < 1e-6, fwd.__name__


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(china_lon, china_lat), min_size=1, max_size=200))
def test_vectorised_equals_scalar(points):
    lon = np.array([p[0] for p in points])
    lat = np.array([p[1] for p in points])
    vlon, vlat = crs.bd09_to_wgs84(lon, lat)
    assert isinstance(vlon, np.ndarray)
    assert vlon.shape == lon.shape
    for i in (0, len(points) - 1):
        slon, slat = crs.bd09_to_wgs84(float(lon[i]), float(lat[i]))
        assert slon == pytest.approx(vlon[i], abs=1e-10)
        assert slat == pytest.approx(vlat[i], abs=1e-10)


def test_inverse_does_not_mutate_inputs():
    lon = np.array([113.7, 113.8])
    lat = np.array([23.0, 22.9])
    before = lon.copy(), lat.copy()
    crs.gcj02_to_wgs84(lon, lat)
    crs.bd09_to_wgs84(lon, lat)
    np.testing.assert_array_equal(lon, before[0])
    np.testing.assert_array_equal(lat, before[1])


def test_offset_magnitude_around_dongguan():
    x0, y0 = crs.lonlat_to_xy(DG_LON, DG_LAT)
    gx, gy = crs.lonlat_to_xy(*crs.wgs84_to_gcj02(DG_LON, DG_LAT))
    bx, by = crs.lonlat_to_xy(*crs.wgs84_to_bd09(DG_LON, DG_LAT))
    assert 450 < np.hypot(gx - x0, gy - y0) < 750  # ~600 m
    assert 1000 < np.hypot(bx - x0, by - y0) < 1500  # ~1.2 km


def test_out_of_china_passes_through_unchanged():
    lon = np.array([2.3522, -73.9857, 150.0, DG_LON, np.nan])
    lat = np.array([48.8566, 40.7484, 30.0, DG_LAT, 23.0])
    flags = crs.is_out_of_china(lon, lat)
    assert flags.tolist() == [True, True, True, False, False]
    for func in (crs.wgs84_to_gcj02, crs.gcj02_to_wgs84, crs.wgs84_to_bd09, crs.bd09_to_wgs84,
                 crs.gcj02_to_bd09, crs.bd09_to_gcj02):
        olon, olat = func(lon, lat)
        np.testing.assert_array_equal(olon[:3], lon[:3])
        np.testing.assert_array_equal(olat[:3], lat[:3])
        assert olon[3] != lon[3]
        assert np.isnan(olon[4])  # NaN stays NaN, no error
    assert crs.is_out_of_china(2.35, 48.85) is True


# --------------------------------------------------------------------------------------------
# to_wgs84 / from_wgs84 with coord_sys
# --------------------------------------------------------------------------------------------


def test_to_wgs84_per_row_coord_sys():
    wlon = np.full(5, DG_LON)
    wlat = np.full(5, DG_LAT)
    systems = np.array(["cgcs2000", "WGS84", "gcj02", "BD-09", None], dtype=object)
    lon, lat = crs.from_wgs84(wlon, wlat, systems)
    assert lon[0] == DG_LON
    assert lon[1] == DG_LON
    assert lon[4] == DG_LON  # missing → cgcs2000
    assert lon[2] == pytest.approx(crs.wgs84_to_gcj02(DG_LON, DG_LAT)[0])
    assert lon[3] == pytest.approx(crs.wgs84_to_bd09(DG_LON, DG_LAT)[0])
    back_lon, back_lat = crs.to_wgs84(lon, lat, systems)
    np.testing.assert_allclose(back_lon, wlon, atol=1e-9)
    np.testing.assert_allclose(back_lat, wlat, atol=1e-9)


def test_to_wgs84_unknown_coord_sys_is_input_error():
    with pytest.raises(InputError, match="unknown coordinate system 'mars'"):
        crs.to_wgs84([DG_LON, DG_LON], [DG_LAT, DG_LAT], ["wgs84", "mars"])
    with pytest.raises(InputError, match="'BJ54'"):
        crs.to_wgs84(DG_LON, DG_LAT, "BJ54")


def test_to_wgs84_length_mismatch():
    with pytest.raises(InputError, match="coord_sys has 1 values but there are 2 points"):
        crs.to_wgs84([1.0, 2.0], [1.0, 2.0], ["wgs84"])


# --------------------------------------------------------------------------------------------
# projections and CRS checks
# --------------------------------------------------------------------------------------------


def test_epsg4547_axis_order_is_easting_first():
    x, y = crs.lonlat_to_xy(DG_LON, DG_LAT)
    assert 400_000 < x < 480_000
    assert 2_500_000 < y < 2_600_000
    lon, lat = crs.xy_to_lonlat(x, y)
    assert (lon, lat) == pytest.approx((DG_LON, DG_LAT), abs=1e-9)
    # the raw pyproj transformer without always_xy would be northing-first; ours is cached
    assert crs.get_transformer("EPSG:4490", "EPSG:4547") is crs.get_transformer("EPSG:4490", "EPSG:4547")


def test_lonlat_to_xy_arrays_and_coord_sys():
    lon = np.array([DG_LON, DG_LON])
    lat = np.array([DG_LAT, DG_LAT])
    x, y = crs.lonlat_to_xy(lon, lat)
    assert x.shape == (2,)
    glon, glat = crs.wgs84_to_gcj02(lon, lat)
    gx, gy = crs.lonlat_to_xy(glon, glat, coord_sys="gcj02")
    np.testing.assert_allclose(gx, x, atol=1e-3)
    np.testing.assert_allclose(gy, y, atol=1e-3)


def test_require_projected():
    pts = [Point(0, 0)]
    crs.require_projected(gpd.GeoDataFrame(geometry=pts, crs=4547))
    with pytest.raises(CRSError, match="towns has no CRS"):
        crs.require_projected(gpd.GeoDataFrame(geometry=pts), what="towns")
    with pytest.raises(CRSError, match=r"geographic CRS EPSG:4490.*to_crs\(4547\)"):
        crs.require_projected(gpd.GeoDataFrame(geometry=pts, crs=4490))
    with pytest.raises(CRSError, match="EPSG:3857 but EPSG:4547 is expected"):
        crs.require_projected(gpd.GeoDataFrame(geometry=pts, crs=3857), expected_crs=4547)


# --------------------------------------------------------------------------------------------
# detection helpers
# --------------------------------------------------------------------------------------------


def test_is_swapped_lonlat():
    bbox = (113.5, 22.6, 114.3, 23.2)
    lon = np.array([DG_LON, DG_LAT, 0.0, np.nan, 116.0])
    lat = np.array([DG_LAT, DG_LON, 0.0, DG_LAT, 40.0])
    assert crs.is_swapped_lonlat(lon, lat, bbox_lonlat=bbox).tolist() == [False, True, False, False, False]


def test_is_outside_boundary():
    square = box(0, 0, 10, 10)
    x = np.array([5.0, 10.0, 11.0, np.nan, -1.0])
    y = np.array([5.0, 5.0, 5.0, 5.0, -1.0])
    assert crs.is_outside(x, y, square).tolist() == [False, False, True, False, True]
    # a GeoDataFrame boundary is unioned
    gdf = gpd.GeoDataFrame(geometry=[box(0, 0, 5, 10), box(5, 0, 10, 10)], crs=4547)
    assert crs.is_outside(x, y, gdf).tolist() == [False, False, True, False, True]
