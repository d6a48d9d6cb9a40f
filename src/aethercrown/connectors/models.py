"""The connectors' own tables: each source's settings and secrets, the raw events it sent, and the
state that is not business data (Stripe invoices, Segment users, campaign-to-channel rules).

Business data (customers, subscriptions, payments, activity, marketing spend) is never stored
here: the connectors map into the data domain's tables through ``aethercrown.data.service``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from aethercrown.clock import utcnow
from aethercrown.core.tenancy import TenantScoped
from aethercrown.db.base import Base, BigIntPK, Timestamps, UUIDPrimaryKey


class StripeConnection(TenantScoped, UUIDPrimaryKey, Timestamps, Base):
    """A tenant's Stripe account: the webhook endpoint's signing secret, the API key backfills
    use (both encrypted with the installation's SecretBox) and the backfill's progress."""

    __tablename__ = "stripe_connections"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    webhook_secret: Mapped[bytes] = mapped_column(LargeBinary)
    api_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # Any Stripe-compatible server (stripe-mock, a proxy, a test server); None = Stripe's own.
    api_base: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # Per list endpoint: {"cursor": last object id done, "fetched": n, "done": bool}.
    backfill: Mapped[dict[str, Any]] = mapped_column(default=dict)
    backfill_status: Mapped[str] = mapped_column(String(20), default="idle")


class StripeEvent(TenantScoped, Base):
    """One Stripe event as received (or one object as a backfill read it), kept raw. The mapping
    into business data is recomputed from these, so arrival order never matters.

    The webhook stores an event unmapped (``mapped_at`` empty) and answers; the mapping job
    claims unmapped events in batches. An event whose object cannot be mapped keeps its error,
    and is claimed again from ``retry_at`` on (exponential backoff per failed attempt)."""

    __tablename__ = "stripe_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "event_id"),
        Index("ix_stripe_events_tenant_object", "tenant_id", "object_id", "created"),
        # Only the unmapped events: the mapping job's claims and its list of tenants with work.
        Index(
            "ix_stripe_events_unmapped",
            "tenant_id",
            "id",
            postgresql_where=text("mapped_at IS NULL"),
            sqlite_where=text("mapped_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(100))
    object_type: Mapped[str] = mapped_column(String(50))
    object_id: Mapped[str] = mapped_column(String(255))
    # When Stripe created the event (a backfill's snapshot: when it was read).
    created: Mapped[datetime] = mapped_column()
    payload: Mapped[dict[str, Any]] = mapped_column()
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    mapped_at: Mapped[datetime | None] = mapped_column(nullable=True)
    map_attempts: Mapped[int] = mapped_column(Integer, default=0)
    map_error: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    retry_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Failed ``stripe_mapping_max_attempts`` times: no longer claimed, nor read when its object
    # is mapped, until retried (cleared) or discarded by hand.
    dead_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Discarded by hand: kept (a redelivery stays a duplicate) and never mapped.
    discarded_at: Mapped[datetime | None] = mapped_column(nullable=True)


class StripeInvoice(TenantScoped, UUIDPrimaryKey, Timestamps, Base):
    """A Stripe invoice's latest state. Recurring and proration lines are summed apart: MRR never
    reads invoices, and revenue reports can leave prorations out."""

    __tablename__ = "stripe_invoices"
    __table_args__ = (
        UniqueConstraint("tenant_id", "external_id"),
        # A subscription mapped after its invoices names their payments' segment.
        Index("ix_stripe_invoices_tenant_subscription", "tenant_id", "subscription"),
    )

    external_id: Mapped[str] = mapped_column(String(255))
    customer: Mapped[str] = mapped_column(String(255))
    subscription: Mapped[str | None] = mapped_column(String(255), nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    amount_due: Mapped[int] = mapped_column(BigInteger)
    amount_paid: Mapped[int] = mapped_column(BigInteger)
    recurring_amount: Mapped[int] = mapped_column(BigInteger)
    proration_amount: Mapped[int] = mapped_column(BigInteger)
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    period_start: Mapped[datetime | None] = mapped_column(nullable=True)
    period_end: Mapped[datetime | None] = mapped_column(nullable=True)
    issued_at: Mapped[datetime] = mapped_column()
    # Created time of the event this state came from: an older event never overwrites it.
    as_of: Mapped[datetime] = mapped_column()


class StripeSubscriptionSegment(TenantScoped, Base):
    """A business-data subscription (segment) the mapping wrote for a Stripe subscription: the
    mapping finds a subscription's stored segments here by an indexed ``IN`` (to delete the ones
    its events no longer yield, and to name the segment a payment fell in) rather than by a
    ``LIKE`` on ``subscriptions.external_id``, which no index serves and which read all of the
    tenant's subscriptions for every batch."""

    __tablename__ = "stripe_subscription_segments"
    __table_args__ = (
        UniqueConstraint("tenant_id", "segment"),
        Index("ix_stripe_subscription_segments_tenant_subscription", "tenant_id", "subscription"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    subscription: Mapped[str] = mapped_column(String(255))
    # subscriptions.external_id of the segment ("<subscription>:<item>:<start>").
    segment: Mapped[str] = mapped_column(String(200))


class SegmentSource(TenantScoped, UUIDPrimaryKey, Base):
    """A write key a tenant's apps send Segment-format calls with (only its SHA-256 is kept)."""

    __tablename__ = "segment_sources"

    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    display_prefix: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class SegmentUser(TenantScoped, Base):
    """A tracked user: the customer (Segment group) it belongs to and its latest traits."""

    __tablename__ = "segment_users"
    __table_args__ = (UniqueConstraint("tenant_id", "user_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(200))
    customer: Mapped[str | None] = mapped_column(String(200), nullable=True)
    traits: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SegmentMessage(TenantScoped, Base):
    """The message id of an ``identify`` or ``group`` call a source sent, kept so that a replay
    (an SDK retrying a batch whose answer it lost) changes nothing. ``track`` calls need no row
    here: the activity event they become carries the message id."""

    __tablename__ = "segment_messages"
    __table_args__ = (UniqueConstraint("tenant_id", "source_id", "message_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    source_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("segment_sources.id", ondelete="CASCADE")
    )
    message_id: Mapped[str] = mapped_column(String(200))
    # Indexed for the daily prune (connectors.jobs).
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class ChannelRule(TenantScoped, UUIDPrimaryKey, Base):
    """Campaigns whose name contains ``pattern`` (case-insensitive) count as ``channel``; rules
    are tried by ascending priority; ``source`` limits a rule to one ad platform's exports."""

    __tablename__ = "marketing_channel_rules"
    __table_args__ = (UniqueConstraint("tenant_id", "source", "pattern"),)

    source: Mapped[str] = mapped_column(String(20))  # google-ads | meta | linkedin | any
    pattern: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(100))
    priority: Mapped[int] = mapped_column(Integer, default=100)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
