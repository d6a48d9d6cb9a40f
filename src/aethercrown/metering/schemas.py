"""API shapes of usage events, meters, reports, alerts, upsell and renewal odds."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MetricName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,99}$")]
ExternalId = Annotated[str, Field(min_length=1, max_length=200)]
MAX_BATCH = 10_000


class UsageEventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: ExternalId = Field(description="Idempotency key, unique per tenant")
    customer: ExternalId = Field(description="The customer's external id")
    metric: MetricName
    value: Annotated[float, Field(ge=-1e15, le=1e15, allow_inf_nan=False, strict=True)] = 1.0
    timestamp: datetime | None = Field(None, description="ISO-8601; naive is read as UTC")
    properties: Annotated[dict[str, Any], Field(max_length=50)] = Field(default_factory=dict)


class UsageBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: Annotated[list[UsageEventIn], Field(min_length=1, max_length=MAX_BATCH)]


class TrackOut(BaseModel):
    received: int
    accepted: int
    duplicates: list[str]


class FoldOut(BaseModel):
    events: int = Field(description="Events added to the rollups by this fold")
    tenants: int
    alerts: int = Field(description="Alerts the folded events fired")
    last_event_id: int = Field(description="The fold cursor after this fold")
    caught_up: bool = Field(description="False when more events were waiting than one fold takes")
    blocked: bool = Field(
        False, description="True when an open transaction still storing events held the fold up"
    )


class MeterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: MetricName
    aggregation: Literal["count", "sum", "max", "unique", "latest"]
    unit: Annotated[str, Field(min_length=1, max_length=40)] = "unit"
    unique_property: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    description: Annotated[str, Field(max_length=500)] | None = None

    @model_validator(mode="after")
    def _unique_property_only_for_unique(self) -> MeterIn:
        if self.unique_property is not None and self.aggregation != "unique":
            raise ValueError("unique_property applies to unique meters only")
        return self


class MeterOut(BaseModel):
    name: str
    aggregation: str
    unit: str
    unique_property: str | None = None
    description: str | None = None
    builtin: bool


class SettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    warning_bp: Annotated[int, Field(ge=1, le=100_000, strict=True)] | None = None
    critical_bp: Annotated[int, Field(ge=1, le=100_000, strict=True)] | None = None
    upsell_growth_bp: Annotated[int, Field(ge=0, le=1_000_000, strict=True)] | None = None
    upsell_high_usage_bp: Annotated[int, Field(ge=1, le=100_000, strict=True)] | None = None
    upsell_sustained_days: Annotated[int, Field(ge=1, le=28, strict=True)] | None = None


class SettingsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    warning_bp: int
    critical_bp: int
    upsell_growth_bp: int
    upsell_high_usage_bp: int
    upsell_sustained_days: int


class DayPoint(BaseModel):
    day: date
    value: float


class MetricReport(BaseModel):
    metric: str
    aggregation: str
    unit: str
    usage: float
    capacity: float | None
    percent_of_capacity: float | None
    daily: list[DayPoint]
    previous_period_same_span: float
    growth_rate: float | None
    projected: float
    projected_low: float = Field(
        description="10th percentile of the projection (80 % interval); upsell acts on it"
    )
    projected_high: float = Field(description="90th percentile of the projection")
    projected_percent_of_capacity: float | None


class UsageReport(BaseModel):
    customer: str
    plan: str | None
    period_start: date
    period_end: date
    as_of: datetime
    metrics: list[MetricReport]


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    customer: str
    customer_name: str | None = None
    metric: str
    period_start: date
    level: str
    threshold_bp: int
    usage: float
    capacity: float
    plan: str
    fired_at: datetime
    webhook_delivery_id: uuid.UUID | None


class UpsellRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customers: Annotated[list[ExternalId], Field(max_length=10_000)] | None = Field(
        None, description="Default: every customer with usage this period"
    )


class UpsellReason(BaseModel):
    trigger: Literal["growth", "sustained_high_usage", "projected_over_capacity"]
    metric: str
    detail: str
    value: float


class UpsellCandidate(BaseModel):
    customer: str = Field(description="The customer's external id")
    customer_name: str | None = None
    current_plan: str | None
    reasons: list[UpsellReason]
    recommended_plan: str | None
    recommended_price: int | None
    current_price: int | None
    currency: str
    projected_usage: dict[str, float]
    projected_usage_low: dict[str, float]
    projected_usage_high: dict[str, float]


class UpsellAnalysis(BaseModel):
    period_start: date
    analysed: int
    candidates: list[UpsellCandidate]


class CampaignOut(BaseModel):
    id: uuid.UUID
    customer: str
    period_start: date
    current_plan: str | None
    recommended_plan: str
    monthly_price: int
    currency: str
    reasons: list[dict[str, Any]]
    status: str
    decision_id: uuid.UUID | None
    created: bool


class Driver(BaseModel):
    feature: str
    value: float
    contribution: float = Field(description="Effect on the log-odds of renewing")
    direction: Literal["raises", "lowers"]


class RenewalOut(BaseModel):
    customer: str
    probability: float
    next_renewal_date: date | None
    plan: str | None
    drivers: list[Driver]
    model_version: str
    model_trained_at: datetime
    model_metrics: dict[str, Any]
    decision_id: uuid.UUID
