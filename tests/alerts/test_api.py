"""The alert channels API: create, read, change and delete channels, bad input as problem+json
that changes nothing, the Slack URL never shown whole, and a test send against real servers."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from aethercrown.alerts.models import AlertChannel, AlertDelivery
from tests.alerts.conftest import BASE, Mailbox, SlackReceiver
from tests.conftest import TenantHandle


def _slack(client: TestClient, tenant: TenantHandle, url: str, **extra: Any) -> dict[str, Any]:
    response = client.post(
        BASE,
        json={"name": "ops", "kind": "slack", "webhook_url": url, **extra},
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def _count(session_factory, model: type) -> int:  # type: ignore[no-untyped-def]
    with session_factory() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_channels_are_created_listed_changed_and_deleted(
    client: TestClient, tenant: TenantHandle, slack: SlackReceiver
) -> None:
    made = _slack(
        client,
        tenant,
        slack.url,
        event_types=["usage.alert.*", "sla.breach"],
        min_severity="warning",
    )
    assert made["kind"] == "slack" and made["enabled"] is True
    assert made["event_types"] == ["usage.alert.*", "sla.breach"]
    assert made["min_severity"] == "warning"
    # The URL's path is its credential: only the host and its last characters are shown.
    assert "secret" not in made["webhook_url"] and made["webhook_url"].endswith("…XXXX")
    assert made["webhook_url"].startswith("http://127.0.0.1/")
    email = client.post(
        BASE,
        json={"name": "finance", "kind": "email", "recipients": ["cfo@acme.example"]},
        headers=tenant.headers,
    )
    assert email.status_code == 201
    listed = client.get(BASE, headers=tenant.headers).json()
    assert [c["name"] for c in listed] == ["finance", "ops"]
    one = client.get(f"{BASE}/{made['id']}", headers=tenant.headers).json()
    assert one == made
    changed = client.patch(
        f"{BASE}/{made['id']}",
        json={"enabled": False, "event_types": [], "name": "ops-2"},
        headers=tenant.headers,
    )
    assert changed.status_code == 200
    assert changed.json()["enabled"] is False and changed.json()["event_types"] == []
    assert changed.json()["name"] == "ops-2" and changed.json()["min_severity"] == "warning"
    assert client.delete(f"{BASE}/{made['id']}", headers=tenant.headers).status_code == 204
    assert client.get(f"{BASE}/{made['id']}", headers=tenant.headers).status_code == 404
    assert [c["name"] for c in client.get(BASE, headers=tenant.headers).json()] == ["finance"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "kind": "slack"}, None),  # no URL
        ({"name": "x", "kind": "slack", "webhook_url": "http://hooks.example/x"}, "webhook_url"),
        ({"name": "x", "kind": "slack", "webhook_url": "https://10.0.0.5/x"}, "webhook_url"),
        ({"name": "x", "kind": "slack", "webhook_url": "https://u:p@hooks.example/x"}, None),
        ({"name": "x", "kind": "slack", "webhook_url": "not a url"}, "webhook_url"),
        ({"name": "x", "kind": "email"}, None),  # no recipients
        ({"name": "x", "kind": "email", "recipients": ["not-an-address"]}, None),
        ({"name": "x", "kind": "email", "recipients": []}, None),
        ({"name": "x", "kind": "pager", "recipients": ["a@b.example"]}, None),
        ({"name": "", "kind": "email", "recipients": ["a@b.example"]}, None),
        (
            {"name": "x", "kind": "email", "recipients": ["a@b.example"], "min_severity": "loud"},
            None,
        ),
        (
            {"name": "x", "kind": "email", "recipients": ["a@b.example"], "event_types": ["nope"]},
            None,
        ),
        (
            {"name": "x", "kind": "email", "recipients": ["a@b.example"], "event_types": ["x.*"]},
            None,
        ),
        ({"name": "x", "kind": "email", "recipients": ["a@b.example"], "colour": "red"}, None),
        (
            {
                "name": "x",
                "kind": "email",
                "recipients": ["a@b.example"],
                "webhook_url": "https://hooks.example/x",
            },
            None,
        ),
    ],
)
def test_bad_input_is_a_problem_and_stores_nothing(
    client: TestClient,
    tenant: TenantHandle,
    session_factory,
    body: dict[str, Any],
    field: str | None,
) -> None:  # type: ignore[no-untyped-def]
    response = client.post(BASE, json=body, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    if field is not None:
        assert field in response.text
    assert _count(session_factory, AlertChannel) == 0


def test_names_are_unique_per_tenant_and_kinds_keep_their_fields(
    client: TestClient, tenant: TenantHandle, other_tenant: TenantHandle, slack: SlackReceiver
) -> None:
    made = _slack(client, tenant, slack.url)
    again = client.post(
        BASE,
        json={"name": "ops", "kind": "slack", "webhook_url": slack.url},
        headers=tenant.headers,
    )
    assert again.status_code == 409
    assert _slack(client, other_tenant, slack.url)["name"] == "ops"  # another tenant's namespace
    for body in (
        {"recipients": ["a@b.example"]},  # a slack channel has none
        {"webhook_url": "http://10.1.1.1/x"},
        {"event_types": ["unknown.event"]},
        {"name": None},
        {"kind": "email"},
    ):
        response = client.patch(f"{BASE}/{made['id']}", json=body, headers=tenant.headers)
        assert response.status_code == 422, (body, response.text)
    assert client.get(f"{BASE}/{made['id']}", headers=tenant.headers).json() == made


def test_another_tenant_sees_none_of_it(
    client: TestClient, tenant: TenantHandle, other_tenant: TenantHandle, slack: SlackReceiver
) -> None:
    made = _slack(client, tenant, slack.url)
    assert client.get(BASE, headers=other_tenant.headers).json() == []
    for method, path in (
        ("GET", f"{BASE}/{made['id']}"),
        ("PATCH", f"{BASE}/{made['id']}"),
        ("DELETE", f"{BASE}/{made['id']}"),
        ("POST", f"{BASE}/{made['id']}/test"),
    ):
        response = client.request(method, path, json={}, headers=other_tenant.headers)
        assert response.status_code == 404, (method, path)
    assert slack.bodies == []
    assert client.get(f"{BASE}/deliveries", headers=other_tenant.headers).json()["items"] == []


def test_the_test_action_sends_now_and_reports_the_result(
    client: TestClient,
    tenant: TenantHandle,
    slack: SlackReceiver,
    mailbox: Mailbox,
    session_factory,
) -> None:  # type: ignore[no-untyped-def]
    made = _slack(client, tenant, slack.url, enabled=False)  # a test goes out even when off
    result = client.post(f"{BASE}/{made['id']}/test", headers=tenant.headers)
    assert result.status_code == 200
    assert result.json()["delivered"] is True and result.json()["status_code"] == 200
    assert slack.bodies[0]["blocks"][0]["type"] == "header"
    assert "Test message" in slack.bodies[0]["blocks"][0]["text"]["text"]
    slack.answers.append((404, {}, "no_service"))
    failed = client.post(f"{BASE}/{made['id']}/test", headers=tenant.headers).json()
    assert failed["delivered"] is False and failed["status_code"] == 404
    assert "no_service" in failed["error"]
    email = client.post(
        BASE,
        json={"name": "mail", "kind": "email", "recipients": ["ops@acme.example"]},
        headers=tenant.headers,
    ).json()
    sent = client.post(f"{BASE}/{email['id']}/test", headers=tenant.headers).json()
    assert sent["delivered"] is True and sent["status_code"] == 250
    [(to, message)] = mailbox.messages
    assert to == ["ops@acme.example"] and "Test message" in message["Subject"]
    # Each test is in the log, never retried.
    log = client.get(f"{BASE}/deliveries", headers=tenant.headers).json()["items"]
    assert [(d["event_type"], d["status"], d["attempts"]) for d in log] == [
        ("alert.test", "delivered", 1),
        ("alert.test", "failed", 1),
        ("alert.test", "delivered", 1),
    ]
    only_failed = client.get(
        f"{BASE}/deliveries", params={"status": "failed"}, headers=tenant.headers
    ).json()["items"]
    assert len(only_failed) == 1 and only_failed[0]["last_status_code"] == 404
    bad = client.get(f"{BASE}/deliveries", params={"status": "lost"}, headers=tenant.headers)
    assert bad.status_code == 422
    assert _count(session_factory, AlertDelivery) == 3
