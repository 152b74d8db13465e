"""Storage faces: the embedded workspace (GeoPackage files) and production PostGIS.

``open_store(url_or_path)`` picks the backend from its argument: a ``postgresql://`` URL selects
:class:`~gridplan.store.postgis.PostgisStore`; anything else is a workspace folder handled by
:class:`~gridplan.store.workspace.WorkspaceStore`.  Both offer the same small interface
(``write_layer``, ``read_layer``, ``list_layers``, ``drop_layer``) so the same tests run on both.
"""

from __future__ import annotations

from pathlib import Path

from gridplan.store.base import LayerStore, is_postgres_url


def open_store(target: str | Path) -> LayerStore:
    """Open the store named by *target* (a ``postgresql…://`` URL or a workspace folder)."""
    text = str(target)
    if is_postgres_url(text):
        from gridplan.store.postgis import PostgisStore

        return PostgisStore(text)
    from gridplan.store.workspace import WorkspaceStore

    return WorkspaceStore(Path(text))


__all__ = ["LayerStore", "open_store"]
