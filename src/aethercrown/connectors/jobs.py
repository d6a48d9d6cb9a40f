"""The connectors' periodic work: mapping the Stripe events the webhook stored, and forgetting
old Segment message ids.

``segment_messages`` keeps the message id of every ``identify`` and ``group`` call so that a
replay applies nothing. Replays come from the SDKs retrying a batch whose answer they lost, within
minutes (analytics-python backs off for about a minute at most); Segment's own deduplication looks
back about 24 hours. Ids are kept for ``SEGMENT_MESSAGE_RETENTION`` (7 days: the SDKs' retries and
a client that replays a day-old queue after an outage are all well inside it), then deleted by
this daily job, in chunks of ``PRUNE_CHUNK`` rows, each chunk its own short unit of work (SQLite's
one write lock is never held for long).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from aethercrown.connectors import segment_service
from aethercrown.connectors.stripe_service import map_all_tenants
from aethercrown.core.jobs import JobSpec, count
from aethercrown.db.session import write_transaction
from aethercrown.db.tenant_scope import scope_to_all_tenants

SEGMENT_MESSAGE_RETENTION = timedelta(days=7)
PRUNE_CHUNK = 5_000


def prune_segment_messages(
    factory: sessionmaker[Session], tenant_id: uuid.UUID | None, period_start: datetime
) -> dict[str, Any]:
    before = period_start - SEGMENT_MESSAGE_RETENTION
    deleted = 0
    while True:
        with write_transaction(factory) as session:
            scope_to_all_tenants(session)  # installation-wide: every tenant's old ids
            gone = segment_service.prune_message_ids(session, before, PRUNE_CHUNK)
        deleted += gone
        if gone < PRUNE_CHUNK:
            break
    return {"deleted": deleted, "before": before.isoformat()}


def prune_headline(summary: dict[str, Any]) -> str:
    forgot = count(summary["deleted"], "Segment message id")
    return f"forgot {forgot} received before {summary['before'][:10]}"


def _mapping_job(
    factory: sessionmaker[Session], tenant_id: uuid.UUID | None, period_start: datetime
) -> dict[str, Any]:
    return map_all_tenants(factory)


def _mapping_headline(summary: dict[str, Any]) -> str:
    mapped, failed = summary.get("events_mapped", 0), summary.get("events_failed", 0)
    if not mapped and not failed:
        return "no Stripe event pending"
    text = f"{count(mapped, 'Stripe event')} mapped"
    if not failed:
        return text
    dead = summary.get("events_dead", 0)
    text = f"{text}, {failed:,} failed (retried later)"
    return f"{text}, {dead:,} of them set aside as dead" if dead else text


JOBS = [
    JobSpec(
        name="stripe_mapping",
        interval_seconds=60,
        run_in_units=_mapping_job,
        per_tenant=False,
        description="Map stored Stripe events into customers, subscriptions and payments",
        headline=_mapping_headline,
    ),
    JobSpec(
        name="connectors.segment_messages_prune",
        interval_seconds=86_400,
        run_in_units=prune_segment_messages,
        per_tenant=False,
        description="Delete the Segment identify/group message ids kept past their 7-day "
        "deduplication window",
        headline=prune_headline,
    ),
]
