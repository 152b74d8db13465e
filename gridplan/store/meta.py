"""Service metadata: users, hashed tokens, the plan registry and the durable job queue.

One SQLAlchemy Core schema that runs on SQLite (the workspace's ``meta.sqlite``) and on
PostgreSQL (the same database as the PostGIS layers, in its own schema so the tables never show up
as layers).  Every statement is built with SQLAlchemy Core, so every value is a bound parameter.

The jobs table is the queue every server process on the same store shares (see
:mod:`gridplan.api.jobs`): :meth:`MetaStore.claim_job` hands the oldest queued job to exactly one
worker (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, a state-guarded ``UPDATE`` on SQLite), the worker
renews its lease while the job runs, and :meth:`MetaStore.fail_expired_jobs` fails a running job
whose lease ran out (the process running it died).

Secrets are never stored: passwords and tokens are kept as ``scrypt`` hashes with a per-secret
random salt (see :mod:`gridplan.api.auth`); this module only stores and fetches the hash strings.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Collection
from pathlib import Path
from typing import Any, Literal, get_args

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from gridplan._clock import utc_now
from gridplan.errors import GridplanError, InputError, NotFoundError, StoreError
from gridplan.store.base import check_layer_name, engine_url, is_postgres_url

logger = logging.getLogger(__name__)

__all__ = ["FINAL_STATES", "JOB_STATES", "ROLES", "MetaStore", "PlanConflictError", "Role", "is_postgres_url"]

#: Roles a user can hold (PRODUCT §3.8).
#: Who a user is to the service (DESIGN.md's role matrix).
Role = Literal["planner", "analyst", "leader", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
#: Job life cycle: ``queued`` → ``running`` → one of the final states (a queued job may also be
#: cancelled at once).
JOB_STATES: tuple[str, ...] = ("queued", "running", "succeeded", "failed", "cancelled")
#: States a job never leaves.
FINAL_STATES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


class PlanConflictError(GridplanError):
    """A new version of *parent_id* when it already has a newer child (*newer_id*): HTTP 409."""

    http_status = 409

    def __init__(self, parent_id: str, newer_id: str | None, *, pending_job: str | None = None) -> None:
        what = f"version {newer_id}" if newer_id else f"version being made by job {pending_job}"
        super().__init__(
            f"plan {parent_id} already has a newer {what}; re-import onto the newer version, "
            "or send branch=true to branch on purpose"
        )
        self.parent_id, self.newer_id, self.pending_job = parent_id, newer_id, pending_job


def _tables(schema: str | None) -> tuple[sa.MetaData, dict[str, sa.Table]]:
    md = sa.MetaData(schema=schema)
    ts = sa.DateTime(timezone=True)
    users = sa.Table(
        "gp_users",
        md,
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(256)),
        sa.Column("active", sa.Boolean, nullable=False, default=True),
        sa.Column("created_at", ts, nullable=False),
    )
    tokens = sa.Table(
        "gp_tokens",
        md,
        sa.Column("token_id", sa.String(32), primary_key=True),
        sa.Column("user_name", sa.String(64), sa.ForeignKey(users.c.name), nullable=False),
        sa.Column("token_hash", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),  # api | session
        sa.Column("label", sa.String(128)),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("expires_at", ts, nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False, default=False),
        # a session is bound to the API token it was made from (NULL: from a password)
        sa.Column("parent_token_id", sa.String(32)),
        sa.Column("last_seen_at", ts),
    )
    plans = sa.Table(
        "gp_plans",
        md,
        sa.Column("plan_id", sa.String(64), primary_key=True),
        sa.Column("parent_id", sa.String(64)),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("grid_count", sa.Integer, nullable=False),
        sa.Column("storage", sa.String(512), nullable=False),
        sa.Column("source_upload", sa.String(64)),
        sa.Column("meta_json", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(64)),
    )
    uploads = sa.Table(
        "gp_uploads",
        md,
        sa.Column("upload_id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("filename", sa.String(256), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("features", sa.Integer, nullable=False),
        sa.Column("layers_json", sa.Text, nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("created_at", ts, nullable=False),
    )
    jobs = sa.Table(
        "gp_jobs",
        md,
        sa.Column("job_id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("progress", sa.Float, nullable=False, default=0.0),
        sa.Column("message", sa.Text, nullable=False, default=""),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("params_json", sa.Text, nullable=False),
        sa.Column("result_json", sa.Text),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
        # the queue: who runs it and until when its lease holds; a cancel asked for while running
        sa.Column("worker", sa.String(64)),
        sa.Column("lease_until", ts),
        sa.Column("cancel_requested", sa.Boolean, default=False),
        sa.Index("ix_gp_jobs_state_created", "state", "created_at"),
    )
    return md, {"users": users, "tokens": tokens, "plans": plans, "uploads": uploads, "jobs": jobs}


def _aware(value: Any) -> Any:
    """SQLite returns naive datetimes: mark them UTC."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _row(row: Any) -> dict[str, Any]:
    return {k: _aware(v) for k, v in row._mapping.items()}


class MetaStore:
    """Metadata tables on SQLite (workspace) or PostgreSQL.

    Parameters
    ----------
    target
        A workspace folder (``<folder>/meta.sqlite`` is used) or a ``postgresql://`` URL.
    schema
        PostgreSQL schema of the metadata tables (ignored on SQLite).

    """

    def __init__(self, target: str | Path, *, schema: str = "gridplan_meta") -> None:
        self.is_postgres = is_postgres_url(target)
        try:
            if self.is_postgres:
                self.schema: str | None = check_layer_name(schema)
                self.engine: Engine = sa.create_engine(engine_url(str(target)), pool_pre_ping=True)
                with self.engine.begin() as conn:
                    conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
            else:
                root = Path(target)
                root.mkdir(parents=True, exist_ok=True)
                self.schema = None
                self.engine = sa.create_engine(
                    f"sqlite:///{root / 'meta.sqlite'}",
                    connect_args={"check_same_thread": False, "timeout": 30},
                )
            self.metadata, self.t = _tables(self.schema)
            self.metadata.create_all(self.engine)
            self._add_missing_columns()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open the metadata store: {exc.__class__.__name__}") from exc

    def _add_missing_columns(self) -> None:
        """Add the columns and indexes newer versions define to tables an older version created."""
        inspector = sa.inspect(self.engine)
        for table in self.t.values():
            have = {c["name"] for c in inspector.get_columns(table.name, schema=self.schema)}
            for col in table.columns:
                if col.name not in have:
                    name = f'"{self.schema}"."{table.name}"' if self.schema else f'"{table.name}"'
                    kind = col.type.compile(dialect=self.engine.dialect)
                    with self.engine.begin() as conn:
                        conn.execute(sa.text(f'ALTER TABLE {name} ADD COLUMN "{col.name}" {kind}'))
            for index in table.indexes:
                index.create(self.engine, checkfirst=True)

    def close(self) -> None:
        """Dispose of the connection pool."""
        self.engine.dispose()

    def _insert(self, table: str, **values: Any) -> None:
        """Insert one row into *table* in its own transaction."""
        with self.engine.begin() as conn:
            conn.execute(self.t[table].insert().values(**values))

    def _one(self, table: str, key: str, value: str, *, what: str) -> dict[str, Any]:
        """Return the row of *table* whose *key* is *value* (``NotFoundError`` naming *what*)."""
        t = self.t[table]
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t).where(t.c[key] == value)).first()
        if row is None:
            raise NotFoundError(f"{what} {value!r} does not exist")
        return _row(row)

    # -- users --------------------------------------------------------------------------------
    def add_user(self, name: str, role: str, *, password_hash: str | None = None) -> None:
        """Create user *name* with *role* (``InputError`` if it exists or the role is unknown)."""
        if role not in ROLES:
            raise InputError(f"unknown role {role!r}; use one of {', '.join(ROLES)}", field="role")
        try:
            self._insert(
                "users", name=name, role=role, password_hash=password_hash, active=True, created_at=utc_now()
            )
        except IntegrityError:
            raise InputError(f"user {name!r} already exists", field="name") from None

    def get_user(self, name: str) -> dict[str, Any] | None:
        """Return the user row, or ``None``."""
        u = self.t["users"]
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(u).where(u.c.name == name)).first()
        return _row(row) if row else None

    def list_users(self) -> list[dict[str, Any]]:
        """All users (without password hashes)."""
        u = self.t["users"]
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(u.c.name, u.c.role, u.c.active, u.c.created_at).order_by(u.c.name))
            return [_row(r) for r in rows]

    def deactivate_user(self, name: str) -> None:
        """Disable user *name* and revoke all its tokens."""
        u, t = self.t["users"], self.t["tokens"]
        with self.engine.begin() as conn:
            n = conn.execute(u.update().where(u.c.name == name).values(active=False)).rowcount
            if not n:
                raise NotFoundError(f"user {name!r} does not exist")
            conn.execute(t.update().where(t.c.user_name == name).values(revoked=True))

    # -- tokens -------------------------------------------------------------------------------
    def add_token(
        self,
        token_id: str,
        user_name: str,
        token_hash: str,
        *,
        kind: str,
        expires_at: dt.datetime,
        label: str | None = None,
        parent_token_id: str | None = None,
    ) -> None:
        """Store the *hash* of a new token (a session names the token it was made from)."""
        now = utc_now()
        self._insert(
            "tokens",
            token_id=token_id,
            user_name=user_name,
            token_hash=token_hash,
            kind=kind,
            label=label,
            created_at=now,
            expires_at=expires_at,
            revoked=False,
            parent_token_id=parent_token_id,
            last_seen_at=now,
        )

    def get_token(self, token_id: str) -> dict[str, Any] | None:
        """Token row with its user's role and active flag and its parent token's state, or ``None``.

        ``parent_revoked`` / ``parent_expires_at`` are those of the token a session was made
        from (``parent_revoked`` is true when that token no longer exists).
        """
        t, u = self.t["tokens"], self.t["users"]
        parent = t.alias("parent")
        q = (
            sa.select(
                t,
                u.c.role,
                u.c.active,
                parent.c.revoked.label("parent_revoked_flag"),
                parent.c.expires_at.label("parent_expires_at"),
                parent.c.token_id.label("parent_found"),
            )
            .join(u, u.c.name == t.c.user_name)
            .outerjoin(parent, parent.c.token_id == t.c.parent_token_id)
            .where(t.c.token_id == token_id)
        )
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        if row is None:
            return None
        out = _row(row)
        found = out.pop("parent_found")
        flag = out.pop("parent_revoked_flag")
        out["parent_revoked"] = bool(out["parent_token_id"]) and (found is None or bool(flag))
        return out

    def touch_token(self, token_id: str) -> None:
        """Record that a session was used now (its idle timeout restarts)."""
        t = self.t["tokens"]
        with self.engine.begin() as conn:
            conn.execute(t.update().where(t.c.token_id == token_id).values(last_seen_at=utc_now()))

    def list_tokens(self) -> list[dict[str, Any]]:
        """Token ids, owners and dates (never the hashes)."""
        t = self.t["tokens"]
        cols = [t.c.token_id, t.c.user_name, t.c.kind, t.c.label, t.c.created_at, t.c.expires_at, t.c.revoked]
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(sa.select(*cols).order_by(t.c.created_at))]

    def revoke_token(self, token_id: str) -> None:
        """Revoke one token and the sessions made from it (``NotFoundError`` if unknown)."""
        t = self.t["tokens"]
        with self.engine.begin() as conn:
            if not conn.execute(t.update().where(t.c.token_id == token_id).values(revoked=True)).rowcount:
                raise NotFoundError(f"token {token_id!r} does not exist")
            conn.execute(t.update().where(t.c.parent_token_id == token_id).values(revoked=True))

    def purge_expired_tokens(self) -> int:
        """Delete tokens that expired more than a day ago; return how many."""
        t = self.t["tokens"]
        with self.engine.begin() as conn:
            return conn.execute(t.delete().where(t.c.expires_at < utc_now() - dt.timedelta(days=1))).rowcount

    # -- plans --------------------------------------------------------------------------------
    def register_plan(
        self, row: dict[str, Any], *, conn: Connection | None = None, sole_child: bool = False
    ) -> None:
        """Insert a plan registry row (inside *conn*'s transaction when given).

        With *sole_child*, the row's parent must not have a child yet: checked in the same
        transaction (under a transaction-scoped advisory lock on PostgreSQL), else
        :class:`PlanConflictError` — two writers editing one version never both become its child.
        """
        if conn is None:
            with self.engine.begin() as c:
                self.register_plan(row, conn=c, sole_child=sole_child)
            return
        parent = row.get("parent_id")
        if sole_child and parent:
            if self.is_postgres:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:p))"), {"p": f"plan:{parent}"})
            p = self.t["plans"]
            newer = conn.execute(
                sa.select(p.c.plan_id).where(p.c.parent_id == parent).order_by(p.c.created_at.desc())
            ).first()
            if newer is not None:
                raise PlanConflictError(parent, newer[0])
        conn.execute(self.t["plans"].insert().values(**row))

    def children_of(self, plan_id: str) -> list[dict[str, Any]]:
        """Registry rows of the plans made from *plan_id*, newest first."""
        p = self.t["plans"]
        q = sa.select(p).where(p.c.parent_id == plan_id).order_by(p.c.created_at.desc(), p.c.plan_id)
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(q)]

    def list_plans(self) -> list[dict[str, Any]]:
        """List registered plans, newest first."""
        p = self.t["plans"]
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(sa.select(p).order_by(p.c.created_at.desc(), p.c.plan_id))]

    def get_plan(self, plan_id: str) -> dict[str, Any]:
        """Return the registry row of *plan_id* (``NotFoundError`` if unknown)."""
        return self._one("plans", "plan_id", plan_id, what="plan")

    # -- uploads ------------------------------------------------------------------------------
    def add_upload(self, row: dict[str, Any]) -> None:
        """Register a checked upload."""
        self._insert("uploads", created_at=utc_now(), **row)

    def get_upload(self, upload_id: str) -> dict[str, Any]:
        """Return the upload row (``NotFoundError`` if unknown)."""
        out = self._one("uploads", "upload_id", upload_id, what="upload")
        out["layers"] = json.loads(out.pop("layers_json"))
        return out

    # -- jobs ---------------------------------------------------------------------------------
    def add_job(self, job_id: str, kind: str, owner: str, params: dict[str, Any]) -> None:
        """Queue a job: *params* (JSON) must hold everything its task of *kind* needs to run it."""
        now = utc_now()
        self._insert(
            "jobs",
            job_id=job_id,
            kind=kind,
            state="queued",
            progress=0.0,
            message="queued",
            owner=owner,
            params_json=json.dumps(params, ensure_ascii=False),
            result_json=None,
            created_at=now,
            updated_at=now,
            cancel_requested=False,
        )

    def update_job(self, job_id: str, *, worker: str | None = None, **values: Any) -> bool:
        """Update state/progress/message/result of a job; return whether a row changed.

        With *worker*, only while that worker holds the job (``running`` under its name): a
        worker whose lease was taken from it never overwrites what another process decided.
        """
        if "result" in values:
            values["result_json"] = json.dumps(values.pop("result"), ensure_ascii=False)
        j = self.t["jobs"]
        q = j.update().where(j.c.job_id == job_id)
        if worker is not None:
            q = q.where(j.c.worker == worker, j.c.state == "running")
        with self.engine.begin() as conn:
            return bool(conn.execute(q.values(updated_at=utc_now(), **values)).rowcount)

    def get_job(self, job_id: str) -> dict[str, Any]:
        """Return the job row with ``params`` and ``result`` decoded (``NotFoundError`` if unknown)."""
        out = self._one("jobs", "job_id", job_id, what="job")
        out["params"] = json.loads(out.pop("params_json"))
        res = out.pop("result_json")
        out["result"] = json.loads(res) if res else None
        return out

    def list_jobs(self, *, owner: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Most recent jobs (of *owner* when given)."""
        j = self.t["jobs"]
        q = (
            sa.select(
                j.c.job_id,
                j.c.kind,
                j.c.state,
                j.c.progress,
                j.c.message,
                j.c.owner,
                j.c.created_at,
                j.c.updated_at,
            )
            .order_by(j.c.created_at.desc())
            .limit(limit)
        )
        if owner is not None:
            q = q.where(j.c.owner == owner)
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(q)]

    def unfinished_jobs(self, kind: str) -> list[dict[str, Any]]:
        """Queued or running jobs of *kind*, with their ``params`` decoded."""
        j = self.t["jobs"]
        q = sa.select(j.c.job_id, j.c.owner, j.c.params_json).where(
            j.c.kind == kind, j.c.state.in_(("queued", "running"))
        )
        with self.engine.connect() as conn:
            rows = [_row(r) for r in conn.execute(q)]
        return [{**r, "params": json.loads(r.pop("params_json"))} for r in rows]

    def claim_job(self, worker: str, *, lease_s: float, kinds: Collection[str]) -> dict[str, Any] | None:
        """Hand the oldest queued job of *kinds* to *worker*; return it (``params`` decoded) or ``None``.

        One ``UPDATE … WHERE job_id = (SELECT the oldest queued) AND state = 'queued' RETURNING``
        statement, atomic across processes: on PostgreSQL the sub-select locks its row ``FOR UPDATE
        SKIP LOCKED`` (two workers never wait for, nor get, the same row); SQLite runs the whole
        statement under its write lock (RETURNING needs SQLite 3.35).  The job becomes ``running``
        under *worker* with a lease of *lease_s* seconds.
        """
        if not kinds:
            return None
        j = self.t["jobs"]
        oldest = (
            sa.select(j.c.job_id)
            .where(j.c.state == "queued", j.c.kind.in_(sorted(kinds)))
            .order_by(j.c.created_at, j.c.job_id)
            .limit(1)
        )
        if self.is_postgres:
            oldest = oldest.with_for_update(skip_locked=True)
        now = utc_now()
        claim = (
            j.update()
            .where(j.c.job_id == oldest.scalar_subquery(), j.c.state == "queued")
            .values(
                state="running",
                worker=worker,
                lease_until=now + dt.timedelta(seconds=lease_s),
                message="running",
                updated_at=now,
            )
            .returning(j.c.job_id)
        )
        with self.engine.begin() as conn:
            job_id = conn.execute(claim).scalar()
        return None if job_id is None else self.get_job(job_id)

    def renew_lease(self, job_id: str, worker: str, *, lease_s: float) -> bool:
        """Extend *worker*'s lease of *job_id* by *lease_s* from now; ``False`` if it no longer holds it."""
        j = self.t["jobs"]
        q = (
            j.update()
            .where(j.c.job_id == job_id, j.c.worker == worker, j.c.state == "running")
            .values(lease_until=utc_now() + dt.timedelta(seconds=lease_s))
        )
        with self.engine.begin() as conn:
            return bool(conn.execute(q).rowcount)

    def cancel_requested(self, job_id: str) -> bool:
        """Whether someone asked to cancel *job_id* (or it was ended elsewhere: it is no longer running)."""
        j = self.t["jobs"]
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(j.c.state, j.c.cancel_requested).where(j.c.job_id == job_id)).first()
        return row is None or row.state != "running" or bool(row.cancel_requested)

    def cancel_job(self, job_id: str, message: str) -> str:
        """Cancel *job_id*; return its state afterwards.

        A queued job becomes ``cancelled`` at once (no worker will claim it); a running one gets
        the cancel flag and stays ``running`` until its worker sees the flag and stops it.  A
        finished job is left as it is (its state is returned).
        """
        j = self.t["jobs"]
        with self.engine.begin() as conn:
            q = j.update().where(j.c.job_id == job_id, j.c.state == "queued")
            done = q.values(state="cancelled", message=message, cancel_requested=True, updated_at=utc_now())
            if conn.execute(done).rowcount:
                return "cancelled"
            q = j.update().where(j.c.job_id == job_id, j.c.state == "running")
            if conn.execute(q.values(cancel_requested=True, updated_at=utc_now())).rowcount:
                return "running"
            state = conn.execute(sa.select(j.c.state).where(j.c.job_id == job_id)).scalar()
        if state is None:
            raise NotFoundError(f"job {job_id!r} does not exist")
        return str(state)

    def fail_expired_jobs(self, message: str) -> int:
        """End the running jobs whose lease has run out (their process died); return how many.

        They become ``failed`` with *message*, or ``cancelled`` when a cancel had been asked for
        (their outputs are atomic, so nothing of theirs was kept either way).  A job without a
        lease was left ``running`` by a version without leases: it is ended too.  Queued jobs are
        left queued: a worker will claim them.
        """
        j = self.t["jobs"]
        now = utc_now()
        expired = sa.and_(j.c.state == "running", sa.or_(j.c.lease_until.is_(None), j.c.lease_until < now))
        with self.engine.begin() as conn:
            n = conn.execute(
                j.update()
                .where(expired, j.c.cancel_requested.is_(True))
                .values(state="cancelled", message="cancelled (its server stopped)", updated_at=now)
            ).rowcount
            # the rest of the expired ones (those asked to cancel are no longer running)
            failed = j.update().where(expired).values(state="failed", message=message, updated_at=now)
            return n + conn.execute(failed).rowcount
