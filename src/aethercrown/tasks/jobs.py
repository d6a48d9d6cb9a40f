"""Periodic task-scheduler housekeeping (the seed's "task scheduling" job, hourly)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from aethercrown.clock import utcnow
from aethercrown.core.jobs import JobSpec, count
from aethercrown.tasks import service


def task_housekeeping(
    session: Session, tenant_id: uuid.UUID | None, period_start: datetime
) -> dict[str, Any]:
    assert tenant_id is not None
    # Leases are judged against the wall clock, not the period: a lease that ends later in the
    # period must not be cut short.
    now = max(utcnow(), period_start)
    summary = service.housekeeping(session, tenant_id, now)
    metrics = service.metrics(session, tenant_id, window_hours=1, now=now)
    summary["queue_length"] = metrics.queue_length
    summary["bottlenecks"] = [b.rule for b in metrics.bottlenecks]
    return summary


def housekeeping_headline(summary: dict[str, Any]) -> str:
    bottlenecks = summary.get("bottlenecks") or []
    return (
        f"{count(summary.get('queue_length', 0), 'task')} queued; "
        f"{count(summary.get('leases_expired', 0), 'expired lease')} requeued; "
        f"{count(summary.get('workers_marked_stale', 0), 'worker')} marked stale"
        + (f"; bottlenecks: {', '.join(bottlenecks)}" if bottlenecks else "")
    )


JOBS = [
    JobSpec(
        name="task_scheduling",
        interval_seconds=3600,
        run=task_housekeeping,
        description="Expire task leases, requeue or fail their tasks, mark silent workers stale",
        headline=housekeeping_headline,
    )
]
