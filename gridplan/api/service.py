"""The object every route shares: stores, job runner, token verifier, login throttle, folders, limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gridplan.api.auth import LoginThrottle, SessionTimes, TokenVerifier
from gridplan.api.jobs import JobRunner
from gridplan.api.uploads import UploadLimits
from gridplan.settings import Settings
from gridplan.store.meta import MetaStore
from gridplan.store.plans import PlanRepository

__all__ = ["Service"]


@dataclass
class Service:
    """Everything the routes share (one per app)."""

    meta: MetaStore
    plans: PlanRepository
    jobs: JobRunner
    verifier: TokenVerifier
    data_dir: Path
    maps_dir: Path
    limits: UploadLimits
    settings: Settings
    sessions: SessionTimes = field(default_factory=SessionTimes)
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    extra: dict[str, Any] = field(default_factory=dict)
