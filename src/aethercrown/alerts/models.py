"""Alert channels (where a tenant's alerts go) and their outbox of deliveries."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from aethercrown.core.outbox import OutboxRow
from aethercrown.core.tenancy import TenantScoped
from aethercrown.db.base import Base, Timestamps, UUIDPrimaryKey


class AlertChannel(TenantScoped, UUIDPrimaryKey, Timestamps, Base):
    """A Slack-compatible incoming webhook or a list of email recipients, with its filter."""

    __tablename__ = "alert_channels"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(10))  # slack | email
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Event types or prefixes ending in "*"; empty: every event.
    event_types: Mapped[list[Any]] = mapped_column(default=list)
    min_severity: Mapped[str] = mapped_column(String(10), default="info")
    # slack: the incoming-webhook URL, whose path is its credential: encrypted with the
    # installation's SecretBox, and shown only masked (webhook_hint).
    webhook_url: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    webhook_hint: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # email: the addresses every message goes to.
    recipients: Mapped[list[Any]] = mapped_column(default=list)


class AlertDelivery(TenantScoped, UUIDPrimaryKey, OutboxRow, Base):
    """One event owed to one channel: a row of the alert outbox, stored in the unit of work
    that emitted the event."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        UniqueConstraint("channel_id", "event_id"),
        Index("ix_alert_deliveries_due", "status", "next_attempt_at"),
    )

    channel_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("alert_channels.id", ondelete="CASCADE"), index=True
    )
    # One id per event, shared by every channel it went to.
    event_id: Mapped[uuid.UUID] = mapped_column()
    event_type: Mapped[str] = mapped_column(String(100))
    severity: Mapped[str] = mapped_column(String(10))
    payload: Mapped[dict[str, Any]] = mapped_column()
    # email: the recipients still owed this message (a recipient refused for a while is tried
    # again; those who got it are not sent it twice).
    pending_recipients: Mapped[list[Any]] = mapped_column(default=list)
    decision_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("decisions.id", ondelete="SET NULL"), nullable=True
    )
