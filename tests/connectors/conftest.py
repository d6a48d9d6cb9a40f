"""Connector fixtures: a tenant with a Stripe connection, and a signed webhook sender."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from aethercrown import clock
from aethercrown.connectors import stripe_service
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


def map_stripe(client: TestClient, tenant: TenantHandle) -> stripe_service.MappingReport:
    """Run the mapping job's work for the tenant now (the app under test runs no automation)."""
    return stripe_service.map_pending(client.app.state.session_factory, tenant.uid)  # type: ignore[attr-defined]


def send_event(
    client: TestClient,
    tenant: TenantHandle,
    event: dict[str, Any],
    *,
    secret: str = WEBHOOK_SECRET,
    timestamp: int | None = None,
    map_after: bool = True,
) -> Any:
    """Deliver one signed event; then (``map_after``) map what is pending, as the job would."""
    payload = orjson.dumps(event)
    stamp = timestamp if timestamp is not None else int(clock.utcnow().timestamp())
    response = client.post(
        f"/api/v1/connectors/stripe/webhook/{tenant.id}",
        content=payload,
        headers={
            "Stripe-Signature": stripe_signature(secret, payload, stamp),
            "Content-Type": "application/json",
        },
    )
    if map_after and response.status_code == 200:
        map_stripe(client, tenant)
    return response


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
