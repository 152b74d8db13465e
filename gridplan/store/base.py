"""The interface both stores implement, and the rules they share: layer names, database URLs."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from pathlib import Path

import geopandas as gpd

from gridplan.errors import InputError

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_POSTGRES_PREFIXES = ("postgresql://", "postgresql+", "postgres://")


def is_postgres_url(target: str | Path) -> bool:
    """Whether *target* names a PostgreSQL database rather than a workspace folder.

    >>> is_postgres_url("postgresql+psycopg://u@h/db"), is_postgres_url("/tmp/ws")
    (True, False)
    """
    return str(target).startswith(_POSTGRES_PREFIXES)


def engine_url(url: str) -> str:
    """Return *url* with the psycopg 3 driver, unless it names a driver.

    >>> engine_url("postgres://u@h/db"), engine_url("postgresql+psycopg2://u@h/db")
    ('postgresql+psycopg://u@h/db', 'postgresql+psycopg2://u@h/db')
    """
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def check_layer_name(name: str) -> str:
    """Return *name* if it is a safe layer/table name (``[a-z][a-z0-9_]*``, ≤ 63 chars).

    Layer names end up in SQL identifiers and file names, so anything else is refused rather than
    quoted.

    >>> check_layer_name("base_grids")
    'base_grids'
    >>> check_layer_name("x; drop table y")
    Traceback (most recent call last):
    ...
    gridplan.errors.InputError: layer x; drop table y: not a valid layer name: use lower-case ...
    """
    if not _NAME.match(name):
        raise InputError("not a valid layer name: use lower-case letters, digits and _ (max 63)", layer=name)
    return name


class LayerStore(ABC):
    """A place that holds named layers transactionally: a reader never sees a half-written layer."""

    @abstractmethod
    def write_layer(self, gdf: gpd.GeoDataFrame, name: str) -> None:
        """Store *gdf* under *name*, replacing an existing layer atomically."""

    @abstractmethod
    def read_layer(self, name: str) -> gpd.GeoDataFrame:
        """Return the layer *name* (``NotFoundError`` when it does not exist)."""

    @abstractmethod
    def list_layers(self) -> list[str]:
        """Names of the stored layers, sorted."""

    @abstractmethod
    def drop_layer(self, name: str) -> None:
        """Remove the layer *name* if it exists."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections (no-op for file stores)."""

    def __enter__(self) -> LayerStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
