from fastapi.testclient import TestClient
from sqlalchemy import select

from aethercrown.core.models import AuditEvent
from tests.conftest import TenantHandle, bearer, create_tenant


def test_create_returns_tenant_and_one_time_admin_key(client: TestClient, admin_key: str) -> None:
    response = client.post(
        "/api/v1/tenants/create",
        json={"name": "Initech", "slug": "initech", "tier": "professional"},
        headers=bearer(admin_key),
    )
    assert response.status_code == 201
    body = response.json()
    assert body["slug"] == "initech" and body["tier"] == "professional"
    assert body["quotas"]["monthly_price"] == 9900
    assert body["api_key"].startswith("ack_")
    fetched = client.get(f"/api/v1/tenants/{body['id']}", headers=bearer(body["api_key"])).json()
    assert "api_key" not in fetched and fetched["id"] == body["id"]


def test_create_rejects_bad_input_and_duplicates(client: TestClient, admin_key: str) -> None:
    h = bearer(admin_key)
    create_tenant(client, admin_key, "dup")
    assert (
        client.post(
            "/api/v1/tenants/create", json={"name": "x", "slug": "dup"}, headers=h
        ).status_code
        == 409
    )
    bad = client.post(
        "/api/v1/tenants/create", json={"name": "x", "slug": "ok-slug", "tier": "gold"}, headers=h
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "tier"
    bad = client.post("/api/v1/tenants/create", json={"name": "", "slug": "Bad Slug"}, headers=h)
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"name", "slug"}
    bad = client.post(
        "/api/v1/tenants/create", json={"name": "x", "slug": "abc", "extra": 1}, headers=h
    )
    assert bad.status_code == 422


def test_list_is_paginated_and_filtered(client: TestClient, admin_key: str) -> None:
    for i in range(5):
        create_tenant(client, admin_key, f"list-{i}", tier="starter" if i % 2 else "enterprise")
    h = bearer(admin_key)
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/v1/tenants/", params=params, headers=h).json()
        seen += [t["slug"] for t in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"list-{i}" for i in range(5)]
    enterprise = client.get("/api/v1/tenants/", params={"tier": "enterprise"}, headers=h).json()
    assert [t["slug"] for t in enterprise["items"]] == ["list-0", "list-2", "list-4"]
    assert (
        client.get("/api/v1/tenants/", params={"q": "LIST-3"}, headers=h).json()["items"][0]["slug"]
        == "list-3"
    )
    assert client.get("/api/v1/tenants/", params={"cursor": "%%%"}, headers=h).status_code == 400
    assert client.get("/api/v1/tenants/", params={"limit": 0}, headers=h).status_code == 422


def test_scale_changes_quotas_at_once_and_is_audited(
    client: TestClient, admin_key: str, tenant: TenantHandle, session_factory
) -> None:  # type: ignore[no-untyped-def]
    client.patch(
        "/api/v1/platform/tiers/starter", json={"requests_per_minute": 3}, headers=bearer(admin_key)
    )
    starter = create_tenant(client, admin_key, "small", tier="starter")
    url = f"/api/v1/tenants/{starter.id}"
    statuses = [client.get(url, headers=starter.headers).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = client.post(f"{url}/scale", json={"tier": "enterprise"}, headers=bearer(admin_key))
    assert response.status_code == 200 and response.json()["quotas"]["requests_per_minute"] == 20000
    assert client.get(url, headers=starter.headers).status_code == 200  # no restart needed
    with session_factory() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.action == "tenant.scaled")).all()
    assert [(e.details["from"], e.details["to"]) for e in events] == [("starter", "enterprise")]
    assert (
        client.post(f"{url}/scale", json={"tier": "nope"}, headers=bearer(admin_key)).status_code
        == 422
    )
    assert (
        client.post(
            f"{url}/scale", json={"tier": "enterprise"}, headers=starter.headers
        ).status_code
        == 403
    )


def test_metrics_are_measured(client: TestClient, admin_key: str) -> None:
    client.patch(
        "/api/v1/platform/tiers/starter",
        json={"requests_per_minute": 5, "max_seats": 2},
        headers=bearer(admin_key),
    )
    t = create_tenant(client, admin_key, "measured", tier="starter")
    for _ in range(7):
        client.get(f"/api/v1/tenants/{t.id}", headers=t.headers)
    client.patch(
        "/api/v1/platform/tiers/starter",
        json={"requests_per_minute": 1000},
        headers=bearer(admin_key),
    )
    client.post(
        "/api/v1/operational/security/keys/register", json={"name": "second"}, headers=t.headers
    )
    m = client.get(f"/api/v1/tenants/{t.id}/metrics", headers=t.headers).json()
    by_status = {(r["status"]): r["count"] for r in m["requests_by_day"]}
    # Seven reads against 5/min: the limiter turned some away (a sliding window may admit one
    # more if the reads straddle a minute boundary), and every one of them is counted.
    assert by_status[200] + by_status[429] == 7 and by_status[429] >= 1 and by_status[201] == 1
    assert m["rate_limited_total"] == by_status[429]
    assert m["seats"] == 2
    seats = next(q for q in m["quotas"] if q["quota"] == "seats")
    assert seats == {"quota": "seats", "used": 2, "limit": 2, "percent": 100.0}
    assert (
        m["recommendation"]["action"] == "upgrade" and m["recommendation"]["tier"] == "professional"
    )
    # A third seat is refused by the quota.
    third = client.post(
        "/api/v1/operational/security/keys/register", json={"name": "third"}, headers=t.headers
    )
    assert third.status_code == 403 and third.json()["type"].endswith("quota-exceeded")


def test_tenant_reads_only_itself_and_updates_its_webhook(
    client: TestClient, tenant: TenantHandle, other_tenant: TenantHandle, admin_key: str
) -> None:
    assert (
        client.get(f"/api/v1/tenants/{other_tenant.id}", headers=tenant.headers).status_code == 404
    )
    response = client.patch(
        f"/api/v1/tenants/{tenant.id}",
        json={"webhook_url": "https://hooks.example.com/x"},
        headers=tenant.headers,
    )
    assert (
        response.status_code == 200
        and response.json()["webhook_url"] == "https://hooks.example.com/x"
    )
    assert (
        client.patch(
            f"/api/v1/tenants/{tenant.id}", json={"status": "suspended"}, headers=tenant.headers
        ).status_code
        == 403
    )
    assert (
        client.patch(
            f"/api/v1/tenants/{tenant.id}",
            json={"webhook_url": "not a url"},
            headers=tenant.headers,
        ).status_code
        == 422
    )


def test_operator_edits_tiers(client: TestClient, admin_key: str, tenant: TenantHandle) -> None:
    response = client.patch(
        "/api/v1/platform/tiers/professional", json={"max_seats": 40}, headers=bearer(admin_key)
    )
    assert response.status_code == 200 and response.json()["max_seats"] == 40
    assert (
        client.patch(
            "/api/v1/platform/tiers/professional", json={"max_seats": 1}, headers=tenant.headers
        ).status_code
        == 403
    )
    assert (
        client.patch(
            "/api/v1/platform/tiers/professional", json={"max_seats": -1}, headers=bearer(admin_key)
        ).status_code
        == 422
    )
    assert (
        client.patch(
            "/api/v1/platform/tiers/unknown", json={}, headers=bearer(admin_key)
        ).status_code
        == 404
    )
    tiers = client.get("/api/v1/platform/tiers", headers=tenant.headers).json()
    assert [t["slug"] for t in tiers] == ["starter", "professional", "enterprise"]


def test_read_answers_exactly_what_the_orm_routes_answer(
    client: TestClient, admin_key: str, tenant: TenantHandle
) -> None:
    """The read is a Core query; it must say what the ORM-backed list and update say."""
    url = f"/api/v1/tenants/{tenant.id}"
    updated = client.patch(url, json={"name": "Acme Corp"}, headers=tenant.headers)
    assert updated.status_code == 200
    listed = client.get("/api/v1/tenants/", headers=bearer(admin_key)).json()["items"]
    as_listed = next(t for t in listed if t["id"] == tenant.id)
    assert updated.json() == as_listed  # updated_at included: the one the save set
    for headers in (tenant.headers, bearer(admin_key)):
        read = client.get(url, headers=headers)
        assert read.status_code == 200
        assert read.json() == as_listed
    assert (
        client.get(
            "/api/v1/tenants/00000000-0000-0000-0000-000000000000", headers=bearer(admin_key)
        ).status_code
        == 404
    )
    assert client.get("/api/v1/tenants/not-a-uuid", headers=bearer(admin_key)).status_code == 404
