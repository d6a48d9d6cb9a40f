"""API shapes for content. Strings refuse NUL (PostgreSQL text cannot hold it, so neither may
SQLite: the same input must behave the same on both backends)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from aethercrown.content.mail import Rendered

NO_NUL = r"^[^\x00]*$"


def bounded(min_length: int = 1, max_length: int = 300) -> Any:
    return StringConstraints(
        min_length=min_length, max_length=max_length, pattern=NO_NUL, strip_whitespace=True
    )


Short = Annotated[str, bounded(1, 300)]
Url = Annotated[str, StringConstraints(max_length=2000, pattern=r"^https?://[^\s\x00]+$")]
Tone = Literal["friendly", "professional", "bold"]
Platform = Literal["x", "linkedin", "instagram", "threads", "bluesky", "mastodon", "facebook"]
ProviderChoice = Literal["auto", "offline"]
# What a writer is asked about, and the seed that makes its offline draft repeatable: one rule
# for every request that writes.
Topic = Annotated[str, bounded(1, 200)]
Seed = Annotated[int, Field(ge=0, le=2**31 - 1, strict=True)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FeatureIn(Strict):
    name: Annotated[str, bounded(1, 100)]
    does: Annotated[str, bounded(1, 300)] = Field(
        description="What it does, as a verb phrase: 'retries failed cards at the best hour'"
    )


class LinkIn(Strict):
    title: Annotated[str, bounded(1, 200)]
    url: Url
    kind: Literal["internal", "external", "cta", "unsubscribe"] = "internal"


class ProviderIn(Strict):
    """An OpenAI-compatible chat API (OpenAI, Ollama, vLLM, a llama.cpp server…)."""

    base_url: Url
    model: Annotated[str, bounded(1, 200)]
    api_key: Annotated[str, bounded(0, 500)] | None = None

    @field_validator("base_url")
    @classmethod
    def _parsable(cls, value: str) -> str:
        try:
            url = httpx.URL(value)
        except (httpx.InvalidURL, ValueError) as exc:
            raise ValueError(f"not a usable URL: {exc}") from exc
        if not url.host:
            raise ValueError("the URL has no host")
        if url.port is not None and not 0 < url.port < 65536:
            raise ValueError("the port is out of range")
        return value


class ProfileIn(Strict):
    product_name: Annotated[str, bounded(1, 200)]
    audience: Annotated[str, bounded(1, 300)] = Field(
        description="A plural noun phrase: 'finance teams at subscription businesses'"
    )
    value_propositions: list[Short] = Field(min_length=1, max_length=20)
    features: list[FeatureIn] = Field(min_length=1, max_length=20)
    proof_points: list[Annotated[str, bounded(1, 500)]] = Field(default_factory=list, max_length=20)
    tone: Tone = "friendly"
    banned_words: list[Annotated[str, bounded(1, 100)]] = Field(
        default_factory=list, max_length=200
    )
    links: list[LinkIn] = Field(default_factory=list, max_length=50)
    postal_address: Annotated[str, bounded(0, 500)] = ""
    sender_name: Annotated[str, bounded(0, 200)] = ""
    provider: ProviderIn | None = None


class ProviderOut(BaseModel):
    base_url: str
    model: str
    has_api_key: bool


class ProfileOut(BaseModel):
    product_name: str
    audience: str
    value_propositions: list[str]
    features: list[FeatureIn]
    proof_points: list[str]
    tone: str
    banned_words: list[str]
    links: list[LinkIn]
    postal_address: str
    sender_name: str
    provider: ProviderOut | None
    updated_at: datetime


class BlogIn(Strict):
    topic: Topic
    keyphrase: Annotated[str, bounded(1, 100)]
    target_words: int = Field(1000, ge=800, le=2000, strict=True)
    seed: Seed = 0
    provider: ProviderChoice = "auto"


class SocialIn(Strict):
    topic: Topic
    keyphrase: Annotated[str, bounded(1, 100)] | None = None
    platforms: list[Platform] = Field(min_length=1, max_length=7)
    link: Url | None = None
    thread: bool = Field(
        False, description="Split into a thread where the platform has them", strict=True
    )
    seed: Seed = 0
    provider: ProviderChoice = "auto"


class AnalysisIn(Strict):
    title: Annotated[str, bounded(0, 300)]
    slug: Annotated[str, bounded(0, 300)] = ""
    meta_description: Annotated[str, bounded(0, 1000)] = ""
    keyphrase: Annotated[str, bounded(0, 100)] = ""
    markdown: Annotated[str, bounded(0, 200_000)]


class ItemEdit(Strict):
    """Fields to change; the item gets a new version holding the merged body."""

    title: Annotated[str, bounded(1, 300)] | None = None
    slug: Annotated[str, StringConstraints(max_length=200, pattern=r"^[a-z0-9-]+$")] | None = None
    meta_description: Annotated[str, bounded(1, 1000)] | None = None
    keyphrase: Annotated[str, bounded(1, 100)] | None = None
    markdown: Annotated[str, bounded(1, 200_000)] | None = None
    text: Annotated[str, bounded(1, 70_000)] | None = None
    subject: Annotated[str, bounded(1, 300)] | None = None
    preheader: Annotated[str, bounded(1, 300)] | None = None


class VersionOut(BaseModel):
    version: int
    body: dict[str, Any]
    inputs: dict[str, Any]
    provider: str
    model: str | None
    fallback_reason: str | None
    analysis: dict[str, Any] | None
    author: str
    created_at: datetime


class ItemFields(BaseModel):
    """What the list of items and an item's full view both answer first, in this order."""

    id: uuid.UUID
    kind: str
    channel: str
    title: str
    status: str
    version: int
    scheduled_at: datetime | None
    created_at: datetime


class ItemOut(ItemFields):
    updated_at: datetime
    campaign_kind: str | None = Field(
        None, description="churn | upsell when the item is a campaign's email"
    )
    campaign_id: uuid.UUID | None = None
    current: VersionOut


class ItemSummary(ItemFields):
    campaign_kind: str | None = None
    campaign_id: uuid.UUID | None = None


class ItemPage(BaseModel):
    items: list[ItemSummary]
    next_cursor: str | None = None


class SocialOut(BaseModel):
    items: list[ItemOut]


# Calendar ---------------------------------------------------------------------------------------


class ScheduleIn(Strict):
    at: datetime = Field(description="When to publish (UTC, with an offset); in the future")


class CalendarEntry(BaseModel):
    id: uuid.UUID
    kind: str
    channel: str
    title: str
    status: str
    scheduled_at: datetime | None
    due_at: datetime | None


class CalendarOut(BaseModel):
    start: datetime
    end: datetime
    items: list[CalendarEntry]


# Metrics ----------------------------------------------------------------------------------------


class EventIn(Strict):
    event_id: Annotated[str, bounded(1, 200)]
    content_id: uuid.UUID
    kind: Literal["view", "click", "conversion"]
    occurred_at: datetime | None = None


class TrackIn(Strict):
    events: list[EventIn] = Field(min_length=1, max_length=1000)


class TrackOut(BaseModel):
    recorded: int
    duplicates: int


class RateOut(BaseModel):
    successes: int
    trials: int
    rate: float | None
    low: float | None
    high: float | None


class Performance(BaseModel):
    views: int
    clicks: int
    conversions: int
    ctr: RateOut = Field(description="clicks / views, with a 95 % Wilson interval")
    conversion_rate: RateOut = Field(description="conversions / clicks, 95 % Wilson interval")


class ChannelPerformance(Performance):
    channel: str


class ItemPerformance(Performance):
    content_id: uuid.UUID
    title: str
    channel: str


class MetricsOut(BaseModel):
    start: datetime | None
    end: datetime | None
    items_generated: int
    by_kind: dict[str, int]
    totals: Performance
    by_channel: list[ChannelPerformance]
    by_item: list[ItemPerformance]


class HeadlineTestIn(Strict):
    headlines: list[Annotated[str, bounded(1, 300)]] = Field(
        min_length=1, max_length=9, description="Alternatives to the current title"
    )
    engine: Literal["bayesian", "frequentist", "sequential"] = "bayesian"


class HeadlineTestOut(BaseModel):
    content_id: uuid.UUID
    experiment_id: uuid.UUID
    variants: list[dict[str, str]]
    verdict: str | None = None
    winner: str | None = None
    applied: bool = False
    title: str


# Newsletters and email campaigns ----------------------------------------------------------------

Email = Annotated[
    str,
    StringConstraints(
        max_length=320, pattern=r"^[^@\s\x00<>\"]+@[^@\s\x00<>\"]+\.[^@\s\x00<>\"]+$"
    ),
]


class NewsletterIn(Strict):
    topic: Topic
    sections: int = Field(3, ge=2, le=6, strict=True)
    seed: Seed = 0
    provider: ProviderChoice = "auto"


class EmailIn(Strict):
    topic: Topic
    seed: Seed = 0
    provider: ProviderChoice = "auto"


class RenderIn(Strict):
    """Render for one customer: ``customer`` (external id or id) from the tenant's data, or
    ``data`` given inline (name, email, external_id, country, company_size, attributes)."""

    customer: Annotated[str, bounded(1, 200)] | None = None
    data: dict[str, Any] | None = None
    from_address: Email


# A rendered email as content.mail made it: the fields are Rendered's, in its order (no
# docstring, which the OpenAPI would show as a description).
@pydantic_dataclass(frozen=True)
class RenderOut(Rendered):
    pass


class CampaignEmailsIn(Strict):
    """Write the emails of churn or upsell campaigns, one per campaign and customer: the
    campaigns named, or else the latest ones opened in the last ``since_days`` days that have
    no email yet (at most ``limit``). A campaign that has its email keeps it."""

    campaign: Literal["churn", "upsell"]
    campaign_ids: Annotated[list[uuid.UUID], Field(max_length=200)] | None = None
    since_days: int = Field(30, ge=1, le=366, strict=True)
    limit: int = Field(50, ge=1, le=200, strict=True)
    seed: Seed = 0
    provider: ProviderChoice = "auto"


class CampaignEmailsOut(BaseModel):
    written: list[ItemOut]
    already_written: int = Field(description="Campaigns asked for that already had their email")
    not_found: list[uuid.UUID] = Field(
        default_factory=list,
        description="Ids named that are no campaign of this kind (or a held-out one: its "
        "customers get no email)",
    )
