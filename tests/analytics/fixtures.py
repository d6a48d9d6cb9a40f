"""A hand-computed company: six customers over January–June 2026.

Month-end MRR by customer (minor units), worked out by hand:

month    a      b     c      e     f    total  movements
2026-01  10000  5220  -      -     -    15220  new 15220 (a; b = 2 × 2900 − 10 %)
2026-02  10000  5220  10000  0     -    25220  new 10000 (c: 120000/year; e in trial)
2026-03  15000  0     10000  2900  -    27900  new 2900 (e), expansion 5000 (a), churn 5220 (b)
2026-04  15000  0     24000  2900  -    41900  expansion 14000 (c: 24000/month from 10 Apr)
2026-05  10000  9000  24000  2900  -    45900  reactivation 9000 (b), contraction 5000 (a)
2026-06  10000  9000  24000  2900  833  46733  new 833 (f: 10000/year → 833.33 → 833)

d's trial (March) was cancelled at its trial end: it never counts. Marketing spend in March is
15000 + 5000; activity in March: (a,u1) on 1 and 2 March, (a,u2) on 1 March, (c,u1) on 2 March.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from aethercrown.analytics.metrics import SubscriptionRecord
from aethercrown.data.models import ActivityEvent, Customer, MarketingSpend, Subscription
from aethercrown.data.repository import ActiveUserDayRepository
from aethercrown.db.session import write_transaction


def at(month: int, day: int) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC)


SUBSCRIPTIONS: list[SubscriptionRecord] = [
    SubscriptionRecord("a", "pro", 10000, "month", at(1, 10)),
    SubscriptionRecord("a", "addon", 5000, "month", at(3, 2), ended_at=at(5, 20)),
    SubscriptionRecord(
        "b",
        "starter",
        2900,
        "month",
        at(1, 20),
        ended_at=at(3, 15),
        quantity=2,
        discount_percent=10.0,
    ),
    SubscriptionRecord("b", "pro", 10000, "month", at(5, 2), discount_amount=1000),
    SubscriptionRecord(
        "c", "enterprise", 120000, "year", at(2, 1), ended_at=at(4, 10), trial_end=at(2, 15)
    ),
    SubscriptionRecord("c", "enterprise", 24000, "month", at(4, 10)),
    SubscriptionRecord(
        "d", "starter", 2900, "month", at(3, 1), ended_at=at(3, 31), trial_end=at(3, 31)
    ),
    SubscriptionRecord("e", "starter", 2900, "month", at(2, 5), trial_end=at(3, 5)),
    SubscriptionRecord("f", "pro", 10000, "year", at(6, 2)),
]
COMPANY_SIZE = {"a": 10, "b": 200, "c": 5000, "d": 10, "e": None, "f": 10}
MARKETING = [("search", date(2026, 3, 4), 15000), ("social", date(2026, 3, 20), 5000)]
ACTIVITY = [
    ("a", "u1", at(3, 1)),
    ("a", "u1", at(3, 2)),
    ("a", "u2", at(3, 1)),
    ("c", "u1", at(3, 2)),
]
AS_OF = datetime(2026, 6, 15, 12, tzinfo=UTC)

EXPECTED = {
    "2026-01": {
        "mrr": 15220,
        "customers": 2,
        "new": 15220,
        "expansion": 0,
        "contraction": 0,
        "churn": 0,
        "reactivation": 0,
    },
    "2026-02": {
        "mrr": 25220,
        "customers": 3,
        "new": 10000,
        "expansion": 0,
        "contraction": 0,
        "churn": 0,
        "reactivation": 0,
    },
    "2026-03": {
        "mrr": 27900,
        "customers": 3,
        "new": 2900,
        "expansion": 5000,
        "contraction": 0,
        "churn": 5220,
        "reactivation": 0,
    },
    "2026-04": {
        "mrr": 41900,
        "customers": 3,
        "new": 0,
        "expansion": 14000,
        "contraction": 0,
        "churn": 0,
        "reactivation": 0,
    },
    "2026-05": {
        "mrr": 45900,
        "customers": 4,
        "new": 0,
        "expansion": 0,
        "contraction": 5000,
        "churn": 0,
        "reactivation": 9000,
    },
    "2026-06": {
        "mrr": 46733,
        "customers": 5,
        "new": 833,
        "expansion": 0,
        "contraction": 0,
        "churn": 0,
        "reactivation": 0,
    },
}


def load_company(session_factory, tenant_id: uuid.UUID) -> dict[str, uuid.UUID]:  # type: ignore[no-untyped-def]
    ids: dict[str, uuid.UUID] = {}
    with write_transaction(session_factory) as session:
        for name, size in COMPANY_SIZE.items():
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
        for i, sub in enumerate(SUBSCRIPTIONS):
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
        for channel, day, spend in MARKETING:
            session.add(
                MarketingSpend(
                    tenant_id=tenant_id, channel=channel, day=day, spend=spend, currency="USD"
                )
            )
        for i, (customer, user, moment) in enumerate(ACTIVITY):
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
        # Written past ingestion, so the active-user rollups are kept here as ingestion keeps them.
        session.flush()
        ActiveUserDayRepository(session, tenant_id).record_events(
            [f"act_{i}" for i in range(len(ACTIVITY))]
        )
    return ids
