"""Queries of alert channels and their deliveries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from aethercrown.alerts.models import AlertChannel, AlertDelivery
from aethercrown.core.tenancy import TenantRepository, where_given


class ChannelRepository(TenantRepository[AlertChannel]):
    model = AlertChannel
    noun = "Alert channel"

    def listed(self) -> Sequence[AlertChannel]:
        return self.all(self.select().order_by(AlertChannel.name))

    def by_name(self, name: str) -> AlertChannel | None:
        return self.session.scalars(self.select().where(AlertChannel.name == name)).first()

    def enabled(self) -> Sequence[AlertChannel]:
        return self.all(self.select().where(AlertChannel.enabled.is_(True)))


class DeliveryRepository(TenantRepository[AlertDelivery]):
    model = AlertDelivery
    noun = "Alert delivery"

    def list_statement(
        self, *, status: str | None, event_type: str | None, channel_id: uuid.UUID | None
    ) -> Select[Any]:
        return where_given(
            self.select(),
            (AlertDelivery.status, status),
            (AlertDelivery.event_type, event_type),
            (AlertDelivery.channel_id, channel_id),
        )

    def recent(self, limit: int) -> Sequence[AlertDelivery]:
        return self.newest(AlertDelivery.id, limit)


def channels_by_id(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, AlertChannel]:
    """The channels of claimed deliveries, whichever tenants they belong to (the runner's unit
    is scoped to all tenants)."""
    if not ids:
        return {}
    rows = session.scalars(select(AlertChannel).where(AlertChannel.id.in_(ids)))
    return {row.id: row for row in rows}
