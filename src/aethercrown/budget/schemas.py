"""API shapes of the budget optimizer (seed section 1, ``POST /budget/optimize``)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MONEY_UNITS = (
    "Money is in the units of the spend it is compared with: the units of `historical_data` "
    "when it is given (e.g. currency units, as in the seed example), otherwise the minor units "
    "(cents) of the stored marketing data's currency."
)

Channel = Field(min_length=1, max_length=100)
Amount = Field(ge=0, le=1e15)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class HistoryRow(Strict):
    channel: str = Channel
    date: date
    spend: float = Field(
        ge=0, le=1e15, description="Spend in the period. " + MONEY_UNITS, strict=True
    )
    revenue: float | None = Field(
        default=None, ge=0, le=1e15, description="Attributed return", strict=True
    )
    conversions: float | None = Field(default=None, ge=0, le=1e15, strict=True)


class ChannelLimit(Strict):
    min_amount: float | None = Field(
        default=None, ge=0, le=1e15, description=MONEY_UNITS, strict=True
    )
    max_amount: float | None = Field(
        default=None, ge=0, le=1e15, description=MONEY_UNITS, strict=True
    )
    min_share: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Overrides the request's min_share for this channel",
        strict=True,
    )

    @model_validator(mode="after")
    def _min_not_above_max(self) -> ChannelLimit:
        if (
            self.min_amount is not None
            and self.max_amount is not None
            and self.min_amount > self.max_amount
        ):
            raise ValueError("min_amount is above max_amount")
        return self


class OptimizeRequest(Strict):
    total_budget: float | None = Field(
        default=None,
        gt=0,
        le=1e15,
        description=(
            "Spend to split over one period of the history's granularity (a day for daily rows), "
            "or over `horizon_days` when given. Required unless a target scenario is chosen, "
            "where it caps the flexible budget. " + MONEY_UNITS
        ),
        strict=True,
    )
    historical_data: list[HistoryRow] | None = Field(
        default=None,
        max_length=200_000,
        description="Rows {channel, date, spend, revenue|conversions}; when left out, the "
        "tenant's stored marketing data over `window_days` is used.",
    )
    objective: Literal["revenue", "conversions"] = Field(
        default="revenue", description="What the return is: attributed revenue or conversions"
    )
    window_days: int = Field(
        default=548, ge=7, le=1095, description="Stored data: days of history", strict=True
    )
    end_date: date | None = Field(
        default=None, description="Stored data: last day of the window (default: latest data)"
    )
    channels: list[str] | None = Field(
        default=None, max_length=500, description="Only these channels (each must have rows)"
    )
    horizon_days: int | None = Field(
        default=None, ge=1, le=3660, description="Days the total budget covers", strict=True
    )
    min_share: float = Field(
        default=0.05, ge=0, le=1, description="Minimum share per channel", strict=True
    )
    channel_limits: dict[str, ChannelLimit] = Field(default_factory=dict, max_length=500)
    fixed: dict[str, Annotated[float, Field(ge=0, le=1e15, strict=True)]] = Field(
        default_factory=dict,
        max_length=500,
        description="Channels held at a fixed amount (per horizon like total_budget). "
        + MONEY_UNITS,
    )
    target_roas: float | None = Field(
        default=None,
        gt=0,
        le=1e6,
        description="Flexible budget: spend while ROAS ≥ this",
        strict=True,
    )
    target_marginal_roi: float | None = Field(
        default=None,
        gt=0,
        le=1e6,
        description="Flexible budget: spend while the next unit returns at least this",
        strict=True,
    )
    bootstrap: int = Field(
        default=30, ge=0, le=200, description="Bootstrap refits per channel", strict=True
    )
    interval: float = Field(
        default=0.9, gt=0, lt=1, description="Width of the return interval", strict=True
    )

    @model_validator(mode="after")
    def _scenario(self) -> OptimizeRequest:
        if self.target_roas is not None and self.target_marginal_roi is not None:
            raise ValueError("choose one of target_roas and target_marginal_roi")
        if (
            self.total_budget is None
            and self.target_roas is None
            and self.target_marginal_roi is None
        ):
            raise ValueError("total_budget is required unless a target scenario is chosen")
        return self


class Recommendation(BaseModel):
    channel: str
    action: Literal["increase", "decrease", "maintain"]
    reason: str
    current_amount: float
    recommended_amount: float
    change: float
    marginal_roi_current: float
    marginal_roi_recommended: float
    expected_return_change: float


class ExpectedReturn(BaseModel):
    value: float
    low: float
    high: float
    interval: float
    roas: float | None


class SplitComparison(BaseModel):
    allocations: dict[str, float]
    expected_return: float
    uplift: float = Field(description="Optimal expected return minus this split's")
    uplift_percent: float | None


class FitOut(BaseModel):
    r2: float | None
    mape: float | None
    points: int


class CurvePoint(BaseModel):
    spend: float
    response: float
    low: float
    high: float


class ChannelOut(BaseModel):
    channel: str
    model: str = Field(description="hill | exponential | roi_proportional_fallback")
    fallback: bool
    fallback_reason: str | None
    parameters: dict[str, Any] | None
    fit: FitOut
    historical_roi: float
    current_spend_per_period: float
    marginal_roi: float
    curve: list[CurvePoint]
    trusted_max_spend: float | None = Field(
        default=None,
        description="Highest spend per period the channel sustained for a week; its curve is "
        "trusted up to here and credits no further return beyond it",
    )
    held: bool = Field(
        default=False, description="Held at its current spend (weak fit, or fixed as asked)"
    )
    beyond_trusted: bool = Field(
        default=False, description="The recommended amount is past the trusted range"
    )


class Units(BaseModel):
    money: Literal["as_given", "minor"]
    currency: str | None
    period_days: int
    horizon_days: int
    periods: float = Field(description="Periods of the history the amounts cover")
    note: str


class OptimizerOut(BaseModel):
    method: str
    upper_bound: float
    relative_gap: float
    nodes: int


class GainOut(BaseModel):
    value: float = Field(
        description="Posterior mean gain of the recommended over the current split"
    )
    low: float
    high: float
    interval: float
    probability_positive: float


class OptimizeResult(BaseModel):
    allocations: dict[str, float]
    recommendations: list[Recommendation]
    total_budget: float
    expected_return: ExpectedReturn
    marginal_roi: dict[str, float]
    comparison: dict[str, SplitComparison]
    channels: list[ChannelOut]
    scenario: dict[str, Any]
    units: Units
    optimizer: OptimizerOut
    data_window: dict[str, Any]
    confidence: str | None = Field(
        default=None, description="How sure the recommendation is, and why, in plain words"
    )
    gain_over_current: GainOut | None = None


class AllocationRecord(BaseModel):
    id: uuid.UUID
    created_at: datetime
    period_start: date | None
    period_end: date | None
    allocations: dict[str, float]
    total_budget: float | None
    predicted_return: float | None
    realised_return: float | None
    realised_spend: float | None
    outcome_at: datetime | None
    model: str
    model_version: str
    actor: str


class AllocationPage(BaseModel):
    items: list[AllocationRecord]
    next_cursor: str | None = None
