"""Connector fixtures: a tenant with a Stripe connection, and a signed webhook sender."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from aethercrown import clock
from tests.conftest import TenantHandle
from tests.connectors.stripe_fakes import WEBHOOK_SECRET, stripe_signature


def connect_stripe(
    client: TestClient, tenant: TenantHandle, secret: str = WEBHOOK_SECRET, **extra: Any
) -> dict[str, Any]:
    response = client.put(
        "/api/v1/connectors/stripe",
        json={"webhook_secret": secret, **extra},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def send_event(
    client: TestClient,
    tenant: TenantHandle,
    event: dict[str, Any],
    *,
    secret: str = WEBHOOK_SECRET,
    timestamp: int | None = None,
) -> Any:
    payload = orjson.dumps(event)
    stamp = timestamp if timestamp is not None else int(clock.utcnow().timestamp())
    return client.post(
        f"/api/v1/connectors/stripe/webhook/{tenant.id}",
        content=payload,
        headers={
            "Stripe-Signature": stripe_signature(secret, payload, stamp),
            "Content-Type": "application/json",
        },
    )


@pytest.fixture
def stripe_tenant(client: TestClient, tenant: TenantHandle) -> TenantHandle:
    connect_stripe(client, tenant)
    return tenant


@pytest.fixture(autouse=True)
def _quick_stripe_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The official client's retry delays (0.5 s doubling) shortened for the suite."""
    from stripe._http_client import HTTPClient

    monkeypatch.setattr(HTTPClient, "INITIAL_DELAY", 0.01)
    monkeypatch.setattr(HTTPClient, "MAX_DELAY", 0.02)
