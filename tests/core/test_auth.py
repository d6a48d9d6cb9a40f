from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from aethercrown.clock import utcnow
from aethercrown.core.models import ApiKey
from aethercrown.db.session import write_transaction
from tests.conftest import TenantHandle, bearer


def _me(client: TestClient, tenant: TenantHandle, key: str) -> int:
    return client.get(f"/api/v1/tenants/{tenant.id}", headers=bearer(key)).status_code


def test_missing_malformed_and_unknown_keys_are_401(
    client: TestClient, tenant: TenantHandle
) -> None:
    url = f"/api/v1/tenants/{tenant.id}"
    for headers in (
        {},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer "},
        bearer("ack_" + "x" * 43),
    ):
        response = client.get(url, headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["type"] == "urn:aethercrown:problem:unauthorized"


def test_expired_and_revoked_keys_are_401(
    client: TestClient, tenant: TenantHandle, session_factory
) -> None:  # type: ignore[no-untyped-def]
    assert _me(client, tenant, tenant.key) == 200
    with write_transaction(session_factory) as s:
        s.execute(
            update(ApiKey)
            .where(ApiKey.tenant_id == tenant.uid)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert _me(client, tenant, tenant.key) == 401
    with write_transaction(session_factory) as s:
        s.execute(
            update(ApiKey)
            .where(ApiKey.tenant_id == tenant.uid)
            .values(expires_at=None, revoked_at=utcnow())
        )
    response = client.get(f"/api/v1/tenants/{tenant.id}", headers=tenant.headers)
    assert response.status_code == 401 and "revoked" in response.json()["detail"]


def test_key_is_stored_only_as_hash_and_last_use_is_kept(
    client: TestClient, tenant: TenantHandle, session_factory
) -> None:  # type: ignore[no-untyped-def]
    assert _me(client, tenant, tenant.key) == 200
    client.app.state.request_counter.flush(client.app.state.engine)  # type: ignore[attr-defined]
    with session_factory() as s:
        keys = s.query(ApiKey).filter(ApiKey.tenant_id == tenant.uid).all()
    assert len(keys) == 1
    key = keys[0]
    assert tenant.key not in (key.key_hash, key.display_prefix)
    assert len(key.key_hash) == 64 and key.last_used_at is not None
    assert tenant.key.startswith("ack_") and len(tenant.key) >= 4 + 43  # prefix + 256 bits


def test_missing_scope_is_403(client: TestClient, tenant: TenantHandle, admin_key: str) -> None:
    response = client.post(
        "/api/v1/operational/security/keys/register",
        json={"name": "reader", "scopes": ["tenant:read"]},
        headers=tenant.headers,
    )
    reader = response.json()["secret"]
    # A reader may read its tenant but not create keys nor tenants.
    assert _me(client, tenant, reader) == 200
    response = client.post(
        "/api/v1/operational/security/keys/register", json={"name": "x"}, headers=bearer(reader)
    )
    assert response.status_code == 403
    response = client.post(
        "/api/v1/tenants/create", json={"name": "n", "slug": "nope"}, headers=bearer(reader)
    )
    assert response.status_code == 403


def test_operator_acts_on_tenant_data_only_through_x_tenant(
    client: TestClient, tenant: TenantHandle, admin_key: str
) -> None:
    url = "/api/v1/operational/security/keys/register"
    body = {"name": "ops", "scopes": ["tenant:read"]}
    assert client.post(url, json=body, headers=bearer(admin_key)).status_code == 400
    assert (
        client.post(url, json=body, headers=bearer(admin_key, **{"X-Tenant": "nope"})).status_code
        == 404
    )
    response = client.post(url, json=body, headers=bearer(admin_key, **{"X-Tenant": tenant.slug}))
    assert response.status_code == 201
    assert response.json()["tenant_id"] == tenant.id


@pytest.mark.parametrize("scope", ["tenant:read", "investor"])
def test_tenant_keys_cannot_use_operator_endpoints(
    client: TestClient, tenant: TenantHandle, scope: str
) -> None:
    narrow = client.post(
        "/api/v1/operational/security/keys/register",
        json={"name": "n", "scopes": [scope]},
        headers=tenant.headers,
    ).json()["secret"]
    response = client.get("/api/v1/tenants/", headers=bearer(narrow))
    assert response.status_code == 403
