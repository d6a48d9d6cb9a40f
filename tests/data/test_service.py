"""ingest_rows: the one writer every producer of business data goes through."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from aethercrown.core.errors import InvalidInput, ProblemError
from aethercrown.data.kinds import KINDS
from aethercrown.data.models import (
    ActivityEvent,
    Customer,
    MarketingSpend,
    Payment,
    Subscription,
    SupportTicket,
)
from aethercrown.data.service import append_activity, ingest_rows
from aethercrown.db.session import write_transaction
from aethercrown.tenants.service import recount_rows, stored_rows_total
from tests.conftest import TenantHandle

MODELS = {
    "customers": Customer,
    "subscriptions": Subscription,
    "activity": ActivityEvent,
    "tickets": SupportTicket,
    "payments": Payment,
    "marketing": MarketingSpend,
}


def ingest(factory: sessionmaker[Session], tenant: TenantHandle, kind: str, rows: Any, **kw: Any):  # type: ignore[no-untyped-def]
    with write_transaction(factory) as session:
        return ingest_rows(session, tenant.uid, kind, rows, **kw)


def count(factory: sessionmaker[Session], kind: str) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(MODELS[kind])) or 0)


def load_all(factory: sessionmaker[Session], tenant: TenantHandle, rows: dict[str, Any]) -> None:
    for kind in KINDS:
        ingest(factory, tenant, kind, rows[kind])


def errors_of(exc: pytest.ExceptionInfo[InvalidInput]) -> set[tuple[int, str]]:
    return {
        (e["loc"][0], e["loc"][1] if len(e["loc"]) > 1 else "") for e in exc.value.extra["errors"]
    }


def test_every_kind_inserts_then_a_retry_changes_nothing(
    session_factory: sessionmaker[Session], tenant: TenantHandle, rows: dict[str, Any]
) -> None:
    for kind in KINDS:
        result = ingest(session_factory, tenant, kind, rows[kind])
        n = len(rows[kind])
        assert (result.received, result.inserted, result.updated, result.unchanged) == (n, n, 0, 0)
        assert count(session_factory, kind) == n
    for kind in KINDS:
        result = ingest(session_factory, tenant, kind, rows[kind])
        n = len(rows[kind])
        assert (result.inserted, result.updated, result.unchanged) == (0, 0, n), kind
        assert count(session_factory, kind) == n

    with session_factory() as session:
        sub = session.scalar(select(Subscription).where(Subscription.external_id == "s2"))
        assert sub is not None
        # +02:00 is converted to UTC; the omitted quantity and discount take their defaults.
        assert sub.started_at == datetime(2025, 2, 1, 6, 30, tzinfo=UTC)
        assert (sub.quantity, sub.discount_percent, sub.discount_amount) == (1, 0.0, 500)
        customer = session.scalar(select(Customer).where(Customer.external_id == "c1"))
        assert customer is not None and customer.country == "DE"
        assert customer.attributes == {"segment": "smb", "tags": ["a", "b"]}
        payment = session.scalar(select(Payment).where(Payment.external_id == "p1"))
        assert payment is not None
        s1 = session.scalar(select(Subscription.id).where(Subscription.external_id == "s1"))
        assert payment.subscription_id == s1
        social = session.scalar(select(MarketingSpend).where(MarketingSpend.channel == "social"))
        assert social is not None and social.currency == "USD" and social.clicks == 0


def test_changed_rows_update_in_place(
    session_factory: sessionmaker[Session], tenant: TenantHandle, rows: dict[str, Any]
) -> None:
    load_all(session_factory, tenant, rows)
    rows["subscriptions"][0]["plan"] = "enterprise"
    result = ingest(session_factory, tenant, "subscriptions", rows["subscriptions"])
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 1)
    rows["marketing"][2]["spend"] = 7
    rows["marketing"].append({"channel": "tv", "day": "2025-03-01", "spend": 1})
    result = ingest(session_factory, tenant, "marketing", rows["marketing"])
    assert (result.inserted, result.updated, result.unchanged) == (1, 1, 2)
    with session_factory() as session:
        assert (
            session.scalar(select(Subscription.plan).where(Subscription.external_id == "s1"))
            == "enterprise"
        )
        assert (
            session.scalar(
                select(MarketingSpend.spend)
                .where(MarketingSpend.channel == "search")
                .where(MarketingSpend.day == datetime(2025, 3, 2).date())
            )
            == 7
        )
    assert count(session_factory, "subscriptions") == 2


def test_one_bad_batch_writes_nothing_and_names_every_bad_row(
    session_factory: sessionmaker[Session], tenant: TenantHandle, rows: dict[str, Any]
) -> None:
    ingest(session_factory, tenant, "customers", rows["customers"])
    batch = [
        {
            "external_id": "ok1",
            "customer": "c1",
            "user_id": "u",
            "kind": "login",
            "occurred_at": "2025-01-01T00:00:00Z",
        },
        {
            "external_id": "b1",
            "customer": "c1",
            "user_id": "u",
            "kind": "session",
            "occurred_at": "2025-01-01T00:00:00Z",
            "duration_seconds": -5,
        },
        {
            "external_id": "ok2",
            "customer": "c2",
            "user_id": "u",
            "kind": "login",
            "occurred_at": "2025-01-01T00:00:00Z",
        },
        {
            "external_id": "b3",
            "customer": "nobody",
            "user_id": "u",
            "kind": "login",
            "occurred_at": "2025-01-01T00:00:00Z",
        },
        {
            "external_id": "b4",
            "customer": "c1",
            "user_id": "u",
            "kind": "dance",
            "occurred_at": "yesterday",
        },
        {
            "external_id": "b5",
            "customer": "c1",
            "user_id": "u",
            "kind": "feature",
            "occurred_at": "2025-01-01T00:00:00Z",
        },
        "not an object",
        {
            "external_id": "ok1",
            "customer": "c1",
            "user_id": "u",
            "kind": "login",
            "occurred_at": "2025-01-01T00:00:00Z",
        },
    ]
    with pytest.raises(InvalidInput) as exc:
        ingest(session_factory, tenant, "activity", batch)
    assert exc.value.status == 422
    assert exc.value.extra["bad_rows"] == [1, 3, 4, 5, 6, 7]
    found = errors_of(exc)
    assert {
        (1, "duration_seconds"),
        (3, "customer"),
        (4, "kind"),
        (4, "occurred_at"),
        (5, "feature"),
        (6, ""),
        (7, "external_id"),
    } <= found
    assert not any(i in (0, 2) for i, _ in found)
    assert count(session_factory, "activity") == 0


@pytest.mark.parametrize(
    ("kind", "row", "field"),
    [
        (
            "customers",
            {"external_id": "x", "name": "X", "signup_date": "2025-13-01"},
            "signup_date",
        ),
        (
            "customers",
            {"external_id": "x", "name": "X", "signup_date": "2025-01-01", "country": "DEU"},
            "country",
        ),
        (
            "customers",
            {"external_id": "x", "name": "X", "signup_date": "2025-01-01", "company_size": "many"},
            "company_size",
        ),
        (
            "customers",
            {
                "external_id": "x",
                "name": "X",
                "signup_date": "2025-01-01",
                "annual_revenue": 10**30,
            },
            "annual_revenue",
        ),
        ("customers", {"external_id": "", "name": "X", "signup_date": "2025-01-01"}, "external_id"),
        (
            "customers",
            {"external_id": "x", "name": "X", "signup_date": "2025-01-01", "colour": "red"},
            "colour",
        ),
        ("customers", {"external_id": "x", "signup_date": "2025-01-01"}, "name"),
        (
            "customers",
            {"external_id": "x", "name": "A\x00B", "signup_date": "2025-01-01"},
            "name",
        ),
        (
            "customers",
            {
                "external_id": "x",
                "name": "A",
                "signup_date": "2025-01-01",
                "attributes": {"k\x00": 1},
            },
            "attributes",
        ),
        ("marketing", {"channel": "a", "day": "2025-01-01", "spend": True}, "spend"),
        ("marketing", {"channel": "a", "day": "2025-01-01", "spend": [1]}, "spend"),
        ("marketing", {"channel": "a", "day": "2025-01-01", "spend": 2**63}, "spend"),
        (
            "subscriptions",
            {
                "external_id": "s",
                "customer": "c1",
                "plan": "p",
                "amount": -1,
                "interval": "month",
                "started_at": "2025-01-01T00:00:00Z",
            },
            "amount",
        ),
        (
            "subscriptions",
            {
                "external_id": "s",
                "customer": "c1",
                "plan": "p",
                "amount": 1.5,
                "interval": "month",
                "started_at": "2025-01-01T00:00:00Z",
            },
            "amount",
        ),
        (
            "subscriptions",
            {
                "external_id": "s",
                "customer": "c1",
                "plan": "p",
                "amount": 1,
                "interval": "week",
                "started_at": "2025-01-01T00:00:00Z",
            },
            "interval",
        ),
        (
            "subscriptions",
            {
                "external_id": "s",
                "customer": "c1",
                "plan": "p",
                "amount": 1,
                "interval": "month",
                "started_at": "2025-02-01T00:00:00Z",
                "ended_at": "2025-01-01T00:00:00Z",
            },
            "ended_at",
        ),
        (
            "subscriptions",
            {
                "external_id": "s",
                "customer": "c1",
                "plan": "p",
                "amount": 1,
                "interval": "month",
                "started_at": "2025-01-01T00:00:00Z",
                "discount_percent": math.nan,
            },
            "discount_percent",
        ),
        (
            "subscriptions",
            {
                "external_id": "s",
                "customer": "c1",
                "plan": "p",
                "amount": 1,
                "interval": "month",
                "started_at": "2025-01-01T00:00:00Z",
                "discount_percent": math.inf,
            },
            "discount_percent",
        ),
        (
            "subscriptions",
            {
                "external_id": "s",
                "customer": "c1",
                "plan": "p",
                "amount": 1,
                "interval": "month",
                "started_at": "2025-01-01T00:00:00Z",
                "discount_percent": 101,
            },
            "discount_percent",
        ),
        (
            "activity",
            {
                "external_id": "a",
                "customer": "c1",
                "user_id": "u",
                "kind": "login",
                "occurred_at": "2025-01-01T00:00:00Z",
                "duration_seconds": 5,
            },
            "duration_seconds",
        ),
        (
            "activity",
            {
                "external_id": "a",
                "customer": "c1",
                "user_id": "u",
                "kind": "session",
                "occurred_at": "2025-01-01T00:00:00Z",
            },
            "duration_seconds",
        ),
        (
            "tickets",
            {
                "external_id": "t",
                "customer": "c1",
                "opened_at": "2025-01-02T00:00:00Z",
                "closed_at": "2025-01-01T00:00:00Z",
            },
            "closed_at",
        ),
        (
            "tickets",
            {
                "external_id": "t",
                "customer": "c1",
                "opened_at": "2025-01-02T00:00:00Z",
                "satisfaction": 6,
            },
            "satisfaction",
        ),
        (
            "tickets",
            {
                "external_id": "t",
                "customer": "c1",
                "opened_at": "2025-01-02T00:00:00Z",
                "priority": "asap",
            },
            "priority",
        ),
        (
            "payments",
            {
                "external_id": "p",
                "customer": "c1",
                "occurred_at": "2025-01-01T00:00:00Z",
                "status": "ok",
                "amount": 1,
            },
            "status",
        ),
        (
            "payments",
            {
                "external_id": "p",
                "customer": "c1",
                "subscription": "nope",
                "occurred_at": "2025-01-01T00:00:00Z",
                "status": "failed",
                "amount": 1,
            },
            "subscription",
        ),
        (
            "payments",
            {
                "external_id": "p",
                "customer": "c1",
                "subscription": "s2",
                "occurred_at": "2025-01-01T00:00:00Z",
                "status": "failed",
                "amount": 1,
            },
            "subscription",
        ),
        ("marketing", {"channel": "search", "day": "2025-01-01", "spend": -100}, "spend"),
        (
            "marketing",
            {"channel": "search", "day": "2025-01-01", "spend": 1, "clicks": math.inf},
            "clicks",
        ),
        (
            "marketing",
            {"channel": "search", "day": "2025-01-01", "spend": 1, "currency": "dollars"},
            "currency",
        ),
    ],
)
def test_each_bad_input_class_is_named_and_nothing_is_written(
    session_factory: sessionmaker[Session],
    tenant: TenantHandle,
    rows: dict[str, Any],
    kind: str,
    row: dict[str, Any],
    field: str,
) -> None:
    for setup in ("customers", "subscriptions"):
        ingest(session_factory, tenant, setup, rows[setup])
    before = count(session_factory, kind)
    good = rows[kind][0]
    with pytest.raises(InvalidInput) as exc:
        ingest(session_factory, tenant, kind, [good, row])
    assert (1, field) in errors_of(exc), exc.value.extra["errors"]
    assert count(session_factory, kind) == before


def test_naive_times_are_read_as_utc(
    session_factory: sessionmaker[Session], tenant: TenantHandle, rows: dict[str, Any]
) -> None:
    ingest(session_factory, tenant, "customers", rows["customers"])
    ingest(
        session_factory,
        tenant,
        "activity",
        [
            {
                "external_id": "n",
                "customer": "c1",
                "user_id": "u",
                "kind": "login",
                "occurred_at": "2025-05-01T10:00:00",
            },
        ],
    )
    with session_factory() as session:
        assert session.scalar(select(ActivityEvent.occurred_at)) == datetime(
            2025, 5, 1, 10, tzinfo=UTC
        )


def test_oversized_batch_names_the_limit(
    session_factory: sessionmaker[Session], tenant: TenantHandle, rows: dict[str, Any]
) -> None:
    with pytest.raises(ProblemError) as exc:
        ingest(session_factory, tenant, "customers", rows["customers"], max_rows=2)
    assert exc.value.status == 413 and exc.value.extra["limit"] == 2
    assert "at most 2 rows" in str(exc.value.detail)
    assert count(session_factory, "customers") == 0


def test_unknown_kind_is_rejected(
    session_factory: sessionmaker[Session], tenant: TenantHandle
) -> None:
    with pytest.raises(InvalidInput):
        ingest(session_factory, tenant, "invoices", [])


def test_quota_exceeded_writes_nothing_but_updates_still_pass(
    session_factory: sessionmaker[Session], tenant: TenantHandle, rows: dict[str, Any]
) -> None:
    from aethercrown.core.models import Tier

    ingest(session_factory, tenant, "customers", rows["customers"])
    with write_transaction(session_factory) as session:
        tier = session.get(Tier, "professional")
        assert tier is not None
        tier.max_stored_rows = 5  # 3 customers stored; 4 activity rows would make 7
    with pytest.raises(ProblemError) as exc:
        ingest(session_factory, tenant, "activity", rows["activity"])
    assert exc.value.status == 403 and exc.value.slug == "quota-exceeded"
    assert exc.value.extra["max_stored_rows"] == 5 and exc.value.extra["new_rows"] == 4
    assert count(session_factory, "activity") == 0
    ingest(session_factory, tenant, "activity", rows["activity"][:2])
    rows["customers"][0]["name"] = "Alpha renamed"
    result = ingest(session_factory, tenant, "customers", rows["customers"])
    assert result.updated == 1


def test_tenants_do_not_see_each_others_customers(
    session_factory: sessionmaker[Session],
    tenant: TenantHandle,
    other_tenant: TenantHandle,
    rows: dict[str, Any],
) -> None:
    ingest(session_factory, tenant, "customers", rows["customers"])
    with pytest.raises(InvalidInput) as exc:
        ingest(session_factory, other_tenant, "activity", rows["activity"])
    assert {i for i, f in errors_of(exc) if f == "customer"} == {0, 1, 2, 3}
    # The same external ids are free in another tenant.
    result = ingest(session_factory, other_tenant, "customers", rows["customers"])
    assert result.inserted == 3


def test_a_batch_believed_new_that_meets_a_stored_key_is_still_upserted(
    session_factory: sessionmaker[Session], tenant: TenantHandle, rows: dict[str, Any]
) -> None:
    """The plain-insert path for new keys (a concurrent writer stored one meanwhile) ends with
    what the upsert would have stored: the batch's values, one row per key."""
    from aethercrown.data.repository import repository_for
    from aethercrown.data.service import _validate

    ingest(session_factory, tenant, "customers", rows["customers"])
    changed = [{**rows["customers"][0], "name": "Renamed"}, *rows["customers"][1:]]
    clean, errors = _validate(KINDS["customers"], changed)
    assert not errors
    for row in clean:
        for name, default in KINDS["customers"].defaults.items():
            if row is not None and row.get(name) is None:
                row[name] = default
    with write_transaction(session_factory) as session:
        repository_for(session, tenant.uid, "customers").upsert(clean, all_new=True)  # type: ignore[arg-type]
    with session_factory() as session:
        names = dict(session.execute(select(Customer.external_id, Customer.name)).all())
    assert len(names) == len(rows["customers"])
    assert names[rows["customers"][0]["external_id"]] == "Renamed"


def append(factory: sessionmaker[Session], tenant: TenantHandle, rows: Any, **kw: Any):  # type: ignore[no-untyped-def]
    with write_transaction(factory) as session:
        return append_activity(session, tenant.uid, rows, **kw)


def test_append_activity_stores_new_events_once_and_leaves_stored_ones_alone(
    session_factory: sessionmaker[Session], tenant: TenantHandle, rows: dict[str, Any]
) -> None:
    """The append-only writer (Segment's tracks): a redelivered event id is the same event,
    even when what it says differs; the stored-row counts follow the rows it adds."""
    ingest(session_factory, tenant, "customers", rows["customers"])
    first = append(session_factory, tenant, rows["activity"][:3])
    assert (first.inserted, first.updated, first.unchanged) == (3, 0, 0)
    changed = [{**rows["activity"][0], "duration_seconds": 1}, *rows["activity"][1:]]
    again = append(session_factory, tenant, changed)
    assert (again.inserted, again.updated, again.unchanged) == (1, 0, 3)
    with session_factory() as session:
        durations = session.scalars(select(ActivityEvent.duration_seconds)).all()
        assert sorted(d for d in durations if d is not None) == [600]
    assert count(session_factory, "activity") == 4
    with write_transaction(session_factory) as session:
        assert recount_rows(session, tenant.uid) == {}  # the kept counts were right


def test_append_activity_checks_rows_as_ingest_does(
    session_factory: sessionmaker[Session], tenant: TenantHandle, rows: dict[str, Any]
) -> None:
    ingest(session_factory, tenant, "customers", rows["customers"])
    bad = [
        {**rows["activity"][0], "customer": "nobody"},
        {**rows["activity"][1], "kind": "session"},  # a session without its duration
        rows["activity"][2],
        rows["activity"][2],  # twice in one batch
        {**rows["activity"][3], "user_id": "x" * 201},
    ]
    with pytest.raises(InvalidInput) as exc:
        append(session_factory, tenant, bad)
    assert errors_of(exc) == {
        (0, "customer"),
        (1, "duration_seconds"),
        (3, "external_id"),
        (4, "user_id"),
    }
    assert count(session_factory, "activity") == 0
    # Ids the caller resolved are used as given; the rest are looked up.
    with session_factory() as session:
        c1 = session.scalar(select(Customer.id).where(Customer.external_id == "c1"))
    assert c1 is not None
    done = append(session_factory, tenant, rows["activity"], customer_ids={"c1": c1})
    assert done.inserted == 4


def test_append_activity_over_the_quota_writes_nothing(
    session_factory: sessionmaker[Session], tenant: TenantHandle, rows: dict[str, Any]
) -> None:
    from aethercrown.core.models import Tier

    ingest(session_factory, tenant, "customers", rows["customers"])
    append(session_factory, tenant, rows["activity"][:2])
    with write_transaction(session_factory) as session:
        tier = session.get(Tier, "professional")
        assert tier is not None
        # Room for one more row (the active-user rollups count too).
        tier.max_stored_rows = stored_rows_total(session, tenant.uid) + 1
    # Three rows, two of them stored: the one new row fits (a count, once the bound fails).
    assert append(session_factory, tenant, rows["activity"][:3]).inserted == 1
    with pytest.raises(ProblemError) as exc:
        append(session_factory, tenant, rows["activity"])
    assert exc.value.status == 403 and exc.value.extra["new_rows"] == 1
    assert count(session_factory, "activity") == 3
