"""API shapes for platform tiers and tenants."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema

Slug = Annotated[
    str,
    StringConstraints(min_length=3, max_length=63, pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$"),
]
TierSlug = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[a-z0-9_-]+$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]


class TierOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    slug: str
    name: str
    rank: int
    monthly_price: int = Field(description="Minor units (cents) per month")
    currency: str
    requests_per_minute: int
    max_stored_rows: int
    max_seats: int
    max_ai_agents: int
    automation_min_interval_seconds: int


class TierUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Strict: lax parsing would read true as 1 and "5" as 5.
    name: Name | None = None
    monthly_price: StrictInt | None = Field(default=None, ge=0, le=10**12)
    requests_per_minute: StrictInt | None = Field(default=None, ge=1, le=10**7)
    max_stored_rows: StrictInt | None = Field(default=None, ge=0, le=10**12)
    max_seats: StrictInt | None = Field(default=None, ge=1, le=10**6)
    max_ai_agents: StrictInt | None = Field(default=None, ge=0, le=10**5)
    automation_min_interval_seconds: StrictInt | None = Field(default=None, ge=60, le=7 * 86400)


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    slug: Slug
    tier: TierSlug = "starter"


class TenantUpdate(BaseModel):
    """Only the fields sent change. ``name`` and ``status`` may be left out but not set to null
    (a tenant always has both: null is a 422); a null ``webhook_url`` removes the URL."""

    model_config = ConfigDict(extra="forbid")

    # None only as "not sent": the document shows no null, and an explicit null is refused.
    name: Name | SkipJsonSchema[None] = None
    webhook_url: AnyHttpUrl | None = None
    status: Literal["active", "suspended"] | SkipJsonSchema[None] = Field(
        default=None, description="Operator only"
    )

    @field_validator("name", "status", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be left out but not null")
        return value


class TenantScale(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: TierSlug


class TenantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    slug: str
    tier: str = Field(validation_alias=AliasChoices("tier_slug", "tier"))
    status: str
    webhook_url: str | None
    created_at: datetime
    updated_at: datetime
    quotas: TierOut = Field(validation_alias=AliasChoices("quotas", "tier"))


class TenantCreated(TenantOut):
    api_key: str = Field(description="The tenant admin key (scope tenant:write); shown only once")


class TenantPage(BaseModel):
    items: list[TenantOut]
    next_cursor: str | None


class DayStatusCount(BaseModel):
    day: date
    status: int
    count: int


class QuotaUse(BaseModel):
    quota: str
    used: float
    limit: float
    percent: float


class TierRecommendation(BaseModel):
    action: Literal["upgrade", "downgrade", "keep"]
    tier: str
    reason: str


class TenantMetrics(BaseModel):
    tenant_id: uuid.UUID
    tier: str
    window_days: int
    requests_by_day: list[DayStatusCount]
    requests_total: int
    rate_limited_total: int
    peak_daily_requests: int
    stored_rows: dict[str, int]
    stored_rows_total: int
    seats: int
    quotas: list[QuotaUse]
    recommendation: TierRecommendation
    details: dict[str, Any] = Field(default_factory=dict)
