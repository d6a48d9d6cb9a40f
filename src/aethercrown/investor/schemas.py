"""Shapes of /api/v1/investor."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

PublicFigureName = Literal[
    "mrr", "arr", "customers", "mrr_growth_rate", "nrr_12m", "active_users", "milestones"
]


class PublicFigure(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Money in minor units, counts in units, rates in percentage points. None: published exactly.
    round_to: float | None = Field(None, gt=0, le=1e15, allow_inf_nan=False, strict=True)


class PublicMetricsSettings(BaseModel):
    """Which figures the tenant publishes without authentication, and how coarsely."""

    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool = False  # 0, 1 or "yes" are not booleans
    figures: dict[PublicFigureName, PublicFigure] = Field(default_factory=dict)


class FeedItem(BaseModel):
    """One ledger decision, sanitised for investors: no subject id, inputs or outputs (they can
    name customers); what was decided, by which model, and whether the outcome is known."""

    id: uuid.UUID
    kind: str
    subject_type: str
    model: str
    model_version: str
    created_at: datetime
    outcome_recorded: bool
    outcome_at: datetime | None
    summary: str


class FeedPage(BaseModel):
    items: list[FeedItem]
    next_cursor: str | None = None


class InvestorView(BaseModel):
    model_config = ConfigDict(extra="allow")

    as_of: str | None = None


ReportFormat = Literal["json", "html", "pdf"]
