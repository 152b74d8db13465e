"""``gridplan serve`` (the FastAPI service under uvicorn), ``gridplan token …`` and ``gridplan user …``.

The store is a workspace folder (``--workspace``) or a PostgreSQL/PostGIS URL (``--db``, default
``GRIDPLAN_DATABASE_URL``).  Put a database password in ``PGPASSWORD``, never on the command line.
A new token is printed once; only its hash is stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from gridplan.cli._app import app, console, err_console, example, user_errors
from gridplan.errors import InputError

token_app = typer.Typer(
    help="Create and revoke API tokens (printed once, stored hashed).",
    epilog=example("TOKEN=$(gridplan token create --name admin --role admin -w ws/)"),
    no_args_is_help=True,
    rich_markup_mode=None,
)
user_app = typer.Typer(
    help="Create and deactivate service users.",
    epilog=example("gridplan user create --name li --role planner -w ws/"),
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(token_app, name="token")
app.add_typer(user_app, name="user")

_WS = typer.Option("--workspace", "-w", help="Workspace folder (GeoPackages + meta.sqlite).")
_DB = typer.Option("--db", help="postgresql://… URL of the PostGIS store (default GRIDPLAN_DATABASE_URL).")
_ROLE = typer.Option("--role", help="What the user may do (admin: also manage tokens and users).")
Role = Literal["planner", "analyst", "leader", "admin"]  # as gridplan.store.meta.Role (not imported: slow)


def _target(workspace: Path | None, db: str | None) -> str | Path:
    from gridplan import params
    from gridplan.settings import get_settings

    if workspace is not None and db is not None:
        raise InputError("give --workspace or --db, not both", field="--db")
    if db is not None:
        return db
    if workspace is not None:
        return params.folder(workspace, what="workspace")
    settings = get_settings()
    return settings.database_url or params.folder(settings.workspace, what="workspace")


@app.command(epilog=example("gridplan serve -w ws/ --host 0.0.0.0 --port 8000"))
@user_errors
def serve(
    workspace: Annotated[Path | None, _WS] = None,
    db: Annotated[str | None, _DB] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8000,
    maps: Annotated[
        Path | None,
        typer.Option("--maps", help="Published maps folder served at /maps/ (default <workspace>/maps)."),
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="Uploads and job results folder (default the workspace).")
    ] = None,
    log_level: Annotated[
        Literal["critical", "error", "warning", "info", "debug", "trace"],
        typer.Option("--log-level", help="uvicorn log level."),
    ] = "info",
) -> None:
    """Run the gridplan web service (OpenAPI docs at /docs, served offline).

    Anonymous callers get only GET /health and POST /login; create the first admin token with
    `gridplan token create --role admin --name NAME`.  Limits come from the environment
    (GRIDPLAN_MAX_UPLOAD_MB, GRIDPLAN_MAX_UPLOAD_FEATURES).
    """
    from gridplan import params

    try:
        import uvicorn
    except ImportError:
        raise InputError(
            "the service is not installed; install it with: pip install 'gridplan[service]'", field="serve"
        ) from None

    from gridplan.api import create_app

    target = _target(workspace, db)
    for path, what in ((maps, "maps"), (data, "data")):
        if path is not None:
            params.folder(path, what=what)
    application = create_app(target, maps_dir=maps, data_dir=data)
    err_console.print(f"gridplan service on http://{host}:{port} (docs /docs)", highlight=False)
    uvicorn.run(application, host=host, port=port, log_level=log_level)


@token_app.command(
    "create", epilog=example("TOKEN=$(gridplan token create --name li --role planner -w ws/ --days 30)")
)
@user_errors
def token_create(
    name: Annotated[str, typer.Option("--name", help="User the token belongs to (created if missing).")],
    role: Annotated[Role | None, _ROLE] = None,
    days: Annotated[float, typer.Option("--days", min=0.001, max=3650, help="Days until it expires.")] = 90.0,
    label: Annotated[str | None, typer.Option("--label", help="Note shown in token lists.")] = None,
    workspace: Annotated[Path | None, _WS] = None,
    db: Annotated[str | None, _DB] = None,
) -> None:
    """Create an API token and print it ONCE (only its scrypt hash is stored).

    stdout holds the token alone (so `$(…)` captures it); its id and expiry go to stderr.
    """
    from gridplan import params
    from gridplan.api.auth import create_user_token
    from gridplan.store.meta import ROLES, MetaStore

    params.user_name(name, field="--name")
    if role is not None and role not in ROLES:
        raise InputError(f"unknown role {role!r}; use one of {', '.join(ROLES)}", field="--role")
    meta = MetaStore(_target(workspace, db))
    try:
        token, token_id, expires = create_user_token(meta, name, role, days=days, label=label)
    finally:
        meta.close()
    err_console.print(
        f"token id {token_id} for {name}, expires {expires.isoformat()}; store it now, "
        "it is not shown again:",
        highlight=False,
    )
    typer.echo(token)


@token_app.command("revoke", epilog=example("gridplan token revoke tok_0123abcd -w ws/"))
@user_errors
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="Token id (from `gridplan token list`).")],
    workspace: Annotated[Path | None, _WS] = None,
    db: Annotated[str | None, _DB] = None,
) -> None:
    """Revoke a token (a running server forgets its cache within 30 s)."""
    from gridplan.store.meta import MetaStore

    meta = MetaStore(_target(workspace, db))
    try:
        meta.revoke_token(token_id)
    finally:
        meta.close()
    err_console.print(f"revoked {token_id}", highlight=False)


@token_app.command("list", epilog=example("gridplan token list -w ws/"))
@user_errors
def token_list(workspace: Annotated[Path | None, _WS] = None, db: Annotated[str | None, _DB] = None) -> None:
    """List tokens (ids, users, expiry; never the tokens)."""
    from gridplan.store.meta import MetaStore

    meta = MetaStore(_target(workspace, db))
    try:
        rows = meta.list_tokens()
    finally:
        meta.close()
    table = Table("token id", "user", "kind", "expires", "revoked")
    for r in rows:
        table.add_row(
            r["token_id"], r["user_name"], r["kind"], r["expires_at"].isoformat(), str(r["revoked"])
        )
    console.print(table)


@user_app.command(
    "create", epilog=example("GRIDPLAN_NEW_PASSWORD=… gridplan user create --name li --role planner -w ws/")
)
@user_errors
def user_create(
    name: Annotated[str, typer.Option("--name", help="User name.")],
    role: Annotated[Role, _ROLE],
    password: Annotated[
        str,
        typer.Option(
            "--password",
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="GRIDPLAN_NEW_PASSWORD",
            help="Prompted (or GRIDPLAN_NEW_PASSWORD); min 10 characters.",
        ),
    ],
    workspace: Annotated[Path | None, _WS] = None,
    db: Annotated[str | None, _DB] = None,
) -> None:
    """Create a user who logs in with a password (stored as a salted scrypt hash)."""
    from gridplan import params
    from gridplan.api.auth import hash_secret
    from gridplan.store.meta import MetaStore

    params.user_name(name, field="--name")
    if len(password) < 10:
        raise InputError("password must have at least 10 characters", field="--password")
    meta = MetaStore(_target(workspace, db))
    try:
        meta.add_user(name, role, password_hash=hash_secret(password))
    finally:
        meta.close()
    err_console.print(f"user {name} ({role}) created", highlight=False)
