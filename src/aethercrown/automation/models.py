"""The run table: one row per (job, scope, period, attempt), claimed by a unique insert."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from aethercrown.clock import utcnow
from aethercrown.db.base import Base, BigIntPK

# The scope of installation-wide jobs (a tenant job's scope is its tenant id): a string rather
# than a NULL tenant, because NULLs never collide in a UNIQUE constraint.
INSTALLATION = "installation"


class AutomationRun(Base):
    __tablename__ = "automation_runs"
    __table_args__ = (
        # The claim: whoever inserts this row first runs the job for that period.
        UniqueConstraint("job", "scope", "period_start", "attempt"),
        Index("ix_automation_runs_tenant_id", "tenant_id", "id"),
        Index("ix_automation_runs_period", "period_start"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(100))
    scope: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True
    )
    period_start: Mapped[datetime] = mapped_column()
    interval_seconds: Mapped[int] = mapped_column(Integer)
    # 1 for the first run of a period; a failed run is retried on a later tick as attempt + 1.
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    # running | succeeded | failed | abandoned (its runner died; retried like a failure)
    status: Mapped[str] = mapped_column(String(20), default="running")
    runner: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    summary: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
