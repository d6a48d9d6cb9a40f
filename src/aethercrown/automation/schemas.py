"""API shapes of the automation runner's history."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

RunStatus = Literal["running", "succeeded", "failed", "abandoned"]


class RunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    job: str
    scope: str
    tenant_id: uuid.UUID | None
    period_start: datetime
    interval_seconds: int
    attempt: int
    status: RunStatus
    runner: str
    started_at: datetime
    ended_at: datetime | None
    error: str | None
    summary: dict[str, Any] | None


class RunPage(BaseModel):
    items: list[RunOut]
    next_cursor: str | None = None


class JobOut(BaseModel):
    name: str
    interval_seconds: int
    effective_interval_seconds: int | None
    per_tenant: bool
    description: str
