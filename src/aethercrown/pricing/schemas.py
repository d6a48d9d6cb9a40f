"""API shapes of the tenant's plans, factor tables, quotes and recommendations."""

from __future__ import annotations

import itertools
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass as pydantic_dataclass

from aethercrown.pricing.formula import BP, OverageLine, QuoteLine

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
MetricName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,99}$")]
# Strict: lax parsing would read true as 1 and 5.0 as 5 (a JSON integer is still a float).
Amount = Annotated[StrictInt, Field(ge=0, le=10**12)]
Quantity = Annotated[StrictFloat, Field(ge=0, le=1e15, allow_inf_nan=False)]


class OveragePrice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unit_amount: Amount = Field(description="Minor units per started package")
    per: Annotated[StrictFloat, Field(gt=0, le=1e12, allow_inf_nan=False)] = 1


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slug: Slug
    name: Annotated[str, Field(min_length=1, max_length=100)]
    rank: Annotated[StrictInt, Field(ge=0, le=1000)]
    monthly_price: Amount
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "USD"
    capacities: dict[MetricName, Quantity] = Field(default_factory=dict)
    overage: dict[MetricName, OveragePrice] = Field(default_factory=dict)


class PlanPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slug: Slug
    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    rank: Annotated[StrictInt, Field(ge=0, le=1000)] | None = None
    monthly_price: Amount | None = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    capacities: dict[MetricName, Quantity] | None = None
    overage: dict[MetricName, OveragePrice] | None = None


class PlanOut(PlanIn):
    model_config = ConfigDict(from_attributes=True, extra="ignore")


# strict: a JSON true/false is not a threshold or a basis-point figure (lax mode reads 1/0).
Bands = list[
    tuple[
        Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)],
        Annotated[int, Field(ge=0, strict=True)],
    ]
]


def _check_bands(name: str, bands: Bands, max_bp: int) -> None:
    if not bands:
        raise ValueError(f"{name}: at least one band")
    if bands[0][0] != 0:
        raise ValueError(f"{name}: the first band starts at 0")
    for (a, _), (b, _) in itertools.pairwise(bands):
        if not b > a:
            raise ValueError(f"{name}: thresholds must increase")
    for _, bp in bands:
        if bp > max_bp:
            raise ValueError(f"{name}: {bp} bp exceeds {max_bp}")


class FactorTables(BaseModel):
    model_config = ConfigDict(extra="forbid")
    usage_multipliers: dict[MetricName, Bands]
    enterprise_multipliers: dict[str, Bands]
    engagement_discounts: dict[str, Bands]
    max_engagement_discount_bp: Annotated[StrictInt, Field(ge=0, le=BP)]  # not true/false

    @model_validator(mode="after")
    def _bands_are_sound(self) -> FactorTables:
        for name, bands in self.usage_multipliers.items():
            _check_bands(name, bands, 10 * BP)
        for name, bands in self.enterprise_multipliers.items():
            if name not in ("company_size", "annual_revenue"):
                raise ValueError(f"unknown enterprise factor {name}")
            _check_bands(name, bands, 10 * BP)
        for name, bands in self.engagement_discounts.items():
            if name not in ("activity_rate_bp", "tenure_months", "feature_adoption_bp"):
                raise ValueError(f"unknown engagement factor {name}")
            _check_bands(name, bands, BP)
        return self


class FactorPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    usage_multipliers: dict[MetricName, Bands] | None = None
    enterprise_multipliers: dict[str, Bands] | None = None
    engagement_discounts: dict[str, Bands] | None = None
    max_engagement_discount_bp: Annotated[StrictInt, Field(ge=0, le=BP)] | None = None


class TiersOut(BaseModel):
    plans: list[PlanOut]
    factors: dict[str, Any]


class TiersPut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plans: Annotated[list[PlanIn], Field(min_length=1, max_length=50)]
    factors: FactorTables | None = None

    @field_validator("plans")
    @classmethod
    def _unique_slugs(cls, plans: list[PlanIn]) -> list[PlanIn]:
        slugs = [p.slug for p in plans]
        if len(set(slugs)) != len(slugs):
            raise ValueError("plan slugs must be unique")
        return plans


class TiersPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plans: Annotated[list[PlanPatch], Field(max_length=50)] = Field(default_factory=list)
    factors: FactorPatch | None = None


class QuoteRequest(BaseModel):
    """Price a plan for a customer. Figures not given are read from the customer's data."""

    model_config = ConfigDict(extra="forbid")
    plan: Slug | None = Field(None, description="Defaults to the customer's plan, else the first")
    customer: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    usage: dict[MetricName, Quantity] | None = Field(
        None, description="Usage per billing period; default: the customer's projection"
    )
    company_size: Annotated[StrictInt, Field(ge=0, le=10**8)] | None = None
    annual_revenue: Annotated[StrictInt, Field(ge=0, le=10**15)] | None = None
    activity_rate: Annotated[StrictFloat, Field(ge=0, le=1, allow_inf_nan=False)] | None = None
    tenure_months: Annotated[StrictInt, Field(ge=0, le=1200)] | None = None
    feature_adoption: Annotated[StrictFloat, Field(ge=0, le=1, allow_inf_nan=False)] | None = None


# A quote's step as the formula wrote it: the fields are QuoteLine's, in its order (no docstring,
# which the OpenAPI would show as a description).
@pydantic_dataclass
class QuoteLineOut(QuoteLine):
    pass


class QuoteOut(BaseModel):
    plan: str
    currency: str
    customer: str | None
    base_price: int
    usage_multiplier_bp: int
    enterprise_multiplier_bp: int
    engagement_discount_bp: int
    final_price: int
    inputs: dict[str, Any]
    lines: list[QuoteLineOut]
    decision_id: str


class RecommendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    usage: dict[MetricName, Quantity] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> RecommendRequest:
        if self.customer is None and self.usage is None:
            raise ValueError("give a customer or a usage projection")
        return self


# A metric's overage as the formula priced it: the fields are OverageLine's, in its order.
@pydantic_dataclass
class OverageOut(OverageLine):
    pass


class PlanCostOut(BaseModel):
    slug: str
    name: str
    rank: int
    base: int
    overage: list[OverageOut]
    overage_total: int
    total: int
    covers: bool


class RecommendOut(BaseModel):
    currency: str
    customer: str | None
    current_plan: str | None
    usage: dict[str, float]
    usage_interval: dict[str, list[float]] | None = Field(
        None,
        description="For a customer's projected usage: each metric's 80 % interval [low, high]",
    )
    recommended: PlanCostOut
    cheapest_total: PlanCostOut
    comparison: list[PlanCostOut]
    savings_vs_current: int | None
    reason: str


class InvoicePreviewOut(BaseModel):
    customer: str
    plan: str
    currency: str
    period_start: str
    period_end: str
    base: int
    overage: list[OverageOut]
    overage_total: int
    total_to_date: int
    projected_overage_total: int
    projected_total: int
