"""Where the service keeps plan versions: the registry row plus the plan's tables.

* Workspace: ``<workspace>/plans/<plan_id>.gpkg`` written by :func:`gridplan.plans.write_plan`
  (temp file + ``os.replace``), then registered in ``meta.sqlite``; if registering fails the file
  is removed, so a plan is either fully there and listed, or not there at all.
* PostgreSQL: every plan table goes to ``<plans_schema>.p_<id>__<layer>`` and the registry row is
  inserted in the SAME transaction, so a failure rolls all of it back.

Plans are append-only: a plan id is never written twice.  The LayerStore interface holds one layer
per name, which does not cover a multi-table versioned plan in one transaction, hence this module.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import sqlalchemy as sa

from gridplan.errors import InputError, NotFoundError, StoreError
from gridplan.plans import PLAN_LAYERS, Plan, PlanMeta, read_plan, write_plan
from gridplan.store.base import check_layer_name
from gridplan.store.meta import MetaStore

__all__ = ["PlanRepository"]

_PLAN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_SPATIAL = ("atomic_units", "base_grids", "qa_issues")


def check_plan_id(plan_id: str) -> str:
    """Return *plan_id* if it is a safe id (letters, digits, ``-``, ``_``; ≤ 64), else ``NotFoundError``.

    >>> check_plan_id("20250101T000000-abcd1234")
    '20250101T000000-abcd1234'
    """
    if not _PLAN_ID.match(plan_id or ""):
        raise NotFoundError(f"plan {plan_id!r} does not exist (not a valid plan id)")
    return plan_id


def _table_prefix(plan_id: str) -> str:
    return "p_" + re.sub(r"[^a-z0-9]", "_", plan_id.lower())[:40]


class PlanRepository:
    """Save, list and read plans for the service (workspace folder or PostGIS)."""

    def __init__(
        self, meta: MetaStore, *, root: Path | None = None, plans_schema: str = "gridplan_plans"
    ) -> None:
        self.meta = meta
        if meta.is_postgres:
            self.schema = check_layer_name(plans_schema)
            with meta.engine.begin() as conn:
                conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
                conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
            self.dir = None
        else:
            if root is None:
                raise ValueError("a workspace PlanRepository needs root")
            self.dir = Path(root) / "plans"
            self.dir.mkdir(parents=True, exist_ok=True)

    # -- writing ------------------------------------------------------------------------------
    def save(
        self,
        plan: Plan,
        *,
        source_upload: str | None = None,
        created_by: str | None = None,
        sole_child: bool = False,
    ) -> str:
        """Store *plan* and register it, all or nothing; return its id.

        With *sole_child*, refuse (:class:`~gridplan.store.meta.PlanConflictError`, nothing
        stored) when the plan's parent already has another child: optimistic concurrency for
        edits of one version; without it, the new plan may branch.
        """
        plan_id = check_plan_id(plan.meta.plan_id)
        row: dict[str, Any] = {
            "plan_id": plan_id,
            "parent_id": plan.meta.parent_id,
            "kind": plan.meta.kind,
            "created_at": plan.meta.created_at,
            "grid_count": len(plan.base_grids),
            "source_upload": source_upload,
            "created_by": created_by,
            "meta_json": json.dumps(
                dict(
                    zip(
                        *plan.meta.to_table(extra_tables=tuple(plan.extra_tables)).to_dict("list").values(),
                        strict=True,
                    )
                ),
                ensure_ascii=False,
            ),
        }
        try:
            self.meta.get_plan(plan_id)
        except NotFoundError:
            pass
        else:
            raise InputError(f"plan {plan_id} already exists; plans are append-only")
        if self.dir is not None:
            path = self.dir / f"{plan_id}.gpkg"
            write_plan(plan, path)
            try:
                self.meta.register_plan({**row, "storage": path.name}, sole_child=sole_child)
            except Exception:
                path.unlink(missing_ok=True)
                raise
            return plan_id
        prefix = _table_prefix(plan_id)
        try:
            with self.meta.engine.begin() as conn:
                for name, frame in plan.layers().items():
                    table = check_layer_name(f"{prefix}__{name}")
                    if name in _SPATIAL or isinstance(frame, gpd.GeoDataFrame):
                        gdf = (
                            frame
                            if isinstance(frame, gpd.GeoDataFrame)
                            else gpd.GeoDataFrame(frame, geometry="geometry", crs=plan.meta.crs)
                        )
                        if gdf.crs is None:
                            gdf = gdf.set_crs(plan.meta.crs)
                        gdf.to_postgis(table, conn, schema=self.schema, if_exists="fail", index=False)
                    else:
                        pd.DataFrame(frame).to_sql(
                            table, conn, schema=self.schema, if_exists="fail", index=False
                        )
                self.meta.register_plan({**row, "storage": prefix}, conn=conn, sole_child=sole_child)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"storing plan {plan_id} failed and was rolled back: {exc}"[:300]) from exc
        return plan_id

    # -- reading ------------------------------------------------------------------------------
    def _row(self, plan_id: str) -> dict[str, Any]:
        return self.meta.get_plan(check_plan_id(plan_id))

    def path(self, plan_id: str) -> Path:
        """GeoPackage path of a workspace plan."""
        row = self._row(plan_id)
        assert self.dir is not None
        return self.dir / row["storage"]

    @staticmethod
    def _meta_of(row: dict[str, Any]) -> tuple[PlanMeta, list[str]]:
        kv = json.loads(row["meta_json"])
        meta = PlanMeta.from_table(pd.DataFrame({"key": list(kv), "value": list(kv.values())}))
        return meta, list(json.loads(kv.get("extra_tables") or "[]"))

    def load(self, plan_id: str) -> Plan:
        """Read the whole plan."""
        row = self._row(plan_id)
        if self.dir is not None:
            return read_plan(self.dir / row["storage"])
        meta, extra = self._meta_of(row)
        frames: dict[str, pd.DataFrame] = {}
        with self.meta.engine.connect() as conn:
            for name in (*PLAN_LAYERS, *extra):
                sql = sa.text(f'SELECT * FROM "{self.schema}"."{row["storage"]}__{name}"')
                if name in _SPATIAL:
                    frames[name] = gpd.read_postgis(sql, conn, geom_col="geometry", crs=meta.crs)
                else:
                    frames[name] = pd.read_sql(sql, conn)
        return Plan.from_layers(frames, meta)

    def base_grids_page(self, plan_id: str, *, offset: int, limit: int) -> tuple[gpd.GeoDataFrame, int]:
        """Return one page of ``base_grids`` and the total count.

        Rows are ordered by ``grid_code`` in PostGIS and in file order in a workspace.
        """
        row = self._row(plan_id)
        if self.dir is not None:
            path = self.dir / row["storage"]
            total = int(pyogrio.read_info(path, layer="base_grids")["features"])
            if offset >= total:  # past the end: an empty page (max_features=0 would mean "all")
                gdf = pyogrio.read_dataframe(path, layer="base_grids", max_features=1).iloc[:0]
            else:
                gdf = pyogrio.read_dataframe(
                    path, layer="base_grids", skip_features=offset, max_features=limit
                )
            return gdf, total
        meta, _ = self._meta_of(row)
        table = f'"{self.schema}"."{row["storage"]}__base_grids"'
        with self.meta.engine.connect() as conn:
            total = int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
            gdf = gpd.read_postgis(
                sa.text(f"SELECT * FROM {table} ORDER BY grid_code LIMIT :limit OFFSET :offset"),
                conn,
                geom_col="geometry",
                crs=meta.crs,
                params={"limit": limit, "offset": offset},
            )
        return gdf, total

    def summary(self, plan_id: str) -> dict[str, Any]:
        """Plan summary: registry fields, meta, and base-grid totals (no geometry)."""
        row = self._row(plan_id)
        meta, extra = self._meta_of(row)
        if self.dir is not None:
            bg = pyogrio.read_dataframe(self.dir / row["storage"], layer="base_grids", read_geometry=False)
        else:
            with self.meta.engine.connect() as conn:
                bg = pd.read_sql(
                    sa.text(f'SELECT * FROM "{self.schema}"."{row["storage"]}__base_grids"'), conn
                )
            bg = bg.drop(columns=["geometry"], errors="ignore")
        totals = {
            c: float(pd.to_numeric(bg[c], errors="coerce").fillna(0).sum())
            for c in ("households", "residents", "floating_residents", "rental_rooms", "addresses", "area_m2")
            if c in bg.columns
        }
        band = bg["band_status"].value_counts().to_dict() if "band_status" in bg.columns else {}
        return {
            "plan_id": row["plan_id"],
            "parent_id": row["parent_id"],
            "kind": row["kind"],
            "created_at": row["created_at"],
            "grid_count": row["grid_count"],
            "county_code": meta.county_code,
            "crs": meta.crs,
            "departments": list(meta.departments),
            "params": meta.params,
            "extra_tables": extra,
            "totals": totals,
            "band_status": {str(k): int(v) for k, v in band.items()},
            "towns": int(bg["town_code"].nunique()) if "town_code" in bg.columns else None,
            "communities": int(bg["community_code"].nunique()) if "community_code" in bg.columns else None,
        }
