"""Heat raster → coloured PNG in Web Mercator, for a Leaflet ``ImageOverlay``.

Leaflet stretches an image overlay linearly between its corner coordinates *in Web Mercator*, so
the GeoTIFF is warped to EPSG:3857 (rasterio) before colouring; the overlay bounds are the
EPSG:4326 corners of that grid.  For a GCJ-02 basemap the bounds are shifted by the GCJ-02 offset at
the raster centre (the offset varies by well under a metre per kilometre, so a city-sized image
stays aligned to a few metres).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from gridplan.crs import get_transformer, wgs84_to_gcj02
from gridplan.errors import InputError

__all__ = ["heat_png"]


def heat_png(
    path: str | Path,
    *,
    cmap: str = "YlOrRd",
    opacity: float = 0.75,
    max_pixels: int = 2048,
    gcj02: bool = False,
) -> tuple[bytes, tuple[float, float, float, float], float]:
    """Warp, colour and PNG-encode a single-band heat raster.

    Returns
    -------
    png, (west, south, east, north), vmax
        PNG bytes (RGBA; zero, negative and nodata pixels transparent), overlay bounds in degrees,
        and the value mapped to the top colour (99th percentile of positive pixels).

    """
    import matplotlib
    import rasterio
    from affine import Affine
    from PIL import Image
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    path = Path(path)
    if not path.exists():
        raise InputError("heat raster not found", file=path)
    if not 0 < opacity <= 1:
        raise InputError(f"opacity must be in (0, 1], got {opacity}")
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"cannot read heat raster: {exc}", file=path) from None
    with src, warnings.catch_warnings():
        # rasterio 1.4 multiplies Affine objects with `*`, which affine >= 3.1 flags as pending deprecation
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        if src.crs is None:
            raise InputError("heat raster has no CRS", file=path)
        if src.count < 1:
            raise InputError("heat raster has no band", file=path)
        dst_crs = "EPSG:3857"
        transform, width, height = calculate_default_transform(
            src.crs, dst_crs, src.width, src.height, *src.bounds
        )
        scale = max(width, height) / max_pixels
        if scale > 1:
            width, height = max(1, int(width / scale)), max(1, int(height / scale))
            transform = transform @ Affine.scale(scale, scale)
        dst = np.full((height, width), np.nan, dtype=np.float32)
        band = src.read(1, masked=True).astype(np.float32).filled(np.nan)
        reproject(
            band,
            dst,
            src_transform=src.transform,
            src_crs=src.crs,
            src_nodata=np.nan,
            dst_transform=transform,
            dst_crs=dst_crs,
            dst_nodata=np.nan,
            resampling=Resampling.bilinear,
        )
    pos = dst[np.isfinite(dst) & (dst > 0)]
    vmax = float(np.quantile(pos, 0.99)) if pos.size else 1.0
    vmax = vmax if vmax > 0 else 1.0
    norm = np.clip(np.nan_to_num(dst, nan=0.0) / vmax, 0, 1)
    rgba = matplotlib.colormaps[cmap](norm)
    alpha = np.where(np.isfinite(dst) & (dst > vmax * 0.02), opacity * (0.35 + 0.65 * norm), 0.0)
    rgba[..., 3] = alpha
    img = Image.fromarray((rgba * 255).round().astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    west_m, north_m = transform @ (0, 0)
    east_m, south_m = transform @ (width, height)
    t = get_transformer("EPSG:3857", "EPSG:4326")
    (west, east), (north, south) = t.transform([west_m, east_m], [north_m, south_m])
    if gcj02:
        clon, clat = (west + east) / 2, (north + south) / 2
        glon, glat = wgs84_to_gcj02(np.array([clon]), np.array([clat]))
        dlon, dlat = float(glon[0]) - clon, float(glat[0]) - clat
        west, east, south, north = west + dlon, east + dlon, south + dlat, north + dlat
    return buf.getvalue(), (float(west), float(south), float(east), float(north)), vmax
