"""Periodic onboarding work: waiting steps retried, SLAs measured and breaches raised."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from aethercrown.core.jobs import JobSpec, count, job_settings
from aethercrown.onboarding import service


def _advance(
    factory: sessionmaker[Session], tenant_id: uuid.UUID | None, period_start: datetime
) -> dict[str, Any]:
    assert tenant_id is not None
    allow = job_settings().onboarding_allow_loopback_webhooks
    return service.advance_due(factory, tenant_id, allow_loopback=allow)


def _advance_headline(summary: dict[str, Any]) -> str:
    if not summary.get("due"):
        return "no onboarding step due"
    return (
        f"{count(summary['due'], 'onboarding')} due, {summary.get('advanced', 0):,} advanced, "
        f"{summary.get('completed', 0):,} completed"
    )


def _measure(
    session: Session, tenant_id: uuid.UUID | None, period_start: datetime
) -> dict[str, Any]:
    assert tenant_id is not None
    return service.raise_breaches(session, tenant_id)


JOBS = [
    JobSpec(
        name="onboarding_advance",
        interval_seconds=60,
        run_in_units=_advance,
        description="Retry onboarding steps that wait on the customer (webhook, first usage)",
        headline=_advance_headline,
    ),
    JobSpec(
        name="sla_measurement",
        interval_seconds=3600,
        run=_measure,
        description="Measure onboarded customers' SLAs; raise each breach (webhook + ledger)",
        headline=lambda s: f"{count(int(s.get('raised', 0)), 'SLA breach')} raised",
    ),
]
