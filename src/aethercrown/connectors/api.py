"""Routes under /api/v1/connectors: the Stripe connection, its webhook endpoint and backfill."""

from __future__ import annotations

import uuid
import zlib
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from aethercrown.connectors import adspend_service, segment_service, stripe_service
from aethercrown.connectors.models import StripeConnection, StripeEvent, StripeInvoice
from aethercrown.connectors.repository import StripeEventRepository, StripeInvoiceRepository
from aethercrown.connectors.schemas import (
    BackfillIn,
    BackfillOut,
    StripeBulkAction,
    StripeConnectionIn,
    StripeConnectionOut,
    StripeDeadEventsFilter,
    StripeEventAction,
    StripeEventOut,
    StripeInvoiceOut,
    StripeMappingStatus,
    StripeWebhookResult,
)
from aethercrown.core.auth import TenantReader, TenantWriter
from aethercrown.core.crypto import SecretBox, secret_box
from aethercrown.core.errors import InvalidInput, ProblemError, field_error
from aethercrown.core.keycache import KeyCache
from aethercrown.core.pagination import Page, Pagination, paginate
from aethercrown.db.session import DbSession, SessionFactory, read_transaction, write_transaction
from aethercrown.db.tenant_scope import scope_to_tenant

router = APIRouter(prefix="/api/v1/connectors", tags=["connectors"])


def _box(request: Request) -> SecretBox:
    return secret_box(request.app.state.settings)


def _connection_out(conn: StripeConnection) -> StripeConnectionOut:
    return StripeConnectionOut(
        webhook_path=stripe_service.webhook_path(conn.tenant_id),
        has_api_key=conn.api_key is not None,
        api_base=conn.api_base,
        backfill_status=conn.backfill_status,
        backfill=conn.backfill or {},
        created_at=conn.created_at,
        updated_at=conn.updated_at,
    )


@router.put("/stripe", response_model=StripeConnectionOut)
def put_stripe_connection(
    request: Request, principal: TenantWriter, body: StripeConnectionIn, session: DbSession
) -> StripeConnectionOut:
    """Connect (or reconnect) the tenant's Stripe account: the webhook endpoint's signing
    secret, and optionally an API key and base URL for backfills."""
    conn = stripe_service.connect(
        session,
        principal.tenant_id,
        _box(request),
        webhook_secret=body.webhook_secret,
        api_key=body.api_key,
        api_base=str(body.api_base) if body.api_base else None,
    )
    return _connection_out(conn)


@router.get("/stripe", response_model=StripeConnectionOut)
def get_stripe_connection(principal: TenantReader, session: DbSession) -> StripeConnectionOut:
    return _connection_out(stripe_service.connection(session, principal.tenant_id))


@router.delete("/stripe", status_code=204)
def delete_stripe_connection(principal: TenantWriter, session: DbSession) -> Response:
    """Disconnect: the secrets go; stored events and mapped business data stay."""
    stripe_service.disconnect(session, principal.tenant_id)
    return Response(status_code=204)


@router.post(
    "/stripe/webhook/{tenant_id}",
    response_model=StripeWebhookResult,
    responses={400: {"description": "Missing, bad or stale Stripe-Signature; nothing stored"}},
)
async def stripe_webhook(
    tenant_id: uuid.UUID, request: Request, session: DbSession
) -> StripeWebhookResult:
    """Stripe's webhook endpoint for one tenant. No bearer key: the Stripe-Signature made with
    the tenant's endpoint secret authenticates the call. The event is stored and acknowledged;
    it is mapped into business data a moment later (``GET /stripe/mapping`` shows progress)."""
    body = await request.body()
    result = await run_in_threadpool(
        stripe_service.receive_webhook,
        session,
        tenant_id,
        body,
        request.headers.get(stripe_service.SIGNATURE_HEADER),
        _box(request),
    )
    kicker = getattr(request.app.state, "stripe_kicker", None)
    if kicker is not None and result["stored"]:
        kicker.kick(tenant_id)  # it waits a moment: this request's unit commits first
    return StripeWebhookResult(**result)


@router.get("/stripe/mapping", response_model=StripeMappingStatus)
def get_stripe_mapping(principal: TenantReader, session: DbSession) -> StripeMappingStatus:
    """Stripe events received, mapped, pending and failed (with the latest failures)."""
    return StripeMappingStatus(**stripe_service.mapping_status(session, principal.tenant_id))


@router.post("/stripe/mapping/run", response_model=StripeMappingStatus)
def run_stripe_mapping(principal: TenantWriter, units: SessionFactory) -> StripeMappingStatus:
    """Map the tenant's pending Stripe events now (the mapping job does it every minute, and
    the API process a moment after each webhook), then show the status."""
    stripe_service.map_pending(units, principal.tenant_id)
    with read_transaction(units) as session:
        return StripeMappingStatus(**stripe_service.mapping_status(session, principal.tenant_id))


StripeEventId = Annotated[str, Path(min_length=1, max_length=255)]


@router.post("/stripe/events/retry", response_model=StripeBulkAction)
def retry_stripe_events(
    body: StripeDeadEventsFilter, principal: TenantWriter, session: DbSession
) -> StripeBulkAction:
    """Put dead events back in the mapping queue with a fresh count of attempts: ``{"all":
    true}``, or those of an ``event_type`` and/or an ``object_id``; answers how many."""
    return StripeBulkAction(
        **stripe_service.retry_dead_events(
            session, principal.tenant_id, event_type=body.event_type, object_id=body.object_id
        )
    )


@router.post("/stripe/events/discard", response_model=StripeBulkAction)
def discard_stripe_events(
    body: StripeDeadEventsFilter, principal: TenantWriter, session: DbSession
) -> StripeBulkAction:
    """Give up on dead events (chosen as for ``/stripe/events/retry``); answers how many."""
    return StripeBulkAction(
        **stripe_service.discard_dead_events(
            session, principal.tenant_id, event_type=body.event_type, object_id=body.object_id
        )
    )


@router.post("/stripe/events/{event_id}/retry", response_model=StripeEventAction)
def retry_stripe_event(
    event_id: StripeEventId, principal: TenantWriter, session: DbSession
) -> StripeEventAction:
    """Put a dead event (see ``GET /stripe/mapping``) back in the mapping queue with a fresh
    count of attempts; 409 for an event that is not dead."""
    return StripeEventAction(
        **stripe_service.retry_dead_event(session, principal.tenant_id, event_id)
    )


@router.post("/stripe/events/{event_id}/discard", response_model=StripeEventAction)
def discard_stripe_event(
    event_id: StripeEventId, principal: TenantWriter, session: DbSession
) -> StripeEventAction:
    """Give up on a dead event: kept stored, never mapped; 409 for an event that is not dead."""
    return StripeEventAction(
        **stripe_service.discard_dead_event(session, principal.tenant_id, event_id)
    )


@router.post("/stripe/backfill", response_model=BackfillOut)
def stripe_backfill(
    request: Request, principal: TenantWriter, units: SessionFactory, body: BackfillIn | None = None
) -> BackfillOut:
    """Read the account's customers, subscriptions and invoices from the Stripe API, resuming
    after the last page stored; answers when done (424 if Stripe failed: call again to resume)."""
    report = stripe_service.run_backfill(
        units, principal.tenant_id, _box(request), restart=bool(body and body.restart)
    )
    return BackfillOut(
        status=report.status,
        fetched=report.fetched,
        rate_limited=report.rate_limited,
        resources=report.resources,
    )


@router.get("/stripe/events", response_model=Page[StripeEventOut])
def list_stripe_events(
    principal: TenantReader,
    session: DbSession,
    page: Pagination,
    event_type: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
) -> Page[StripeEventOut]:
    """The raw Stripe events stored for the tenant (and a backfill's reads), newest first."""
    stmt = StripeEventRepository(session, principal.tenant_id).list_statement(event_type)
    rows, cursor = paginate(session, stmt, StripeEvent.id, page, parse=int, descending=True)
    return Page(items=[StripeEventOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.get("/stripe/invoices", response_model=Page[StripeInvoiceOut])
def list_stripe_invoices(
    principal: TenantReader,
    session: DbSession,
    page: Pagination,
    customer: Annotated[str | None, Query(min_length=1, max_length=255)] = None,
) -> Page[StripeInvoiceOut]:
    """Invoices as Stripe last described them, recurring and proration amounts apart."""
    stmt = StripeInvoiceRepository(session, principal.tenant_id).list_statement(customer)
    rows, cursor = paginate(session, stmt, StripeInvoice.id, page, parse=uuid.UUID)
    return Page(items=[StripeInvoiceOut.model_validate(r) for r in rows], next_cursor=cursor)


# ---- Segment-format tracking ----------------------------------------------------------------

tracking_router = APIRouter(prefix="/v1", tags=["connectors"])
# Segment's own limit for a batch call; a single call is far smaller.
MAX_TRACKING_BODY = 500 * 1024


async def _tracking_body(request: Request) -> Any:
    raw = await request.body()
    if request.headers.get("content-encoding", "").lower() == "gzip":
        try:
            raw = gzip_decompress(raw, MAX_TRACKING_BODY)
        except ValueError as exc:
            raise InvalidInput(str(exc), [field_error(["body"], str(exc))]) from exc
    if len(raw) > MAX_TRACKING_BODY:
        raise ProblemError(413, "payload-too-large", "Payload too large", "At most 500 KB a call")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput("The body is not JSON", [field_error(["body"], str(exc))]) from exc


def gzip_decompress(raw: bytes, limit: int) -> bytes:
    """A gzip body, refused past ``limit`` bytes inflated (a small bomb stays small)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise ValueError(f"The gzip body is corrupt: {exc}") from exc
    if len(out) > limit:
        raise ValueError(f"The body inflates past {limit} bytes")
    return out


def _messages(body: Any, kind: str | None) -> list[Any]:
    if kind is None:
        batch = body.get("batch") if isinstance(body, dict) else None
        if not isinstance(batch, list):
            raise InvalidInput(
                'A batch call sends {"batch": [messages]}',
                [field_error(["body", "batch"], "must be a list of messages")],
            )
        return batch
    if not isinstance(body, dict):
        raise InvalidInput("A call sends one message object", [field_error(["body"], "object")])
    return [{**body, "type": body.get("type", kind)}]


def _ingest(
    units: sessionmaker[Session], key: segment_service.WriteKey, messages: list[Any]
) -> dict[str, Any]:
    """Check the batch, then apply it in one unit of work scoped to the key's tenant, committed
    before the answer (an acknowledged batch is stored). One worker-thread hop for all of it:
    a malformed batch is refused before any transaction opens."""
    batch = segment_service.checked_batch(messages)
    with write_transaction(units) as session:
        scope_to_tenant(session, key.tenant_id)
        return segment_service.ingest_messages(session, key.source, batch, key.quota)


def _write_key(
    units: sessionmaker[Session], key_hash: str, cache: KeyCache[segment_service.WriteKey]
) -> segment_service.WriteKey:
    with read_transaction(units) as session:
        return segment_service.write_key(session, key_hash, cache)


async def _track(request: Request, kind: str | None) -> dict[str, Any]:
    key_hash = segment_service.write_key_hash(request.headers.get("authorization"))
    units: sessionmaker[Session] = request.app.state.session_factory
    cache: KeyCache[segment_service.WriteKey] = request.app.state.segment_key_cache
    # A cached key costs no query; a missing one a lookup in the thread pool, off the event loop.
    key = cache.get(key_hash)
    if key is None:
        key = await run_in_threadpool(_write_key, units, key_hash, cache)
    messages = _messages(await _tracking_body(request), kind)
    return await run_in_threadpool(_ingest, units, key, messages)


TRACKING_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No or unknown write key (HTTP basic auth user name)"},
    400: {"description": "Malformed message; nothing stored"},
}


@tracking_router.post("/track", responses=TRACKING_RESPONSES)
async def segment_track(request: Request) -> dict[str, Any]:
    """Segment `track`: a user did something (activity of their customer)."""
    return await _track(request, "track")


@tracking_router.post("/identify", responses=TRACKING_RESPONSES)
async def segment_identify(request: Request) -> dict[str, Any]:
    """Segment `identify`: a user's traits (``traits.company.id`` links them to a customer)."""
    return await _track(request, "identify")


@tracking_router.post("/group", responses=TRACKING_RESPONSES)
async def segment_group(request: Request) -> dict[str, Any]:
    """Segment `group`: the user's account, created or updated as a customer."""
    return await _track(request, "group")


@tracking_router.post("/page", responses=TRACKING_RESPONSES)
async def segment_page(request: Request) -> dict[str, Any]:
    """Segment `page`: accepted and counted (not stored)."""
    return await _track(request, "page")


@tracking_router.post("/batch", responses=TRACKING_RESPONSES)
async def segment_batch(request: Request) -> dict[str, Any]:
    """Segment `batch` (what the SDKs send): up to 500 KB of messages of any type."""
    return await _track(request, None)


class SegmentSourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]


class SegmentSourceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    name: str
    display_prefix: str
    created_at: datetime
    revoked_at: datetime | None
    write_key: str | None = None


@router.post("/segment/sources", response_model=SegmentSourceOut, status_code=201)
def create_segment_source(
    principal: TenantWriter, body: SegmentSourceIn, session: DbSession
) -> SegmentSourceOut:
    """A write key for Segment-format tracking calls (shown once). Point an SDK's host at this
    server and give it the key."""
    source, key = segment_service.create_source(session, principal.tenant_id, body.name)
    return SegmentSourceOut.model_validate(source).model_copy(update={"write_key": key})


@router.get("/segment/sources", response_model=list[SegmentSourceOut])
def list_segment_sources(principal: TenantReader, session: DbSession) -> list[SegmentSourceOut]:
    return [
        SegmentSourceOut.model_validate(s)
        for s in segment_service.list_sources(session, principal.tenant_id)
    ]


@router.delete("/segment/sources/{source_id}", status_code=204)
def revoke_segment_source(
    source_id: uuid.UUID, principal: TenantWriter, session: DbSession
) -> Response:
    segment_service.revoke_source(session, principal.tenant_id, source_id)
    return Response(status_code=204)


# ---- ad-spend exports -----------------------------------------------------------------------

AdFormat = Annotated[str, Query(pattern="^(google-ads|meta|linkedin)$", alias="format")]
MAX_EXPORT_BYTES = 20 * 1024 * 1024


class ChannelRuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: Annotated[str, StringConstraints(pattern="^(google-ads|meta|linkedin|any)$")] = "any"
    pattern: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
    channel: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00]*$")]
    priority: Annotated[int, Field(ge=0, le=1_000_000, strict=True)] = 100


class ChannelRuleOut(ChannelRuleIn):
    model_config = ConfigDict(from_attributes=True)


@router.put("/marketing/channel-rules", response_model=list[ChannelRuleOut])
def put_channel_rules(
    principal: TenantWriter, body: list[ChannelRuleIn], session: DbSession
) -> list[ChannelRuleOut]:
    """Replace the tenant's campaign-to-channel rules: a campaign whose name contains
    ``pattern`` (any case) counts as ``channel``; lowest ``priority`` first."""
    rules = adspend_service.replace_channel_rules(
        session, principal.tenant_id, [r.model_dump() for r in body]
    )
    return [ChannelRuleOut.model_validate(r) for r in rules]


@router.get("/marketing/channel-rules", response_model=list[ChannelRuleOut])
def get_channel_rules(principal: TenantReader, session: DbSession) -> list[ChannelRuleOut]:
    return [
        ChannelRuleOut.model_validate(r)
        for r in adspend_service.channel_rules(session, principal.tenant_id)
    ]


@router.post(
    "/marketing/import",
    openapi_extra={
        "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}
    },
)
async def import_ad_spend(
    request: Request,
    principal: TenantWriter,
    session: DbSession,
    fmt: AdFormat,
    currency: Annotated[str, Query(pattern="^[A-Z]{3}$")] = "USD",
) -> dict[str, Any]:
    """Import a Google Ads, Meta or LinkedIn campaign report (CSV as exported) into marketing
    spend; rows that cannot be read are listed under ``skipped`` with the reason."""
    raw = await request.body()
    if len(raw) > MAX_EXPORT_BYTES:
        raise ProblemError(413, "payload-too-large", "Payload too large", "At most 20 MB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = (
            raw.decode("utf-16") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else raw.decode("latin-1")
        )
    return await run_in_threadpool(
        adspend_service.import_export, session, principal.tenant_id, text, fmt, currency
    )
