"""Sessions bound to their grant: revocation, expiry, deactivation, idle and absolute timeouts, back-off."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from test_api import _auth

from gridplan._clock import utc_now
from gridplan.api import create_app
from gridplan.api.app import create_user_token
from gridplan.api.auth import LoginThrottle, SessionTimes
from gridplan.settings import Settings


def _session(client: TestClient, token: str) -> dict[str, str]:
    r = client.post("/login", json={"token": token})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _set_token(client: TestClient, token_id: str, **values: Any) -> None:
    meta = client.app.state.service.meta
    t = meta.t["tokens"]
    with meta.engine.begin() as conn:
        conn.execute(t.update().where(t.c.token_id == token_id).values(**values))


def test_session_ends_with_its_token_and_its_user(client: TestClient) -> None:
    meta = client.app.state.service.meta
    admin = _auth(client, "admin", "root")
    token, token_id, _ = create_user_token(meta, "ana", "analyst", days=1)
    session = _session(client, token)
    me = client.get("/me", headers=session).json()
    assert me["user"] == "ana"
    # a session never outlives its token: its expiry is capped at the token's
    short, short_id, short_exp = create_user_token(meta, "ana", None, days=86 / 86400)
    short_session = _session(client, short)
    assert (
        dt.datetime.fromisoformat(client.get("/me", headers=short_session).json()["expires_at"]) <= short_exp
    )
    # revoking the API token ends its session at the next request
    assert client.delete(f"/admin/tokens/{token_id}", headers=admin).status_code == 200
    r = client.get("/me", headers=session)
    assert r.status_code == 401
    assert "revoked" in r.json()["detail"]
    # an expired token: its session ends too (even if the session row itself were still valid)
    _set_token(client, short_id, expires_at=utc_now() - dt.timedelta(seconds=1))
    assert client.get("/me", headers=short_session).status_code == 401
    # deactivating the user ends a password session
    client.post(
        "/admin/users", json={"name": "pia", "role": "planner", "password": "correct horse 1"}, headers=admin
    )
    r = client.post("/login", json={"username": "pia", "password": "correct horse 1"})
    pw_session = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert client.get("/me", headers=pw_session).status_code == 200
    assert client.delete("/admin/users/pia", headers=admin).status_code == 200
    assert client.get("/me", headers=pw_session).status_code == 401


def test_idle_and_absolute_timeouts(tmp_path: Path) -> None:
    app = create_app(tmp_path / "ws", settings=Settings(), sessions=SessionTimes(ttl_s=3600, idle_s=600))
    with TestClient(app) as client:
        meta = app.state.service.meta
        token, _, _ = create_user_token(meta, "ana", "analyst", days=30)
        session = _session(client, token)
        sid = session["Authorization"].split("_", 2)[1]
        me = client.get("/me", headers=session).json()
        lifetime = dt.datetime.fromisoformat(me["expires_at"]) - utc_now()
        assert (
            dt.timedelta(minutes=59) < lifetime <= dt.timedelta(hours=1)
        )  # absolute, not the token's 30 days
        # used within the idle window: still fine, and the use restarts the window
        _set_token(client, sid, last_seen_at=utc_now() - dt.timedelta(seconds=500))
        assert client.get("/me", headers=session).status_code == 200
        assert client.get("/me", headers=session).status_code == 200
        _set_token(client, sid, last_seen_at=utc_now() - dt.timedelta(seconds=601))
        r = client.get("/me", headers=session)
        assert r.status_code == 401
        assert "inactivity" in r.json()["detail"]
        # the idle session was revoked for good
        _set_token(client, sid, last_seen_at=utc_now())
        assert client.get("/me", headers=session).status_code == 401
        # absolute timeout
        session2 = _session(client, token)
        _set_token(
            client, session2["Authorization"].split("_", 2)[1], expires_at=utc_now() - dt.timedelta(seconds=1)
        )
        assert client.get("/me", headers=session2).status_code == 401


def test_login_backoff_is_per_user_and_address(tmp_path: Path) -> None:
    now = [1000.0]
    app = create_app(tmp_path / "ws", settings=Settings())
    app.state.service.throttle = LoginThrottle(free=3, base_s=2.0, max_s=60.0, clock=lambda: now[0])
    admin, _, _ = create_user_token(app.state.service.meta, "root", "admin", days=1)
    with (
        TestClient(app, client=("10.0.0.66", 1234)) as attacker,
        TestClient(app, client=("10.0.0.7", 1)) as user,
    ):
        user.post(
            "/admin/users",
            json={"name": "pia", "role": "planner", "password": "correct horse 1"},
            headers={"Authorization": f"Bearer {admin}"},
        )
        wrong = {"username": "pia", "password": "wrong guess 0"}
        good = {"username": "pia", "password": "correct horse 1"}
        assert [attacker.post("/login", json=wrong).status_code for _ in range(5)] == [
            401,
            401,
            401,
            429,
            429,
        ]
        # not a lockout anyone can trigger: the real user at another address signs in
        assert user.post("/login", json=good).status_code == 200
        # the attacker waits 2 s after the 3rd failure, then 4 s after the 4th …
        now[0] += 2.1
        assert attacker.post("/login", json=wrong).status_code == 401
        r = attacker.post("/login", json=wrong)
        assert r.status_code == 429
        assert r.headers["retry-after"] == "4"
        now[0] += 4.1
        assert attacker.post("/login", json=good).status_code == 200  # a success clears the back-off
        assert attacker.post("/login", json=wrong).status_code == 401


@pytest.mark.parametrize("kind", ["api", "session"])
def test_revoked_token_stops_at_once_despite_the_cache(client: TestClient, kind: str) -> None:
    meta = client.app.state.service.meta
    token, token_id, _ = create_user_token(meta, "ana", "analyst", days=1)
    headers = {"Authorization": f"Bearer {token}"}
    if kind == "session":
        headers = _session(client, token)
    assert client.get("/me", headers=headers).status_code == 200
    meta.revoke_token(token_id)  # as another server process would: no cache is told
    assert client.get("/me", headers=headers).status_code == 401
    t = meta.t["tokens"]
    with meta.engine.connect() as conn:
        rows = conn.execute(sa.select(t.c.kind, t.c.revoked)).all()
    assert all(revoked for _, revoked in rows)
