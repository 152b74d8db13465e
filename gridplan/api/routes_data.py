"""Data routes: plans (list, summary, GeoJSON grids, diff, re-import), uploads, jobs, published maps.

Each route declares its permission with :func:`gridplan.api.app.require`; job functions run on the
service's :class:`~gridplan.api.jobs.JobRunner` and write their outputs atomically.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pandas as pd
from fastapi import FastAPI, File, HTTPException, Query, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from gridplan.api.auth import Principal
from gridplan.api.deps import require
from gridplan.api.uploads import UploadTooLarge, ingest_cases, ingest_layers
from gridplan.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from gridplan.api.service import Service

__all__ = ["register"]

_MAP_FILE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,127}\.(?:html|json|png|css|js)$")
_ID = re.compile(r"^[a-f0-9]{16}$")


class MergeJob(BaseModel):
    """Start a merge of an uploaded layers GeoPackage."""

    upload_id: str = Field(..., description="id from POST /uploads/layers")
    departments: list[str] | None = Field(None, description="department names (default: every dept_* layer)")
    min_area_m2: float | None = Field(None, ge=0)
    households_min: int | None = Field(None, ge=0)
    households_max: int | None = Field(None, ge=1)


class GeocodeJob(BaseModel):
    """Geocode an uploaded cases/hazards CSV against the standard address library."""

    upload_id: str = Field(..., description="id from POST /uploads/cases")
    plan_id: str | None = Field(None, description="plan whose base grids rows are assigned to")
    layers_upload_id: str | None = Field(
        None, description="layers upload with std_addresses (default: the layers the plan was merged from)"
    )
    min_score: float = Field(80.0, ge=0, le=100)


def _job_view(job: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        k: job[k]
        for k in ("job_id", "kind", "state", "progress", "message", "owner", "created_at", "updated_at")
        if k in job
    }
    res = job.get("result")
    if res is not None:
        out["result"] = {k: v for k, v in res.items() if k != "file"}
    return out


def _save_stream(upload: UploadFile, dest: Path, *, max_bytes: int) -> int:
    n = 0
    with open(dest, "wb") as fh:
        while chunk := upload.file.read(1 << 20):
            n += len(chunk)
            if n > max_bytes:
                raise UploadTooLarge(
                    f"over the upload limit of {max_bytes} bytes (max_upload_mb)",
                    file=upload.filename or "upload",
                    field="file",
                )
            fh.write(chunk)
    return n


def register(app: FastAPI, service: Service) -> None:
    """Add the data routes to *app*."""
    meta, repo = service.meta, service.plans

    # -- plans ---------------------------------------------------------------------------------
    @app.get("/plans", tags=["plans"])
    def list_plans(_: Annotated[Principal, require("plans:summary")]) -> list[dict[str, Any]]:
        """Plan versions, newest first: id, parent, created_at, kind, grid count."""
        return [
            {k: r[k] for k in ("plan_id", "parent_id", "created_at", "kind", "grid_count")}
            for r in meta.list_plans()
        ]

    @app.get("/plans/{plan_id}", tags=["plans"])
    def plan_summary(plan_id: str, _: Annotated[Principal, require("plans:summary")]) -> dict[str, Any]:
        """Summary of one plan: parameters, departments, totals, band status counts."""
        return repo.summary(plan_id)

    @app.get("/plans/{plan_id}/grids", tags=["plans"])
    def plan_grids(
        plan_id: str,
        _: Annotated[Principal, require("plans:read")],
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    ) -> Response:
        """Return base grids as a GeoJSON FeatureCollection in EPSG:4326, one page at a time."""
        gdf, total = repo.base_grids_page(plan_id, offset=offset, limit=limit)
        fc = json.loads(gdf.to_crs(4326).to_json(drop_id=True, na="null"))
        fc["numberMatched"] = total
        fc["numberReturned"] = len(gdf)
        if offset + len(gdf) < total:
            fc["next"] = f"/plans/{plan_id}/grids?offset={offset + len(gdf)}&limit={limit}"
        return Response(json.dumps(fc, ensure_ascii=False), media_type="application/geo+json")

    @app.get("/plans/{plan_id}/diff/{other_id}", tags=["plans"])
    def plan_diff(
        plan_id: str,
        other_id: str,
        _: Annotated[Principal, require("plans:read")],
        limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
    ) -> dict[str, Any]:
        """Show what changed from plan *plan_id* (old) to *other_id* (new): summary, grids, moves."""
        from gridplan.plans import diff_plans

        d = diff_plans(repo.load(plan_id), repo.load(other_id))
        grids = d.grids.drop(columns=["geometry"], errors="ignore")
        moves = d.moves.drop(columns=["geometry"], errors="ignore")
        return {
            "summary": json.loads(json.dumps(d.summary, default=float)),
            "grids": json.loads(grids.head(limit).to_json(orient="records", force_ascii=False)),
            "moves": json.loads(moves.head(limit).to_json(orient="records", force_ascii=False)),
        }

    @app.post("/plans/{plan_id}/reimport", tags=["plans"], status_code=202)
    def reimport(
        plan_id: str, file: Annotated[UploadFile, File()], p: Annotated[Principal, require("plans:write")]
    ) -> dict[str, Any]:
        """Upload a base-grid layer edited in QGIS; a job turns it into a new plan version."""
        repo.summary(plan_id)  # 404 before storing anything
        up = _ingest(file, "grids", p)
        job_id = service.jobs.submit(
            "reimport",
            p.name,
            {"plan_id": plan_id, "upload_id": up["upload_id"]},
            lambda params, progress: _reimport_job(params, progress, p.name),
        )
        return {"job_id": job_id, "href": f"/jobs/{job_id}", "upload": up}

    def _reimport_job(params: dict[str, Any], progress: Any, owner: str) -> dict[str, Any]:
        from gridplan.merge import reimport_base_grids

        progress(0.1, "reading the parent plan")
        parent = repo.load(params["plan_id"])
        up = meta.get_upload(params["upload_id"])
        progress(0.3, "re-validating the edited grids")
        new = reimport_base_grids(parent, up["path"])
        progress(0.9, "storing the new version")
        plan_id = repo.save(
            new, source_upload=meta.get_plan(params["plan_id"])["source_upload"], created_by=owner
        )
        return {"plan_id": plan_id, "parent_id": params["plan_id"], "href": f"/plans/{plan_id}"}

    # -- uploads -------------------------------------------------------------------------------
    def _ingest(file: UploadFile, kind: str, p: Principal) -> dict[str, Any]:
        upload_id = secrets.token_hex(8)
        folder = service.data_dir / "uploads" / upload_id
        folder.mkdir(parents=True)
        filename = Path(file.filename or "upload").name
        try:
            ext = re.sub(r"[^a-z0-9]", "", Path(filename).suffix.lower())[:8]
            incoming = folder / f"incoming.{ext or 'bin'}"
            size = _save_stream(file, incoming, max_bytes=service.limits.max_upload_bytes)
            if kind == "cases":
                path, n = ingest_cases(incoming, filename, folder, limits=service.limits)
                layers: dict[str, int] = {"events": n}
            else:
                path, layers = ingest_layers(incoming, filename, folder, limits=service.limits)
                n = sum(layers.values())
            incoming.unlink(missing_ok=True)
            meta.add_upload(
                {
                    "upload_id": upload_id,
                    "kind": kind,
                    "filename": filename[:256],
                    "path": str(path),
                    "features": n,
                    "layers_json": json.dumps(layers),
                    "owner": p.name,
                }
            )
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return {
            "upload_id": upload_id,
            "kind": kind,
            "filename": filename,
            "bytes": size,
            "features": n,
            "layers": layers,
        }

    @app.post("/uploads/layers", tags=["uploads"], status_code=201)
    def upload_layers(
        file: Annotated[UploadFile, File(description=".gpkg, .geojson or .zip of shapefiles")],
        p: Annotated[Principal, require("plans:write")],
    ) -> dict[str, Any]:
        """Upload departmental layers (checked: size, archive safety, feature count)."""
        return _ingest(file, "layers", p)

    @app.post("/uploads/cases", tags=["uploads"], status_code=201)
    def upload_cases(
        file: Annotated[UploadFile, File(description="cases/hazards .csv (or .zip with one .csv)")],
        p: Annotated[Principal, require("analysis:run")],
    ) -> dict[str, Any]:
        """Upload a cases or hazards CSV for geocoding."""
        return _ingest(file, "cases", p)

    # -- jobs ----------------------------------------------------------------------------------
    @app.post("/jobs/merge", tags=["jobs"], status_code=202)
    def start_merge(body: MergeJob, p: Annotated[Principal, require("plans:write")]) -> dict[str, Any]:
        """Merge an uploaded layers GeoPackage into a new plan, in the background."""
        up = meta.get_upload(body.upload_id)
        if up["kind"] != "layers":
            raise InputError(
                f"upload {body.upload_id} is a {up['kind']} upload, not layers", field="upload_id"
            )
        missing = [d for d in body.departments or [] if f"dept_{d}" not in up["layers"]]
        if missing:
            there = ", ".join(sorted(k[5:] for k in up["layers"] if k.startswith("dept_")))
            raise InputError(
                f"no layer dept_{missing[0]} in upload {body.upload_id} (departments there: {there})",
                field="departments",
            )
        s = service.settings
        params: dict[str, Any] = {
            "upload_id": body.upload_id,
            "departments": body.departments,
            "min_area_m2": body.min_area_m2 if body.min_area_m2 is not None else s.min_area_m2,
            "households_min": body.households_min if body.households_min is not None else s.households_min,
            "households_max": body.households_max if body.households_max is not None else s.households_max,
            "h3_res": s.h3_res,
        }
        if params["households_min"] > params["households_max"]:
            raise InputError("households_min is above households_max", field="households_min")
        job_id = service.jobs.submit(
            "merge", p.name, params, lambda prm, progress: _merge_job(prm, progress, p.name)
        )
        return {"job_id": job_id, "href": f"/jobs/{job_id}"}

    def _merge_job(params: dict[str, Any], progress: Any, owner: str) -> dict[str, Any]:
        from gridplan.layers import read_layers
        from gridplan.merge import merge_layers

        up = meta.get_upload(params["upload_id"])
        progress(0.02, "reading layers")
        layers = read_layers(up["path"])
        steps = [0]

        def step(message: str) -> None:
            steps[0] += 1
            progress(min(0.9, 0.05 + 0.07 * steps[0]), message)

        plan = merge_layers(
            layers,
            departments=params["departments"],
            min_area_m2=params["min_area_m2"],
            households_min=params["households_min"],
            households_max=params["households_max"],
            h3_res=params["h3_res"],
            progress=step,
        )
        progress(0.95, "storing the plan")
        plan_id = repo.save(plan, source_upload=params["upload_id"], created_by=owner)
        return {"plan_id": plan_id, "href": f"/plans/{plan_id}", "grids": len(plan.base_grids)}

    @app.post("/jobs/geocode", tags=["jobs"], status_code=202)
    def start_geocode(body: GeocodeJob, p: Annotated[Principal, require("analysis:run")]) -> dict[str, Any]:
        """Geocode an uploaded CSV in the background; download the result from the job."""
        up = meta.get_upload(body.upload_id)
        if up["kind"] != "cases":
            raise InputError(
                f"upload {body.upload_id} is a {up['kind']} upload, not cases", field="upload_id"
            )
        layers_id = body.layers_upload_id
        if body.plan_id is not None:
            row = meta.get_plan(body.plan_id)
            layers_id = layers_id or row["source_upload"]
        if not layers_id:
            raise InputError(
                "give layers_upload_id (a layers upload with std_addresses) or a plan_id",
                field="layers_upload_id",
            )
        if meta.get_upload(layers_id)["kind"] != "layers":
            raise InputError(f"upload {layers_id} is not a layers upload", field="layers_upload_id")
        params = {
            "upload_id": body.upload_id,
            "plan_id": body.plan_id,
            "layers_upload_id": layers_id,
            "min_score": body.min_score,
            "result_name": secrets.token_hex(8),
        }
        job_id = service.jobs.submit("geocode", p.name, params, _geocode_job)
        return {"job_id": job_id, "href": f"/jobs/{job_id}"}

    def _geocode_job(params: dict[str, Any], progress: Any) -> dict[str, Any]:
        from gridplan.geocode import Geocoder
        from gridplan.layers import list_layers, read_layer, write_table_csv

        cases = meta.get_upload(params["upload_id"])
        table = pd.read_csv(cases["path"], dtype=str, keep_default_na=False, encoding="utf-8")
        lpath = meta.get_upload(params["layers_upload_id"])["path"]
        progress(0.05, "building the address index")
        present = set(list_layers(lpath))
        layers: dict[str, Any] = {
            n: read_layer(lpath, n) for n in ("std_addresses", "towns", "communities", "city") if n in present
        }
        plan = repo.load(params["plan_id"]) if params["plan_id"] else None
        geocoder = Geocoder.from_layers(layers, plan=plan)
        total = max(len(table), 1)
        result = geocoder.geocode_chunks(
            table,
            chunk_rows=20_000,
            min_score=params["min_score"],
            on_progress=lambda n: progress(0.1 + 0.85 * n / total, f"geocoded {n} of {len(table)} rows"),
        )
        out = service.data_dir / "results" / f"{params['result_name']}.csv"
        write_table_csv(result, out)
        status = result["status"].value_counts().to_dict() if "status" in result.columns else {}
        return {
            "rows": len(result),
            "status": {str(k): int(v) for k, v in status.items()},
            "file": out.name,
            "plan_id": params["plan_id"],
        }

    def _own_job(job_id: str, p: Principal) -> dict[str, Any]:
        job = meta.get_job(job_id if _ID.match(job_id) else "-")
        if job["owner"] != p.name and p.role != "admin":
            raise NotFoundError(f"job {job_id!r} does not exist")
        return job

    @app.get("/jobs", tags=["jobs"])
    def list_jobs(p: Annotated[Principal, require("jobs:read")]) -> list[dict[str, Any]]:
        """Your recent jobs (all jobs for an admin)."""
        return [_job_view(j) for j in meta.list_jobs(owner=None if p.role == "admin" else p.name)]

    @app.get("/jobs/{job_id}", tags=["jobs"])
    def get_job(job_id: str, p: Annotated[Principal, require("jobs:read")]) -> dict[str, Any]:
        """State (queued/running/succeeded/failed), progress 0–1, message and result link."""
        job = _own_job(job_id, p)
        view = _job_view(job)
        if job["state"] == "succeeded" and job["result"] and job["result"].get("file"):
            view["result"]["href"] = f"/jobs/{job_id}/result"
        return view

    @app.get("/jobs/{job_id}/result", tags=["jobs"])
    def job_result(job_id: str, p: Annotated[Principal, require("results:read")]) -> FileResponse:
        """Download a finished job's result file (geocoded CSV)."""
        job = _own_job(job_id, p)
        name = (job.get("result") or {}).get("file")
        if job["state"] != "succeeded" or not name:
            raise NotFoundError(f"job {job_id} has no result file (state {job['state']})")
        path = service.data_dir / "results" / Path(name).name
        if not path.is_file():
            raise NotFoundError(f"result of job {job_id} is no longer available")
        return FileResponse(path, media_type="text/csv; charset=utf-8", filename=f"geocoded-{job_id}.csv")

    # -- published maps ------------------------------------------------------------------------
    def _map_file(name: str) -> Path:
        if not _MAP_FILE.match(name) or ".." in name:
            raise HTTPException(400, f"not a valid map file name: {name[:80]!r}")
        root = service.maps_dir.resolve()
        path = (root / name).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise HTTPException(404, f"no published map {name!r}")
        return path

    @app.get("/maps/", tags=["maps"])
    def maps_index(_: Annotated[Principal, require("maps:read")]) -> FileResponse:
        """Serve the published maps' index page."""
        return FileResponse(_map_file("index.html"), media_type="text/html; charset=utf-8")

    @app.get("/maps/{name:path}", tags=["maps"])
    def map_file(name: str, _: Annotated[Principal, require("maps:read")]) -> FileResponse:
        """One published map file (read-only)."""
        return FileResponse(_map_file(name))
