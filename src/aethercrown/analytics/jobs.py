"""Periodic work: keep each tenant's monthly-series snapshots fresh, so dashboard requests read
a stored series instead of recomputing it (the request path recomputes only when the data has
changed since)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from aethercrown.analytics import service
from aethercrown.clock import utcnow
from aethercrown.core.jobs import JobSpec, count


def refresh_snapshots(
    session: Session, tenant_id: uuid.UUID | None, period_start: datetime
) -> dict[str, Any]:
    assert tenant_id is not None, "a per-tenant job"
    views = service.refresh_snapshots(session, tenant_id, utcnow())
    return {"views_refreshed": views}


def snapshots_headline(summary: dict[str, Any]) -> str:
    return f"refreshed {count(summary.get('views_refreshed', 0), 'stored view')}"


JOBS = [
    JobSpec(
        name="analytics_snapshots",
        interval_seconds=3600,
        run=refresh_snapshots,
        per_tenant=True,
        description="Recompute the tenant's monthly revenue series, forecasts and backtests",
        headline=snapshots_headline,
    )
]
