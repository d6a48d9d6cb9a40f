"""Churn tables: the per-tenant model registry, stored scores, and retention campaigns."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from aethercrown.clock import utcnow
from aethercrown.core.tenancy import TenantScoped
from aethercrown.db.base import Base, BigIntPK, UUIDPrimaryKey


class ChurnModel(TenantScoped, UUIDPrimaryKey, Base):
    """One trained model of a tenant: its window, features, holdout metrics and the model itself.

    ``feature_set`` is ``full`` (every point-in-time feature) or ``seed6`` (the seed's six
    behaviour fields); each set has at most one promoted model per tenant at a time.
    """

    __tablename__ = "churn_models"
    __table_args__ = (
        UniqueConstraint("tenant_id", "feature_set", "version"),
        Index("ix_churn_models_tenant_promoted", "tenant_id", "feature_set", "promoted"),
    )

    feature_set: Mapped[str] = mapped_column(String(10))
    version: Mapped[int] = mapped_column(Integer)
    horizon_days: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[datetime] = mapped_column()
    window_end: Mapped[datetime] = mapped_column()
    features: Mapped[list[Any]] = mapped_column(default=list)
    # Row counts and positives per split, and the calibration used.
    training: Mapped[dict[str, Any]] = mapped_column(default=dict)
    roc_auc: Mapped[float] = mapped_column(Float)
    pr_auc: Mapped[float] = mapped_column(Float)
    brier: Mapped[float] = mapped_column(Float)
    ece: Mapped[float] = mapped_column(Float)
    top_decile_lift: Mapped[float] = mapped_column(Float)
    # The serialized model (LightGBM model text + calibration map, as JSON bytes; never pickle).
    artifact: Mapped[bytes] = mapped_column(LargeBinary)
    promoted: Mapped[bool] = mapped_column(Boolean, default=False)
    promoted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChurnScore(TenantScoped, Base):
    """A customer's score at one moment (the batch job and id-based predictions write these)."""

    __tablename__ = "churn_scores"
    __table_args__ = (Index("ix_churn_scores_tenant_customer", "tenant_id", "customer_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    scored_at: Mapped[datetime] = mapped_column()
    probability: Mapped[float] = mapped_column(Float)
    risk_level: Mapped[str] = mapped_column(String(10))
    model_source: Mapped[str] = mapped_column(String(20))
    model_version: Mapped[str] = mapped_column(String(50))
    factors: Mapped[list[Any]] = mapped_column(default=list)


class RetentionCampaign(TenantScoped, UUIDPrimaryKey, Base):
    """The retention campaign a score triggered, or the record that the customer was held out.

    UNIQUE(tenant, customer, cooldown_bucket) makes "once per customer per cooldown" hold even
    when two scorers race: the loser's insert does nothing.
    """

    __tablename__ = "churn_campaigns"
    __table_args__ = (
        UniqueConstraint("tenant_id", "customer_id", "cooldown_bucket"),
        Index("ix_churn_campaigns_tenant_created", "tenant_id", "created_at"),
    )

    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    cooldown_bucket: Mapped[int] = mapped_column(Integer)
    risk_level: Mapped[str] = mapped_column(String(10))
    probability: Mapped[float] = mapped_column(Float)
    actions: Mapped[list[Any]] = mapped_column(default=list)
    discount_percent: Mapped[int] = mapped_column(Integer, default=0)
    holdout: Mapped[bool] = mapped_column(Boolean, default=False)
    # planned (no endpoint) | queued (signed webhook queued) | held_out;
    # outcome: churned | retained once known.
    status: Mapped[str] = mapped_column(String(12))
    model_version: Mapped[str] = mapped_column(String(50))
    decision_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(10), nullable=True)
    outcome_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
