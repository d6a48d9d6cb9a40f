"""Every health sample ever measured (by the API or the hourly job)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from aethercrown.clock import utcnow
from aethercrown.db.base import Base, BigIntPK


class HealthSample(Base):
    __tablename__ = "health_samples"
    __table_args__ = (
        Index("ix_health_samples_component_checked", "component", "checked_at"),
        Index("ix_health_samples_tenant_checked", "tenant_id", "checked_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    # NULL: measured for the installation (operator, hourly job); else a tenant's own check.
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True
    )
    component: Mapped[str] = mapped_column(String(120))
    # ok | degraded | down
    status: Mapped[str] = mapped_column(String(20))
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # api | job
    source: Mapped[str] = mapped_column(String(20))
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)
