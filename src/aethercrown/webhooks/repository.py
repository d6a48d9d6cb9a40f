"""The tenant's side of the webhook outbox: its deliveries, for the log and the console."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select

from aethercrown.core.tenancy import TenantRepository, where_given
from aethercrown.webhooks.models import WebhookDelivery


class DeliveryRepository(TenantRepository[WebhookDelivery]):
    model = WebhookDelivery
    noun = "Webhook delivery"

    def list_statement(self, *, status: str | None, event_type: str | None) -> Select[Any]:
        return where_given(
            self.select(),
            (WebhookDelivery.status, status),
            (WebhookDelivery.event_type, event_type),
        )

    def recent(self, limit: int) -> Sequence[WebhookDelivery]:
        """The latest deliveries, newest first."""
        return self.newest(WebhookDelivery.created_at, limit)
