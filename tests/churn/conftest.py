from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aethercrown.churn.repository import load_company_rows
from aethercrown.db.engine import transaction
from aethercrown.simulate import SimConfig, SimulatedCompany, generate
from aethercrown.simulate.generator import add_months
from tests.conftest import TenantHandle

MONTHS = 9


def recent_config(months: int = MONTHS) -> SimConfig:
    """A small demo company (the real simulator) whose window ends today, so "now" in the API
    is the end of its history. Activity is scaled down to keep each load to a few seconds."""
    today = datetime.now(UTC).date()
    return SimConfig(
        customers=600, months=months, seed=3, start=add_months(today, -months), activity_scale=0.5
    )


@pytest.fixture(scope="session")
def company() -> SimulatedCompany:
    """The generated company with its truth (hazard matrix included)."""
    return generate(recent_config())


@pytest.fixture
def loaded(session_factory, tenant: TenantHandle, company) -> dict:  # type: ignore[no-untyped-def, type-arg]
    with transaction(session_factory) as session:
        return load_company_rows(session, tenant.uid, company)
