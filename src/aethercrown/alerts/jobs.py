"""Periodic work of alert channels: send the deliveries that are due."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from aethercrown.alerts import service
from aethercrown.core.jobs import JobSpec, job_settings
from aethercrown.core.outbox import headline


def _delivery_job(
    factory: sessionmaker[Session], tenant_id: uuid.UUID | None, period_start: datetime
) -> dict[str, Any]:
    return service.deliver_due(factory, job_settings())


JOBS = [
    JobSpec(
        name="alert_delivery",
        interval_seconds=60,
        run_in_units=_delivery_job,
        per_tenant=False,
        description="Send due alerts to Slack-compatible webhooks and email, with retries",
        headline=lambda summary: headline(summary, "no alert due"),
    )
]
