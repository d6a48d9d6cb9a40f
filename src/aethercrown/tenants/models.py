"""Platform tiers (what a tenant gets from the operator) and tenants."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from aethercrown.db.base import Base, Timestamps, UUIDPrimaryKey


class Tier(Timestamps, Base):
    __tablename__ = "tiers"

    slug: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    rank: Mapped[int] = mapped_column(Integer, unique=True)
    monthly_price: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    requests_per_minute: Mapped[int] = mapped_column(Integer)
    max_stored_rows: Mapped[int] = mapped_column(BigInteger)
    max_seats: Mapped[int] = mapped_column(Integer)
    max_ai_agents: Mapped[int] = mapped_column(Integer)
    # Shortest interval the tenant's automation jobs may run at.
    automation_min_interval_seconds: Mapped[int] = mapped_column(Integer)


class Tenant(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "tenants"

    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    tier_slug: Mapped[str] = mapped_column(ForeignKey("tiers.slug"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="active")
    # Where the tenant's signed webhooks go (churn campaigns, usage alerts, …).
    webhook_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    # Opt-in public metrics: which figures, with which rounding (empty = not published).
    public_metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)

    tier: Mapped[Tier] = relationship(lazy="joined")
