"""in_strings: ``column IN values`` as one parameter finds exactly the rows whose value is
listed, whatever characters the values hold (on PostgreSQL they travel as the text of an
array literal, so quoting must round-trip)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from aethercrown.data.models import Customer
from aethercrown.db.base import in_strings
from aethercrown.db.session import write_transaction
from aethercrown.db.tenant_scope import scope_to_tenant
from tests.conftest import TenantHandle

AWKWARD = [
    "plain",
    'say "hi"',
    "back\\slash",
    '\\"',
    "{braces,comma}",
    "[brackets]",
    " spaces ",
    "NULL",
    "tab\there",
    "line\nbreak",
    "\x01control",
    "ünïcødé ✓ 𝄞",
    "it's",
    "",
]


def test_every_listed_value_and_only_those_is_found(
    engine: Engine, session_factory: sessionmaker[Session], tenant: TenantHandle
) -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    stored = [*AWKWARD, "not listed", "plain2"]
    with write_transaction(session_factory) as session:
        scope_to_tenant(session, tenant.uid)
        for ext in stored:
            session.add(
                Customer(
                    id=uuid.uuid4(),
                    tenant_id=tenant.uid,
                    external_id=ext,
                    name=ext or "empty",
                    currency="USD",
                    signup_date=date(2025, 1, 1),
                    attributes={},
                    created_at=now,
                    updated_at=now,
                )
            )
        session.flush()
        for listed in (AWKWARD, AWKWARD[:2], ["absent"], ["{braces,comma}", "NULL"]):
            found = session.scalars(
                select(Customer.external_id).where(
                    Customer.tenant_id == tenant.uid,
                    in_strings(session, Customer.external_id, listed),
                )
            ).all()
            assert sorted(found) == sorted(v for v in listed if v in stored), listed
