"""Enterprise onboarding: the tenant's SLA tiers, each onboarding with its eight steps, and the
SLA breaches measured after it."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from aethercrown.clock import utcnow
from aethercrown.core.tenancy import TenantScoped
from aethercrown.db.base import Base, Timestamps, UUIDPrimaryKey


class SlaTier(TenantScoped, UUIDPrimaryKey, Timestamps, Base):
    """One SLA tier a tenant offers its enterprise customers (Standard / Premium / Enterprise
    to start with; the tenant edits them)."""

    __tablename__ = "sla_tiers"
    __table_args__ = (UniqueConstraint("tenant_id", "slug"),)

    slug: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(100))
    rank: Mapped[int] = mapped_column(Integer)
    # First response to a support ticket within this many minutes.
    response_minutes: Mapped[int] = mapped_column(Integer)
    # Monthly uptime target in basis points (99.95 % = 9995).
    uptime_target_bp: Mapped[int] = mapped_column(Integer)
    dedicated_support: Mapped[bool] = mapped_column(Boolean, default=False)
    custom_integration: Mapped[bool] = mapped_column(Boolean, default=False)
    # An onboarding of this tier should be complete within this many hours.
    onboarding_target_hours: Mapped[int] = mapped_column(Integer)
    # Credit table: [{"below_bp": 9995, "credit_percent": 10}, …]; a month whose uptime is
    # below ``below_bp`` earns that share of the month's fee, the largest matching row wins.
    credits: Mapped[list[Any]] = mapped_column(default=list)


class Onboarding(TenantScoped, UUIDPrimaryKey, Timestamps, Base):
    """One enterprise customer's onboarding: what was asked, where the flow is, what it made."""

    __tablename__ = "onboardings"
    __table_args__ = (UniqueConstraint("tenant_id", "customer_external_id"),)

    customer_external_id: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), nullable=True
    )
    sla_tier: Mapped[str] = mapped_column(String(40))
    # The validated request (contacts, plan, meters, capacities, training, webhook URL).
    request: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # running | blocked | completed
    status: Mapped[str] = mapped_column(String(20), default="running")
    current_step: Mapped[int] = mapped_column(Integer, default=1)
    portal_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL"), nullable=True
    )
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_by: Mapped[str] = mapped_column(String(100))


class OnboardingStep(TenantScoped, UUIDPrimaryKey, Base):
    """One of the eight steps of an onboarding. A step that waits on the customer (its webhook
    answering, its first usage) is ``waiting`` until ``next_attempt_at``; a step being worked
    on across network I/O holds a lease (``claimed_until`` / ``claim_token``)."""

    __tablename__ = "onboarding_steps"
    __table_args__ = (
        UniqueConstraint("onboarding_id", "position"),
        Index("ix_onboarding_steps_due", "status", "next_attempt_at"),
    )

    onboarding_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("onboardings.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(40))
    # pending | running | waiting | done
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(nullable=True)
    blocker: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    claimed_until: Mapped[datetime | None] = mapped_column(nullable=True)
    claim_token: Mapped[str | None] = mapped_column(String(32), nullable=True)


class SlaBreach(TenantScoped, UUIDPrimaryKey, Base):
    """A measured SLA breach, raised once (its signed webhook and its ledger decision)."""

    __tablename__ = "sla_breaches"
    __table_args__ = (UniqueConstraint("tenant_id", "onboarding_id", "kind", "month", "subject"),)

    onboarding_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("onboardings.id", ondelete="CASCADE")
    )
    # response | uptime
    kind: Mapped[str] = mapped_column(String(20))
    month: Mapped[date] = mapped_column(Date)
    # The ticket's external id (response) or the month (uptime).
    subject: Mapped[str] = mapped_column(String(200))
    measured: Mapped[float] = mapped_column(Float)
    target: Mapped[float] = mapped_column(Float)
    credit_percent: Mapped[float] = mapped_column(Float, default=0.0)
    decision_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("decisions.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TicketFirstResponse(TenantScoped, UUIDPrimaryKey, Base):
    """When a support ticket was first answered (the first response SLAs are measured on),
    recorded once: a later answer does not move it. A row of its own beside the ingested
    ticket, which knows only when it was opened and closed."""

    __tablename__ = "ticket_first_responses"
    __table_args__ = (UniqueConstraint("tenant_id", "ticket_id"),)

    ticket_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("support_tickets.id", ondelete="CASCADE")
    )
    responded_at: Mapped[datetime] = mapped_column()
    # Who recorded it (the key's actor, "cli", …).
    recorded_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
