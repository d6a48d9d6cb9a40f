from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aethercrown.simulate import SimConfig, SimulatedCompany, generate


@pytest.fixture(scope="session")
def company() -> SimulatedCompany:
    """One mid-sized company shared by the realism checks (generated once, ~3 s)."""
    return generate(
        SimConfig(customers=1500, months=12, seed=11, end=datetime(2026, 5, 1, tzinfo=UTC))
    )
