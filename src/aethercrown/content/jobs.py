"""Periodic work: scheduled content whose time has come is marked due and announced by a signed
``content.due`` webhook (through the outbox), every minute; the emails of new churn and upsell
campaigns are written every hour."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from aethercrown.content import schemas, service
from aethercrown.core.crypto import secret_box
from aethercrown.core.errors import ProblemError
from aethercrown.core.jobs import JobSpec, count, job_settings
from aethercrown.db.session import read_transaction, write_transaction

# Campaigns opened this long ago or less are written for: a day of margin over the hourly run
# (and the 12-hourly churn scoring), without going back over a tenant's whole history.
CAMPAIGN_EMAIL_DAYS = 2


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


def campaign_emails(
    factory: sessionmaker[Session], tenant_id: uuid.UUID | None, period_start: datetime
) -> dict[str, Any]:
    """Write the emails of the campaigns opened lately that have none: read in one unit, write
    (the provider may take seconds per email) with none open, store in another unit."""
    assert tenant_id is not None
    summary: dict[str, Any] = {"churn": 0, "upsell": 0, "fallbacks": 0}
    try:
        with read_transaction(factory) as session:
            context = service.load_context(session, tenant_id, secret_box(job_settings()))
            work = {
                kind: service.campaign_briefs_to_write(
                    session,
                    tenant_id,
                    schemas.CampaignEmailsIn(
                        campaign=kind, since_days=CAMPAIGN_EMAIL_DAYS, limit=200
                    ),
                )
                for kind in ("churn", "upsell")
            }
    except ProblemError as exc:  # no content profile yet, or its provider key is unreadable
        return {**summary, "skipped": exc.detail or exc.title}
    for kind, found in work.items():
        generated = service.compose_campaign_emails(context, found, "auto", 0)
        with write_transaction(factory) as session:
            out = service.store_campaign_emails(
                session, tenant_id, found, generated, "automation:content.campaign_emails"
            )
        summary[kind] = len(out.written)
        summary["fallbacks"] += sum(1 for g in generated if g.fallback_reason)
    return summary


def campaign_emails_headline(summary: dict[str, Any]) -> str:
    if summary.get("skipped"):
        return f"no campaign emails: {summary['skipped']}"
    written = (
        f"{count(int(summary.get('churn', 0)), 'retention email')}, "
        f"{count(int(summary.get('upsell', 0)), 'upsell email')} written"
    )
    fallbacks = int(summary.get("fallbacks", 0))
    return written + (
        f" ({fallbacks:,} by the offline writer after a failure)" if fallbacks else ""
    )


JOBS: list[JobSpec] = [
    JobSpec(
        name="content.mark_due",
        interval_seconds=60,
        run=mark_due,
        description="Scheduled content whose time has come becomes due (webhook content.due)",
        headline=due_headline,
    ),
    JobSpec(
        name="content.campaign_emails",
        interval_seconds=3600,
        run_in_units=campaign_emails,
        description="Write the emails of new churn and upsell campaigns for their customers",
        headline=campaign_emails_headline,
    ),
]
