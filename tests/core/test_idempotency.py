from fastapi.testclient import TestClient

from tests.conftest import TenantHandle, bearer


def test_same_key_same_body_replays_the_first_response(client: TestClient, admin_key: str) -> None:
    h = bearer(admin_key, **{"Idempotency-Key": "create-acme"})
    body = {"name": "Acme", "slug": "acme-idem"}
    first = client.post("/api/v1/tenants/create", json=body, headers=h)
    second = client.post("/api/v1/tenants/create", json=body, headers=h)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()  # same tenant, same one-time key: nothing created twice
    assert second.headers["idempotent-replayed"] == "true"
    listed = client.get(
        "/api/v1/tenants/", params={"q": "acme-idem"}, headers=bearer(admin_key)
    ).json()
    assert len(listed["items"]) == 1


def test_same_key_other_body_is_409_and_changes_nothing(client: TestClient, admin_key: str) -> None:
    h = bearer(admin_key, **{"Idempotency-Key": "k-1"})
    client.post("/api/v1/tenants/create", json={"name": "A", "slug": "first-one"}, headers=h)
    conflict = client.post(
        "/api/v1/tenants/create", json={"name": "B", "slug": "second-one"}, headers=h
    )
    assert conflict.status_code == 409
    assert conflict.json()["type"].endswith("idempotency-key-reused")
    listed = client.get(
        "/api/v1/tenants/", params={"q": "second-one"}, headers=bearer(admin_key)
    ).json()
    assert listed["items"] == []


def test_keys_are_scoped_per_tenant_and_errors_are_replayed(
    client: TestClient, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    url = "/api/v1/operational/security/keys/register"
    a = client.post(url, json={"name": "x"}, headers={**tenant.headers, "Idempotency-Key": "same"})
    b = client.post(
        url, json={"name": "x"}, headers={**other_tenant.headers, "Idempotency-Key": "same"}
    )
    assert a.status_code == b.status_code == 201 and a.json()["id"] != b.json()["id"]
    bad = {"name": "x", "kind": "nope"}
    first = client.post(url, json=bad, headers={**tenant.headers, "Idempotency-Key": "bad"})
    again = client.post(url, json=bad, headers={**tenant.headers, "Idempotency-Key": "bad"})
    assert first.status_code == again.status_code == 422 and first.json() == again.json()


def test_unauthenticated_requests_keep_nothing(client: TestClient, admin_key: str) -> None:
    h = {"Idempotency-Key": "anon"}
    assert (
        client.post(
            "/api/v1/tenants/create", json={"name": "A", "slug": "anon"}, headers=h
        ).status_code
        == 401
    )
    ok = client.post(
        "/api/v1/tenants/create",
        json={"name": "A", "slug": "anon"},
        headers={**h, **bearer(admin_key)},
    )
    assert ok.status_code == 201
    too_long = client.post(
        "/api/v1/tenants/create",
        json={},
        headers={**bearer(admin_key), "Idempotency-Key": "x" * 300},
    )
    assert too_long.status_code == 400
