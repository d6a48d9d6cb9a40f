"""Row shapes of the business-data contract (DATA_CONTRACT.md) and the API's answers.

Incoming rows validate into TypedDicts rather than models: a ``TypeAdapter`` over a list of them
checks a whole batch in one call into plain dicts, ready for ``executemany`` without a dump.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, NotRequired

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    with_config,
)
from typing_extensions import TypedDict

# Column limits: a value the database would reject (or overflow) is a 422 here, never a 500.
MAX_BIGINT = 2**63 - 1
MAX_INT = 2**31 - 1

ROW_CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)


def _as_utc(value: datetime) -> datetime:
    # Naive times are read as UTC (docs/modules/data.md); aware ones are converted to UTC.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


# PostgreSQL text cannot hold NUL, so no string may (on either backend: the same rows must load).
NO_NUL = r"^[^\x00]*$"


def _text(min_length: int, max_length: int) -> Any:
    return StringConstraints(min_length=min_length, max_length=max_length, pattern=NO_NUL)


def _no_nul_json(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None and b"\\u0000" in orjson.dumps(value):
        raise ValueError("must not contain NUL characters")
    return value


def _not_bool(value: Any) -> Any:
    # Lax mode would read true as 1; a boolean where a number belongs is a wrong type.
    if isinstance(value, bool):
        raise ValueError("Input should be a valid integer, not a boolean")
    return value


NotBool = BeforeValidator(_not_bool)
UtcTime = Annotated[datetime, AfterValidator(_as_utc)]
ExternalId = Annotated[str, _text(1, 200)]
Name = Annotated[str, _text(1, 300)]
Label = Annotated[str, _text(1, 100)]
Currency = Annotated[str, BeforeValidator(_upper), StringConstraints(pattern=r"^[A-Z]{3}$")]
Country = Annotated[str, BeforeValidator(_upper), StringConstraints(pattern=r"^[A-Z]{2}$")]
Email = Annotated[
    str, StringConstraints(max_length=320, pattern=r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$")
]
Attributes = Annotated[dict[str, Any], AfterValidator(_no_nul_json)]
MinorUnits = Annotated[int, NotBool, Field(ge=0, le=MAX_BIGINT)]
Count = Annotated[int, NotBool, Field(ge=0, le=MAX_BIGINT)]
SmallCount = Annotated[int, NotBool, Field(ge=0, le=MAX_INT)]

Interval = Literal["month", "year"]
ActivityKind = Literal["session", "login", "feature"]
Priority = Literal["low", "normal", "high", "urgent"]
PaymentStatus = Literal["succeeded", "failed", "refunded"]


@with_config(ROW_CONFIG)
class CustomerRow(TypedDict):
    external_id: ExternalId
    name: Name
    email: NotRequired[Email | None]
    company_size: NotRequired[SmallCount | None]
    annual_revenue: NotRequired[MinorUnits | None]
    currency: NotRequired[Currency]
    country: NotRequired[Country | None]
    signup_date: date
    attributes: NotRequired[Attributes | None]


@with_config(ROW_CONFIG)
class SubscriptionRow(TypedDict):
    external_id: ExternalId
    customer: ExternalId
    plan: Label
    amount: MinorUnits
    currency: NotRequired[Currency]
    interval: Interval
    quantity: NotRequired[Annotated[int, NotBool, Field(ge=1, le=MAX_INT)]]
    started_at: UtcTime
    ended_at: NotRequired[UtcTime | None]
    discount_percent: NotRequired[Annotated[float, NotBool, Field(ge=0, le=100)] | None]
    discount_amount: NotRequired[MinorUnits | None]
    trial_end: NotRequired[UtcTime | None]


@with_config(ROW_CONFIG)
class ActivityRow(TypedDict):
    external_id: ExternalId
    customer: ExternalId
    user_id: ExternalId
    kind: ActivityKind
    occurred_at: UtcTime
    duration_seconds: NotRequired[SmallCount | None]
    feature: NotRequired[Annotated[str, _text(1, 200)] | None]


@with_config(ROW_CONFIG)
class TicketRow(TypedDict):
    external_id: ExternalId
    customer: ExternalId
    opened_at: UtcTime
    closed_at: NotRequired[UtcTime | None]
    priority: NotRequired[Priority]
    satisfaction: NotRequired[Annotated[int, NotBool, Field(ge=1, le=5)] | None]
    subject: NotRequired[Annotated[str, _text(0, 500)] | None]


@with_config(ROW_CONFIG)
class PaymentRow(TypedDict):
    external_id: ExternalId
    customer: ExternalId
    subscription: NotRequired[ExternalId | None]
    occurred_at: UtcTime
    status: PaymentStatus
    amount: MinorUnits
    currency: NotRequired[Currency]
    reason: NotRequired[Annotated[str, _text(0, 200)] | None]


@with_config(ROW_CONFIG)
class MarketingRow(TypedDict):
    channel: Label
    day: date
    spend: MinorUnits
    currency: NotRequired[Currency]
    impressions: NotRequired[Count]
    clicks: NotRequired[Count]
    conversions: NotRequired[Count]
    attributed_revenue: NotRequired[MinorUnits]


class IngestResult(BaseModel):
    """What one bulk write did. A retried batch reports everything as unchanged."""

    kind: str
    received: int
    inserted: int
    updated: int
    unchanged: int


# ---- answers ----


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class CustomerOut(_Out):
    id: uuid.UUID
    external_id: str
    name: str
    email: str | None
    company_size: int | None
    annual_revenue: int | None = Field(description="Minor units")
    currency: str
    country: str | None
    signup_date: date
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class SubscriptionOut(_Out):
    id: uuid.UUID
    external_id: str
    customer: str = Field(description="The customer's external_id")
    customer_id: uuid.UUID
    plan: str
    amount: int = Field(description="Minor units per unit and interval, before discounts")
    currency: str
    interval: str
    quantity: int
    started_at: datetime
    ended_at: datetime | None
    discount_percent: float
    discount_amount: int
    trial_end: datetime | None
    created_at: datetime
    updated_at: datetime


class ActivityOut(_Out):
    id: int
    external_id: str
    customer: str
    customer_id: uuid.UUID
    user_id: str
    kind: str
    occurred_at: datetime
    duration_seconds: int | None
    feature: str | None


class TicketOut(_Out):
    id: uuid.UUID
    external_id: str
    customer: str
    customer_id: uuid.UUID
    opened_at: datetime
    closed_at: datetime | None
    priority: str
    satisfaction: int | None
    subject: str | None
    created_at: datetime
    updated_at: datetime


class PaymentOut(_Out):
    id: uuid.UUID
    external_id: str
    customer: str
    customer_id: uuid.UUID
    subscription: str | None = Field(description="The subscription's external_id")
    subscription_id: uuid.UUID | None
    occurred_at: datetime
    status: str
    amount: int
    currency: str
    reason: str | None
    created_at: datetime
    updated_at: datetime


class MarketingOut(_Out):
    id: int
    channel: str
    day: date
    spend: int
    currency: str
    impressions: int
    clicks: int
    conversions: int
    attributed_revenue: int


# ---- list filters (query parameters) ----

Query100 = Annotated[str, _text(1, 200)]
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _not_a_number(value: Any) -> Any:
    # Lax parsing reads 0 or "0.5" as seconds since the epoch; a filter takes ISO-8601 only.
    if isinstance(value, int | float) or (
        isinstance(value, str) and _NUMBER.fullmatch(value.strip())
    ):
        raise ValueError("expected an ISO-8601 time or date, not a number")
    return value


FilterTime = Annotated[UtcTime, BeforeValidator(_not_a_number)]
FilterDay = Annotated[date, BeforeValidator(_not_a_number)]


class _TimeFilters(BaseModel):
    customer: Query100 | None = Field(default=None, description="The customer's external_id")
    since: FilterTime | None = Field(default=None, description="Inclusive lower bound (UTC)")
    until: FilterTime | None = Field(default=None, description="Exclusive upper bound (UTC)")


class CustomerFilters(BaseModel):
    since: FilterDay | None = Field(default=None, description="Signed up on or after")
    until: FilterDay | None = Field(default=None, description="Signed up before")
    country: Country | None = None
    external_id: Query100 | None = None


class SubscriptionFilters(_TimeFilters):
    plan: Query100 | None = None
    interval: Interval | None = None


class ActivityFilters(_TimeFilters):
    kind: ActivityKind | None = None
    feature: Query100 | None = None
    user_id: Query100 | None = None


class TicketFilters(_TimeFilters):
    priority: Priority | None = None


class PaymentFilters(_TimeFilters):
    status: PaymentStatus | None = None


class MarketingFilters(BaseModel):
    since: FilterDay | None = Field(default=None, description="First day (inclusive)")
    until: FilterDay | None = Field(default=None, description="Last day (exclusive)")
    channel: Query100 | None = None
