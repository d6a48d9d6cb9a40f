"""Routes under /api/v1/connectors: the Stripe connection, its webhook endpoint and backfill."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from aethercrown.connectors import stripe_service
from aethercrown.connectors.models import StripeConnection, StripeEvent, StripeInvoice
from aethercrown.connectors.repository import StripeEventRepository, StripeInvoiceRepository
from aethercrown.connectors.schemas import (
    BackfillIn,
    BackfillOut,
    StripeConnectionIn,
    StripeConnectionOut,
    StripeEventOut,
    StripeInvoiceOut,
    StripeWebhookResult,
)
from aethercrown.core.auth import TenantReader, TenantWriter
from aethercrown.core.crypto import SecretBox, secret_box
from aethercrown.core.pagination import Page, Pagination, paginate
from aethercrown.db.session import DbSession, SessionFactory

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
    the tenant's endpoint secret authenticates the call."""
    body = await request.body()
    result = await run_in_threadpool(
        stripe_service.receive_webhook,
        session,
        tenant_id,
        body,
        request.headers.get(stripe_service.SIGNATURE_HEADER),
        _box(request),
    )
    return StripeWebhookResult(**result)


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
