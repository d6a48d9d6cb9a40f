"""Outbound webhooks: an outbox in the database, signed delivery with retries, a delivery log.

Any domain calls ``enqueue_webhook`` inside its unit of work, so an event is stored exactly when
the decision that caused it is. The ``webhook_delivery`` job sends what is due. Each request is
signed Stripe-style::

    AetherCrown-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

with one ``v1`` per live signing secret, so a receiver keeps verifying through a rotation's grace
period. Each request is also signed in the Standard Webhooks format (the format Svix, Polar and
others use, with verifiers in many languages)::

    webhook-id: <delivery id, the same on every retry>
    webhook-timestamp: <unix seconds>
    webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<raw body>")> [v1,… per secret]

where the key is the secret's UTF-8 bytes (Python: ``standardwebhooks.Webhook(secret.encode())``;
a library that takes ``whsec_<base64>`` gets ``"whsec_" + base64(secret)``). The
``AetherCrown-Signature`` header stays for this release, then goes. The secret is the
tenant's ``webhook_secret`` key (provisioned on first use; readable with
``GET /api/v1/operational/security/keys/{id}/secret``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy.orm import Session, sessionmaker

from aethercrown.alerts import service as alerts
from aethercrown.clock import utcnow
from aethercrown.core.crypto import SecretBox, secret_box
from aethercrown.core.outbox import Attempt, Outbox, RetryPolicy
from aethercrown.core.tenant_repository import find_tenant
from aethercrown.security.service import issue_key, live_keys
from aethercrown.settings import get_settings
from aethercrown.webhooks.models import WebhookDelivery
from aethercrown.webhooks.repository import DeliveryRepository

log = logging.getLogger("aethercrown.webhooks")

SIGNATURE_HEADER = "AetherCrown-Signature"
MAX_ATTEMPTS = 8
BASE_BACKOFF_SECONDS = 30
MAX_BACKOFF_SECONDS = 6 * 3600
TIMEOUT_SECONDS = 5.0
# A receiver should reject signatures older than this (replay protection).
TOLERANCE_SECONDS = 300
_TENANTS = "aethercrown_webhook_tenants"  # session.info: the tenants events were emitted for


POLICY = RetryPolicy(
    max_attempts=MAX_ATTEMPTS, base_seconds=BASE_BACKOFF_SECONDS, max_seconds=MAX_BACKOFF_SECONDS
)
OUTBOX = Outbox(WebhookDelivery, POLICY, "webhooks")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return mac.hexdigest()


def standard_signature(secrets: list[str], message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header: ``v1,<base64>`` per secret, space separated."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(s.encode(), signed, hashlib.sha256).digest()).decode()
        for s in secrets
    )


def signature_header(secrets: list[str], timestamp: int, body: bytes) -> str:
    return ",".join([f"t={timestamp}", *(f"v1={sign(s, timestamp, body)}" for s in secrets)])


def verify(header: str, secret: str, body: bytes, now: float | None = None) -> bool:
    """What a receiver does: a matching v1 signature with a fresh timestamp."""
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    stamps = [v for k, v in parts if k == "t"]
    if not stamps or not stamps[0].isdigit():
        return False
    timestamp = int(stamps[0])
    if abs((now if now is not None else utcnow().timestamp()) - timestamp) > TOLERANCE_SECONDS:
        return False
    expected = sign(secret, timestamp, body)
    return any(k == "v1" and hmac.compare_digest(v, expected) for k, v in parts)


def enqueue_webhook(
    session: Session,
    tenant_id: uuid.UUID,
    event_type: str,
    payload: dict[str, Any],
    decision_id: uuid.UUID | None = None,
) -> WebhookDelivery | None:
    """Store an event for the tenant's endpoint, and for each of its alert channels whose
    filter takes it (``alerts.service.route_event``), in the caller's unit of work. Returns the
    webhook delivery: None when the tenant has no webhook URL."""
    alerts.route_event(session, tenant_id, event_type, payload, decision_id)
    tenant = find_tenant(session, tenant_id)
    # Held for the unit of work: the identity map keeps objects weakly, and a run emitting a
    # thousand events would otherwise query the tenant (flushing the outbox rows added since)
    # once per event.
    session.info.setdefault(_TENANTS, {})[tenant_id] = tenant
    if tenant is None or not tenant.webhook_url:
        return None
    delivery = WebhookDelivery(
        tenant_id=tenant_id,
        event_type=event_type,
        payload=orjson.loads(orjson.dumps(payload, default=str)),
        url=tenant.webhook_url,
        decision_id=decision_id,
    )
    session.add(delivery)
    return delivery


def signing_secrets(session: Session, tenant_id: uuid.UUID, box: SecretBox) -> list[str]:
    """The tenant's live webhook secrets, newest first; provisions one if there is none."""
    keys = live_keys(session, tenant_id, "webhook_secret")
    if not keys:
        issued = issue_key(
            session,
            tenant_id=tenant_id,
            name="webhook signing secret",
            scopes=[],
            kind="webhook_secret",
            security_level="high",
            box=box,
            actor="webhooks",
        )
        return [issued.secret or ""]
    return [box.open(k.encrypted_secret) for k in keys if k.encrypted_secret is not None]


def backoff(attempts: int) -> timedelta:
    return POLICY.backoff(attempts)


@dataclass(frozen=True)
class _Claimed:
    """A delivery taken under lease, with its signed request ready to send."""

    id: uuid.UUID
    url: str
    body: bytes
    headers: dict[str, str]
    attempts: int


def lease_for(limit: int) -> timedelta:
    """Long enough to send a whole batch, each receiver taking its full timeout."""
    return timedelta(seconds=limit * TIMEOUT_SECONDS + 60)


def deliver_due(
    factory: sessionmaker[Session],
    now: datetime | None = None,
    *,
    limit: int = 100,
    client: httpx.Client | None = None,
    box: SecretBox | None = None,
    lease: timedelta | None = None,
) -> dict[str, int]:
    """Send every delivery that is due; record each attempt. Returns counts by outcome.

    Through the shared outbox (``core.outbox``): claimed under a lease in one short write
    unit (and signed there), sent with no transaction open, recorded in another."""
    box = box or secret_box(get_settings())
    # Made on the first send, so a run with nothing due opens no client.
    opened: list[httpx.Client] = []

    def send(delivery: _Claimed) -> Attempt:
        if client is not None:
            return _send(client, delivery)
        if not opened:
            opened.append(httpx.Client(timeout=TIMEOUT_SECONDS))
        return _send(opened[0], delivery)

    def prepare(session: Session, rows: list[WebhookDelivery]) -> list[_Claimed]:
        secrets: dict[uuid.UUID, list[str]] = {}
        claimed = []
        for delivery in rows:
            if delivery.tenant_id not in secrets:
                secrets[delivery.tenant_id] = signing_secrets(session, delivery.tenant_id, box)
            claimed.append(_signed(delivery, secrets[delivery.tenant_id]))
        return claimed

    try:
        return OUTBOX.deliver_due(
            factory,
            prepare,
            send,
            now=now,
            limit=limit,
            lease=lease or lease_for(limit),
        )
    finally:
        for http in opened:
            http.close()


def signed_request(
    secrets: list[str],
    event_id: uuid.UUID,
    event_type: str,
    created: datetime,
    data: dict[str, Any],
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one signed event: what every outbound webhook sends (outbox
    deliveries, and direct pings such as onboarding's support-channel test)."""
    body = orjson.dumps(
        {
            "id": str(event_id),
            "type": event_type,
            "created": int(created.timestamp()),
            "data": data,
        },
        default=str,
    )
    timestamp = int(utcnow().timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "AetherCrown-Webhooks/1",
        "webhook-id": str(event_id),
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_signature(secrets, str(event_id), timestamp, body),
        SIGNATURE_HEADER: signature_header(secrets, timestamp, body),
        "AetherCrown-Event": event_type,
        "AetherCrown-Delivery": str(event_id),
    }
    return body, headers


def _signed(delivery: WebhookDelivery, secrets: list[str]) -> _Claimed:
    body, headers = signed_request(
        secrets, delivery.id, delivery.event_type, delivery.created_at, delivery.payload
    )
    return _Claimed(delivery.id, delivery.url, body, headers, delivery.attempts)


def post_signed(
    url: str, body: bytes, headers: dict[str, str], client: httpx.Client | None = None
) -> tuple[int | None, str | None]:
    """Send one signed request (call it with no transaction open): the status code, and the
    answer's text (first 500 characters) or the transport error."""
    http = client or httpx.Client(timeout=TIMEOUT_SECONDS)
    try:
        response = http.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    finally:
        if client is None:
            http.close()
    return response.status_code, response.text[:500]


def _send(http: httpx.Client, delivery: _Claimed) -> Attempt:
    status, answer = post_signed(delivery.url, delivery.body, delivery.headers, http)
    ok = status is not None and 200 <= status < 300
    return Attempt(delivered=ok, status_code=status, error=None if ok else answer)


def recent_deliveries(
    session: Session, tenant_id: uuid.UUID, limit: int
) -> Sequence[WebhookDelivery]:
    """The tenant's latest webhook deliveries, newest first (the console's list)."""
    return DeliveryRepository(session, tenant_id).recent(limit)
