"""Cached monthly series: computing 24 months for 10,000 customers takes seconds, so the series
is stored per tenant and reused while the data it was computed from is unchanged."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from aethercrown.clock import utcnow
from aethercrown.core.tenancy import TenantScoped
from aethercrown.data.models import ActivityEvent, Customer, Subscription
from aethercrown.db.base import Base, BigIntPK

# Indexes the analytics reads need on the business-data tables (created by this domain's
# migration): the freshness check reads max(updated_at) per tenant from an index instead of the
# table, and time windows over activity (active users in the last 30 days) range-scan by time.
Index("ix_subscriptions_tenant_updated", Subscription.tenant_id, Subscription.updated_at)
Index("ix_customers_tenant_updated", Customer.tenant_id, Customer.updated_at)
Index("ix_activity_events_tenant_time", ActivityEvent.tenant_id, ActivityEvent.occurred_at)


class AnalyticsSnapshot(TenantScoped, Base):
    """One tenant's computed monthly series for one view (currency, plan and segment filter).

    ``fingerprint`` digests the row counts and last-change times of the tables it was computed
    from; a snapshot whose fingerprint differs from the data's current one is never served.
    """

    __tablename__ = "analytics_snapshots"
    __table_args__ = (UniqueConstraint("tenant_id", "view"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    view: Mapped[str] = mapped_column(String(300))
    fingerprint: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)
