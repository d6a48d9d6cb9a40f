"""PreparedRead returns what Core returns for the same statement, on both backends, inside the
unit of work's transaction, and wraps driver errors as SQLAlchemy's; a ReadUnit reads the same,
returns its connection (to the pool, or on SQLite kept idle for the next unit), and is scoped to
its tenant for row-level security."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, bindparam, literal_column, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from aethercrown.core.models import Tenant, Tier
from aethercrown.data.models import Customer
from aethercrown.db.engine import make_engine, make_session_factory
from aethercrown.db.prepared import KEPT_READERS, PreparedRead, ReadUnit, kept_readers
from aethercrown.db.session import read_transaction
from aethercrown.db.tenant_scope import ALL_TENANTS
from aethercrown.tenants.repository import _TENANT_VIEW
from tests.conftest import TenantHandle

DAY = date(2026, 1, 1)
_ONE = PreparedRead(select(literal_column("1").label("one")))
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
        assert prepared["slug"] == tenant.slug
        # A UUID column comes back as a UUID, as Core gives it.
        by_id = PreparedRead(select(Tenant.id).where(Tenant.id == bindparam("tenant_id")))
        assert by_id.first(session, {"tenant_id": tenant.uid}) == {"id": tenant.uid}
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


def _in_use(engine: Engine) -> int:
    """Connections checked out of the pool and not kept idle for the next read unit."""
    kept = kept_readers(engine)
    assert not any(c.driver_connection.in_transaction for c in kept)  # kept: rolled back
    return int(engine.pool.checkedout()) - len(kept)  # type: ignore[attr-defined]


def test_a_read_unit_reads_what_a_session_reads_and_returns_its_connection(
    db: Engine, tenant: TenantHandle
) -> None:
    in_use = _in_use(db)
    unit = ReadUnit(db, tenant.id)
    assert _in_use(db) == in_use  # not before a read
    values = unit.first(_TENANT_VIEW, {"tenant_id": tenant.uid})
    assert _in_use(db) == in_use + 1
    assert unit.first(_TIER, {"slug": "enterprise"}) is not None  # the same transaction
    unit.close()
    unit.close()  # twice is harmless
    assert _in_use(db) == in_use
    with read_transaction(make_session_factory(db)) as session:
        assert values == _TENANT_VIEW.first(session, {"tenant_id": tenant.uid})


def test_sqlite_read_units_reuse_a_few_kept_connections_closed_with_the_engine(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'kept.db'}")
    try:
        units = [ReadUnit(engine, None) for _ in range(KEPT_READERS + 1)]
        connections = []
        for unit in units:  # overlapping units: one connection each
            assert unit.first(_ONE, {}) == {"one": 1}
            connections.append(unit._connection)
        for unit in units:
            unit.close()
        kept = kept_readers(engine)
        assert len(kept) == KEPT_READERS  # the one more went back to the pool
        assert engine.pool.checkedout() == KEPT_READERS  # type: ignore[attr-defined]
        assert not any(c.driver_connection.in_transaction for c in kept)
        reused = ReadUnit(engine, None)
        reused.first(_ONE, {})
        assert any(reused._connection is c for c in connections)
        reused.close()
    finally:
        engine.dispose()
    assert kept == [] and engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_a_read_unit_wraps_driver_errors_and_still_returns_its_connection(db: Engine) -> None:
    broken = PreparedRead(select(Tenant.id).where(Tenant.slug == bindparam("slug")))
    plan = broken._plan(db.dialect)
    broken._plans[db.dialect.name] = replace(plan, sql=plan.sql.replace("tenants", "no_table"))
    in_use = _in_use(db)
    unit = ReadUnit(db, None)
    with pytest.raises(DBAPIError):
        unit.first(broken, {"slug": "x"})
    unit.close()
    assert _in_use(db) == in_use


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
