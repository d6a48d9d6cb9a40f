"""PreparedRead returns what Core returns for the same statement, on both backends, inside the
unit of work's transaction, and wraps driver errors as SQLAlchemy's; a ReadUnit reads the same,
returns its connection, and is scoped to its tenant for row-level security."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy import Engine, bindparam, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from aethercrown.core.models import Tenant, Tier
from aethercrown.data.models import Customer
from aethercrown.db.engine import make_engine, make_session_factory
from aethercrown.db.prepared import PreparedRead, ReadUnit
from aethercrown.db.session import read_transaction
from aethercrown.db.tenant_scope import ALL_TENANTS
from aethercrown.tenants.repository import _TENANT_VIEW
from tests.conftest import TenantHandle

DAY = date(2026, 1, 1)
_CUSTOMER = PreparedRead(select(Customer.id).where(Customer.tenant_id == bindparam("tenant_id")))
_TIER = PreparedRead(
    select(Tier.slug, Tier.monthly_price, Tier.requests_per_minute).where(
        Tier.slug == bindparam("slug")
    )
)


def test_the_tenant_view_is_what_core_returns(
    session_factory: sessionmaker[Session], tenant: TenantHandle
) -> None:
    with read_transaction(session_factory) as session:
        prepared = _TENANT_VIEW.first(session, {"tenant_id": tenant.uid})
        core = session.execute(_TENANT_VIEW.statement, {"tenant_id": tenant.uid}).one()
        assert prepared == core._asdict()
        assert isinstance(prepared["id"], uuid.UUID)
        assert _TENANT_VIEW.first(session, {"tenant_id": uuid.uuid4()}) is None


def test_other_statements_and_their_types(session_factory: sessionmaker[Session]) -> None:
    with read_transaction(session_factory) as session:
        row = _TIER.first(session, {"slug": "enterprise"})
        core = session.execute(_TIER.statement, {"slug": "enterprise"}).one()._asdict()
        assert row == core
        assert {type(v) for v in row.values()} == {type(v) for v in core.values()}


def test_driver_errors_are_sqlalchemys(session_factory: sessionmaker[Session]) -> None:
    broken = PreparedRead(select(Tenant.id).where(Tenant.slug == bindparam("slug")))
    with read_transaction(session_factory) as session:
        dialect = session.get_bind().dialect
        plan = broken._plan(dialect)
        broken._plans[dialect.name] = type(plan)(
            sql=plan.sql.replace("tenants", "no_such_table"),
            positions=plan.positions,
            binds=plan.binds,
            names=plan.names,
            results=plan.results,
        )
        with pytest.raises(DBAPIError):
            broken.first(session, {"slug": "x"})


def test_a_read_unit_reads_what_a_session_reads_and_returns_its_connection(
    db: Engine, tenant: TenantHandle
) -> None:
    checked_out = db.pool.checkedout()  # type: ignore[attr-defined]
    unit = ReadUnit(db, tenant.id)
    assert db.pool.checkedout() == checked_out  # type: ignore[attr-defined]  # not before a read
    values = unit.first(_TENANT_VIEW, {"tenant_id": tenant.uid})
    assert db.pool.checkedout() == checked_out + 1  # type: ignore[attr-defined]
    assert unit.first(_TIER, {"slug": "enterprise"}) is not None  # the same transaction
    unit.close()
    unit.close()  # twice is harmless
    assert db.pool.checkedout() == checked_out  # type: ignore[attr-defined]
    with read_transaction(make_session_factory(db)) as session:
        assert values == _TENANT_VIEW.first(session, {"tenant_id": tenant.uid})


def test_a_read_unit_wraps_driver_errors_and_still_returns_its_connection(db: Engine) -> None:
    broken = PreparedRead(select(Tenant.id).where(Tenant.slug == bindparam("slug")))
    plan = broken._plan(db.dialect)
    broken._plans[db.dialect.name] = replace(plan, sql=plan.sql.replace("tenants", "no_table"))
    checked_out = db.pool.checkedout()  # type: ignore[attr-defined]
    unit = ReadUnit(db, None)
    with pytest.raises(DBAPIError):
        unit.first(broken, {"slug": "x"})
    unit.close()
    assert db.pool.checkedout() == checked_out  # type: ignore[attr-defined]


def test_a_read_unit_is_scoped_to_its_tenant_for_row_level_security(
    db: Engine, application_url: str
) -> None:
    if db.dialect.name != "postgresql":
        pytest.skip("row-level security is PostgreSQL's")
    a, b = uuid.uuid4(), uuid.uuid4()
    with Session(db) as session, session.begin():
        for tid, slug in ((a, "unit-a"), (b, "unit-b")):
            session.add(Tenant(id=tid, name=slug, slug=slug, tier_slug="starter"))
        session.flush()
        for tid in (a, b):
            session.add(Customer(tenant_id=tid, external_id=f"c-{tid}", name="c", signup_date=DAY))
    # The application's role (not the tables' owner), as in a deployment.
    engine = make_engine(application_url)
    try:
        for scope, seen in ((str(a), {a}), (ALL_TENANTS, {a, b}), (None, set())):
            unit = ReadUnit(engine, scope)
            try:
                found = {
                    tid for tid in (a, b) if unit.first(_CUSTOMER, {"tenant_id": tid}) is not None
                }
            finally:
                unit.close()
            assert found == seen, scope
        # Transaction-local: nothing is left on the pooled connection for its next user.
        with engine.connect() as conn:
            assert not conn.scalar(text("SELECT current_setting('aethercrown.tenant_id', true)"))
    finally:
        engine.dispose()
