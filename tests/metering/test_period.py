"""A usage report's period is YYYY-MM within 2000-01..2999-12: 9999-12 was an OverflowError."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from aethercrown.core.errors import ProblemError
from aethercrown.metering.service import parse_period
from tests.conftest import TenantHandle


@pytest.mark.parametrize("period", ["9999-12", "3000-01", "1999-12", "2026-13", "2026-00", "26-01"])
def test_a_period_out_of_range_is_a_422(
    client: TestClient, tenant: TenantHandle, period: str
) -> None:
    response = client.get(
        f"/api/v1/enterprise/usage/c1/report?period={period}", headers=tenant.headers
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"].endswith("period")


@pytest.mark.parametrize("period", ["9999-12", "1999-01"])
def test_parse_period_refuses_years_out_of_range(period: str) -> None:
    with pytest.raises(ProblemError):
        parse_period(period)


def test_the_last_allowed_period_parses() -> None:
    assert parse_period("2999-12") is not None
