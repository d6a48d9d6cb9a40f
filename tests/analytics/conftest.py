"""Loads the hand-computed company of fixtures.py into a tenant's tables."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from aethercrown.data.models import ActivityEvent, Customer, MarketingSpend, Subscription
from aethercrown.db.engine import transaction
from tests.analytics import fixtures as fx
from tests.conftest import TenantHandle


def load_company(session_factory, tenant_id: uuid.UUID) -> dict[str, uuid.UUID]:  # type: ignore[no-untyped-def]
    ids: dict[str, uuid.UUID] = {}
    with transaction(session_factory) as session:
        for name, size in fx.COMPANY_SIZE.items():
            customer = Customer(
                tenant_id=tenant_id,
                external_id=f"cus_{name}",
                name=f"Customer {name.upper()}",
                email=f"{name}@example.com",
                company_size=size,
                signup_date=date(2026, 1, 1),
            )
            session.add(customer)
            session.flush()
            ids[name] = customer.id
        for i, sub in enumerate(fx.SUBSCRIPTIONS):
            session.add(
                Subscription(
                    tenant_id=tenant_id,
                    external_id=f"sub_{i}",
                    customer_id=ids[sub.customer],
                    plan=sub.plan,
                    amount=sub.amount,
                    currency="USD",
                    interval=sub.interval,
                    quantity=sub.quantity,
                    started_at=sub.started_at,
                    ended_at=sub.ended_at,
                    discount_percent=sub.discount_percent,
                    discount_amount=sub.discount_amount,
                    trial_end=sub.trial_end,
                )
            )
        for channel, day, spend in fx.MARKETING:
            session.add(
                MarketingSpend(
                    tenant_id=tenant_id, channel=channel, day=day, spend=spend, currency="USD"
                )
            )
        for i, (customer, user, moment) in enumerate(fx.ACTIVITY):
            session.add(
                ActivityEvent(
                    tenant_id=tenant_id,
                    external_id=f"act_{i}",
                    customer_id=ids[customer],
                    user_id=user,
                    kind="session",
                    occurred_at=moment,
                    duration_seconds=60,
                )
            )
    return ids


@pytest.fixture
def company(session_factory, tenant: TenantHandle) -> dict[str, uuid.UUID]:  # type: ignore[no-untyped-def]
    return load_company(session_factory, tenant.uid)
