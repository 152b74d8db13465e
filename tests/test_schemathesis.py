"""Schemathesis against ``/openapi.json``: every operation, every role, both stores — no server error,
no answer the document does not describe.

Seeded (Hypothesis ``derandomize``) and time-boxed: each store gets at most ``BUDGET_S`` seconds
of generated requests (the box only stops generating; nothing here measures speed).  PostGIS runs
when ``GRIDPLAN_TEST_DATABASE_URL`` is set.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from gridplan.api import create_app
from gridplan.api.app import create_user_token
from gridplan.plans import read_plan
from gridplan.settings import Settings

schemathesis = pytest.importorskip("schemathesis")

BUDGET_S = 45.0
EXAMPLES = 4
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)



def _fuzz(app: Any, callers: dict[str, dict[str, str]], budget_s: float) -> tuple[int, list[str]]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    checks = [getattr(schemathesis.checks, name) for name in CHECKS]
    failures: list[str] = []
    calls = [0]
    deadline = time.monotonic() + budget_s
    ops = [r.ok() for r in schema.get_all_operations()]
    assert len(ops) >= 20

    def make(op: Any, who: str, headers: dict[str, str]) -> Any:
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=op.as_strategy())
        def run(case: Any) -> None:
            if time.monotonic() > deadline:
                return
            calls[0] += 1
            try:
                case.call_and_validate(headers=headers, checks=checks)
            except BaseException as exc:  # a FailureGroup (an exception group) of the failed checks
                if isinstance(exc, KeyboardInterrupt):
                    raise
                failures.append(f"{who} {op.label}: {str(exc)[:600]}")

        return run

    for op in ops:  # every role on one operation before the next, so the box cuts fairly
        for who, headers in callers.items():
            make(op, who, headers)()
    return calls[0], failures


def test_no_server_errors_and_no_schema_violations(
    backend: dict[str, Any], small_plan: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kw = dict(backend)
    app = create_app(kw.pop("target"), settings=Settings(), **kw)
    svc = app.state.service
    svc.plans.save(read_plan(small_plan))  # real data behind the plan routes
    callers: dict[str, dict[str, str]] = {"anonymous": {}}
    for role in ("leader", "planner", "analyst", "admin"):
        token, _, _ = create_user_token(svc.meta, f"fuzz-{role}", role, days=1)
        callers[role] = {"Authorization": f"Bearer {token}"}
    calls, failures = _fuzz(app, callers, BUDGET_S)
    svc.jobs.shutdown()
    with capsys.disabled():
        print(f"\nschemathesis: {calls} requests, {len(failures)} failures")
    assert calls >= 100
    assert failures == [], "\n".join(failures[:10])
