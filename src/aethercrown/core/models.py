"""Cross-domain tables: tenants, their tiers and their keys (which authentication reads on every
request), the audit log, the decision ledger, idempotency records, request counts."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from aethercrown.clock import utcnow
from aethercrown.core.tenancy import TenantScoped
from aethercrown.db.base import Base, BigIntPK, Timestamps, UUIDPrimaryKey


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


class ApiKey(UUIDPrimaryKey, Base):
    """A secret. Only its SHA-256 is kept, except webhook secrets, which are kept encrypted
    because signing needs the secret itself."""

    __tablename__ = "api_keys"

    # NULL for operator (admin) keys, which belong to the installation.
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True, index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), default="api_key")
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    display_prefix: Mapped[str] = mapped_column(String(20))
    encrypted_secret: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # Managed keys carry a rotation schedule by security level.
    managed: Mapped[bool] = mapped_column(Boolean, default=False)
    security_level: Mapped[str | None] = mapped_column(String(20), nullable=True)
    rotation_interval_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Every key of one rotation chain shares the lineage id of the first.
    lineage_id: Mapped[uuid.UUID] = mapped_column(index=True)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    rotated_to_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    created_by: Mapped[str] = mapped_column(String(100), default="system")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)


class AuditEvent(UUIDPrimaryKey, Base):
    """Who did what to which thing. Tenant-less rows are operator actions on the installation."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_tenant_created", "tenant_id", "created_at"),)

    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True
    )
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(100))
    target_type: Mapped[str] = mapped_column(String(50))
    target_id: Mapped[str] = mapped_column(String(100), index=True)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Decision(TenantScoped, UUIDPrimaryKey, Base):
    """One automated decision with what went in, what came out, and later what really happened."""

    __tablename__ = "decisions"
    __table_args__ = (
        Index("ix_decisions_tenant_kind_created", "tenant_id", "kind", "created_at"),
        Index("ix_decisions_tenant_subject", "tenant_id", "subject_type", "subject_id"),
    )

    kind: Mapped[str] = mapped_column(String(50))
    subject_type: Mapped[str] = mapped_column(String(50))
    subject_id: Mapped[str] = mapped_column(String(200))
    inputs_digest: Mapped[str] = mapped_column(String(64))
    output: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The decision's headline prediction (a churn probability, an expected return), so accuracy
    # can be measured against outcome_value with one query.
    predicted_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    model: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str] = mapped_column(String(50))
    actor: Mapped[str] = mapped_column(String(100), default="automation")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    outcome: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    outcome_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    outcome_at: Mapped[datetime | None] = mapped_column(nullable=True)


class IdempotencyRecord(Base):
    """The first response to an ``Idempotency-Key``; replayed for the same key and body."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    # NULL while the first request is still being processed.
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    response_headers: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class TenantRequestCount(Base):
    """Requests a tenant made per UTC day and response status (429 = rate-limit rejections)."""

    __tablename__ = "tenant_request_counts"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    status: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class TenantStoredRows(Base):
    """How many rows a tenant stores in one tenant table, kept by PostgreSQL's triggers
    (``aethercrown.db.row_counts``): a table's count is the sum of its rows here, each writing
    statement appending its delta. Empty on SQLite, which counts when the quota is read."""

    __tablename__ = "tenant_stored_rows"
    __table_args__ = (Index("ix_tenant_stored_rows_tenant_table", "tenant_id", "table_name"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    table_name: Mapped[str] = mapped_column(String(63))
    row_count: Mapped[int] = mapped_column(BigInteger)
