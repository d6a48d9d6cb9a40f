"""Content: a tenant's product facts, generated items with their versions, and tracked events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from aethercrown.clock import utcnow
from aethercrown.core.tenancy import TenantScoped
from aethercrown.db.base import Base, BigIntPK, Timestamps, UUIDPrimaryKey


class ContentProfile(TenantScoped, UUIDPrimaryKey, Timestamps, Base):
    """What the tenant told the platform about its product, once; every generation reads it.
    The provider's API key is sealed with the installation's secret box, never stored plain."""

    __tablename__ = "content_profiles"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    product_name: Mapped[str] = mapped_column(String(200))
    audience: Mapped[str] = mapped_column(String(300))
    value_propositions: Mapped[list[Any]] = mapped_column()
    features: Mapped[list[Any]] = mapped_column()
    proof_points: Mapped[list[Any]] = mapped_column()
    tone: Mapped[str] = mapped_column(String(20))
    banned_words: Mapped[list[Any]] = mapped_column()
    links: Mapped[list[Any]] = mapped_column()
    postal_address: Mapped[str] = mapped_column(Text, default="")
    sender_name: Mapped[str] = mapped_column(String(200), default="")
    provider_base_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    provider_model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    provider_api_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class ContentItem(TenantScoped, UUIDPrimaryKey, Timestamps, Base):
    """A generated piece (blog post, social post, newsletter, email); its text lives in
    versions, the newest being ``version``. Scheduling and the headline test live here."""

    __tablename__ = "content_items"
    __table_args__ = (
        Index("ix_content_items_tenant_kind", "tenant_id", "kind"),
        Index("ix_content_items_tenant_scheduled", "tenant_id", "scheduled_at"),
        Index("ix_content_items_due", "status", "scheduled_at"),
        # One email per campaign (NULLs, the items of no campaign, never collide).
        Index(
            "ux_content_items_campaign", "tenant_id", "campaign_kind", "campaign_id", unique=True
        ),
    )

    kind: Mapped[str] = mapped_column(String(20))  # blog | social | newsletter | email
    channel: Mapped[str] = mapped_column(String(20))  # blog | x | linkedin | … | email
    title: Mapped[str] = mapped_column(String(300))
    # draft | scheduled | due | cancelled
    status: Mapped[str] = mapped_column(String(12), default="draft")
    version: Mapped[int] = mapped_column(Integer, default=1)
    scheduled_at: Mapped[datetime | None] = mapped_column(nullable=True)
    due_at: Mapped[datetime | None] = mapped_column(nullable=True)
    headline_experiment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("experiments.id", ondelete="SET NULL"), nullable=True
    )
    # The churn or upsell campaign whose email this is (churn | upsell, and its id); the campaign
    # lives in another domain's table, so the link is by value, not a foreign key.
    campaign_kind: Mapped[str | None] = mapped_column(String(10), nullable=True)
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)


class ContentVersion(TenantScoped, Base):
    """One version of an item: its body, the inputs that produced it and who wrote it (a
    provider and model, the offline writer after a fallback and why, or a person's edit)."""

    __tablename__ = "content_versions"
    __table_args__ = (UniqueConstraint("item_id", "version"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("content_items.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]] = mapped_column()
    inputs: Mapped[dict[str, Any]] = mapped_column()
    provider: Mapped[str] = mapped_column(String(40))  # offline | openai-compatible | edit
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    fallback_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    analysis: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    author: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ContentEvent(TenantScoped, Base):
    """A view, click or conversion of an item; recorded once per event id."""

    __tablename__ = "content_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "event_id"),
        Index("ix_content_events_item_kind", "item_id", "kind"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("content_items.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(12))  # view | click | conversion
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
