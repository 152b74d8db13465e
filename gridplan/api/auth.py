"""Authentication and roles: hashed secrets, bearer tokens, permission checks.

Secrets (passwords and tokens) are stored as ``scrypt$<n>$<r>$<p>$<salt>$<hash>`` with a random
16-byte salt per secret, and compared with :func:`hmac.compare_digest`.  A token is
``gp_<token_id>_<secret>``: the id finds the row, the secret is checked against the hash, so a
lookup never scans hashes.  Because scrypt is slow on purpose, a token whose secret matched is
remembered in process for :data:`CACHE_S` seconds (keyed by a SHA-256 of the token, never the token
itself) — only the secret check is cached: the token's row, its user and, for a session, the token
it was made from are read again at every request, so revocation, expiry and deactivation end a
token (and every session made from it) at its next request, in every server process.

A session (``POST /login``, the browser sign-in) is bound to its grant: it expires with the API
token it came from, at its absolute lifetime, or after ``session_idle_s`` without a request.
Nothing here logs a secret.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args

from gridplan._clock import utc_now
from gridplan.errors import AuthError, InputError
from gridplan.store.meta import ROLES, MetaStore, Role

__all__ = [
    "PERMISSIONS",
    "LoginThrottle",
    "LoginThrottledError",
    "Principal",
    "SessionTimes",
    "TokenVerifier",
    "create_user_token",
    "hash_secret",
    "issue_token",
    "verify_secret",
]

#: scrypt cost: n=2**14, r=8, p=1 (~16 MiB, tens of ms per check).
_N, _R, _P = 2**14, 8, 1
CACHE_S = 30.0

#: What a route may require of its caller (``require("plans:read")``).
Permission = Literal[
    "plans:summary",
    "plans:read",
    "plans:write",
    "maps:read",
    "jobs:read",
    "jobs:cancel",
    "analysis:run",
    "results:read",
    "admin",
]

#: Role → permissions (README's role table says the same; tests/test_service_roles.py checks both).
#: A leader reads published maps only; admin may do anything.  Whoever may start jobs may cancel
#: them (``jobs:cancel``): their own, and an admin anyone's.
PERMISSIONS: dict[Role, frozenset[Permission]] = {
    "leader": frozenset({"maps:read"}),
    "analyst": frozenset(
        {
            "plans:summary",
            "plans:read",
            "maps:read",
            "jobs:read",
            "jobs:cancel",
            "analysis:run",
            "results:read",
        }
    ),
    "planner": frozenset(
        {"plans:summary", "plans:read", "maps:read", "jobs:read", "jobs:cancel", "plans:write"}
    ),
    "admin": frozenset(
        {
            "plans:summary",
            "plans:read",
            "maps:read",
            "jobs:read",
            "jobs:cancel",
            "plans:write",
            "analysis:run",
            "results:read",
            "admin",
        }
    ),
}
assert set(PERMISSIONS) == set(ROLES)
assert set().union(*PERMISSIONS.values()) == set(get_args(Permission))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_secret(secret: str) -> str:
    """Return a salted scrypt hash string of *secret*.

    >>> h = hash_secret("s3cret")
    >>> h.startswith("scrypt$") and "s3cret" not in h and verify_secret("s3cret", h)
    True
    >>> verify_secret("wrong", h)
    False
    """
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, stored: str | None) -> bool:
    """Check *secret* against a hash from :func:`hash_secret` in constant time."""
    if not stored:
        # same work as a real check so a missing user is not faster than a wrong password
        hashlib.scrypt(secret.encode(), salt=b"0" * 16, n=_N, r=_R, p=_P, dklen=32)
        return False
    try:
        algo, n, r, p, salt, digest = stored.split("$")
        if algo != "scrypt":
            return False
        got = hashlib.scrypt(secret.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, _unb64(digest))


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    name: str
    role: Role
    token_id: str
    expires_at: dt.datetime
    kind: str = "api"

    def can(self, permission: Permission) -> bool:
        """Whether the caller's role grants *permission*."""
        return permission in PERMISSIONS.get(self.role, frozenset())


def issue_token(
    meta: MetaStore,
    user_name: str,
    *,
    kind: str = "api",
    ttl_s: float,
    label: str | None = None,
    parent: Principal | None = None,
) -> tuple[str, dt.datetime]:
    """Create a token for *user_name*; store only its hash; return ``(token, expires_at)``.

    A session made from an API token (*parent*) never outlives it: its expiry is the earlier of
    *ttl_s* from now and the parent's expiry.
    """
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    expires = utc_now() + dt.timedelta(seconds=ttl_s)
    if parent is not None:
        expires = min(expires, parent.expires_at)
    meta.add_token(
        token_id,
        user_name,
        hash_secret(secret),
        kind=kind,
        expires_at=expires,
        label=label,
        parent_token_id=parent.token_id if parent is not None else None,
    )
    return f"gp_{token_id}_{secret}", expires


def create_user_token(
    meta: MetaStore, name: str, role: str | None, *, days: float, label: str | None = None
) -> tuple[str, str, dt.datetime]:
    """Create (if needed) user *name* and an API token for it; return ``(token, token_id, expires)``."""
    user = meta.get_user(name)
    if user is None:
        if role is None:
            raise InputError(f"user {name!r} does not exist; give a role to create it", field="role")
        meta.add_user(name, role)
    elif role is not None and role != user["role"]:
        raise InputError(f"user {name!r} already has role {user['role']}", field="role")
    token, expires = issue_token(meta, name, kind="api", ttl_s=days * 86400, label=label)
    return token, token.split("_", 2)[1], expires


@dataclass(frozen=True)
class SessionTimes:
    """How long a session lives: *ttl_s* at most from sign-in, *idle_s* at most between requests."""

    ttl_s: float = 12 * 3600.0
    idle_s: float = 1800.0


class LoginThrottle:
    """Back off password guessing per (user name, client address), without locking anyone out.

    The first *free* failures of a key cost nothing; after that each attempt must wait
    ``base_s * 2**(failures - free)`` seconds (at most *max_s*) since the last failure, else
    ``check`` raises :class:`LoginThrottledError` with the seconds left.  Keys are per address, so wrong
    guesses from one machine never block the real user signing in from another; a success, or
    *forget_s* without failures, clears the key.
    """

    def __init__(
        self,
        *,
        free: int = 5,
        base_s: float = 1.0,
        max_s: float = 300.0,
        forget_s: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free, self.base_s, self.max_s, self.forget_s = free, base_s, max_s, forget_s
        self.clock = clock
        self._failures: dict[tuple[str, str], tuple[int, float]] = {}
        self._lock = threading.Lock()

    def wait_s(self, key: tuple[str, str]) -> float:
        """Seconds *key* must still wait before its next attempt (0: it may try now)."""
        with self._lock:
            count, last = self._failures.get(key, (0, 0.0))
            now = self.clock()
            if count and now - last > self.forget_s:
                self._failures.pop(key, None)
                return 0.0
            if count < self.free:
                return 0.0
            delay = min(self.max_s, self.base_s * 2 ** (count - self.free))
            return max(0.0, delay - (now - last))

    def check(self, key: tuple[str, str]) -> None:
        """Raise :class:`LoginThrottledError` while *key* must wait."""
        wait = self.wait_s(key)
        if wait > 0:
            raise LoginThrottledError(
                f"too many failed logins; try again in {math.ceil(wait)} s", retry_after=wait
            )

    def failed(self, key: tuple[str, str]) -> None:
        """Record a failed attempt for *key*."""
        with self._lock:
            if len(self._failures) > 100_000:  # bounded memory under a spray of names/addresses
                cutoff = self.clock() - self.forget_s
                self._failures = {k: v for k, v in self._failures.items() if v[1] > cutoff}
            count, _ = self._failures.get(key, (0, 0.0))
            self._failures[key] = (count + 1, self.clock())

    def succeeded(self, key: tuple[str, str]) -> None:
        """Forget the failures of *key*."""
        with self._lock:
            self._failures.pop(key, None)


class LoginThrottledError(AuthError):
    """A login attempt that must wait ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TokenVerifier:
    """Turns a bearer token into a :class:`Principal` (``AuthError`` when it is not valid).

    Parameters
    ----------
    meta
        The metadata store holding the token hashes.
    session_idle_s
        A session unused for this long ends (it is revoked at its next request).

    """

    def __init__(self, meta: MetaStore, *, session_idle_s: float = 1800.0) -> None:
        self.meta = meta
        self.session_idle_s = session_idle_s
        self._cache: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def forget(self, token_id: str | None = None) -> None:
        """Drop cached secret checks (of one token id, or all)."""
        with self._lock:
            if token_id is None:
                self._cache.clear()
            else:
                for key in [k for k, (_, tid) in self._cache.items() if tid == token_id]:
                    del self._cache[key]

    def _checked_id(self, token: str) -> tuple[str, dict[str, Any]]:
        """Return the token id and row of *token* once its secret matches (the scrypt check is cached)."""
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != "gp" or not parts[1] or not parts[2]:
            raise AuthError("malformed token")
        row = self.meta.get_token(parts[1])
        if row is None:
            raise AuthError("invalid token")
        if not (hit and hit[0] > now and hit[1] == parts[1]):
            if not verify_secret(parts[2], row["token_hash"]):
                raise AuthError("invalid token")
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
                self._cache[key] = (now + CACHE_S, parts[1])
        return parts[1], row

    def verify(self, token: str) -> Principal:
        """Check *token*: known id, right secret, not revoked, not expired, user active.

        A session must also still have its grant: the API token it was made from neither revoked
        nor expired, and a request within ``session_idle_s`` of the previous one.
        """
        token_id, row = self._checked_id(token)
        now = utc_now()
        if row["revoked"] or not row["active"]:
            raise AuthError("token revoked")
        if row["expires_at"] <= now:
            raise AuthError("token expired; log in again")
        if row["kind"] == "session":
            if row["parent_revoked"]:
                raise AuthError("session ended: the token it was made from was revoked")
            if row["parent_expires_at"] is not None and row["parent_expires_at"] <= now:
                raise AuthError("session ended: the token it was made from expired")
            seen = row.get("last_seen_at") or row["created_at"]
            idle = (now - seen).total_seconds()
            if idle > self.session_idle_s:
                self.meta.revoke_token(token_id)
                raise AuthError("session ended after inactivity; sign in again")
            if idle > min(60.0, self.session_idle_s / 10):
                self.meta.touch_token(token_id)
        return Principal(row["user_name"], row["role"], token_id, row["expires_at"], row["kind"])
