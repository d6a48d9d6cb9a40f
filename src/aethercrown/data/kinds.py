"""The six kinds of business data: which table, row shape, upsert key and filters each one has.

The API, the CLI and the service all read this one table of facts, so a kind is described once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, TypeAdapter

from aethercrown.core.errors import InvalidInput, field_error
from aethercrown.data import schemas
from aethercrown.data.models import (
    ActivityEvent,
    Customer,
    MarketingSpend,
    Payment,
    Subscription,
    SupportTicket,
)
from aethercrown.db.base import Base


@dataclass(frozen=True)
class KindSpec:
    name: str
    model: type[Base]
    row_type: type
    out_schema: type[BaseModel]
    filters: type[BaseModel]
    # The contract's field names, in CSV column order.
    fields: tuple[str, ...]
    # Upsert key columns besides tenant_id.
    key: tuple[str, ...]
    # Column the since/until filters and the natural ordering refer to.
    time_column: str
    id_type: type
    # Defaults for optional fields, so every row carries every column (executemany needs that).
    defaults: dict[str, Any]
    # Exact-match filters: query parameter -> column.
    exact_filters: tuple[str, ...] = ()
    has_customer: bool = True

    @property
    def adapter(self) -> TypeAdapter[list[Any]]:
        return _ADAPTERS[self.name]

    @property
    def row_adapter(self) -> TypeAdapter[Any]:
        return _ROW_ADAPTERS[self.name]


KINDS: dict[str, KindSpec] = {
    spec.name: spec
    for spec in (
        KindSpec(
            name="customers",
            model=Customer,
            row_type=schemas.CustomerRow,
            out_schema=schemas.CustomerOut,
            filters=schemas.CustomerFilters,
            fields=(
                "external_id",
                "name",
                "email",
                "company_size",
                "annual_revenue",
                "currency",
                "country",
                "signup_date",
                "attributes",
            ),
            key=("external_id",),
            time_column="signup_date",
            id_type=uuid.UUID,
            defaults={
                "email": None,
                "company_size": None,
                "annual_revenue": None,
                "currency": "USD",
                "country": None,
                "attributes": {},
            },
            exact_filters=("country", "external_id"),
            has_customer=False,
        ),
        KindSpec(
            name="subscriptions",
            model=Subscription,
            row_type=schemas.SubscriptionRow,
            out_schema=schemas.SubscriptionOut,
            filters=schemas.SubscriptionFilters,
            fields=(
                "external_id",
                "customer",
                "plan",
                "amount",
                "currency",
                "interval",
                "quantity",
                "started_at",
                "ended_at",
                "discount_percent",
                "discount_amount",
                "trial_end",
            ),
            key=("external_id",),
            time_column="started_at",
            id_type=uuid.UUID,
            defaults={
                "currency": "USD",
                "quantity": 1,
                "ended_at": None,
                "discount_percent": 0.0,
                "discount_amount": 0,
                "trial_end": None,
            },
            exact_filters=("plan", "interval"),
        ),
        KindSpec(
            name="activity",
            model=ActivityEvent,
            row_type=schemas.ActivityRow,
            out_schema=schemas.ActivityOut,
            filters=schemas.ActivityFilters,
            fields=(
                "external_id",
                "customer",
                "user_id",
                "kind",
                "occurred_at",
                "duration_seconds",
                "feature",
            ),
            key=("external_id",),
            time_column="occurred_at",
            id_type=int,
            defaults={"duration_seconds": None, "feature": None},
            exact_filters=("kind", "feature", "user_id"),
        ),
        KindSpec(
            name="tickets",
            model=SupportTicket,
            row_type=schemas.TicketRow,
            out_schema=schemas.TicketOut,
            filters=schemas.TicketFilters,
            fields=(
                "external_id",
                "customer",
                "opened_at",
                "closed_at",
                "priority",
                "satisfaction",
                "subject",
            ),
            key=("external_id",),
            time_column="opened_at",
            id_type=uuid.UUID,
            defaults={
                "closed_at": None,
                "priority": "normal",
                "satisfaction": None,
                "subject": None,
            },
            exact_filters=("priority",),
        ),
        KindSpec(
            name="payments",
            model=Payment,
            row_type=schemas.PaymentRow,
            out_schema=schemas.PaymentOut,
            filters=schemas.PaymentFilters,
            fields=(
                "external_id",
                "customer",
                "subscription",
                "occurred_at",
                "status",
                "amount",
                "currency",
                "reason",
            ),
            key=("external_id",),
            time_column="occurred_at",
            id_type=uuid.UUID,
            defaults={"subscription": None, "currency": "USD", "reason": None},
            exact_filters=("status",),
        ),
        KindSpec(
            name="marketing",
            model=MarketingSpend,
            row_type=schemas.MarketingRow,
            out_schema=schemas.MarketingOut,
            filters=schemas.MarketingFilters,
            fields=(
                "channel",
                "day",
                "spend",
                "currency",
                "impressions",
                "clicks",
                "conversions",
                "attributed_revenue",
            ),
            key=("channel", "day"),
            time_column="day",
            id_type=int,
            defaults={
                "currency": "USD",
                "impressions": 0,
                "clicks": 0,
                "conversions": 0,
                "attributed_revenue": 0,
            },
            exact_filters=("channel",),
            has_customer=False,
        ),
    )
}

_ADAPTERS: dict[str, TypeAdapter[list[Any]]] = {
    name: TypeAdapter[list[Any]](list.__class_getitem__(spec.row_type))  # type: ignore[arg-type]
    for name, spec in KINDS.items()
}
_ROW_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    name: TypeAdapter(spec.row_type) for name, spec in KINDS.items()
}


def get_kind(name: str, field: str = "kind") -> KindSpec:
    spec = KINDS.get(name)
    if spec is None:
        raise InvalidInput(
            f"Unknown kind '{name}'", [field_error([field], f"must be one of: {', '.join(KINDS)}")]
        )
    return spec
