from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aethercrown.churn import synthetic
from aethercrown.churn.repository import load_company_rows
from aethercrown.db.engine import transaction
from tests.conftest import TenantHandle

BLOCKS = 10


def recent_start(blocks: int = BLOCKS) -> datetime:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=30 * blocks)


@pytest.fixture(scope="session")
def company() -> synthetic.SyntheticCompany:
    """A generated company whose last 30-day block ends today, with the true hazard."""
    return synthetic.generate(customers=700, blocks=BLOCKS, seed=3, start=recent_start())


@pytest.fixture
def loaded(session_factory, tenant: TenantHandle, company) -> dict:  # type: ignore[no-untyped-def, type-arg]
    with transaction(session_factory) as session:
        return load_company_rows(session, tenant.uid, company)
