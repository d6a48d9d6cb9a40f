"""The tenant's business data: its customers and what they do. Every decision engine reads these.

Each row carries the tenant's own ``external_id``; writes upsert on (tenant, external_id), so a
retried batch changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Date, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.ext.hybrid import hybrid_method
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql import ColumnElement, and_, or_

from aethercrown.core.tenancy import TenantScoped
from aethercrown.db.base import Base, BigIntPK, Timestamps, UUIDPrimaryKey


class Customer(TenantScoped, UUIDPrimaryKey, Timestamps, Base):
    """One of the tenant's client accounts."""

    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("tenant_id", "external_id"),)

    external_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(300))
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    company_size: Mapped[int | None] = mapped_column(Integer, nullable=True)  # employees
    annual_revenue: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # minor units
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    country: Mapped[str | None] = mapped_column(String(2), nullable=True)
    signup_date: Mapped[date] = mapped_column(Date)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Subscription(TenantScoped, UUIDPrimaryKey, Timestamps, Base):
    """A customer's subscription to one of the tenant's plans over [started_at, ended_at)."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "external_id"),
        Index("ix_subscriptions_tenant_customer", "tenant_id", "customer_id"),
        Index("ix_subscriptions_tenant_started", "tenant_id", "started_at"),
    )

    external_id: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    plan: Mapped[str] = mapped_column(String(100))
    # Price of one unit for one interval, before discounts, in minor units.
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    interval: Mapped[str] = mapped_column(String(5))  # month | year
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[datetime] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column(nullable=True)
    discount_percent: Mapped[float] = mapped_column(Float, default=0.0)  # 0–100
    discount_amount: Mapped[int] = mapped_column(BigInteger, default=0)  # minor units / interval
    trial_end: Mapped[datetime | None] = mapped_column(nullable=True)

    # One rule for a loaded row and for a query's WHERE (a hybrid method is both).
    @hybrid_method
    def live_at(self, at: datetime) -> bool:
        """Running at ``at``: started by then and not yet ended ([started_at, ended_at))."""
        return self.started_at <= at and (self.ended_at is None or self.ended_at > at)

    @live_at.expression
    @classmethod
    def _live_at_expression(cls, at: datetime) -> ColumnElement[bool]:
        return and_(cls.started_at <= at, or_(cls.ended_at.is_(None), cls.ended_at > at))


class ActivityEvent(TenantScoped, Base):
    """What a user of a customer did: a session (with its duration), a login, or a feature use."""

    __tablename__ = "activity_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "external_id"),
        Index("ix_activity_events_tenant_customer_time", "tenant_id", "customer_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    external_id: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))  # session | login | feature
    occurred_at: Mapped[datetime] = mapped_column()
    duration_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    feature: Mapped[str | None] = mapped_column(String(200), nullable=True)


class SupportTicket(TenantScoped, UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "support_tickets"
    __table_args__ = (
        UniqueConstraint("tenant_id", "external_id"),
        Index("ix_support_tickets_tenant_customer", "tenant_id", "customer_id", "opened_at"),
    )

    external_id: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    opened_at: Mapped[datetime] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    priority: Mapped[str] = mapped_column(String(10), default="normal")  # low|normal|high|urgent
    satisfaction: Mapped[int | None] = mapped_column(Integer, nullable=True)  # 1–5
    subject: Mapped[str | None] = mapped_column(String(500), nullable=True)


class Payment(TenantScoped, UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("tenant_id", "external_id"),
        Index("ix_payments_tenant_customer", "tenant_id", "customer_id", "occurred_at"),
    )

    external_id: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    subscription_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="SET NULL"), nullable=True
    )
    occurred_at: Mapped[datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(10))  # succeeded | failed | refunded
    amount: Mapped[int] = mapped_column(BigInteger)  # minor units
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)


class MarketingSpend(TenantScoped, Base):
    """One channel's day: what was spent and what it brought. Channel names are free."""

    __tablename__ = "marketing_spend"
    __table_args__ = (UniqueConstraint("tenant_id", "channel", "day"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(100))
    day: Mapped[date] = mapped_column(Date)
    spend: Mapped[int] = mapped_column(BigInteger)  # minor units
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    impressions: Mapped[int] = mapped_column(BigInteger, default=0)
    clicks: Mapped[int] = mapped_column(BigInteger, default=0)
    conversions: Mapped[int] = mapped_column(BigInteger, default=0)
    attributed_revenue: Mapped[int] = mapped_column(BigInteger, default=0)  # minor units


class ActiveUserDay(TenantScoped, Base):
    """A user of a customer who was active (any activity event) on a UTC calendar day: the
    distinct-user rollup of ``activity_events``, kept by ingestion (``data.service``), so daily,
    monthly and 30-day active users read thousands of rows instead of every event. Removed with
    the customer; an event moved to another day or user by an upsert is pruned from its old day
    when no other event keeps it there."""

    __tablename__ = "active_user_days"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)


class ActiveUserMonth(TenantScoped, Base):
    """A user of a customer who was active in a UTC calendar month (its first day): the month
    grain beside ``ActiveUserDay``, kept the same way, so monthly active users are a count per
    month rather than a DISTINCT over every user-day."""

    __tablename__ = "active_user_months"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
