"""MRR at month boundaries: a half-open life [start, end) counts in exactly the months it is
alive at their last instant. Hand-computed book over Nov 2025 – Apr 2026 (read on 15 April):

customer  subscriptions (monthly, minor units)                     why it is here
p         10000 over [1 Feb 00:00, 1 Apr 00:00)                    starts and ends on the 1st
m         2900 over [15 Jan, 20 Mar)                               mid-month
u         2900 over [10 Jan, 1 Mar 00:00), then 9900 from 1 Mar    upgrade on the 1st
d         9900 over [1 Jan 00:00, 1 Feb 00:00), then 2900 from 1 Feb downgrade on the 1st
w         1900 over [5 Nov, 1 Jan 00:00), then 7900 from 1 Jan     upgrade across the year end
y         5000 over [1 Dec 00:00, 1 Jan 00:00)                     ends at the year end
z         4900 from 1 Jan 00:00                                    starts at the year end
t         1000 from 1 Feb 00:00, trial to 1 Mar 00:00              trial ending on the 1st

month    w     y     z     d     u     m     p      t     total  movements
2025-11  1900  -     -     -     -     -     -      -      1900  new 1900
2025-12  1900  5000  -     -     -     -     -      -      6900  new 5000 (y)
2026-01  7900  0     4900  9900  2900  2900  -      -     28500  new 20600 (z d u m), exp 6000 (w),
                                                                 churn 5000 (y)
2026-02  7900  0     4900  2900  2900  2900  10000  0     31500  new 10000 (p), contraction 7000 (d)
2026-03  7900  0     4900  2900  9900  0     10000  1000  36600  new 1000 (t), exp 7000 (u),
                                                                 churn 2900 (m)
2026-04  7900  0     4900  2900  9900  0     0      1000  26600  churn 10000 (p)
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import numpy as np
import pytest
from fastapi.testclient import TestClient

from aethercrown import clock
from aethercrown.analytics import metrics
from aethercrown.analytics.metrics import RevenueInputs, SubscriptionRecord
from aethercrown.data.models import Customer, Subscription
from aethercrown.db.session import write_transaction
from tests.conftest import TenantHandle


def _t(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def _sub(
    customer: str,
    plan: str,
    amount: int,
    start: datetime,
    end: datetime | None = None,
    trial_end: datetime | None = None,
) -> SubscriptionRecord:
    return SubscriptionRecord(customer, plan, amount, "month", start, end, trial_end=trial_end)


BOOK = [
    _sub("p", "pro", 10000, _t(2026, 2, 1), _t(2026, 4, 1)),
    _sub("m", "starter", 2900, _t(2026, 1, 15), _t(2026, 3, 20)),
    _sub("u", "starter", 2900, _t(2026, 1, 10), _t(2026, 3, 1)),
    _sub("u", "pro", 9900, _t(2026, 3, 1)),
    _sub("d", "pro", 9900, _t(2026, 1, 1), _t(2026, 2, 1)),
    _sub("d", "starter", 2900, _t(2026, 2, 1)),
    _sub("w", "basic", 1900, _t(2025, 11, 5), _t(2026, 1, 1)),
    _sub("w", "pro", 7900, _t(2026, 1, 1)),
    _sub("y", "basic", 5000, _t(2025, 12, 1), _t(2026, 1, 1)),
    _sub("z", "basic", 4900, _t(2026, 1, 1)),
    _sub("t", "basic", 1000, _t(2026, 2, 1), trial_end=_t(2026, 3, 1)),
]
AS_OF = _t(2026, 4, 15, 12)
MOVES = ("new", "expansion", "contraction", "churn", "reactivation")
EXPECTED = {
    "2025-11": (1900, 1, (1900, 0, 0, 0, 0)),
    "2025-12": (6900, 2, (5000, 0, 0, 0, 0)),
    "2026-01": (28500, 5, (20600, 6000, 0, 5000, 0)),
    "2026-02": (31500, 6, (10000, 0, 7000, 0, 0)),
    "2026-03": (36600, 6, (1000, 7000, 0, 2900, 0)),
    "2026-04": (26600, 5, (0, 0, 0, 10000, 0)),
}


def _table(rows: list[dict]) -> dict[str, tuple[int, int, tuple[int, ...]]]:
    return {r["month"]: (r["mrr"], r["customers"], tuple(r[k] for k in MOVES)) for r in rows}


def test_the_rule_at_a_boundary_and_now() -> None:
    feb, mar = _t(2026, 2, 1).timestamp(), _t(2026, 3, 1).timestamp()
    later = _t(2026, 6, 1)
    inf = float("inf")
    # Alive over [1 Feb, 1 Mar): February only; not January (it starts at January's end).
    assert metrics.alive_at_month_end(feb, mar, -inf, "2026-02", later)
    assert not metrics.alive_at_month_end(feb, mar, -inf, "2026-01", later)
    assert not metrics.alive_at_month_end(feb, mar, -inf, "2026-03", later)
    # A trial ending on 1 Mar is still a trial at February's last instant.
    assert not metrics.alive_at_month_end(feb, inf, mar, "2026-02", later)
    assert metrics.alive_at_month_end(feb, inf, mar, "2026-03", later)
    # The current month is read now: at 1 Mar 00:00 exactly, February is complete (the one that
    # ended then is in it) and March already holds what started at 00:00.
    now = _t(2026, 3, 1)
    assert metrics.alive_at_month_end(feb, mar, -inf, "2026-02", now)
    assert metrics.alive_at_month_end(mar, inf, -inf, "2026-03", now)
    assert not metrics.alive_at_month_end(feb, mar, -inf, "2026-03", now)
    # Vectorised the same.
    starts = np.array([feb, mar]), np.array([mar, inf]), np.array([-inf, -inf])
    assert metrics.alive_at_month_end(*starts, "2026-02", later).tolist() == [True, False]


def test_hand_computed_boundary_book() -> None:
    series = metrics.revenue_series(RevenueInputs(subscriptions=BOOK), AS_OF)
    assert _table(series) == EXPECTED
    by_month = {r["month"]: r for r in series}
    assert by_month["2026-02"]["new_customers"] == 1  # p, and not in January
    assert by_month["2026-03"]["churned_customers"] == 1  # m only: u upgraded, it did not churn
    assert by_month["2026-04"]["churned_customers"] == 1  # p churns in April, not March
    assert by_month["2026-02"]["mrr_by_plan"]["pro"] == 10000 + 7900  # p, w; u is on starter
    assert by_month["2026-03"]["mrr_by_plan"]["pro"] == 10000 + 9900 + 7900


def test_a_life_on_month_boundaries_counts_in_exactly_its_months() -> None:
    life = [_sub("x", "pro", 10000, _t(2026, 2, 1), _t(2026, 4, 1))]
    rows = metrics.revenue_series(RevenueInputs(subscriptions=life), _t(2026, 5, 10))
    assert [(r["month"], r["mrr"], r["new"], r["churn"]) for r in rows] == [
        ("2026-02", 10000, 10000, 0),
        ("2026-03", 10000, 0, 0),
        ("2026-04", 0, 0, 10000),
        ("2026-05", 0, 0, 0),
    ]


def _load(session_factory, tenant_id: uuid.UUID) -> None:  # type: ignore[no-untyped-def]
    with write_transaction(session_factory) as session:
        ids: dict[str, uuid.UUID] = {}
        for name in sorted({s.customer for s in BOOK}):
            customer = Customer(
                tenant_id=tenant_id,
                external_id=f"cus_{name}",
                name=f"Customer {name}",
                signup_date=date(2025, 11, 1),
            )
            session.add(customer)
            session.flush()
            ids[name] = customer.id
        for i, sub in enumerate(BOOK):
            session.add(
                Subscription(
                    tenant_id=tenant_id,
                    external_id=f"sub_{i}",
                    customer_id=ids[sub.customer],
                    plan=sub.plan,
                    amount=sub.amount,
                    currency="USD",
                    interval="month",
                    started_at=sub.started_at,
                    ended_at=sub.ended_at,
                    trial_end=sub.trial_end,
                )
            )


@pytest.mark.parametrize("now", [AS_OF, _t(2026, 4, 1)])
def test_boundary_book_through_the_api(
    client: TestClient,
    tenant: TenantHandle,
    session_factory,  # type: ignore[no-untyped-def]
    now: datetime,
) -> None:
    """Stored and read back on each backend: its timestamps round-trip exactly, so the
    boundaries fall the same way. Read at 1 Apr 00:00 too, when p has just ended: April is
    then read at that instant and March is complete."""
    _load(session_factory, tenant.uid)
    with clock.travel(now, tick=False):
        response = client.post(
            "/api/v1/dashboard/metrics/revenue",
            json={"start": "2025-11", "end": "2026-04"},
            headers=tenant.headers,
        )
    assert response.status_code == 200, response.text
    assert _table(response.json()["months"]) == EXPECTED
