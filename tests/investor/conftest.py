"""The hand-computed company (tests/analytics/fixtures.py) and an investor-scoped key."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from tests.analytics.fixtures import load_company
from tests.conftest import TenantHandle


@pytest.fixture
def company(session_factory, tenant: TenantHandle) -> dict[str, uuid.UUID]:  # type: ignore[no-untyped-def]
    return load_company(session_factory, tenant.uid)


@pytest.fixture
def investor_key(client: TestClient, tenant: TenantHandle) -> str:
    response = client.post(
        "/api/v1/operational/security/keys/register",
        json={"name": "board", "kind": "api_key", "security_level": "low", "scopes": ["investor"]},
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["secret"])
