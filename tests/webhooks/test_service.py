import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from aethercrown.clock import utcnow
from aethercrown.db.session import write_transaction
from aethercrown.webhooks import service as webhooks
from aethercrown.webhooks.models import WebhookDelivery
from aethercrown.webhooks.service import deliver_due, enqueue_webhook, verify
from tests.conftest import TenantHandle


class Receiver:
    """A real HTTP endpoint on loopback that records requests and answers a chosen status;
    ``hold()`` makes it a slow receiver: it sleeps before answering until ``release()``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.arrived = threading.Event()
        self._released = threading.Event()
        self._released.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                receiver.arrived.set()
                receiver._released.wait(4.5)  # under the sender's 5 s timeout
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def hold(self) -> None:
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def close(self) -> None:
        self.release()
        self.server.shutdown()


def standard_webhook_verifies(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    """Checked by the ``standardwebhooks`` library: its ``verify`` when the test clock reads the
    wall clock (the library reads the wall clock for the timestamp's age), else its ``sign`` for
    the delivery's own timestamp against each signature sent."""
    hook = Webhook(secret.encode())
    if abs((utcnow() - datetime.now(UTC)).total_seconds()) < 60:
        try:
            hook.verify(body, headers)
        except WebhookVerificationError:
            return False
        return True
    stamp = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
    expected = hook.sign(headers["webhook-id"], stamp, body.decode()).split(",")[1]
    return expected in [s.split(",")[1] for s in headers["webhook-signature"].split(" ")]


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
    with write_transaction(session_factory) as s:
        delivery = enqueue_webhook(s, tenant.uid, "churn.campaign_created", {"customer": "c-1"})
        assert delivery is not None
    assert deliver_due(session_factory) == {"delivered": 1, "retrying": 0, "failed": 0}
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
    assert standard_webhook_verifies(secret, request["body"], request["headers"])
    assert not standard_webhook_verifies("wrong", request["body"], request["headers"])
    assert request["headers"]["webhook-id"] == str(delivery.id)
    assert deliver_due(session_factory) == {"delivered": 0, "retrying": 0, "failed": 0}  # sent once


def test_failures_are_retried_with_backoff_then_given_up(
    client: TestClient, tenant: TenantHandle, receiver: Receiver, session_factory
) -> None:  # type: ignore[no-untyped-def]
    _hooked(client, tenant, receiver.url)
    receiver.status = 500
    with write_transaction(session_factory) as s:
        enqueue_webhook(s, tenant.uid, "usage.alert", {"level": "critical"})
    now = utcnow()
    for attempt in range(1, webhooks.MAX_ATTEMPTS + 1):
        counts = deliver_due(session_factory, now)
        expected = "failed" if attempt == webhooks.MAX_ATTEMPTS else "retrying"
        assert counts[expected] == 1
        with session_factory() as s:
            row = s.scalars(select(WebhookDelivery)).one()
        assert row.attempts == attempt and row.last_status_code == 500
        if expected == "retrying":
            assert row.next_attempt_at - now == webhooks.backoff(attempt)
            # not due yet: nothing is sent early
            assert (
                deliver_due(
                    session_factory, now + webhooks.backoff(attempt) - timedelta(seconds=1)
                )["retrying"]
                == 0
            )
            now = row.next_attempt_at
    assert row.status == "failed" and len(receiver.requests) == webhooks.MAX_ATTEMPTS


def test_grace_period_signs_with_both_secrets_and_no_url_means_no_event(
    client: TestClient, tenant: TenantHandle, receiver: Receiver, session_factory
) -> None:  # type: ignore[no-untyped-def]
    with write_transaction(session_factory) as s:
        assert enqueue_webhook(s, tenant.uid, "x", {}) is None
    _hooked(client, tenant, receiver.url)
    base = "/api/v1/operational/security/keys"
    old = client.post(
        f"{base}/register", json={"name": "wh", "kind": "webhook_secret"}, headers=tenant.headers
    ).json()
    new = client.post(
        f"{base}/{old['id']}/rotate", json={"grace_seconds": 3600}, headers=tenant.headers
    ).json()["key"]
    with write_transaction(session_factory) as s:
        enqueue_webhook(s, tenant.uid, "x", {"n": 1})
    deliver_due(session_factory)
    request = receiver.requests[0]
    header = request["headers"]["AetherCrown-Signature"]
    assert header.count("v1=") == 2
    assert verify(header, old["secret"], request["body"]) and verify(
        header, new["secret"], request["body"]
    )
    assert request["headers"]["webhook-signature"].count("v1,") == 2
    for secret in (old["secret"], new["secret"]):
        assert standard_webhook_verifies(secret, request["body"], request["headers"])


def test_verify_rejects_stale_timestamps() -> None:
    body = b"{}"
    header = webhooks.signature_header(["s"], 1_000, body)
    assert verify(header, "s", body, now=1_000 + 10)
    assert not verify(header, "s", body, now=1_000 + webhooks.TOLERANCE_SECONDS + 1)
    assert not verify("garbage", "s", body)


def test_a_slow_receiver_does_not_block_a_concurrent_write(
    client: TestClient, tenant: TenantHandle, receiver: Receiver, session_factory
) -> None:  # type: ignore[no-untyped-def]
    """Delivery calls the receiver with no transaction open: while a receiver takes its time,
    other writers (a tenant rename here) go ahead instead of queueing behind it."""
    _hooked(client, tenant, receiver.url)
    with write_transaction(session_factory) as s:
        enqueue_webhook(s, tenant.uid, "usage.alert", {"level": "warning"})
    receiver.hold()
    counts: dict[str, int] = {}
    sender = threading.Thread(target=lambda: counts.update(deliver_due(session_factory)))
    sender.start()
    try:
        assert receiver.arrived.wait(10)
        renamed = client.patch(
            f"/api/v1/tenants/{tenant.id}", json={"name": "Acme Renamed"}, headers=tenant.headers
        )
        assert renamed.status_code == 200, renamed.text
        # Still inside the receiver: the write did not wait for the delivery.
        assert sender.is_alive() and not counts
        with write_transaction(session_factory, timeout=1) as s:  # the write lock is free
            assert s.get(WebhookDelivery, _only_delivery(s).id) is not None
    finally:
        receiver.release()
        sender.join(10)
    assert counts == {"delivered": 1, "retrying": 0, "failed": 0}
    with session_factory() as s:
        row = _only_delivery(s)
        assert row.status == "delivered" and row.claimed_until is None and row.attempts == 1


def _only_delivery(s: Any) -> WebhookDelivery:
    return s.scalars(select(WebhookDelivery)).one()  # type: ignore[no-any-return]


def test_a_lease_holds_until_it_expires_then_the_delivery_is_claimed_again(
    client: TestClient, tenant: TenantHandle, receiver: Receiver, session_factory
) -> None:  # type: ignore[no-untyped-def]
    """A runner that claimed a delivery and died leaves its lease: nobody sends the delivery
    while the lease holds (no double delivery), anybody may once it expired (crash-safe)."""
    _hooked(client, tenant, receiver.url)
    with write_transaction(session_factory) as s:
        enqueue_webhook(s, tenant.uid, "usage.alert", {"level": "warning"})
    now = utcnow()
    with write_transaction(session_factory) as s:  # what the dead runner's claim left behind
        row = _only_delivery(s)
        row.claimed_until = now + timedelta(minutes=5)
        row.claim_token = "dead-runner"
    assert deliver_due(session_factory, now) == {"delivered": 0, "retrying": 0, "failed": 0}
    assert deliver_due(session_factory, now + timedelta(minutes=4))["delivered"] == 0
    assert receiver.requests == []
    later = now + timedelta(minutes=5, seconds=1)
    assert deliver_due(session_factory, later) == {"delivered": 1, "retrying": 0, "failed": 0}
    assert len(receiver.requests) == 1
    with session_factory() as s:
        row = _only_delivery(s)
        assert row.status == "delivered" and row.attempts == 1 and row.claim_token is None


def test_an_outcome_is_recorded_only_by_the_lease_holder(
    client: TestClient, tenant: TenantHandle, receiver: Receiver, session_factory
) -> None:  # type: ignore[no-untyped-def]
    """A runner whose lease expired while its receiver was slow, and was taken over, does not
    record over the new holder's claim."""
    _hooked(client, tenant, receiver.url)
    with write_transaction(session_factory) as s:
        enqueue_webhook(s, tenant.uid, "usage.alert", {"level": "warning"})
    receiver.hold()
    counts: dict[str, int] = {}
    slow = threading.Thread(
        target=lambda: counts.update(
            deliver_due(session_factory, utcnow(), lease=timedelta(seconds=1))
        )
    )
    slow.start()
    try:
        assert receiver.arrived.wait(10)
        with write_transaction(session_factory) as s:  # another runner took the lease over
            row = _only_delivery(s)
            assert row.claim_token is not None
            row.claim_token = "new-holder"
    finally:
        receiver.release()
        slow.join(10)
    assert counts == {"delivered": 0, "retrying": 0, "failed": 0}
    with session_factory() as s:
        row = _only_delivery(s)
        assert row.status == "pending" and row.attempts == 0 and row.claim_token == "new-holder"
