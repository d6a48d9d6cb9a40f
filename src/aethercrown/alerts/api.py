"""Routes under /api/v1/alert-channels: a tenant's alert channels, a test send, the delivery
log."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from aethercrown.alerts import service
from aethercrown.alerts.models import AlertDelivery
from aethercrown.alerts.schemas import (
    AlertChannelCreate,
    AlertChannelOut,
    AlertChannelUpdate,
    AlertDeliveryOut,
    TestResult,
)
from aethercrown.core.auth import TenantReader, TenantWriter
from aethercrown.core.outbox import DeliveryStatusQuery, EventTypeQuery
from aethercrown.core.pagination import Page, Pagination, paginate
from aethercrown.db.session import DbSession, SessionFactory, write_transaction
from aethercrown.settings import Settings

router = APIRouter(prefix="/api/v1/alert-channels", tags=["alerts"])


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.post("", response_model=AlertChannelOut, status_code=201)
def create_channel(
    request: Request, principal: TenantWriter, body: AlertChannelCreate, units: SessionFactory
) -> AlertChannelOut:
    """A Slack-compatible incoming webhook (``kind: slack``, an https ``webhook_url`` whose host
    resolves to public addresses only) or email recipients (``kind: email``), with the events
    it takes and their minimum severity."""
    settings = _settings(request)
    # The host is resolved before the unit opens: no DNS wait with a transaction open.
    problem = service.webhook_url_problem(body.webhook_url, settings)
    with write_transaction(units) as session:
        channel = service.create_channel(session, principal.tenant_id, body, settings, problem)
        return service.channel_out(channel)


@router.get("", response_model=list[AlertChannelOut])
def list_channels(principal: TenantReader, session: DbSession) -> list[AlertChannelOut]:
    return [service.channel_out(c) for c in service.list_channels(session, principal.tenant_id)]


@router.get("/deliveries", response_model=Page[AlertDeliveryOut])
def list_deliveries(
    principal: TenantReader,
    session: DbSession,
    page: Pagination,
    status: DeliveryStatusQuery = None,
    event_type: EventTypeQuery = None,
    channel_id: uuid.UUID | None = None,
) -> Page[AlertDeliveryOut]:
    """Every alert sent or owed, newest first, with its last attempt's result."""
    stmt = service.list_statement(
        session, principal.tenant_id, status=status, event_type=event_type, channel_id=channel_id
    )
    rows, cursor = paginate(session, stmt, AlertDelivery.id, page, parse=uuid.UUID, descending=True)
    return Page(items=[AlertDeliveryOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.get("/{channel_id}", response_model=AlertChannelOut)
def get_channel(
    channel_id: uuid.UUID, principal: TenantReader, session: DbSession
) -> AlertChannelOut:
    return service.channel_out(service.get_channel(session, principal.tenant_id, channel_id))


@router.patch("/{channel_id}", response_model=AlertChannelOut)
def update_channel(
    channel_id: uuid.UUID,
    request: Request,
    principal: TenantWriter,
    body: AlertChannelUpdate,
    units: SessionFactory,
) -> AlertChannelOut:
    """Change the fields sent (name, enabled, filter, webhook URL or recipients)."""
    settings = _settings(request)
    problem = service.webhook_url_problem(body.webhook_url, settings)
    with write_transaction(units) as session:
        channel = service.update_channel(
            session, principal.tenant_id, channel_id, body, settings, problem
        )
        return service.channel_out(channel)


@router.delete("/{channel_id}", status_code=204)
def delete_channel(channel_id: uuid.UUID, principal: TenantWriter, session: DbSession) -> Response:
    service.delete_channel(session, principal.tenant_id, channel_id)
    return Response(status_code=204)


@router.post("/{channel_id}/test", response_model=TestResult)
def test_channel(
    channel_id: uuid.UUID, request: Request, principal: TenantWriter, units: SessionFactory
) -> TestResult:
    """Send a test message now and answer with the result (``delivered``, the receiver's
    status or SMTP reply, the error). No transaction is open while it is sent."""
    return service.send_test(
        units, principal.tenant_id, channel_id, _settings(request), principal.actor
    )
