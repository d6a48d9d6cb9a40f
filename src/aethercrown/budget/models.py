"""Cached channel fits: a grid posterior over a year of daily history takes tens of milliseconds
per channel, so each fit is stored under a fingerprint of the exact data (and method version) it
was computed from and reused while that data is unchanged."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from aethercrown.clock import utcnow
from aethercrown.core.tenancy import TenantScoped
from aethercrown.db.base import Base, BigIntPK


class BudgetFitCache(TenantScoped, Base):
    """One channel's posterior draws for one data fingerprint (``robust.fingerprint``)."""

    __tablename__ = "budget_fit_cache"
    __table_args__ = (UniqueConstraint("tenant_id", "fingerprint"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)
