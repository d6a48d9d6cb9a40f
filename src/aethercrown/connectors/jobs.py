"""Periodic work of the connectors: map the Stripe events the webhook stored."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from aethercrown.connectors.stripe_service import map_all_tenants
from aethercrown.core.jobs import JobSpec, count


def _mapping_job(
    factory: sessionmaker[Session], tenant_id: uuid.UUID | None, period_start: datetime
) -> dict[str, Any]:
    return map_all_tenants(factory)


def _mapping_headline(summary: dict[str, Any]) -> str:
    mapped, failed = summary.get("events_mapped", 0), summary.get("events_failed", 0)
    if not mapped and not failed:
        return "no Stripe event pending"
    text = f"{count(mapped, 'Stripe event')} mapped"
    return f"{text}, {failed:,} failed (retried later)" if failed else text


JOBS = [
    JobSpec(
        name="stripe_mapping",
        interval_seconds=60,
        run_in_units=_mapping_job,
        per_tenant=False,
        description="Map stored Stripe events into customers, subscriptions and payments",
        headline=_mapping_headline,
    )
]
