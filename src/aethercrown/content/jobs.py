"""Periodic work: scheduled content whose time has come is marked due and announced by a signed
``content.due`` webhook (through the outbox), every minute."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from aethercrown.content import service
from aethercrown.core.jobs import JobSpec, count


def mark_due(
    session: Session, tenant_id: uuid.UUID | None, period_start: datetime
) -> dict[str, Any]:
    if tenant_id is None:
        return {"due": 0, "webhooks": 0}
    return service.mark_due(session, tenant_id)


def due_headline(summary: dict[str, Any]) -> str:
    due = int(summary.get("due", 0))
    if not due:
        return "no content due"
    return f"{count(due, 'content item')} due, {count(int(summary.get('webhooks', 0)), 'webhook')}"


JOBS: list[JobSpec] = [
    JobSpec(
        name="content.mark_due",
        interval_seconds=60,
        run=mark_due,
        description="Scheduled content whose time has come becomes due (webhook content.due)",
        headline=due_headline,
    )
]
