"""``GET /api/v1/webhooks/deliveries``: the tenant's outbound webhook delivery log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from aethercrown.core.auth import TenantReader
from aethercrown.core.outbox import DeliveryStatusQuery, EventTypeQuery
from aethercrown.core.pagination import Page, Pagination, paginate
from aethercrown.db.session import DbSession
from aethercrown.webhooks.repository import DeliveryRepository
from aethercrown.webhooks.service import WebhookDelivery

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    event_type: str
    url: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    payload: dict[str, Any]


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
