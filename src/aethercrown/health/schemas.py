"""API shapes of health checks and trends."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

Status = Literal["ok", "degraded", "down"]


class ComponentCheck(BaseModel):
    component: str
    status: Status
    latency_ms: float | None = None
    detail: dict[str, Any] = {}


class HealthReport(BaseModel):
    status: Status
    scope: Literal["installation", "tenant"]
    checked_at: datetime
    duration_ms: float
    components: list[ComponentCheck]


class IncidentOut(BaseModel):
    started_at: datetime
    ended_at: datetime | None
    worst_status: str
    samples: int


class ComponentTrendOut(BaseModel):
    component: str
    samples: int
    uptime_percent: float | None
    ok_percent: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    last_status: str | None
    incidents: list[IncidentOut]


class HealthTrends(BaseModel):
    scope: Literal["installation", "tenant"]
    window_hours: int
    since: datetime
    until: datetime
    components: list[ComponentTrendOut]
