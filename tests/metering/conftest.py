"""Metering fixtures: customers and subscriptions written straight into the business tables."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from aethercrown.clock import utcnow
from aethercrown.data.models import Customer, Subscription
from aethercrown.db.session import write_transaction
from aethercrown.metering import schemas, service


def add_customer(
    session: Session,
    tenant_id: uuid.UUID,
    external_id: str,
    plan: str | None = "starter",
    started_at: datetime | None = None,
    **fields: Any,
) -> Customer:
    customer = Customer(
        tenant_id=tenant_id,
        external_id=external_id,
        name=external_id.title(),
        signup_date=fields.pop("signup_date", date(2024, 1, 15)),
        **fields,
    )
    session.add(customer)
    session.flush()
    if plan is not None:
        session.add(
            Subscription(
                tenant_id=tenant_id,
                external_id=f"sub-{external_id}",
                customer_id=customer.id,
                plan=plan,
                amount=2900,
                interval="month",
                started_at=started_at or datetime(2024, 1, 15, tzinfo=utcnow().tzinfo),
            )
        )
        session.flush()
    return customer


@pytest.fixture
def customers(session_factory: sessionmaker[Session]) -> Callable[..., None]:
    """customers(tenant_id, "c-1", "c-2", plan="starter") adds customers on a plan."""

    def make(tenant_id: uuid.UUID, *external_ids: str, plan: str | None = "starter") -> None:
        with write_transaction(session_factory) as s:
            for ext in external_ids:
                add_customer(s, tenant_id, ext, plan)

    return make


def event(
    ident: str, customer: str, metric: str, value: float, at: datetime, **props: Any
) -> schemas.UsageEventIn:
    return schemas.UsageEventIn(
        id=ident, customer=customer, metric=metric, value=value, timestamp=at, properties=props
    )


@pytest.fixture
def track(session_factory: sessionmaker[Session]) -> Iterator[Callable[..., schemas.TrackOut]]:
    """track(tenant_id, events, now) through the service, in its own committed unit of work,
    then a fold at the same ``now`` (as the API's folder would do a moment later)."""

    def run(
        tenant_id: uuid.UUID, events: Sequence[schemas.UsageEventIn], now: datetime
    ) -> schemas.TrackOut:
        with write_transaction(session_factory) as s:
            out = service.track(s, tenant_id, events, now=now)
        with write_transaction(session_factory) as s:
            service.fold_pending(s, now=now)
        return out

    yield run
