"""Experiments, who was exposed to which variant, their pre-period covariates and tracked events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from aethercrown.clock import utcnow
from aethercrown.core.tenancy import TenantScoped
from aethercrown.db.base import Base, BigIntPK, Timestamps, UUIDPrimaryKey


class Experiment(TenantScoped, UUIDPrimaryKey, Timestamps, Base):
    """An A/B/n test. ``variants`` is [{key, name}], ``weights`` the current traffic split (the
    bandit job may move it), ``metrics`` [{key, name, kind, role, lower_is_better}]."""

    __tablename__ = "experiments"
    __table_args__ = (Index("ix_experiments_tenant_status", "tenant_id", "status"),)

    name: Mapped[str] = mapped_column(String(200))
    hypothesis: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(10), default="running")  # running|stopped|archived
    seed: Mapped[str] = mapped_column(String(200))
    hash_version: Mapped[int] = mapped_column(Integer, default=2)
    coverage: Mapped[float] = mapped_column(Float, default=1.0)
    variants: Mapped[list[Any]] = mapped_column()
    weights: Mapped[list[Any]] = mapped_column()
    configured_weights: Mapped[list[Any]] = mapped_column()
    metrics: Mapped[list[Any]] = mapped_column()
    engine: Mapped[str] = mapped_column(String(12), default="bayesian")
    alpha: Mapped[float] = mapped_column(Float, default=0.05)
    mde: Mapped[float] = mapped_column(Float, default=0.05)
    power: Mapped[float] = mapped_column(Float, default=0.8)
    sequential_tuning: Mapped[float] = mapped_column(Float, default=5000.0)
    correction: Mapped[str] = mapped_column(String(4), default="holm")
    bandit: Mapped[bool] = mapped_column(default=False)
    bandit_floor: Mapped[float] = mapped_column(Float, default=0.05)
    last_verdict: Mapped[str | None] = mapped_column(String(20), nullable=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(nullable=True)
    archived_at: Mapped[datetime | None] = mapped_column(nullable=True)


class ExperimentAssignment(TenantScoped, Base):
    """A user's exposure: recorded once, so the variant stays fixed even if weights move."""

    __tablename__ = "experiment_assignments"
    __table_args__ = (
        UniqueConstraint("experiment_id", "user_id"),
        Index("ix_experiment_assignments_experiment_variant", "experiment_id", "variant"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    experiment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE")
    )
    user_id: Mapped[str] = mapped_column(String(200))
    variant: Mapped[int] = mapped_column(Integer)
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)


class ExperimentCovariate(TenantScoped, Base):
    """A user's pre-period value of a metric, for CUPED."""

    __tablename__ = "experiment_covariates"
    __table_args__ = (UniqueConstraint("experiment_id", "user_id", "metric_key"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    experiment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE")
    )
    user_id: Mapped[str] = mapped_column(String(200))
    metric_key: Mapped[str] = mapped_column(String(100))
    value: Mapped[float] = mapped_column(Float)


class ExperimentEvent(TenantScoped, Base):
    """An impression or a conversion (with a value for revenue metrics); unique per event id."""

    __tablename__ = "experiment_events"
    __table_args__ = (
        UniqueConstraint("experiment_id", "event_id"),
        Index("ix_experiment_events_metric_user", "experiment_id", "metric_key", "user_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    experiment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE")
    )
    event_id: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[str] = mapped_column(String(200))
    variant: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(12))  # impression | conversion
    metric_key: Mapped[str | None] = mapped_column(String(100), nullable=True)
    value: Mapped[float] = mapped_column(Float, default=1.0)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
