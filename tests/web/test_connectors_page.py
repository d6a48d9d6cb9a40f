"""The console's Connectors page: Stripe, Segment and ad-spend sources as a new tenant and a
connected one see them, the dead events' buttons, and one tenant never seeing another's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aethercrown.connectors import stripe_service
from tests.conftest import TenantHandle
from tests.connectors.conftest import connect_stripe, send_event
from tests.connectors.stripe_fakes import WEBHOOK_SECRET, customer, event
from tests.web.test_pages import ORIGIN, sign_in

PAGE = "/console/connectors"
JAN = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())


def dead_events(client: TestClient, tenant: TenantHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two events that never map (a customer with no real currency), dead after one attempt,
    and one that maps."""
    settings = stripe_service.get_settings().model_copy(update={"stripe_mapping_max_attempts": 1})
    monkeypatch.setattr(stripe_service, "get_settings", lambda: settings)
    broken = {**customer("cus_broken", JAN, "Broken"), "currency": "not a currency"}
    for e in (
        event("evt_good", "customer.created", JAN, customer("cus_good", JAN, "Good")),
        event("evt_dead1", "customer.created", JAN, broken),
        event("evt_dead2", "customer.updated", JAN + 1, broken),
    ):
        assert send_event(client, tenant, e).status_code == 200


def _status(client: TestClient, tenant: TenantHandle) -> dict[str, Any]:
    response = client.get("/api/v1/connectors/stripe/mapping", headers=tenant.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_new_tenant_sees_how_to_connect_each_source(
    client: TestClient, tenant: TenantHandle
) -> None:
    sign_in(client, tenant.key)
    page = client.get(PAGE)
    assert page.status_code == 200, page.text[:500]
    assert 'aria-current="page">Connectors' in page.text.replace("\n", "")
    assert "Not connected — <code>PUT /api/v1/connectors/stripe</code>" in page.text
    assert f"http://testserver/api/v1/connectors/stripe/webhook/{tenant.id}" in page.text
    assert "No source yet" in page.text and "No rule yet" in page.text
    assert "http://testserver/v1" in page.text
    assert 'id="stripe-dead"' not in page.text and 'id="stripe-mapping"' not in page.text


def test_the_stripe_connection_events_and_dead_events_are_shown_and_acted_on(
    client: TestClient,
    tenant: TenantHandle,
    other_tenant: TenantHandle,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connect_stripe(client, tenant, api_key="sk_test_123")
    dead_events(client, tenant, monkeypatch)
    sign_in(client, tenant.key)
    page = client.get(PAGE).text
    assert "Connected" in page and WEBHOOK_SECRET not in page and "sk_test_123" not in page
    assert "stored (encrypted)" in page and ">test<" in page  # the events' livemode
    mapping = page.split('id="stripe-mapping"')[1].split("</table>")[0]
    # Stored 3, mapped 1, pending 0, failing 0, dead 2, discarded 0.
    assert "<td>3</td><td>1</td><td>0</td><td>0</td><td>2</td><td>0</td>" in mapping
    assert "3 / 3" in page  # webhook events in 24 h / all
    dead = page.split('id="stripe-dead"')[1].split("</table>")[0]
    assert "evt_dead1" in dead and "evt_dead2" in dead and "evt_good" not in dead
    assert "cus_broken" in dead and "currency" in dead
    # A form post from another site changes nothing; a bad one is 422 and changes nothing.
    form = "/console/connectors/stripe/events/retry"
    assert client.post(form, data={"event_id": "evt_dead1"}).status_code == 403
    for data in ({}, {"event_id": "evt_dead1", "all": "1"}, {"event_id": "x" * 300}):
        bad = client.post(form, data=data, headers=ORIGIN)
        assert bad.status_code == 422 and "problem+json" in bad.headers["content-type"]
    wrong = client.post(
        "/console/connectors/stripe/events/delete", data={"all": "1"}, headers=ORIGIN
    )
    assert wrong.status_code == 422
    not_dead = client.post(form, data={"event_id": "evt_good"}, headers=ORIGIN)
    assert not_dead.status_code == 409
    assert _status(client, tenant)["dead"] == 2
    # One retried, then every other one discarded.
    retried = client.post(
        form, data={"event_id": "evt_dead1"}, headers=ORIGIN, follow_redirects=False
    )
    assert retried.status_code == 303 and "notice=stripe-retry" in retried.headers["location"]
    assert [_status(client, tenant)[k] for k in ("pending", "dead")] == [1, 1]
    assert "Put back in the mapping queue" in client.get(retried.headers["location"]).text
    discarded = client.post(
        "/console/connectors/stripe/events/discard",
        data={"all": "1"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert discarded.status_code == 303
    assert [_status(client, tenant)[k] for k in ("dead", "discarded")] == [0, 1]
    again = client.post(form, data={"all": "1"}, headers=ORIGIN, follow_redirects=False)
    assert "notice=stripe-none" in again.headers["location"]
    assert "No dead event" in client.get(PAGE).text
    # Another tenant signed in sees none of this tenant's Stripe data.
    client.cookies.clear()
    sign_in(client, other_tenant.key)
    other = client.get(PAGE).text
    assert "Not connected" in other and "evt_dead" not in other and "cus_broken" not in other
    assert f"webhook/{other_tenant.id}" in other and tenant.id not in other


def test_segment_sources_and_channel_rules_are_listed_per_tenant(
    client: TestClient, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    created = client.post(
        "/api/v1/connectors/segment/sources",
        json={"name": "mobile checkout"},
        headers=tenant.headers,
    )
    assert created.status_code == 201, created.text
    key = created.json()["write_key"]
    batch = {
        "batch": [
            {"type": "group", "userId": "u1", "groupId": "acct-1", "messageId": "m1"},
            {"type": "identify", "userId": "u1", "messageId": "m2", "traits": {"name": "Ann"}},
        ]
    }
    sent = client.post("/v1/batch", json=batch, auth=(key, ""))
    assert sent.status_code == 200, sent.text
    rules = [{"pattern": "brand", "channel": "search-brand", "source": "google-ads"}]
    put = client.put(
        "/api/v1/connectors/marketing/channel-rules", json=rules, headers=tenant.headers
    )
    assert put.status_code == 200, put.text
    sign_in(client, tenant.key)
    page = client.get(PAGE).text
    sources = page.split('id="segment-sources"')[1].split("</table>")[0]
    assert "mobile checkout" in sources and key[:10] in sources and key not in page
    assert "<td>2 / 2</td>" in sources and "live" in sources
    assert "1 tracked user," in page
    assert "search-brand" in page.split('id="channel-rules"')[1]
    client.cookies.clear()
    sign_in(client, other_tenant.key)
    other = client.get(PAGE).text
    assert "mobile checkout" not in other and key[:10] not in other and "search-brand" not in other
    assert "No source yet" in other and "0 tracked users" in other


def test_a_read_only_key_sees_the_page_but_cannot_act(
    client: TestClient, tenant: TenantHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect_stripe(client, tenant)
    dead_events(client, tenant, monkeypatch)
    response = client.post(
        "/api/v1/operational/security/keys/register",
        json={
            "name": "viewer",
            "kind": "api_key",
            "security_level": "low",
            "scopes": ["tenant:read"],
        },
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text
    sign_in(client, response.json()["secret"])
    assert "evt_dead1" in client.get(PAGE).text
    refused = client.post(
        "/console/connectors/stripe/events/retry",
        data={"all": "1"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert refused.status_code == 303 and refused.headers["location"] != PAGE
    assert _status(client, tenant)["dead"] == 2
