"""Settings read from the environment (``GRIDPLAN_`` prefix), once, through :func:`get_settings`.

Ground floor.  Library functions never read settings: they take explicit, unit-suffixed keyword
arguments whose defaults equal the settings' defaults.  Only the CLI and the API call
:func:`get_settings` and pass the values down.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: CGCS2000 / 3-degree Gauss-Kruger CM 114E — metres, covers Dongguan and its neighbours.
DEFAULT_COMPUTE_EPSG = 4547
#: CGCS2000 geographic — what layers are exchanged in unless they declare otherwise.
DEFAULT_EXCHANGE_EPSG = 4490


class Settings(BaseSettings):
    """Process-wide configuration; every field can be set as ``GRIDPLAN_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="GRIDPLAN_", extra="ignore")

    compute_epsg: int = Field(DEFAULT_COMPUTE_EPSG, description="projected CRS for all metric work")
    exchange_epsg: int = Field(DEFAULT_EXCHANGE_EPSG, description="geographic CRS for exchange/output")
    h3_res: int = Field(10, ge=0, le=15, description="H3 resolution of the plan's cell index")
    min_area_m2: float = Field(50.0, ge=0, description="atomic units smaller than this are slivers")
    households_min: int = Field(300, ge=0, description="lower end of the base-grid household band")
    households_max: int = Field(500, ge=1, description="upper end of the base-grid household band")
    workspace: Path = Field(Path("workspace"), description="embedded store folder")
    database_url: str | None = Field(None, description="postgresql://… selects the PostGIS store")
    max_upload_mb: float = Field(200.0, gt=0, description="largest accepted upload")
    max_upload_features: int = Field(5_000_000, gt=0, description="most features in one upload")
    tile_url: str | None = Field(None, description="basemap tile URL template for published maps")
    tile_crs: str = Field("wgs84", description="coordinate system of the basemap: wgs84|gcj02")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process settings (read from the environment on first call)."""
    return Settings()
