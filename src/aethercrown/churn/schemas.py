"""Request and response shapes for churn prediction, training, campaigns and uplift."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_ROWS = 10_000


class BehaviourRow(BaseModel):
    """The seed's six behaviour fields for one user (units as documented per field)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    user_id: str | None = Field(None, max_length=200)
    days_since_last_login: float = Field(ge=0, le=36_500, description="days", strict=True)
    session_frequency: float = Field(ge=0, le=10_000, description="sessions per week", strict=True)
    avg_session_duration: float = Field(
        ge=0, le=1_440, description="minutes per session", strict=True
    )
    feature_usage: float = Field(
        ge=0, le=100_000, description="distinct features, last 30 days", strict=True
    )
    support_tickets: float = Field(
        ge=0, le=100_000, description="tickets, last 90 days", strict=True
    )
    payment_issues: float = Field(
        ge=0, le=100_000, description="failed payments, last 90 days", strict=True
    )


class PredictRequest(BaseModel):
    """Either ``users`` (the six behaviour fields each) or ``customer_ids`` (stored customers,
    scored from their point-in-time features), not both."""

    model_config = ConfigDict(extra="forbid")

    users: list[BehaviourRow] | None = Field(None, min_length=1, max_length=MAX_ROWS)
    customer_ids: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        None,
        min_length=1,
        max_length=MAX_ROWS,
        description="Each customer's external id (its internal UUID is accepted too)",
    )

    @model_validator(mode="after")
    def exactly_one(self) -> PredictRequest:
        if (self.users is None) == (self.customer_ids is None):
            raise ValueError("give exactly one of 'users' or 'customer_ids'")
        return self


class Factor(BaseModel):
    feature: str
    value: float | None
    contribution: float = Field(description="TreeSHAP contribution to the log-odds")
    direction: Literal["raises_risk", "lowers_risk"]


class Campaign(BaseModel):
    name: str
    actions: list[str]
    discount_percent: int
    status: str | None = None
    id: uuid.UUID | None = None


class Prediction(BaseModel):
    user_id: str | None = None
    customer_id: uuid.UUID | None = None
    external_id: str | None = None
    name: str | None = None
    active: bool | None = None
    churn_probability: float
    risk_level: Literal["low", "medium", "high", "critical"]
    top_factors: list[Factor]
    campaign: Campaign | None
    decision_id: uuid.UUID


class PredictResponse(BaseModel):
    model_source: Literal["tenant", "simulator_prior"]
    model_version: str
    feature_set: Literal["full", "seed6"]
    horizon_days: int
    predictions: list[Prediction]
    risk_summary: dict[str, int]


class TrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    horizon_days: int = Field(30, ge=1, le=365, strict=True)
    as_of: datetime | None = None


class ModelOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    feature_set: str
    version: int
    horizon_days: int
    window_start: datetime
    window_end: datetime
    features: list[str]
    training: dict[str, Any]
    roc_auc: float
    pr_auc: float
    brier: float
    ece: float
    top_decile_lift: float
    promoted: bool
    promoted_at: datetime | None
    created_at: datetime


class TrainResponse(BaseModel):
    models: list[ModelOut]


class ModelList(BaseModel):
    items: list[ModelOut]


class CampaignOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    customer_id: uuid.UUID
    customer: str = Field(description="The customer's external id")
    customer_name: str
    risk_level: str
    probability: float
    actions: list[str]
    discount_percent: int
    holdout: bool
    status: str
    model_version: str
    outcome: str | None
    outcome_at: datetime | None
    created_at: datetime


class CampaignPage(BaseModel):
    items: list[CampaignOut]
    next_cursor: str | None = None


class UpliftBucket(BaseModel):
    risk_level: str
    treated: int
    treated_retained: int
    holdout: int
    holdout_retained: int
    retention_uplift: float | None
    ci95: list[float] | None


class UpliftReport(BaseModel):
    confidence: float
    method: str
    buckets: list[UpliftBucket]


class ScoreRunResponse(BaseModel):
    scored: int
    model_source: str
    model_version: str
    risk_summary: dict[str, int]
    campaigns: dict[str, int]
    outcomes_resolved: int
