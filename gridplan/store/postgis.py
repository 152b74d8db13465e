"""PostgreSQL + PostGIS store through SQLAlchemy and GeoAlchemy2 (production backend).

Each layer is one table in the configured schema.  ``write_layer`` loads the new rows into a
staging table and swaps it in (drop old, rename staging) inside ONE transaction, so a reader or
a killed writer never sees a half-written layer.  All SQL that carries values is parameterised;
identifiers are validated by :func:`gridplan.store.base.check_layer_name` and quoted.
"""

from __future__ import annotations

import logging
import time

import geopandas as gpd
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from gridplan.errors import InputError, NotFoundError, StoreError
from gridplan.store.base import LayerStore, check_layer_name, engine_url

log = logging.getLogger(__name__)


class PostgisStore(LayerStore):
    """Layers as PostGIS tables.

    Parameters
    ----------
    url
        SQLAlchemy/libpq URL, e.g. ``postgresql://user@host:5432/db``.  The password, if any,
        should come from the environment (``PGPASSWORD``), never from the repo.
    schema
        Schema holding the layers (created if missing).
    """

    def __init__(self, url: str, *, schema: str = "public") -> None:
        self.schema = check_layer_name(schema)
        try:
            self.engine: Engine = create_engine(engine_url(url), future=True, pool_pre_ping=True)
            with self.engine.begin() as conn:
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
        except SQLAlchemyError as exc:
            cause = getattr(exc, "orig", None) or exc  # DBAPIError carries the driver's error
            message = f"cannot open PostGIS store: {exc.__class__.__name__}: {cause!s}"
            raise StoreError(message[:300]) from exc

    def write_layer(self, gdf: gpd.GeoDataFrame, name: str) -> None:
        """Replace layer *name* with *gdf* in one transaction (staging table + rename)."""
        name = check_layer_name(name)
        if gdf.crs is None:
            raise InputError("layer has no CRS; set one before storing it", layer=name)
        staging = f"_staging_{name}"[:63]
        t0 = time.perf_counter()
        try:
            with self.engine.begin() as conn:
                conn.execute(text(f'DROP TABLE IF EXISTS "{self.schema}"."{staging}"'))
                gdf.to_postgis(staging, conn, schema=self.schema, if_exists="fail", index=False)
                conn.execute(text(f'DROP TABLE IF EXISTS "{self.schema}"."{name}"'))
                conn.execute(text(f'ALTER TABLE "{self.schema}"."{staging}" RENAME TO "{name}"'))
                idx = f"{name}_geom_idx"[:63]
                conn.execute(
                    text(f'ALTER INDEX IF EXISTS "{self.schema}"."idx_{staging}_geometry" RENAME TO "{idx}"')
                )
        except SQLAlchemyError as exc:
            raise StoreError(f"writing layer {name} failed and was rolled back: {exc}"[:300]) from exc
        log.info(
            "stored %d features in %s.%s in %.2f s", len(gdf), self.schema, name, time.perf_counter() - t0
        )

    def read_layer(self, name: str) -> gpd.GeoDataFrame:
        """Read layer *name* with its CRS."""
        name = check_layer_name(name)
        if name not in self.list_layers():
            raise NotFoundError(f"layer {name} is not in the PostGIS store (schema {self.schema})")
        geom_col = self._geometry_column(name)
        with self.engine.connect() as conn:
            return gpd.read_postgis(text(f'SELECT * FROM "{self.schema}"."{name}"'), conn, geom_col=geom_col)

    def list_layers(self) -> list[str]:
        """Tables of the schema, without staging tables."""
        names = inspect(self.engine).get_table_names(schema=self.schema)
        return sorted(n for n in names if not n.startswith("_staging_") and n != "spatial_ref_sys")

    def drop_layer(self, name: str) -> None:
        """Drop layer *name* if present."""
        name = check_layer_name(name)
        with self.engine.begin() as conn:
            conn.execute(text(f'DROP TABLE IF EXISTS "{self.schema}"."{name}"'))

    def close(self) -> None:
        """Dispose of the connection pool."""
        self.engine.dispose()

    def _geometry_column(self, name: str) -> str:
        with self.engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT f_geometry_column FROM geometry_columns "
                    "WHERE f_table_schema = :schema AND f_table_name = :name LIMIT 1"
                ),
                {"schema": self.schema, "name": name},
            ).first()
        return row[0] if row else "geometry"
