"""PATCH a tenant: a field may be left out, not set to null (a 422 that changes nothing)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TenantHandle, bearer


@pytest.mark.parametrize("field", ["name", "status"])
def test_null_for_a_field_a_tenant_always_has_is_a_422(
    client: TestClient, admin_key: str, tenant: TenantHandle, field: str
) -> None:
    path = f"/api/v1/tenants/{tenant.id}"
    before = client.get(path, headers=bearer(admin_key)).json()
    response = client.patch(path, json={field: None}, headers=bearer(admin_key))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert client.get(path, headers=bearer(admin_key)).json() == before


def test_null_webhook_url_still_removes_it(
    client: TestClient, admin_key: str, tenant: TenantHandle
) -> None:
    path = f"/api/v1/tenants/{tenant.id}"
    set_url = {"webhook_url": "https://example.com/hook"}
    assert client.patch(path, json=set_url, headers=bearer(admin_key)).status_code == 200
    response = client.patch(path, json={"webhook_url": None}, headers=bearer(admin_key))
    assert response.status_code == 200, response.text
    assert response.json()["webhook_url"] is None


def test_the_document_shows_no_null_for_them(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]["TenantUpdate"]
    assert "anyOf" not in schema["properties"]["name"]
    assert "anyOf" not in schema["properties"]["status"]


def test_a_boolean_is_not_a_tier_quota(client: TestClient, admin_key: str) -> None:
    path = "/api/v1/platform/tiers/starter"
    before = client.get("/api/v1/platform/tiers", headers=bearer(admin_key)).json()
    response = client.patch(path, json={"max_ai_agents": False}, headers=bearer(admin_key))
    assert response.status_code == 422, response.text
    assert client.get("/api/v1/platform/tiers", headers=bearer(admin_key)).json() == before
