"""Usage events, tenant-defined meters, daily rollups, alerts, upsell campaigns, renewal models."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from aethercrown.clock import utcnow
from aethercrown.core.tenancy import TenantScoped
from aethercrown.db.base import Base, BigIntPK, Timestamps, UUIDPrimaryKey


def _tenant_column() -> Mapped[uuid.UUID]:
    """tenant_id without its own index, for the high-volume tables: each has a unique
    constraint led by tenant_id that serves tenant lookups, and every index slows ingestion."""
    return mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))


class Meter(TenantScoped, UUIDPrimaryKey, Timestamps, Base):
    """A metric the tenant defines beyond the built-in ones."""

    __tablename__ = "meters"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    name: Mapped[str] = mapped_column(String(100))
    aggregation: Mapped[str] = mapped_column(String(10))  # count | sum | max | unique | latest
    unit: Mapped[str] = mapped_column(String(40), default="unit")
    # unique meters count distinct values of this event property (of the value when unset).
    unique_property: Mapped[str | None] = mapped_column(String(100), nullable=True)
    description: Mapped[str | None] = mapped_column(String(500), nullable=True)


class UsageEvent(TenantScoped, Base):
    """One usage event as received. ``event_id`` is the sender's idempotency key."""

    __tablename__ = "usage_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "event_id"),
        Index("ix_usage_events_customer_metric_time", "customer_id", "metric", "occurred_at"),
        # Ids only grow, never reused after a delete: the rollup folder's cursor relies on it.
        {"sqlite_autoincrement": True},
    )
    tenant_id: Mapped[uuid.UUID] = _tenant_column()

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    metric: Mapped[str] = mapped_column(String(100))
    value: Mapped[float] = mapped_column(Float)
    occurred_at: Mapped[datetime] = mapped_column()
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class UsageFoldCursor(Base):
    """How far the rollups have folded ``usage_events``: every event with an id at or below
    ``last_event_id`` is counted in ``usage_daily`` (and ``usage_unique_values``), none above.
    One row; the folder advances it in the transaction that updates the rollups."""

    __tablename__ = "usage_fold_cursor"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    folded_at: Mapped[datetime | None] = mapped_column(nullable=True)


class UsageDaily(TenantScoped, Base):
    """Per customer, metric and UTC day: every aggregation's running state. The folder adds
    events to it after they are stored (see metering.fold), exactly once each."""

    __tablename__ = "usage_daily"
    __table_args__ = (UniqueConstraint("tenant_id", "customer_id", "metric", "day"),)
    tenant_id: Mapped[uuid.UUID] = _tenant_column()

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    metric: Mapped[str] = mapped_column(String(100))
    day: Mapped[date] = mapped_column(Date)
    event_count: Mapped[int] = mapped_column(BigInteger, default=0)
    value_sum: Mapped[float] = mapped_column(Float, default=0.0)
    value_max: Mapped[float] = mapped_column(Float)
    latest_value: Mapped[float] = mapped_column(Float)
    latest_at: Mapped[datetime] = mapped_column()
    unique_count: Mapped[int] = mapped_column(BigInteger, default=0)


class UsageUniqueValue(TenantScoped, Base):
    """Distinct values seen by a unique meter, per customer and day."""

    __tablename__ = "usage_unique_values"
    __table_args__ = (UniqueConstraint("tenant_id", "customer_id", "metric", "day", "value_key"),)
    tenant_id: Mapped[uuid.UUID] = _tenant_column()

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    metric: Mapped[str] = mapped_column(String(100))
    day: Mapped[date] = mapped_column(Date)
    value_key: Mapped[str] = mapped_column(String(200))


class MeteringSettings(TenantScoped, Timestamps, Base):
    """A tenant's alert thresholds and upsell trigger parameters (basis points of capacity)."""

    __tablename__ = "metering_settings"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    warning_bp: Mapped[int] = mapped_column(Integer, default=8000)
    critical_bp: Mapped[int] = mapped_column(Integer, default=9500)
    upsell_growth_bp: Mapped[int] = mapped_column(Integer, default=5000)
    upsell_high_usage_bp: Mapped[int] = mapped_column(Integer, default=8500)
    upsell_sustained_days: Mapped[int] = mapped_column(Integer, default=7)


class UsageAlert(TenantScoped, UUIDPrimaryKey, Base):
    """A threshold crossing; at most one per customer, metric, period and level."""

    __tablename__ = "usage_alerts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "customer_id", "metric", "period_start", "level"),
    )

    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    metric: Mapped[str] = mapped_column(String(100))
    period_start: Mapped[date] = mapped_column(Date)
    level: Mapped[str] = mapped_column(String(10))  # warning | critical
    threshold_bp: Mapped[int] = mapped_column(Integer)
    usage: Mapped[float] = mapped_column(Float)
    capacity: Mapped[float] = mapped_column(Float)
    plan: Mapped[str] = mapped_column(String(40))
    webhook_delivery_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    fired_at: Mapped[datetime] = mapped_column(default=utcnow)


class UpsellCampaign(TenantScoped, UUIDPrimaryKey, Timestamps, Base):
    """An upsell offer to one customer; one per customer and billing period."""

    __tablename__ = "upsell_campaigns"
    __table_args__ = (UniqueConstraint("tenant_id", "customer_id", "period_start"),)

    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    period_start: Mapped[date] = mapped_column(Date)
    current_plan: Mapped[str | None] = mapped_column(String(40), nullable=True)
    recommended_plan: Mapped[str] = mapped_column(String(40))
    monthly_price: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(20), default="open")
    decision_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    created_by: Mapped[str] = mapped_column(String(100))


class RenewalModel(TenantScoped, UUIDPrimaryKey, Base):
    """A trained renewal model's parameters (standardised logistic regression + Platt scaling)."""

    __tablename__ = "renewal_models"
    __table_args__ = (Index("ix_renewal_models_tenant_trained", "tenant_id", "trained_at"),)

    version: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    samples: Mapped[int] = mapped_column(Integer)
    trained_at: Mapped[datetime] = mapped_column(default=utcnow)
