"""FastAPI service on top of the library (PRODUCT §3.8): ``create_app(workspace_or_url)``.

Modules: :mod:`~gridplan.api.app` (factory: service, middleware, routers),
:mod:`~gridplan.api.routes` (one ``APIRouter`` per resource: session, admin, plans, uploads, jobs,
maps), :mod:`~gridplan.api.deps` (the service and the caller as dependencies),
:mod:`~gridplan.api.tasks` (the background work of jobs), :mod:`~gridplan.api.middleware` (body cap,
security headers), :mod:`~gridplan.api.auth` (hashed secrets, tokens, roles),
:mod:`~gridplan.api.jobs` (the job queue's workers), :mod:`~gridplan.api.uploads` (upload and archive
checks), :mod:`~gridplan.store.plans` (plan versions in a workspace or PostGIS).  Metadata tables
live in :mod:`gridplan.store.meta`.
"""

from __future__ import annotations

from gridplan.api.app import create_app

__all__ = ["create_app"]
