"""API shapes of onboardings, their steps and report, SLA tiers and SLA measurements."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aethercrown.data.schemas import UtcTime
from aethercrown.metering.schemas import MetricName
from aethercrown.onboarding.channel import LOOPBACK, address_problem

ExternalId = Annotated[str, Field(min_length=1, max_length=200)]
Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]
Email = Annotated[str, Field(pattern=r"^[^@\s]{1,64}@[^@\s]{1,255}$", max_length=320)]

STEPS = (
    "account_creation",
    "sla_assignment",
    "environment_setup",
    "api_key_generation",
    "documentation_access",
    "training_schedule",
    "support_channel_setup",
    "initial_health_check",
)


def check_time_zone(value: str) -> str:
    """An IANA zone name the zoneinfo database knows ("Europe/Paris"), else a ValueError."""
    if len(value) > 64 or "\x00" in value or value.startswith(("/", ".")) or ".." in value:
        raise ValueError("not a known IANA time zone")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError("not a known IANA time zone") from exc
    return value


TimeZone = Annotated[str, Field(min_length=1, max_length=64, examples=["Europe/Berlin"])]

_LOCAL_NAMES = ("localhost", ".localhost", ".local", ".internal", ".localdomain")


def webhook_url_problem(url: str, allow_loopback: bool) -> str | None:
    """Why ``url`` cannot be a support webhook (None when it can): https only, never a private,
    link-local or loopback address — except loopback (http or https) when the installation
    allows it for tests. The URL alone: what its host name resolves to is checked by
    ``channel.resolve`` (at creation, outside any transaction, and again before each ping)."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        _ = parts.port
    except ValueError:
        return "not a valid URL"
    if not host:
        return "the URL has no host"
    if parts.username or parts.password:
        return "credentials in the URL are not allowed"
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    loopback = (
        host == "localhost"
        or host.endswith(".localhost")
        or (address is not None and address_problem(address, False) == LOOPBACK)
    )
    if loopback and allow_loopback:
        return None if parts.scheme in ("http", "https") else "the URL must use https"
    if parts.scheme != "https":
        return "the URL must use https"
    if loopback:
        return LOOPBACK
    if address is not None:
        return address_problem(address, allow_loopback)
    if host.endswith(_LOCAL_NAMES):
        return "local host names are not allowed"
    return None


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    external_id: ExternalId
    name: Annotated[str, Field(min_length=1, max_length=300)]
    company_size: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=200)]
    email: Email
    role: Literal["admin", "technical", "billing", "executive"] = "admin"
    time_zone: TimeZone = "UTC"

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_time_zone(value)


class MeterAgreement(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: MetricName
    capacity: Annotated[float, Field(gt=0, le=1e15, allow_inf_nan=False)]
    aggregation: Literal["count", "sum", "max", "unique", "latest"] = "sum"
    unit: Annotated[str, Field(min_length=1, max_length=40)] = "unit"


class TrainingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    time_zone: TimeZone | None = Field(None, description="Default: the admin contact's zone")
    sessions: Annotated[int, Field(ge=1, le=10)] = 3
    duration_minutes: Annotated[int, Field(ge=15, le=240)] = 60
    working_hours_start: Annotated[int, Field(ge=0, le=23)] = 9
    working_hours_end: Annotated[int, Field(ge=1, le=24)] = 17

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else check_time_zone(value)

    @model_validator(mode="after")
    def _hours(self) -> TrainingIn:
        if self.working_hours_end * 60 - self.working_hours_start * 60 < self.duration_minutes:
            raise ValueError("a session must fit between working_hours_start and _end")
        return self


class OnboardingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer: CustomerIn
    sla_tier: Slug = Field(description="One of the tenant's SLA tiers (standard, premium, …)")
    contacts: Annotated[list[ContactIn], Field(min_length=1, max_length=20)]
    plan: Slug = Field("enterprise", description="The tenant's plan the customer is put on")
    meters: Annotated[list[MeterAgreement], Field(max_length=20)] = Field(default_factory=list)
    training: TrainingIn = Field(default_factory=TrainingIn)
    support_webhook_url: Annotated[str, Field(min_length=8, max_length=2000)]
    docs_url: Annotated[str, Field(min_length=8, max_length=2000)] | None = None

    @field_validator("meters")
    @classmethod
    def _distinct_meters(cls, value: list[MeterAgreement]) -> list[MeterAgreement]:
        names = [m.name for m in value]
        if len(set(names)) != len(names):
            raise ValueError("each meter once")
        return value

    @field_validator("docs_url")
    @classmethod
    def _https_docs(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("https://"):
            raise ValueError("the docs URL must use https")
        return value

    @property
    def admin(self) -> ContactIn:
        return next((c for c in self.contacts if c.role == "admin"), self.contacts[0])


class StepOut(BaseModel):
    position: int
    name: str
    status: Literal["pending", "running", "waiting", "done"]
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    blocker: str | None
    next_attempt_at: datetime | None


class BlockerOut(BaseModel):
    step: str
    reason: str
    attempts: int
    next_attempt_at: datetime | None


class OnboardingStatus(BaseModel):
    id: uuid.UUID
    customer: str
    sla_tier: str
    status: Literal["running", "blocked", "completed"]
    current_step: str | None
    started_at: datetime
    completed_at: datetime | None
    duration_seconds: float | None
    steps: list[StepOut]
    blockers: list[BlockerOut]


class OnboardingCreated(OnboardingStatus):
    portal_api_key: str | None = Field(
        None, description="The customer portal key, shown this once (only hashes are kept)"
    )


class OnboardingSummary(BaseModel):
    id: uuid.UUID
    customer: str
    sla_tier: str
    status: str
    current_step: str | None
    started_at: datetime
    completed_at: datetime | None


class AuditOut(BaseModel):
    at: datetime
    actor: str
    action: str
    details: dict[str, Any]


class OnboardingReport(OnboardingStatus):
    target_hours: int
    time_to_complete_hours: float | None
    elapsed_hours: float
    within_target: bool | None
    provisioned: dict[str, Any]
    audit: list[AuditOut]


class PortalKeyOut(BaseModel):
    key_id: uuid.UUID
    display_prefix: str
    portal_api_key: str = Field(description="Shown this once")


class CreditRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # strict: a JSON true/false is not a number (lax mode would store it as 1/0).
    below_bp: Annotated[int, Field(ge=1, le=10_000, strict=True)]
    credit_percent: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False, strict=True)]


class SlaTierIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    response_minutes: Annotated[int, Field(ge=1, le=60 * 24 * 30)] | None = None
    uptime_target_bp: Annotated[int, Field(ge=1, le=10_000)] | None = None
    dedicated_support: bool | None = None
    custom_integration: bool | None = None
    onboarding_target_hours: Annotated[int, Field(ge=1, le=24 * 365)] | None = None
    credits: Annotated[list[CreditRow], Field(max_length=20)] | None = None


class SlaTierOut(BaseModel):
    slug: str
    name: str
    rank: int
    response_minutes: int
    uptime_target_bp: int
    uptime_target_percent: float
    dedicated_support: bool
    custom_integration: bool
    onboarding_target_hours: int
    credits: list[CreditRow]


class ResponseMonthOut(BaseModel):
    month: date
    tickets: int
    within_target: int
    compliance: float | None
    breaches: list[dict[str, Any]]


class UptimeMonthOut(BaseModel):
    month: date
    samples: int
    uptime_percent: float
    target_percent: float
    breached: bool
    credit_percent: float


class SlaStatus(BaseModel):
    customer: str
    tier: SlaTierOut
    since: datetime | None
    response: list[ResponseMonthOut]
    uptime: list[UptimeMonthOut]
    breaches_raised: int = Field(description="Breaches newly raised by this measurement")


class DocsLinkCheck(BaseModel):
    valid: bool
    reason: str | None


class FirstResponseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    responded_at: UtcTime | None = Field(
        None,
        description="When the customer first heard back (default: now); not before the "
        "ticket was opened, not in the future",
    )


class FirstResponseOut(BaseModel):
    ticket: str = Field(description="The ticket's external id")
    customer: str | None
    opened_at: datetime
    responded_at: datetime
    response_minutes: float
    recorded_by: str
    recorded_now: bool = Field(
        description="False when the ticket already had its first response: it is not moved"
    )
