import time
import uuid
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from aethercrown.clock import utcnow
from aethercrown.core.models import ApiKey, Decision
from aethercrown.db.session import write_transaction
from tests.conftest import TenantHandle, bearer

BASE = "/api/v1/operational/security/keys"


def register(client: TestClient, who: TenantHandle, **body) -> dict:  # type: ignore[no-untyped-def, type-arg]
    response = client.post(f"{BASE}/register", json={"name": "k", **body}, headers=who.headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def works(client: TestClient, tenant: TenantHandle, secret: str) -> bool:
    return client.get(f"/api/v1/tenants/{tenant.id}", headers=bearer(secret)).status_code == 200


def test_register_sets_interval_by_level_and_returns_a_working_key(
    client: TestClient, tenant: TenantHandle
) -> None:
    for level, days in {"critical": 30, "high": 60, "medium": 90, "low": 180}.items():
        key = register(client, tenant, security_level=level)
        assert key["rotation_interval_days"] == days
        assert key["scopes"] == ["tenant:write"]  # the caller's by default
        assert works(client, tenant, key["secret"])
    reader = register(client, tenant, scopes=["tenant:read"])
    assert reader["scopes"] == ["tenant:read"]


def test_register_rejects_bad_input(client: TestClient, tenant: TenantHandle) -> None:
    for body in (
        {"name": "x", "security_level": "extreme"},
        {"name": "x", "kind": "password"},
        {"name": "x", "scopes": ["admin"]},
        {"name": "x", "kind": "external"},  # external needs its secret
        {"name": "x", "kind": "webhook_secret", "scopes": ["tenant:read"]},
        {"name": "x", "secret": "s" * 20},  # only external keys take a secret
        {"name": ""},
    ):
        response = client.post(f"{BASE}/register", json=body, headers=tenant.headers)
        assert response.status_code == 422, body
        assert response.json()["errors"]


def test_rotation_without_grace_kills_the_old_key_at_once(
    client: TestClient, tenant: TenantHandle
) -> None:
    key = register(client, tenant, security_level="high")
    response = client.post(f"{BASE}/{key['id']}/rotate", json={}, headers=tenant.headers)
    assert response.status_code == 200
    new = response.json()["key"]
    assert new["generation"] == 2 and new["lineage_id"] == key["id"]
    assert not works(client, tenant, key["secret"])
    assert works(client, tenant, new["secret"])
    again = client.post(f"{BASE}/{key['id']}/rotate", json={}, headers=tenant.headers)
    assert again.status_code == 409


def test_rotation_with_grace_keeps_the_old_key_until_then_and_never_after(
    client: TestClient, tenant: TenantHandle
) -> None:
    key = register(client, tenant, security_level="critical")
    response = client.post(
        f"{BASE}/{key['id']}/rotate", json={"grace_seconds": 2}, headers=tenant.headers
    )
    new = response.json()["key"]
    assert works(client, tenant, key["secret"]) and works(client, tenant, new["secret"])
    time.sleep(2.2)
    assert not works(client, tenant, key["secret"])
    assert works(client, tenant, new["secret"])
    bad = client.post(
        f"{BASE}/{new['id']}/rotate", json={"grace_seconds": -1}, headers=tenant.headers
    )
    assert bad.status_code == 422


def test_due_rotation_auto_rotate_and_report(
    client: TestClient, tenant: TenantHandle, session_factory
) -> None:  # type: ignore[no-untyped-def]
    overdue = register(client, tenant, security_level="critical", kind="webhook_secret")
    soon = register(client, tenant, security_level="high")
    later = register(client, tenant, security_level="low")
    external = register(
        client, tenant, security_level="medium", kind="external", secret="third-party-0123456789"
    )
    now = utcnow()
    with write_transaction(session_factory) as s:
        s.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(overdue["id"]))
            .values(created_at=now - timedelta(days=40))
        )
        s.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(soon["id"]))
            .values(created_at=now - timedelta(days=57))
        )
        s.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(external["id"]))
            .values(created_at=now - timedelta(days=100))
        )

    due = client.get(
        f"{BASE}/due-rotation", params={"within_days": 7}, headers=tenant.headers
    ).json()
    by_id = {k["id"]: k for k in due["keys"]}
    assert set(by_id) == {overdue["id"], soon["id"], external["id"]}
    assert by_id[overdue["id"]]["overdue"] and by_id[overdue["id"]]["overdue_days"] == 10
    assert not by_id[soon["id"]]["overdue"] and by_id[soon["id"]]["days_until_due"] == 2
    assert later["id"] not in by_id

    result = client.post(
        f"{BASE}/auto-rotate", json={"grace_seconds": 0}, headers=tenant.headers
    ).json()
    rotated = {r["previous_id"] for r in result["rotated"]}
    assert rotated == {overdue["id"]}  # external keys need their new secret from a person
    new_secret = next(r for r in result["rotated"])["key"]["secret"]
    new_id = next(r for r in result["rotated"])["key"]["id"]
    revealed = client.get(f"{BASE}/{new_id}/secret", headers=tenant.headers).json()["secret"]
    assert revealed == new_secret and new_secret.startswith("whsec_")

    with session_factory() as s:
        decisions = s.scalars(select(Decision).where(Decision.kind == "key_rotation")).all()
    assert [d.subject_id for d in decisions] == [overdue["id"]]

    report = client.get(f"{BASE}/report", headers=tenant.headers).json()
    assert report["overdue"] == 1  # the external key
    entry = next(e for e in report["keys"] if e["lineage_id"] == overdue["id"])
    assert entry["rotations"] == 1 and [h["generation"] for h in entry["history"]] == [1, 2]
    assert [a["action"] for a in entry["audit"]] == ["key.created", "key.rotated"]
    assert entry["overdue_days"] == 0 and entry["age_days"] == 0


def test_operator_sees_every_tenants_keys(
    client: TestClient, admin_key: str, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    register(client, tenant, security_level="low")
    register(client, other_tenant, security_level="low")
    everyone = client.get(f"{BASE}/report", headers=bearer(admin_key)).json()
    assert {k["current"]["tenant_id"] for k in everyone["keys"]} == {tenant.id, other_tenant.id}
    one = client.get(
        f"{BASE}/report", headers=bearer(admin_key, **{"X-Tenant": tenant.slug})
    ).json()
    assert {k["current"]["tenant_id"] for k in one["keys"]} == {tenant.id}
    mine = client.get(f"{BASE}/report", headers=tenant.headers).json()
    assert {k["current"]["tenant_id"] for k in mine["keys"]} == {tenant.id}


def test_revoke_and_list(client: TestClient, tenant: TenantHandle) -> None:
    key = register(client, tenant)
    assert client.post(f"{BASE}/{key['id']}/revoke", headers=tenant.headers).status_code == 200
    assert not works(client, tenant, key["secret"])
    listed = client.get(BASE, params={"active": True}, headers=tenant.headers).json()["items"]
    assert key["id"] not in {k["id"] for k in listed}
    assert all("secret" not in k for k in listed)
