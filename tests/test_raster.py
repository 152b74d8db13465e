"""KDE accuracy against exact evaluation, mass conservation, clipping, COG and PNG writing."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st

from gridplan.errors import InputError
from gridplan.hotspots import (
    NODATA,
    cell_centres,
    kde_density,
    kde_exact,
    linear_bin,
    silverman_bandwidth_m,
    write_cog,
    write_png,
)

X0, Y0 = 470000.0, 2540000.0


def _clustered(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(X0 + 2000, 300, 800), rng.normal(X0 + 5000, 150, 400),
                        rng.uniform(X0, X0 + 8000, 600)])
    y = np.concatenate([rng.normal(Y0 + 3000, 400, 800), rng.normal(Y0 + 1000, 200, 400),
                        rng.uniform(Y0, Y0 + 6000, 600)])
    return x, y


def _max_rel_error(dens: np.ndarray, exact: np.ndarray) -> float:
    big = exact > 0.01 * exact.max()
    return float((np.abs(dens - exact)[big] / exact[big]).max())


@pytest.mark.parametrize(("bandwidth_m", "cell_m"), [(300.0, 50.0), (200.0, 50.0), (500.0, 100.0)])
def test_binned_kde_within_1_percent_of_exact(bandwidth_m: float, cell_m: float) -> None:
    x, y = _clustered()
    dens, tr = kde_density(x, y, bandwidth_m=bandwidth_m, cell_m=cell_m)
    cx, cy = cell_centres(tr, dens.shape)
    exact = kde_exact(x, y, cx.ravel(), cy.ravel(), bandwidth_m=bandwidth_m).reshape(dens.shape)
    assert _max_rel_error(dens, exact) < 0.01


def test_edges_are_not_reflected() -> None:
    # the raster cuts through a cluster: cells at the edge must match the exact KDE (no mirrored mass)
    x, y = _clustered()
    bounds = (X0 + 1500, Y0 + 2500, X0 + 6000, Y0 + 5000)
    dens, tr = kde_density(x, y, bandwidth_m=300, cell_m=50, bounds=bounds)
    assert tr.c == X0 + 1500
    assert tr.f == Y0 + 5000
    cx, cy = cell_centres(tr, dens.shape)
    exact = kde_exact(x, y, cx.ravel(), cy.ravel(), bandwidth_m=300).reshape(dens.shape)
    edge = np.zeros(dens.shape, dtype=bool)
    edge[[0, -1], :] = True
    edge[:, [0, -1]] = True
    assert _max_rel_error(dens[edge], exact[edge]) < 0.01


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(1, 300),
    bandwidth_m=st.floats(60.0, 600.0),
    cell_m=st.sampled_from([20.0, 50.0]),
    seed=st.integers(0, 10_000),
    weighted=st.booleans(),
)
def test_integrated_density_equals_event_count(n: int, bandwidth_m: float, cell_m: float, seed: int,
                                               weighted: bool) -> None:
    rng = np.random.default_rng(seed)
    x = rng.uniform(X0, X0 + 3000, n)
    y = rng.uniform(Y0, Y0 + 3000, n)
    w = rng.uniform(0.0, 3.0, n) if weighted else None
    dens, _ = kde_density(x, y, weights=w, bandwidth_m=bandwidth_m, cell_m=cell_m)
    total = float(dens.astype(np.float64).sum()) * cell_m * cell_m / 1e6
    expected = float(w.sum()) if w is not None else float(n)
    assert total == pytest.approx(expected, rel=0.01, abs=1e-6)


def test_integer_weights_equal_repeated_points() -> None:
    x, y = _clustered()
    w = np.arange(len(x)) % 3
    bounds = (x.min() - 1000, y.min() - 1000, x.max() + 1000, y.max() + 1000)
    a, _ = kde_density(x, y, weights=w, bandwidth_m=250, cell_m=50, bounds=bounds)
    b, _ = kde_density(np.repeat(x, w), np.repeat(y, w), bandwidth_m=250, cell_m=50, bounds=bounds)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(b.max()))


def test_linear_binning_preserves_weight_and_centroid() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(10, 290, 500)
    y = rng.uniform(-290, -10, 500)
    w = rng.uniform(0, 2, 500)
    tr = Affine(20, 0, 0, 0, -20, 0)
    a = linear_bin(x, y, w, tr, (15, 15))
    cx, cy = cell_centres(tr, (15, 15))
    assert a.sum() == pytest.approx(w.sum())
    assert (a * cx).sum() / a.sum() == pytest.approx(np.average(x, weights=w))
    assert (a * cy).sum() / a.sum() == pytest.approx(np.average(y, weights=w))


def test_silverman_formula_by_hand() -> None:
    x = np.array([0.0, 100.0, 200.0, 300.0, 5000.0])
    y = np.array([0.0, 50.0, 0.0, 50.0, 5000.0])
    cx, cy = x.mean(), y.mean()
    d = np.hypot(x - cx, y - cy)
    sd = math.sqrt((d**2).mean())
    dm = float(np.median(d))
    expected = 0.9 * min(sd, math.sqrt(1 / math.log(2)) * dm) * 5 ** -0.2
    assert silverman_bandwidth_m(x, y) == pytest.approx(expected)
    # the median term makes it robust: the outlier barely moves the bandwidth vs SD alone
    assert silverman_bandwidth_m(x, y) < 0.9 * sd * 5 ** -0.2


def test_default_bandwidth_and_clip() -> None:
    x, y = _clustered()
    clip = shapely.box(X0 + 1000, Y0 + 500, X0 + 6000, Y0 + 4500).difference(
        shapely.box(X0 + 3000, Y0 + 2000, X0 + 3500, Y0 + 2500))
    dens, tr = kde_density(x, y, cell_m=50, clip=clip)
    assert (tr.c, tr.f) == (X0 + 1000, Y0 + 4500)
    assert dens.shape == (80, 100)
    cx, cy = cell_centres(tr, dens.shape)
    inside = shapely.contains_xy(clip, cx, cy)
    assert np.isnan(dens[~inside]).all()
    assert np.isfinite(dens[inside]).all()
    assert np.isnan(dens[(cx > X0 + 3000) & (cx < X0 + 3500) & (cy > Y0 + 2000) & (cy < Y0 + 2500)]).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"x": [], "y": [], "bandwidth_m": 100.0}, "no located events"),
        ({"x": [0.0, 1.0], "y": [0.0], "bandwidth_m": 100.0}, "different lengths"),
        ({"x": [0.0], "y": [0.0], "bandwidth_m": 0.0}, "bandwidth must be positive"),
        ({"x": [0.0], "y": [0.0], "bandwidth_m": 10.0, "cell_m": -1.0}, "cell size"),
        ({"x": [0.0], "y": [0.0], "bandwidth_m": 10.0, "weights": [-1.0]}, "weights must be"),
        ({"x": [0.0], "y": [0.0], "bandwidth_m": 10.0, "weights": [1.0, 2.0]}, "weights have length"),
        ({"x": [5.0], "y": [5.0]}, "at least two"),
        ({"x": [5.0, 5.0], "y": [5.0, 5.0]}, "one place"),
    ],
)
def test_kde_errors(kwargs: dict, message: str) -> None:
    x = kwargs.pop("x")
    y = kwargs.pop("y")
    with pytest.raises(InputError, match=message):
        kde_density(x, y, **kwargs)


def test_write_cog_is_a_valid_cog(tmp_path: Path) -> None:
    assert importlib.util.find_spec("rio_cogeo") is None  # checked with rasterio/GDAL alone
    rng = np.random.default_rng(0)
    x = rng.normal(X0 + 30000, 8000, 20000)
    y = rng.normal(Y0 + 30000, 6000, 20000)
    clip = shapely.Point(X0 + 30000, Y0 + 30000).buffer(29000)
    dens, tr = kde_density(x, y, bandwidth_m=300, cell_m=50, clip=clip)
    path = write_cog(dens, tmp_path / "heat.tif", tr, "EPSG:4547", tags={"bandwidth_m": 300, "cell_m": 50})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["heat.tif"]  # no temp file left
    with rasterio.open(path) as ds:
        prof = ds.profile
        assert prof["tiled"]
        assert prof["blockxsize"] == prof["blockysize"] == 512
        assert prof["compress"] == "deflate"
        assert prof["dtype"] == "float32"
        assert ds.count == 1
        assert ds.overviews(1), "internal overviews"
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert ds.crs.to_epsg() == 4547
        assert ds.transform == tr
        assert ds.nodata == NODATA
        assert ds.tags()["units"] == "events per km²"
        assert ds.units == ("events per km²",)
        assert ds.tags()["bandwidth_m"] == "300"
        back = ds.read(1, masked=True)
    assert back.mask.sum() == np.isnan(dens).sum()
    np.testing.assert_array_equal(back.filled(np.nan), dens)


def test_write_cog_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="2-D"):
        write_cog(np.zeros(3), tmp_path / "a.tif", Affine.identity())
    with pytest.raises(InputError, match="does not exist"):
        write_cog(np.zeros((2, 2)), tmp_path / "no" / "a.tif", Affine.identity())


def test_write_png(tmp_path: Path) -> None:
    import geopandas as gpd

    x, y = _clustered()
    clip = gpd.GeoSeries([shapely.box(X0, Y0, X0 + 8000, Y0 + 6000)], crs=4547)
    dens, tr = kde_density(x, y, bandwidth_m=300, cell_m=100, clip=clip)
    out = write_png(dens, tmp_path / "heat.png", tr, title="热力图 治安", boundary=clip)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["heat.png"]
