"""PreparedRead returns what Core returns for the same statement, on both backends, inside the
unit of work's transaction, and wraps driver errors as SQLAlchemy's."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import bindparam, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from aethercrown.core.models import Tenant, Tier
from aethercrown.db.prepared import PreparedRead
from aethercrown.db.session import read_transaction
from aethercrown.tenants.repository import _TENANT_VIEW
from tests.conftest import TenantHandle

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
