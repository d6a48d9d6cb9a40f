from collections.abc import Iterator

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from aethercrown.metering.models import UsageAlert
from aethercrown.webhooks.models import WebhookDelivery
from aethercrown.webhooks.service import deliver_due, verify
from tests.conftest import TenantHandle
from tests.webhooks.test_service import Receiver

TRACK = "/api/v1/enterprise/usage/track"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def calls(client: TestClient, tenant: TenantHandle, ident: str, value: float) -> list[str]:
    """Track one event, then list the alerts fired so far (listing folds the event first)."""
    body = {"id": ident, "customer": "c-1", "metric": "api_calls", "value": value}
    response = client.post(TRACK, json=body, headers=tenant.headers)
    assert response.status_code == 200, response.text
    listed = client.get("/api/v1/enterprise/usage/alerts", headers=tenant.headers)
    assert listed.status_code == 200, listed.text
    return [a["level"] for a in reversed(listed.json()["items"])]


def test_each_crossing_fires_once_and_arrives_as_a_signed_webhook(
    client: TestClient,
    tenant: TenantHandle,
    customers,
    receiver: Receiver,
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    customers(tenant.uid, "c-1")  # starter: 10,000 api_calls a month
    hooked = client.patch(
        f"/api/v1/tenants/{tenant.id}", json={"webhook_url": receiver.url}, headers=tenant.headers
    )
    assert hooked.status_code == 200
    assert calls(client, tenant, "a", 7_999) == []
    assert calls(client, tenant, "b", 1) == ["warning"]  # 8,000 = 80%
    assert calls(client, tenant, "c", 1_499) == ["warning"]  # 9,499 < 95%
    assert calls(client, tenant, "d", 1) == ["warning", "critical"]  # 9,500 = 95%
    # Over capacity: both fired already; and a duplicate event changes nothing.
    assert calls(client, tenant, "e", 5_000) == ["warning", "critical"]
    assert calls(client, tenant, "b", 1) == ["warning", "critical"]

    with session_factory() as s:
        alerts = {a.level: a for a in s.scalars(select(UsageAlert))}
        assert set(alerts) == {"warning", "critical"}
        assert alerts["warning"].usage == 8_000 and alerts["critical"].usage == 9_500
        assert all(a.webhook_delivery_id is not None for a in alerts.values())
    assert deliver_due(session_factory)["delivered"] == 2
    keys = client.get(
        "/api/v1/operational/security/keys",
        params={"kind": "webhook_secret"},
        headers=tenant.headers,
    ).json()["items"]
    secret = client.get(
        f"/api/v1/operational/security/keys/{keys[0]['id']}/secret", headers=tenant.headers
    ).json()["secret"]
    received = {}
    for request in receiver.requests:
        assert verify(request["headers"]["AetherCrown-Signature"], secret, request["body"])
        body = orjson.loads(request["body"])
        received[body["type"]] = body["data"]
    assert received["usage.alert.warning"]["usage"] == 8_000
    assert received["usage.alert.critical"]["percent_of_capacity"] == 95.0
    assert received["usage.alert.critical"]["customer"] == "c-1"
    with session_factory() as s:
        statuses = {d.status for d in s.scalars(select(WebhookDelivery))}
    assert statuses == {"delivered"}


def test_delivery_log_lists_the_tenants_deliveries_only(
    client: TestClient,
    tenant: TenantHandle,
    other_tenant: TenantHandle,
    customers,
    receiver: Receiver,  # type: ignore[no-untyped-def]
) -> None:
    customers(tenant.uid, "c-1")
    client.patch(
        f"/api/v1/tenants/{tenant.id}", json={"webhook_url": receiver.url}, headers=tenant.headers
    )
    calls(client, tenant, "a", 9_600)
    url = "/api/v1/webhooks/deliveries"
    items = client.get(url, headers=tenant.headers).json()["items"]
    assert sorted(d["event_type"] for d in items) == ["usage.alert.critical", "usage.alert.warning"]
    assert all(d["status"] == "pending" and d["attempts"] == 0 for d in items)
    page = client.get(url, params={"limit": 1}, headers=tenant.headers).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = client.get(
        url, params={"limit": 1, "cursor": page["next_cursor"]}, headers=tenant.headers
    ).json()
    assert rest["items"][0]["id"] != page["items"][0]["id"]
    filtered = client.get(
        url, params={"event_type": "usage.alert.critical"}, headers=tenant.headers
    )
    assert len(filtered.json()["items"]) == 1
    assert client.get(url, headers=other_tenant.headers).json()["items"] == []
    assert client.get(url, params={"status": "lost"}, headers=tenant.headers).status_code == 422
