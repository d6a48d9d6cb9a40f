"""``GET /api/v1/webhooks/deliveries``: the tenant's outbound webhook delivery log."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from aethercrown.core.auth import TenantReader
from aethercrown.core.outbox import DeliveryStatusQuery, EventTypeQuery
from aethercrown.core.pagination import Page, Pagination, paginate
from aethercrown.db.session import DbSession
from aethercrown.webhooks.models import WebhookDelivery
from aethercrown.webhooks.repository import DeliveryRepository
from aethercrown.webhooks.schemas import DeliveryOut

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])


@router.get("/deliveries", response_model=Page[DeliveryOut])
def list_deliveries(
    principal: TenantReader,
    session: DbSession,
    page: Pagination,
    status: DeliveryStatusQuery = None,
    event_type: EventTypeQuery = None,
) -> Page[DeliveryOut]:
    """Every webhook the tenant was sent or is owed, newest first, with each attempt's result."""
    repo = DeliveryRepository(session, principal.tenant_id)
    stmt = repo.list_statement(status=status, event_type=event_type)
    rows, cursor = paginate(
        session, stmt, WebhookDelivery.id, page, parse=uuid.UUID, descending=True
    )
    return Page(items=[DeliveryOut.model_validate(r) for r in rows], next_cursor=cursor)
