"""Request and response shapes of /api/v1/dashboard."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aethercrown.analytics.metrics import parse_month

MONTH_PATTERN = r"^\d{4}-\d{2}$"
Segment = Literal["smb", "mid_market", "enterprise", "unknown"]


class PeriodRequest(BaseModel):
    """A period of whole months, both ends included. Omitted: the last 12 months."""

    model_config = ConfigDict(extra="forbid")

    start: str | None = Field(None, description="First month, YYYY-MM")
    end: str | None = Field(None, description="Last month, YYYY-MM")
    currency: str | None = Field(
        None, pattern=r"^[A-Z]{3}$", description="Reporting currency (default: the most used)"
    )
    plan: str | None = Field(None, min_length=1, max_length=100, description="Only this plan")
    segment: Segment | None = Field(None, description="Only customers of this segment")

    @field_validator("start", "end")
    @classmethod
    def _month(cls, value: str | None) -> str | None:
        if value is not None:
            parse_month(value)
        return value


class RevenueMonth(BaseModel):
    model_config = ConfigDict(extra="allow")

    month: str
    mrr: int
    arr: int
    customers: int
    new: int
    expansion: int
    contraction: int
    churn: int
    reactivation: int
    net_new_mrr: int


class RevenueResponse(BaseModel):
    currency: str
    start: str
    end: str
    as_of: str | None = None
    months: list[RevenueMonth]
    totals: dict[str, Any]


class DashboardSection(BaseModel):
    """A dashboard view: named figures, computed from stored data."""

    model_config = ConfigDict(extra="allow")

    start: str
    end: str
