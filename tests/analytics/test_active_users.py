"""Active users read from the per-day distinct-user rollup (``active_user_days``) equal the
distinct users of the raw events, however the events arrived: across a midnight UTC, late for an
old day, moved to another day or user by an update, or removed with their customer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Date, String, cast, func, select
from sqlalchemy.orm import Session, sessionmaker

from aethercrown.analytics.repository import ActivityData
from aethercrown.data.models import ActiveUserDay, ActivityEvent, Customer
from aethercrown.data.service import append_activity, ingest_rows
from aethercrown.db.session import write_transaction
from tests.conftest import TenantHandle


def ingest(factory: sessionmaker[Session], tenant: TenantHandle, kind: str, rows: Any) -> None:
    with write_transaction(factory) as session:
        ingest_rows(session, tenant.uid, kind, rows)


def event(ident: str, customer: str, user: str, at: str) -> dict[str, Any]:
    return {
        "external_id": ident,
        "customer": customer,
        "user_id": user,
        "kind": "login",
        "occurred_at": at,
    }


def raw_counts(session: Session, tenant: TenantHandle, since: datetime) -> dict[str, Any]:
    """The distinct users straight from the events (the query the rollup replaced)."""
    e = ActivityEvent
    postgres = session.get_bind().dialect.name == "postgresql"
    day = cast(func.timezone("UTC", e.occurred_at), Date) if postgres else func.date(e.occurred_at)
    month = (
        func.to_char(func.timezone("UTC", e.occurred_at), "YYYY-MM")
        if postgres
        else cast(func.strftime("%Y-%m", e.occurred_at), String)
    )

    def per(bucket: Any) -> dict[str, int]:
        sub = (
            select(bucket.label("b"), e.customer_id, e.user_id)
            .where(e.tenant_id == tenant.uid)
            .distinct()
            .subquery()
        )
        rows = session.execute(select(sub.c.b, func.count()).group_by(sub.c.b))
        return {str(b): int(n) for b, n in rows}

    users = (
        select(e.customer_id, e.user_id)
        .where(e.tenant_id == tenant.uid, e.occurred_at >= since)
        .distinct()
        .subquery()
    )
    return {
        "daily": per(day),
        "monthly": per(month),
        "since": int(session.scalar(select(func.count()).select_from(users)) or 0),
    }


def rolled_up(session: Session, tenant: TenantHandle, since: datetime) -> dict[str, Any]:
    data = ActivityData(session, tenant.uid)
    return {
        "daily": {d.isoformat(): n for d, n in data.daily_active_users().items()},
        "monthly": data.monthly_active_users(),
        "since": data.active_users_since(since),
    }


SINCE = datetime(2026, 3, 1, 15, 30, tzinfo=UTC)


def assert_same(factory: sessionmaker[Session], tenant: TenantHandle) -> dict[str, Any]:
    with factory() as session:
        for since in (SINCE, SINCE.replace(hour=0, minute=0), SINCE - timedelta(days=40)):
            assert rolled_up(session, tenant, since) == raw_counts(session, tenant, since)
        return rolled_up(session, tenant, SINCE)


@pytest.fixture
def customers(session_factory: sessionmaker[Session], tenant: TenantHandle) -> None:
    ingest(
        session_factory,
        tenant,
        "customers",
        [{"external_id": c, "name": c, "signup_date": "2026-01-01"} for c in ("c1", "c2")],
    )


@pytest.mark.usefixtures("customers")
def test_rollup_equals_the_raw_distinct_users(
    session_factory: sessionmaker[Session], tenant: TenantHandle
) -> None:
    ingest(
        session_factory,
        tenant,
        "activity",
        [
            # One user twice on a day, and the same user id at another customer (another user).
            event("a1", "c1", "u1", "2026-02-28T09:00:00Z"),
            event("a2", "c1", "u1", "2026-02-28T18:00:00Z"),
            event("a3", "c2", "u1", "2026-02-28T18:00:00Z"),
            # Either side of midnight UTC (and of a month end), and of midnight in +02:00.
            event("a4", "c1", "u2", "2026-02-28T23:59:59Z"),
            event("a5", "c1", "u2", "2026-03-01T00:00:00Z"),
            event("a6", "c2", "u3", "2026-03-01T01:30:00+02:00"),
            # Before and after the 30-day window's first instant, on its day.
            event("a7", "c2", "u4", "2026-03-01T15:29:59Z"),
            event("a8", "c2", "u5", "2026-03-01T15:30:00Z"),
            event("a9", "c1", "u1", "2026-03-02T12:00:00Z"),
        ],
    )
    counts = assert_same(session_factory, tenant)
    assert counts["daily"] == {"2026-02-28": 4, "2026-03-01": 3, "2026-03-02": 1}
    assert counts["monthly"] == {"2026-02": 4, "2026-03": 4}
    assert counts["since"] == 2  # u5 at c2 and u1 at c1

    # A late event for an old day counts on that day.
    ingest(session_factory, tenant, "activity", [event("late", "c2", "u9", "2026-01-05T08:00:00Z")])
    counts = assert_same(session_factory, tenant)
    assert counts["daily"]["2026-01-05"] == 1 and counts["monthly"]["2026-01"] == 1

    # An update moving an event to another day and user leaves its old day only when no other
    # event keeps it there.
    ingest(
        session_factory,
        tenant,
        "activity",
        [
            event("a1", "c1", "u7", "2026-03-03T09:00:00Z"),
            event("late", "c2", "u9", "2025-12-31T23:00:00Z"),
        ],
    )
    counts = assert_same(session_factory, tenant)
    assert counts["daily"]["2026-02-28"] == 4  # a2 keeps u1 at c1 there
    assert "2026-01-05" not in counts["daily"] and counts["daily"]["2025-12-31"] == 1
    assert "2026-01" not in counts["monthly"] and counts["monthly"]["2025-12"] == 1
    assert counts["daily"]["2026-03-03"] == 1


@pytest.mark.usefixtures("customers")
def test_a_removed_customer_takes_its_user_days_with_it(
    session_factory: sessionmaker[Session], tenant: TenantHandle
) -> None:
    ingest(
        session_factory,
        tenant,
        "activity",
        [
            event("b1", "c1", "u1", "2026-03-01T10:00:00Z"),
            event("b2", "c2", "u1", "2026-03-01T10:00:00Z"),
        ],
    )
    with write_transaction(session_factory) as session:
        session.delete(session.scalars(select(Customer).where(Customer.external_id == "c1")).one())
    with session_factory() as session:
        stored = session.scalar(select(func.count()).select_from(ActiveUserDay))
    assert stored == 1
    assert assert_same(session_factory, tenant)["daily"] == {"2026-03-01": 1}


def test_an_empty_tenant_has_no_active_users(
    session_factory: sessionmaker[Session], tenant: TenantHandle
) -> None:
    assert assert_same(session_factory, tenant) == {"daily": {}, "monthly": {}, "since": 0}


@pytest.mark.usefixtures("customers")
def test_appended_events_roll_up_as_ingested_ones(
    session_factory: sessionmaker[Session], tenant: TenantHandle
) -> None:
    """The append-only writer (Segment's tracks; one statement on PostgreSQL) keeps the rollup
    equal to the raw distinct users too; a redelivered event adds nothing."""
    batch = [
        event("a1", "c1", "u1", "2026-02-28T09:00:00Z"),
        event("a2", "c1", "u1", "2026-02-28T18:00:00Z"),
        event("a3", "c2", "u1", "2026-02-28T23:59:59Z"),
        event("a4", "c1", "u2", "2026-03-01T00:00:00Z"),
        event("a5", "c2", "u3", "2026-03-01T01:30:00+02:00"),
    ]
    for rows in (batch[:3], batch, [event("late", "c2", "u9", "2026-01-05T08:00:00Z")]):
        with write_transaction(session_factory) as session:
            append_activity(session, tenant.uid, rows)
    counts = assert_same(session_factory, tenant)
    assert counts["daily"] == {"2026-01-05": 1, "2026-02-28": 3, "2026-03-01": 1}
    assert counts["monthly"] == {"2026-01": 1, "2026-02": 3, "2026-03": 1}
