"""``/api/v1/content``: the product profile, generation, stored items, the calendar, metrics.

Generation routes read the tenant's facts, end that transaction, call the provider with no
transaction open, then store the item in a new one (committed before the response)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from aethercrown.content import analysis, schemas, service
from aethercrown.content.models import ContentItem
from aethercrown.content.repository import ItemRepository
from aethercrown.core.auth import TenantPrincipal, TenantReader, TenantWriter
from aethercrown.core.crypto import SecretBox, secret_box
from aethercrown.core.errors import InvalidInput, field_error
from aethercrown.core.pagination import Pagination, paginate
from aethercrown.db.session import DbSession, SessionFactory, read_transaction, write_transaction

router = APIRouter(prefix="/api/v1/content", tags=["content"])

Kind = Literal["blog", "social", "newsletter", "email"]
Channel = Literal[
    "blog", "x", "linkedin", "instagram", "threads", "bluesky", "mastodon", "facebook", "email"
]


def _box(request: Request) -> SecretBox:
    return secret_box(request.app.state.settings)


@router.put("/profile", response_model=schemas.ProfileOut)
def put_profile(
    request: Request, body: schemas.ProfileIn, principal: TenantWriter, session: DbSession
) -> schemas.ProfileOut:
    """Tell the platform about the product once; every generation reads it."""
    profile = service.save_profile(session, principal.tenant_id, body, _box(request))
    return service.profile_out(profile)


@router.get(
    "/profile",
    response_model=schemas.ProfileOut,
    responses={409: {"description": "No product profile yet: PUT one first"}},
)
def get_profile(principal: TenantReader, session: DbSession) -> schemas.ProfileOut:
    return service.profile_out(service.profile_or_409(session, principal.tenant_id))


def _context(units: sessionmaker[Session], tenant_id: uuid.UUID, box: SecretBox) -> service.Context:
    # A read unit of its own, ended before any provider call (it may take seconds): the request
    # holds no session, so no transaction and no place in SQLite's write queue, meanwhile.
    with read_transaction(units) as session:
        return service.load_context(session, tenant_id, box)


async def _generate_one(
    request: Request,
    principal: TenantPrincipal,
    units: sessionmaker[Session],
    body: BaseModel,
    compose: Callable[[service.Context, Any], service.Generated],
    *,
    kind: str,
    channel: str,
) -> schemas.ItemOut:
    """Read the tenant's facts, write the copy (a provider call may take seconds) with no unit
    of work open, then store the item in a write unit of its own."""
    context = await run_in_threadpool(_context, units, principal.tenant_id, _box(request))
    generated = await run_in_threadpool(compose, context, body)

    def store() -> schemas.ItemOut:
        with write_transaction(units) as session:
            item, version = service.store_item(
                session,
                principal.tenant_id,
                kind=kind,
                channel=channel,
                generated=generated,
                inputs=body.model_dump(),
                author=principal.actor,
            )
            return service.item_out(item, version)

    return await run_in_threadpool(store)


@router.post("/generate/blog", status_code=status.HTTP_201_CREATED, response_model=schemas.ItemOut)
async def generate_blog(
    request: Request, body: schemas.BlogIn, principal: TenantWriter, units: SessionFactory
) -> schemas.ItemOut:
    """A blog post of 800–2,000 words with its SEO and readability analysis, stored as an item."""
    return await _generate_one(
        request, principal, units, body, service.compose_blog, kind="blog", channel="blog"
    )


@router.post(
    "/generate/social", status_code=status.HTTP_201_CREATED, response_model=schemas.SocialOut
)
async def generate_social(
    request: Request, body: schemas.SocialIn, principal: TenantWriter, units: SessionFactory
) -> schemas.SocialOut:
    """One post per platform, each within the platform's limit by its own counting rules."""
    box = _box(request)
    context = await run_in_threadpool(_context, units, principal.tenant_id, box)
    posts = await run_in_threadpool(service.compose_social, context, body)

    def store() -> schemas.SocialOut:
        out = []
        with write_transaction(units) as session:
            for platform, generated in posts:
                item, version = service.store_item(
                    session,
                    principal.tenant_id,
                    kind="social",
                    channel=platform,
                    generated=generated,
                    inputs=body.model_dump() | {"platform": platform},
                    author=principal.actor,
                )
                out.append(service.item_out(item, version))
        return schemas.SocialOut(items=out)

    return await run_in_threadpool(store)


@router.post(
    "/generate/newsletter", status_code=status.HTTP_201_CREATED, response_model=schemas.ItemOut
)
async def generate_newsletter(
    request: Request, body: schemas.NewsletterIn, principal: TenantWriter, units: SessionFactory
) -> schemas.ItemOut:
    """A newsletter of several sections (product news, tips, results), written by the tenant's
    provider or the offline writer, with merge fields; render it per customer with
    POST /items/{content_id}/render."""
    return await _generate_one(
        request,
        principal,
        units,
        body,
        service.compose_newsletter,
        kind="newsletter",
        channel="email",
    )


@router.post("/generate/email", status_code=status.HTTP_201_CREATED, response_model=schemas.ItemOut)
async def generate_email(
    request: Request, body: schemas.EmailIn, principal: TenantWriter, units: SessionFactory
) -> schemas.ItemOut:
    """A one-message email campaign with merge fields, written by the tenant's provider or the
    offline writer."""
    return await _generate_one(
        request, principal, units, body, service.compose_email, kind="email", channel="email"
    )


@router.post("/items/{content_id}/render", response_model=schemas.RenderOut)
def render_item(
    content_id: uuid.UUID, body: schemas.RenderIn, principal: TenantReader, session: DbSession
) -> schemas.RenderOut:
    """The message for one customer: subject, preheader, HTML and plain-text parts, headers
    (List-Unsubscribe, List-Unsubscribe-Post) and the whole RFC 5322 message."""
    return service.render_email(session, principal.tenant_id, content_id, body)


@router.post("/analyze", response_model=dict[str, Any])
def analyze(body: schemas.AnalysisIn, principal: TenantReader) -> dict[str, Any]:
    """Yoast's SEO and readability checks over any post (nothing is stored)."""
    return analysis.analyse(
        title=body.title,
        slug=body.slug,
        meta_description=body.meta_description,
        keyphrase=body.keyphrase,
        markdown=body.markdown,
    ).as_dict()


@router.post("/campaign-emails", response_model=schemas.CampaignEmailsOut)
async def write_campaign_emails(
    request: Request,
    body: schemas.CampaignEmailsIn,
    principal: TenantWriter,
    units: SessionFactory,
) -> schemas.CampaignEmailsOut:
    """Write the emails of churn or upsell campaigns, one per campaign, personalised for its
    customer (name, plan, top risk factors or usage against capacity, the offer) and stored as
    email items linked to their campaigns. A campaign that has its email keeps it."""
    box = _box(request)
    tenant_id = principal.tenant_id

    def read() -> tuple[service.Context, service.CampaignWork]:
        with read_transaction(units) as session:
            context = service.load_context(session, tenant_id, box)
            return context, service.campaign_briefs_to_write(session, tenant_id, body)

    context, work = await run_in_threadpool(read)
    # The provider is called for each email with no unit of work open.
    generated = await run_in_threadpool(
        service.compose_campaign_emails, context, work, body.provider, body.seed
    )

    def store() -> schemas.CampaignEmailsOut:
        with write_transaction(units) as session:
            return service.store_campaign_emails(
                session, tenant_id, work, generated, principal.actor
            )

    return await run_in_threadpool(store)


@router.get("/items", response_model=schemas.ItemPage)
def list_items(
    principal: TenantReader,
    session: DbSession,
    page: Pagination,
    kind: Kind | None = None,
    channel: Channel | None = None,
    status_filter: Annotated[
        Literal["draft", "scheduled", "due", "cancelled"] | None, Query(alias="status")
    ] = None,
    campaign_kind: Literal["churn", "upsell"] | None = None,
    campaign_id: uuid.UUID | None = None,
) -> schemas.ItemPage:
    """Items, newest first; ``campaign_kind`` / ``campaign_id`` find campaigns' emails."""
    repo = ItemRepository(session, principal.tenant_id)
    stmt = repo.filtered(
        kind=kind,
        channel=channel,
        status=status_filter,
        campaign_kind=campaign_kind,
        campaign_id=campaign_id,
    )
    rows, cursor = paginate(session, stmt, ContentItem.id, page, parse=uuid.UUID, descending=True)
    return schemas.ItemPage(items=[service.item_summary(r) for r in rows], next_cursor=cursor)


@router.get("/items/{content_id}", response_model=schemas.ItemOut)
def get_item(content_id: uuid.UUID, principal: TenantReader, session: DbSession) -> schemas.ItemOut:
    return service.get_item(session, principal.tenant_id, content_id)


@router.patch("/items/{content_id}", response_model=schemas.ItemOut)
def edit_item(
    content_id: uuid.UUID, body: schemas.ItemEdit, principal: TenantWriter, session: DbSession
) -> schemas.ItemOut:
    """Edit an item: a new version holding the change (earlier versions are kept)."""
    return service.edit_item(session, principal.tenant_id, content_id, body, principal.actor)


@router.get("/items/{content_id}/versions", response_model=list[schemas.VersionOut])
def item_versions(
    content_id: uuid.UUID, principal: TenantReader, session: DbSession
) -> list[schemas.VersionOut]:
    return service.versions(session, principal.tenant_id, content_id)


# Calendar --------------------------------------------------------------------------------------


@router.post("/items/{content_id}/schedule", response_model=schemas.CalendarEntry)
def schedule_item(
    content_id: uuid.UUID, body: schemas.ScheduleIn, principal: TenantWriter, session: DbSession
) -> schemas.CalendarEntry:
    """Schedule or reschedule an item; the automation runner marks it due at that time and
    sends the signed webhook ``content.due``."""
    item = service.schedule(session, principal.tenant_id, content_id, body.at, principal.actor)
    return service.calendar_entry(item)


@router.post("/items/{content_id}/cancel", response_model=schemas.CalendarEntry)
def cancel_item(
    content_id: uuid.UUID, principal: TenantWriter, session: DbSession
) -> schemas.CalendarEntry:
    item = service.cancel(session, principal.tenant_id, content_id, principal.actor)
    return service.calendar_entry(item)


From = Annotated[datetime, Query(alias="from", description="Start (inclusive), with offset")]
To = Annotated[datetime, Query(alias="to", description="End (exclusive), at most 366 days on")]


@router.get("/calendar", response_model=schemas.CalendarOut)
def get_calendar(
    principal: TenantReader,
    session: DbSession,
    start: From,
    end: To,
    channel: Channel | None = None,
    include_cancelled: bool = False,
) -> schemas.CalendarOut:
    items = service.calendar(session, principal.tenant_id, start, end, channel, include_cancelled)
    return schemas.CalendarOut(
        start=start, end=end, items=[service.calendar_entry(i) for i in items]
    )


@router.get(
    "/calendar.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}, "description": "iCalendar feed"}},
)
def get_calendar_ics(
    principal: TenantReader,
    session: DbSession,
    start: From,
    end: To,
    channel: Channel | None = None,
) -> Response:
    items = service.calendar(session, principal.tenant_id, start, end, channel, True)
    return Response(
        service.to_icalendar(items, principal.tenant_id),
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="content-calendar.ics"'},
    )


# Metrics ---------------------------------------------------------------------------------------


@router.post("/track", response_model=schemas.TrackOut)
def track(body: schemas.TrackIn, principal: TenantWriter, session: DbSession) -> schemas.TrackOut:
    """Views, clicks and conversions of items; an event id already recorded is a duplicate
    (still 200), so clients may retry freely."""
    return service.track(session, principal.tenant_id, body)


@router.get("/metrics", response_model=schemas.MetricsOut)
def content_metrics(
    principal: TenantReader,
    session: DbSession,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
) -> schemas.MetricsOut:
    """Views, clicks, conversions, CTR and conversion rate (95 % Wilson intervals), in total,
    by channel and by item (the 100 most viewed)."""
    _aware(start, end)
    return service.metrics(session, principal.tenant_id, start, end)


@router.get("/items/{content_id}/metrics", response_model=schemas.MetricsOut)
def item_metrics(
    content_id: uuid.UUID,
    principal: TenantReader,
    session: DbSession,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
) -> schemas.MetricsOut:
    _aware(start, end)
    return service.metrics(session, principal.tenant_id, start, end, content_id)


def _aware(*moments: datetime | None) -> None:
    for moment in moments:
        if moment is not None and moment.tzinfo is None:
            raise InvalidInput(
                "Times need a UTC offset", [field_error(["query"], "no timezone offset")]
            )
        if moment is not None and not 1971 <= moment.year <= 9990:
            raise InvalidInput(
                "Times must lie between 1971 and 9990", [field_error(["query"], "out of range")]
            )


@router.post(
    "/items/{content_id}/headline-test",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.HeadlineTestOut,
)
def start_headline_test(
    content_id: uuid.UUID,
    body: schemas.HeadlineTestIn,
    principal: TenantWriter,
    session: DbSession,
) -> schemas.HeadlineTestOut:
    """An A/B test of headlines in the experiments engine: track impressions and clicks with
    POST /api/v1/content/ab-test/{experiment_id}/track (metric ``click``)."""
    return service.start_headline_test(
        session, principal.tenant_id, content_id, body, principal.actor
    )


@router.get("/items/{content_id}/headline-test", response_model=schemas.HeadlineTestOut)
def headline_test_results(
    content_id: uuid.UUID, principal: TenantWriter, session: DbSession
) -> schemas.HeadlineTestOut:
    """The verdict; a winning headline is written back to the item as a new version."""
    return service.headline_results(session, principal.tenant_id, content_id, principal.actor)
