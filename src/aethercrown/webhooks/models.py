"""The webhook outbox's table: one row per event owed to a tenant's endpoint."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from aethercrown.core.outbox import OutboxRow
from aethercrown.core.tenancy import TenantScoped
from aethercrown.db.base import Base, UUIDPrimaryKey


class WebhookDelivery(TenantScoped, UUIDPrimaryKey, OutboxRow, Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    event_type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column()
    url: Mapped[str] = mapped_column(String(2000))
    decision_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("decisions.id", ondelete="SET NULL"), nullable=True
    )
