"""Row-level security on PostgreSQL: the database's own wall behind the repositories' tenant
filter. The application's connections (``app_url``: a member of ``aethercrown_app``, neither a
superuser nor the owner) see only the tenant their unit of work is scoped to."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import Engine, create_engine, select, text, update
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session

from aethercrown.core.models import Tenant
from aethercrown.data.models import Customer
from aethercrown.data.repository import CustomerRepository
from aethercrown.db.engine import make_engine, make_session_factory
from aethercrown.db.registry import metadata
from aethercrown.db.session import read_transaction, write_transaction
from aethercrown.db.tenant_scope import across_tenants, scope_to_tenant, tenant_tables

DAY = date(2026, 1, 1)


@pytest.fixture
def pg(db: Engine) -> Engine:
    if db.dialect.name != "postgresql":
        pytest.skip("row-level security is PostgreSQL's")
    return db


@pytest.fixture
def app_engine(pg: Engine, application_url: str) -> Iterator[Engine]:
    engine = make_engine(application_url)
    yield engine
    engine.dispose()


def _two_tenants_with_a_customer_each(owner: Engine) -> tuple[uuid.UUID, uuid.UUID]:
    a, b = uuid.uuid4(), uuid.uuid4()
    with Session(owner) as session, session.begin():
        for tid, slug in ((a, "rls-a"), (b, "rls-b")):
            session.add(Tenant(id=tid, name=slug, slug=slug, tier_slug="starter"))
        session.flush()
        for tid in (a, b):
            session.add(
                Customer(tenant_id=tid, external_id=f"c-{tid}", name=str(tid), signup_date=DAY)
            )
    return a, b


def test_a_query_that_forgets_its_tenant_filter_sees_only_its_tenant(
    pg: Engine, app_engine: Engine
) -> None:
    a, b = _two_tenants_with_a_customer_each(pg)
    factory = make_session_factory(app_engine)
    with read_transaction(factory) as session:
        CustomerRepository(session, a)  # the unit of work serves tenant a
        forgot_filter = session.scalars(select(Customer.tenant_id)).all()
        assert forgot_filter == [a]
        assert session.get(Customer, _customer_id(pg, b)) is None
    with read_transaction(factory) as session:  # not scoped to any tenant: no tenant row
        assert session.scalars(select(Customer)).all() == []


def test_a_write_to_another_tenants_row_is_refused(pg: Engine, app_engine: Engine) -> None:
    a, b = _two_tenants_with_a_customer_each(pg)
    factory = make_session_factory(app_engine)
    with write_transaction(factory) as session:
        scope_to_tenant(session, a)
        changed = session.execute(update(Customer).values(name="taken")).rowcount
        assert changed == 1  # its own row only: b's is invisible to the UPDATE
    with (
        pytest.raises(ProgrammingError, match="row-level security"),
        write_transaction(factory) as session,
    ):
        scope_to_tenant(session, a)
        session.add(Customer(tenant_id=b, external_id="x", name="x", signup_date=DAY))
    with Session(pg) as owner:
        names = dict(owner.execute(select(Customer.tenant_id, Customer.name)).all())
    assert names == {a: "taken", b: str(b)}


def test_the_scope_is_per_transaction_and_never_left_on_a_pooled_connection(
    pg: Engine, application_url: str
) -> None:
    a, _ = _two_tenants_with_a_customer_each(pg)
    engine = make_engine(application_url, pool_size=1, max_overflow=0)
    factory = make_session_factory(engine)
    try:
        with read_transaction(factory) as session:
            scope_to_tenant(session, a)
            assert len(session.scalars(select(Customer)).all()) == 1
            session.commit()  # a new transaction of the same unit keeps its scope
            assert len(session.scalars(select(Customer)).all()) == 1
        with read_transaction(factory) as session:  # the same pooled connection
            assert session.scalars(select(Customer)).all() == []
            with across_tenants(session):
                assert len(session.scalars(select(Customer)).all()) == 2
            assert session.scalars(select(Customer)).all() == []
    finally:
        engine.dispose()


def test_every_tenant_table_has_row_level_security_forced(pg: Engine) -> None:
    """Fails when a migration adds a tenant table after 0013_row_level_security without
    securing it (``tenant_scope.secure_tenant_table``)."""
    with pg.connect() as conn:
        secured = dict(
            conn.execute(
                text(
                    "SELECT c.relname, c.relrowsecurity AND c.relforcerowsecurity "
                    "AND EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid) "
                    "FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace "
                    "AND c.relkind = 'r'"
                )
            ).all()
        )
        in_database = tenant_tables(conn)
    modelled = {name for name, table in metadata.tables.items() if "tenant_id" in table.c}
    assert modelled <= set(in_database)
    assert [t for t in in_database if not secured[t]] == []


def test_the_application_role_is_neither_superuser_nor_owner(
    pg: Engine, application_url: str
) -> None:
    engine = create_engine(application_url)
    with engine.connect() as conn:
        role = conn.execute(
            text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        ).one()
        owners = (
            conn.execute(
                text(
                    "SELECT DISTINCT tableowner = current_user FROM pg_tables "
                    "WHERE schemaname = current_schema()"
                )
            )
            .scalars()
            .all()
        )
    engine.dispose()
    assert tuple(role) == (False, False)
    assert owners == [False]


def _customer_id(owner: Engine, tenant_id: uuid.UUID) -> uuid.UUID:
    with Session(owner) as session, across_tenants(session):
        found = session.scalar(select(Customer.id).where(Customer.tenant_id == tenant_id))
    assert found is not None
    return found
