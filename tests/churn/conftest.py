from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time

import pytest

from aethercrown import clock
from aethercrown.churn import prior
from aethercrown.churn.repository import load_company_rows
from aethercrown.db.session import write_transaction
from aethercrown.simulate import SimConfig, SimulatedCompany, generate
from tests.conftest import TenantHandle

MONTHS = 9
# A fixed window, so the company (and every figure measured on it) is the same on any day the
# suite runs; tests that ask the API about "now" move the clock to the window's end.
WINDOW_END = date(2026, 6, 1)


def company_config(customers: int = 600, months: int = MONTHS) -> SimConfig:
    """A small demo company (the real simulator) ending at WINDOW_END. Activity is scaled down
    to keep each load to a few seconds."""
    return SimConfig(
        customers=customers,
        months=months,
        seed=3,
        end=datetime.combine(WINDOW_END, time.min, UTC),
        activity_scale=0.5,
    )


@pytest.fixture(scope="session")
def company() -> SimulatedCompany:
    """The generated company with its truth (hazard matrix included)."""
    return generate(company_config())


@pytest.fixture
def loaded(session_factory, tenant: TenantHandle, company) -> Iterator[dict]:  # type: ignore[no-untyped-def, type-arg]
    """The company's rows in the tenant, with the clock at the end of its history."""
    with clock.travel(prior.window_end(company.truth)):
        with write_transaction(session_factory) as session:
            ids = load_company_rows(session, tenant.uid, company)
        yield ids
