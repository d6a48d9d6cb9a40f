"""API shapes of the connectors."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, StringConstraints, model_validator

NO_NUL = r"^[^\x00]*$"
Secret = Annotated[str, StringConstraints(min_length=8, max_length=500, pattern=NO_NUL)]


class StripeConnectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    webhook_secret: Secret = Field(
        description="The signing secret Stripe shows for this endpoint (whsec_…)"
    )
    api_key: Secret | None = Field(
        None, description="A restricted read key (rk_…) or secret key, for backfills"
    )
    api_base: AnyHttpUrl | None = Field(
        None, description="A Stripe-compatible API base URL; empty = https://api.stripe.com"
    )


class StripeConnectionOut(BaseModel):
    webhook_path: str = Field(description="Point the Stripe webhook endpoint here")
    has_api_key: bool
    api_base: str | None
    backfill_status: str
    backfill: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class StripeWebhookResult(BaseModel):
    received: int
    stored: int = Field(description="New events stored; the mapping job maps them shortly")
    duplicates: int


class StripeMappingFailure(BaseModel):
    event_id: str
    event_type: str
    attempts: int
    error: str | None
    retry_at: datetime | None


class StripeDeadEvent(BaseModel):
    event_id: str
    event_type: str
    object_type: str
    object_id: str
    attempts: int
    error: str | None = Field(description="The last attempt's error")
    dead_at: datetime | None


class StripeMappingStatus(BaseModel):
    received: int = Field(description="Events stored: webhooks and a backfill's reads")
    mapped: int
    pending: int = Field(description="Stored, not mapped yet")
    failed: int = Field(description="Could not be mapped; retried with backoff")
    dead: int = Field(
        description="Failed too many times (setting stripe_mapping_max_attempts): no longer "
        "retried, nor read when their object is mapped, until retried or discarded"
    )
    discarded: int = Field(description="Dead events discarded by hand: never mapped")
    recent_failures: list[StripeMappingFailure]
    dead_events: list[StripeDeadEvent] = Field(description="The latest 50 dead events")


class StripeEventAction(BaseModel):
    event_id: str
    status: str = Field(description="pending (retried: the mapping job maps it) or discarded")


class StripeDeadEventsFilter(BaseModel):
    """Which dead events a bulk retry or discard touches: ``all``, or those of ``event_type``
    and/or of ``object_id``. An empty body is refused rather than taken as "all"."""

    model_config = ConfigDict(extra="forbid")

    all: bool = Field(False, description="every dead event of the tenant", strict=True)
    event_type: str | None = Field(None, min_length=1, max_length=100, examples=["invoice.paid"])
    object_id: str | None = Field(None, min_length=1, max_length=200, examples=["sub_123"])

    @model_validator(mode="after")
    def _one_choice(self) -> StripeDeadEventsFilter:
        narrowed = self.event_type is not None or self.object_id is not None
        if self.all == narrowed:
            raise ValueError('give "all": true, or event_type and/or object_id (not both)')
        return self


class StripeBulkAction(BaseModel):
    status: str = Field(description="pending (retried: the mapping job maps them) or discarded")
    affected: int = Field(description="dead events retried or discarded")


class BackfillOut(BaseModel):
    status: str
    fetched: int
    rate_limited: int
    resources: dict[str, Any]


class BackfillIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    restart: bool = Field(
        False, description="Forget the stored cursors and read everything again", strict=True
    )


class StripeEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    event_id: str
    event_type: str
    object_type: str
    object_id: str
    created: datetime
    received_at: datetime


class StripeInvoiceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    external_id: str
    customer: str
    subscription: str | None
    status: str
    currency: str
    amount_due: int
    amount_paid: int
    recurring_amount: int
    proration_amount: int
    attempt_count: int
    period_start: datetime | None
    period_end: datetime | None
    issued_at: datetime
