"""Periodic work of the webhook outbox: send the deliveries that are due."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from aethercrown.core.jobs import JobSpec
from aethercrown.core.outbox import headline
from aethercrown.webhooks import service


def _delivery_job(
    factory: sessionmaker[Session], tenant_id: uuid.UUID | None, period_start: datetime
) -> dict[str, Any]:
    return service.deliver_due(factory)


JOBS = [
    JobSpec(
        name="webhook_delivery",
        interval_seconds=60,
        run_in_units=_delivery_job,
        per_tenant=False,
        description="Send due outbound webhooks, with retries and backoff",
        headline=lambda summary: headline(summary, "no webhook due"),
    )
]
