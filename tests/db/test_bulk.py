"""postgres_upsert: every row in one statement that reads back as an executemany would have
written it, keeps the stored-row counts right (its trigger fires once per statement), updates
on conflict, and declines rows it cannot carry exactly (nothing written)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any, cast

import pytest
from sqlalchemy import Engine, Table, select
from sqlalchemy.orm import Session, sessionmaker

from aethercrown.data.models import Customer, Subscription
from aethercrown.db.bulk import postgres_upsert
from aethercrown.db.session import write_transaction
from aethercrown.db.tenant_scope import scope_to_tenant
from tests.conftest import TenantHandle, stored_rows_mismatches

CUSTOMERS = cast(Table, Customer.__table__)
KEY = ["tenant_id", "external_id"]


def _customer(tenant_id: uuid.UUID, ext: str, name: str, **extra: Any) -> dict[str, Any]:
    now = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    return {
        "id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "external_id": ext,
        "name": name,
        "email": None,
        "company_size": 12,
        "annual_revenue": 9_007_199_254_740_993,  # past a double's exact integers
        "currency": "EUR",
        "country": "DE",
        "signup_date": date(2025, 12, 31),
        "attributes": {"plan": {"tier": 1}, 5: "five", "note": "ünïcødé"},
        "created_at": now,
        "updated_at": now,
        **extra,
    }


def test_rows_go_in_as_one_statement_and_update_on_conflict(
    engine: Engine, session_factory: sessionmaker[Session], tenant: TenantHandle
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only (SQLite upserts go through sqlite_executemany)")
    rows = [_customer(tenant.uid, f"c{i}", f"Customer {i}") for i in range(3)]
    updated = [c.name for c in CUSTOMERS.columns if c.name not in ("id", "created_at", *KEY)]
    with write_transaction(session_factory) as session:
        scope_to_tenant(session, tenant.uid)
        assert postgres_upsert(session, CUSTOMERS, rows, KEY, updated)
    renamed = [{**rows[0], "id": uuid.uuid4(), "name": "Renamed"}]
    with write_transaction(session_factory) as session:
        scope_to_tenant(session, tenant.uid)
        assert postgres_upsert(session, CUSTOMERS, renamed, KEY, updated)
        stored = {c.external_id: c for c in session.scalars(select(Customer))}
    assert sorted(stored) == ["c0", "c1", "c2"]
    first = stored["c0"]
    assert (first.id, first.name) == (rows[0]["id"], "Renamed")  # updated in place
    assert first.annual_revenue == 9_007_199_254_740_993
    assert first.signup_date == date(2025, 12, 31)
    assert first.updated_at == rows[0]["updated_at"]
    assert first.attributes == {"plan": {"tier": 1}, "5": "five", "note": "ünïcødé"}
    assert stored_rows_mismatches(engine) == {}


def test_rows_it_cannot_carry_are_declined_and_nothing_is_written(
    engine: Engine, session_factory: sessionmaker[Session], tenant: TenantHandle
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    uneven = [
        _customer(tenant.uid, "a", "A"),
        {k: v for k, v in _customer(tenant.uid, "b", "B").items() if k != "email"},
    ]
    subscriptions = cast(Table, Subscription.__table__)
    not_a_number = [{"tenant_id": tenant.uid, "external_id": "s", "discount_percent": float("nan")}]
    with write_transaction(session_factory) as session:
        scope_to_tenant(session, tenant.uid)
        assert not postgres_upsert(session, CUSTOMERS, uneven, KEY, ["name"])
        assert not postgres_upsert(session, subscriptions, not_a_number, KEY, ["discount_percent"])
        assert session.scalars(select(Customer)).all() == []
