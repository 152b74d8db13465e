"""Authentication and roles: hashed secrets, bearer tokens, permission checks.

Secrets (passwords and tokens) are stored as ``scrypt$<n>$<r>$<p>$<salt>$<hash>`` with a random
16-byte salt per secret, and compared with :func:`hmac.compare_digest`.  A token is
``gp_<token_id>_<secret>``: the id finds the row, the secret is checked against the hash, so a
lookup never scans hashes.  Because scrypt is slow on purpose, a verified token is remembered in
process for :data:`CACHE_S` seconds (keyed by a SHA-256 of the token, never the token itself);
revoking through the API clears that cache.  Nothing here logs a secret.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Literal, get_args

from gridplan._clock import utc_now
from gridplan.errors import AuthError, InputError
from gridplan.store.meta import ROLES, MetaStore, Role

__all__ = [
    "PERMISSIONS",
    "LoginThrottle",
    "Principal",
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
    "analysis:run",
    "results:read",
    "admin",
]

#: Role → permissions.  A leader only reads summaries and published maps; admin may do anything.
PERMISSIONS: dict[Role, frozenset[Permission]] = {
    "leader": frozenset({"plans:summary", "maps:read"}),
    "analyst": frozenset(
        {"plans:summary", "plans:read", "maps:read", "jobs:read", "analysis:run", "results:read"}
    ),
    "planner": frozenset({"plans:summary", "plans:read", "maps:read", "jobs:read", "plans:write"}),
    "admin": frozenset(
        {
            "plans:summary",
            "plans:read",
            "maps:read",
            "jobs:read",
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
    meta: MetaStore, user_name: str, *, kind: str = "api", ttl_s: float, label: str | None = None
) -> tuple[str, dt.datetime]:
    """Create a token for *user_name*; store only its hash; return ``(token, expires_at)``."""
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    expires = utc_now() + dt.timedelta(seconds=ttl_s)
    meta.add_token(token_id, user_name, hash_secret(secret), kind=kind, expires_at=expires, label=label)
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


class LoginThrottle:
    """Refuse logins for a name after *max_failures* failed attempts within *window_s* seconds."""

    def __init__(self, *, max_failures: int = 10, window_s: float = 300.0) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(key, []) if now - t < self.window_s]
        if times:
            self._failures[key] = times
        else:
            self._failures.pop(key, None)
        return times

    def check(self, key: str) -> None:
        """Raise ``AuthError`` while *key* is locked out."""
        with self._lock:
            if len(self._recent(key, time.monotonic())) >= self.max_failures:
                raise AuthError("too many failed logins; wait a few minutes")

    def failed(self, key: str) -> None:
        """Record a failed attempt for *key*."""
        with self._lock:
            self._recent(key, time.monotonic())
            self._failures.setdefault(key, []).append(time.monotonic())

    def succeeded(self, key: str) -> None:
        """Forget the failures of *key*."""
        with self._lock:
            self._failures.pop(key, None)


class TokenVerifier:
    """Turns a bearer token into a :class:`Principal` (``AuthError`` when it is not valid)."""

    def __init__(self, meta: MetaStore) -> None:
        self.meta = meta
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def forget(self, token_id: str | None = None) -> None:
        """Drop cached verifications (of one token id, or all)."""
        with self._lock:
            if token_id is None:
                self._cache.clear()
            else:
                for key in [k for k, (_, p) in self._cache.items() if p.token_id == token_id]:
                    del self._cache[key]

    def verify(self, token: str) -> Principal:
        """Check *token*: known id, right secret, not revoked, not expired, user active."""
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit and hit[0] > now and hit[1].expires_at > utc_now():
            return hit[1]
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != "gp" or not parts[1] or not parts[2]:
            raise AuthError("malformed token")
        row = self.meta.get_token(parts[1])
        if row is None or not verify_secret(parts[2], row["token_hash"]):
            raise AuthError("invalid token")
        if row["revoked"] or not row["active"]:
            raise AuthError("token revoked")
        if row["expires_at"] <= utc_now():
            raise AuthError("token expired; log in again")
        principal = Principal(row["user_name"], row["role"], row["token_id"], row["expires_at"], row["kind"])
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            self._cache[key] = (now + CACHE_S, principal)
        return principal
