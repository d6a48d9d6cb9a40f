"""The simulated truth stored with a tenant whose data came from the demo generator."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from aethercrown.core.tenancy import TenantScoped
from aethercrown.db.base import Base, Timestamps, UUIDPrimaryKey


class SimulatedTruth(TenantScoped, UUIDPrimaryKey, Timestamps, Base):
    """One per tenant: the seed and config that regenerate the company bit for bit, and the
    compact truth (hazard, curves, effects, churn, MRR) engines score themselves against."""

    __tablename__ = "simulated_truths"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    seed: Mapped[int] = mapped_column(BigInteger)
    config: Mapped[dict[str, Any]] = mapped_column()
    truth: Mapped[dict[str, Any]] = mapped_column()
    # Which row kinds were written through ingestion, and how many of each.
    row_counts: Mapped[dict[str, Any]] = mapped_column()
    generator_version: Mapped[str] = mapped_column(String(20))
    generated_at: Mapped[datetime] = mapped_column()
