"""Cached monthly series: computing 24 months for 10,000 customers takes seconds, so the series
is stored per tenant and reused while the data it was computed from is unchanged."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from aethercrown.core.tenancy import TenantScoped
from aethercrown.db.base import Base, BigIntPK, utcnow


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
