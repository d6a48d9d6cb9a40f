"""The hourly installation health check (the seed's "health checks" job)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from aethercrown.clock import utcnow
from aethercrown.core.jobs import JobSpec, job_settings
from aethercrown.db.session import read_then_record
from aethercrown.health import service


def hourly_health_check(
    factory: sessionmaker[Session], tenant_id: uuid.UUID | None, period_start: datetime
) -> dict[str, Any]:
    # The probes (Redis, the LLM endpoint) run with no write lock held; the samples are
    # written after them in a short write unit.
    with read_then_record(factory) as session:
        report = service.run_checks(
            session, job_settings(), None, "job", now=max(utcnow(), period_start)
        )
    return {
        "status": report.status,
        "components": {c.component: c.status for c in report.components},
        "duration_ms": report.duration_ms,
    }


def health_headline(summary: dict[str, Any]) -> str:
    components: dict[str, str] = summary.get("components", {})
    not_ok = [f"{name} {status}" for name, status in components.items() if status != "ok"]
    detail = f": {', '.join(not_ok)}" if not_ok else f" ({len(components)} components)"
    return f"status {summary.get('status')}{detail}, checked in {summary['duration_ms']:.0f} ms"


JOBS = [
    JobSpec(
        name="health_checks",
        interval_seconds=3600,
        run_in_units=hourly_health_check,
        per_tenant=False,
        description="Measure every component of the installation and store the samples",
        headline=health_headline,
    )
]
