import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from aethercrown.clock import utcnow
from aethercrown.db.engine import transaction
from aethercrown.webhooks import service as webhooks
from aethercrown.webhooks.service import WebhookDelivery, deliver_due, enqueue_webhook, verify
from tests.conftest import TenantHandle


class Receiver:
    """A real HTTP endpoint on loopback that records requests and answers a chosen status."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _hooked(client: TestClient, tenant: TenantHandle, url: str) -> None:
    response = client.patch(
        f"/api/v1/tenants/{tenant.id}", json={"webhook_url": url}, headers=tenant.headers
    )
    assert response.status_code == 200


def test_signed_delivery_that_the_receiver_can_verify(
    client: TestClient, tenant: TenantHandle, receiver: Receiver, session_factory
) -> None:  # type: ignore[no-untyped-def]
    _hooked(client, tenant, receiver.url)
    with transaction(session_factory) as s:
        delivery = enqueue_webhook(s, tenant.uid, "churn.campaign_created", {"customer": "c-1"})
        assert delivery is not None
    with transaction(session_factory) as s:
        assert deliver_due(s) == {"delivered": 1, "retrying": 0, "failed": 0}
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request["headers"]["AetherCrown-Event"] == "churn.campaign_created"
    keys = client.get(
        "/api/v1/operational/security/keys",
        params={"kind": "webhook_secret"},
        headers=tenant.headers,
    ).json()["items"]
    secret = client.get(
        f"/api/v1/operational/security/keys/{keys[0]['id']}/secret", headers=tenant.headers
    ).json()["secret"]
    assert verify(request["headers"]["AetherCrown-Signature"], secret, request["body"])
    assert not verify(request["headers"]["AetherCrown-Signature"], "wrong", request["body"])
    with transaction(session_factory) as s:
        assert deliver_due(s) == {"delivered": 0, "retrying": 0, "failed": 0}  # sent once


def test_failures_are_retried_with_backoff_then_given_up(
    client: TestClient, tenant: TenantHandle, receiver: Receiver, session_factory
) -> None:  # type: ignore[no-untyped-def]
    _hooked(client, tenant, receiver.url)
    receiver.status = 500
    with transaction(session_factory) as s:
        enqueue_webhook(s, tenant.uid, "usage.alert", {"level": "critical"})
    now = utcnow()
    for attempt in range(1, webhooks.MAX_ATTEMPTS + 1):
        with transaction(session_factory) as s:
            counts = deliver_due(s, now)
        expected = "failed" if attempt == webhooks.MAX_ATTEMPTS else "retrying"
        assert counts[expected] == 1
        with session_factory() as s:
            row = s.scalars(select(WebhookDelivery)).one()
        assert row.attempts == attempt and row.last_status_code == 500
        if expected == "retrying":
            assert row.next_attempt_at - now == webhooks.backoff(attempt)
            with transaction(session_factory) as s:  # not due yet: nothing is sent early
                assert (
                    deliver_due(s, now + webhooks.backoff(attempt) - timedelta(seconds=1))[
                        "retrying"
                    ]
                    == 0
                )
            now = row.next_attempt_at
    assert row.status == "failed" and len(receiver.requests) == webhooks.MAX_ATTEMPTS


def test_grace_period_signs_with_both_secrets_and_no_url_means_no_event(
    client: TestClient, tenant: TenantHandle, receiver: Receiver, session_factory
) -> None:  # type: ignore[no-untyped-def]
    with transaction(session_factory) as s:
        assert enqueue_webhook(s, tenant.uid, "x", {}) is None
    _hooked(client, tenant, receiver.url)
    base = "/api/v1/operational/security/keys"
    old = client.post(
        f"{base}/register", json={"name": "wh", "kind": "webhook_secret"}, headers=tenant.headers
    ).json()
    new = client.post(
        f"{base}/{old['id']}/rotate", json={"grace_seconds": 3600}, headers=tenant.headers
    ).json()["key"]
    with transaction(session_factory) as s:
        enqueue_webhook(s, tenant.uid, "x", {"n": 1})
    with transaction(session_factory) as s:
        deliver_due(s)
    request = receiver.requests[0]
    header = request["headers"]["AetherCrown-Signature"]
    assert header.count("v1=") == 2
    assert verify(header, old["secret"], request["body"]) and verify(
        header, new["secret"], request["body"]
    )


def test_verify_rejects_stale_timestamps() -> None:
    body = b"{}"
    header = webhooks.signature_header(["s"], 1_000, body)
    assert verify(header, "s", body, now=1_000 + 10)
    assert not verify(header, "s", body, now=1_000 + webhooks.TOLERANCE_SECONDS + 1)
    assert not verify("garbage", "s", body)
