"""Rotating an external key to a secret some key already has is a 409 that changes nothing
(found by schemathesis: an IntegrityError 500 on both backends)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import TenantHandle

BASE = "/api/v1/operational/security/keys"


def test_rotating_to_a_secret_already_registered_is_a_409(
    client: TestClient, tenant: TenantHandle
) -> None:
    secret = "third-party-0123456789"
    body = {"name": "k", "kind": "external", "secret": secret}
    created = client.post(f"{BASE}/register", json=body, headers=tenant.headers)
    assert created.status_code == 201, created.text
    key_id = created.json()["id"]
    response = client.post(
        f"{BASE}/{key_id}/rotate", json={"secret": secret}, headers=tenant.headers
    )
    assert response.status_code == 409, response.text
    assert response.json()["type"] == "urn:aethercrown:problem:duplicate-secret"
    listed = client.get(BASE, headers=tenant.headers).json()
    assert [k["id"] for k in listed["items"] if k["name"] == "k"] == [key_id]
