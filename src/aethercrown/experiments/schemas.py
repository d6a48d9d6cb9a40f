"""API shapes for experiments. Numbers are finite (NaN and ±inf are refused by the schema)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    field_validator,
    model_validator,
)

Engine = Literal["bayesian", "frequentist", "sequential"]
MetricKind = Literal["binomial", "mean", "revenue", "count"]
MetricRole = Literal["primary", "secondary", "guardrail"]
Alternative = Literal["two-sided", "greater", "less"]
Key = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
# Strict: lax parsing would read true as 1.0 (a JSON integer is still a float).
FiniteFloat = Annotated[StrictFloat, Field(allow_inf_nan=False)]
UserId = Annotated[str, Field(min_length=1, max_length=200)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VariantIn(Strict):
    key: Key
    name: str | None = Field(None, max_length=200)
    weight: FiniteFloat | None = None


class MetricIn(Strict):
    key: Key
    name: str | None = Field(None, max_length=200)
    kind: MetricKind = "binomial"
    role: MetricRole = "primary"
    lower_is_better: StrictBool = False


class ExperimentCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    hypothesis: str | None = Field(None, max_length=5000)
    variants: list[VariantIn] = Field(max_length=20)
    metrics: list[MetricIn] = Field(
        default_factory=lambda: [MetricIn(key="conversion")], max_length=50
    )
    engine: Engine = "bayesian"
    alpha: FiniteFloat = Field(0.05, gt=0, lt=0.5)
    mde: FiniteFloat = Field(0.05, gt=0, le=10)
    power: FiniteFloat = Field(0.8, gt=0.5, lt=1)
    sequential_tuning: FiniteFloat = Field(5000, ge=1, le=1e9)
    correction: Literal["holm", "bh", "none"] = "holm"
    normalise_weights: StrictBool = False
    seed: str | None = Field(None, min_length=1, max_length=200)
    coverage: FiniteFloat = Field(1.0, gt=0, le=1)
    bandit: StrictBool = False
    bandit_floor: FiniteFloat = Field(0.05, ge=0, lt=0.5)


class VariantOut(BaseModel):
    key: str
    name: str
    weight: float


class MetricOut(BaseModel):
    key: str
    name: str
    kind: MetricKind
    role: MetricRole
    lower_is_better: bool


class ExperimentOut(BaseModel):
    id: uuid.UUID
    name: str
    hypothesis: str | None
    status: str
    variants: list[VariantOut]
    metrics: list[MetricOut]
    engine: Engine
    alpha: float
    mde: float
    power: float
    sequential_tuning: float
    correction: str
    seed: str
    hash_version: int
    coverage: float
    bandit: bool
    bandit_floor: float
    weights_normalised: bool = False
    last_verdict: str | None
    started_at: datetime
    stopped_at: datetime | None
    archived_at: datetime | None


class ExperimentPage(BaseModel):
    items: list[ExperimentOut]
    next_cursor: str | None = None


class AssignIn(Strict):
    user_id: UserId
    # Pre-period values per metric key, for CUPED.
    covariates: dict[Key, FiniteFloat] = Field(default_factory=dict, max_length=50)


class AssignOut(BaseModel):
    experiment_id: uuid.UUID
    user_id: str
    variant: str
    variant_index: int
    newly_exposed: bool


class TrackEvent(Strict):
    event_id: str = Field(min_length=1, max_length=200)
    user_id: UserId
    kind: Literal["impression", "conversion"] = "conversion"
    metric: Key | None = None
    value: FiniteFloat | None = Field(None, ge=-1e12, le=1e12)
    variant: Key | None = None
    occurred_at: datetime | None = None

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a timezone (UTC, e.g. 2026-01-01T00:00:00Z)")
        return value


class TrackBatch(Strict):
    events: list[TrackEvent] = Field(min_length=1, max_length=5000)


class TrackOut(BaseModel):
    accepted: int
    duplicates: int
    newly_exposed: int


class Interval(BaseModel):
    effect: float | None
    ci: tuple[float | None, float | None]
    stddev: float | None


class VariantResult(BaseModel):
    key: str
    name: str
    users: int
    impressions: int
    conversions: float
    rate: float | None
    mean: float
    variance: float
    relative: Interval | None = None
    absolute: Interval | None = None
    p_value: float | None = None
    adjusted_p_value: float | None = None
    chance_to_win: float | None = None
    risk: float | None = None
    significant: bool | None = None
    problem: str | None = None


class MetricResult(BaseModel):
    key: str
    name: str
    kind: MetricKind
    role: MetricRole
    cuped: bool
    variants: list[VariantResult]


class ExperimentResults(BaseModel):
    experiment_id: uuid.UUID
    name: str
    status: str
    engine: Engine
    alpha: float
    correction: str
    srm_p_value: float
    srm_detected: bool
    verdict: Literal["winner", "loser", "inconclusive", "invalid"]
    winner: str | None
    recommendation: str
    users_needed_per_variant: int | None
    metrics: list[MetricResult]


class AnalyzeVariant(Strict):
    # Bounds keep every intermediate (sum², n⁴ in the delta method) finite in float64.
    name: str = Field(min_length=1, max_length=200)
    n: FiniteFloat = Field(le=1e12)
    sum: FiniteFloat = Field(ge=-1e18, le=1e18)
    sum_squares: FiniteFloat | None = Field(None, le=1e36)


class AnalyzeIn(Strict):
    engine: Engine = "frequentist"
    metric_type: Literal["binomial", "mean"] = "binomial"
    difference: Literal["relative", "absolute"] = "relative"
    alternative: Alternative = "two-sided"
    # Below 1e-10, 1 - alpha/2 rounds to 1 and the critical value is infinite.
    alpha: FiniteFloat = Field(0.05, ge=1e-10, lt=1)
    sequential_tuning: FiniteFloat = Field(5000, ge=1, le=1e12)
    weights: list[FiniteFloat] | None = Field(
        None, min_length=2, max_length=100, description="One per variant, in their order"
    )
    variants: list[AnalyzeVariant] = Field(
        min_length=2, max_length=100, description="The control first, then each treatment"
    )

    @model_validator(mode="after")
    def _one_weight_per_variant(self) -> AnalyzeIn:
        if self.weights is not None and len(self.weights) != len(self.variants):
            raise ValueError(
                f"weights: {len(self.weights)} given for {len(self.variants)} variants"
            )
        return self


class AnalyzeVariantOut(BaseModel):
    name: str
    n: float
    mean: float
    variance: float
    effect: float | None = None
    ci: tuple[float | None, float | None] | None = None
    stddev: float | None = None
    p_value: float | None = None
    chance_to_win: float | None = None
    risk: float | None = None
    risk_control: float | None = None
    problem: str | None = None


class AnalyzeOut(BaseModel):
    engine: Engine
    difference: str
    alternative: str
    alpha: float
    srm_p_value: float
    srm_detected: bool
    variants: list[AnalyzeVariantOut]


class PowerIn(Strict):
    # Lower bounds keep the sample size finite: it grows as 1 / (mean⁴ · mde²) in float64, and
    # below alpha = 1e-10 the critical value rounds to infinity.
    metric_type: Literal["binomial", "mean"] = "binomial"
    baseline_mean: FiniteFloat = Field(ge=1e-9, le=1e12, description="Conversion rate or mean")
    baseline_stddev: FiniteFloat | None = Field(None, ge=1e-9, le=1e12)
    mde: FiniteFloat = Field(
        ge=1e-6, le=10, description="Relative change to detect, 0.05 = 5% (at least 1e-6)"
    )
    alpha: FiniteFloat = Field(0.05, ge=1e-10, lt=0.5)
    power: FiniteFloat = Field(0.8, gt=0.5, lt=1)
    alternative: Alternative = "two-sided"
    variants: int = Field(2, ge=2, le=20, strict=True)
    daily_users: FiniteFloat | None = Field(None, gt=0, le=1e12)


class PowerOut(BaseModel):
    users_per_variant: int
    total_users: int
    days: float | None
    per_unit_variance: float
