"""SLAs measured after onboarding: first responses by month against the tier's target, uptime
from health samples with the credit table's credit; each breach raised once (signed webhook,
ledger decision)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import orjson
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from aethercrown import clock
from aethercrown.core.models import Decision
from aethercrown.data.models import Customer, SupportTicket
from aethercrown.db.session import read_transaction, write_transaction
from aethercrown.health.models import HealthSample
from aethercrown.onboarding import service
from aethercrown.onboarding import sla as sla_rules
from aethercrown.onboarding.models import SlaBreach
from aethercrown.webhooks.service import WebhookDelivery, deliver_due
from tests.conftest import TenantHandle
from tests.onboarding.conftest import BASE, request_body
from tests.webhooks.test_service import Receiver


def test_breaches_are_measured_raised_once_and_signed(
    client: TestClient,
    tenant: TenantHandle,
    receiver: Receiver,
    session_factory: sessionmaker[Session],
) -> None:
    client.patch(
        f"/api/v1/tenants/{tenant.id}", json={"webhook_url": receiver.url}, headers=tenant.headers
    )
    created = client.post(f"{BASE}/create", json=request_body(receiver.url), headers=tenant.headers)
    ident = created.json()["id"]
    client.post(
        "/api/v1/enterprise/usage/track",
        json={"id": "first", "customer": "big-co", "metric": "api_calls", "value": 1},
        headers=tenant.headers,
    )
    service.advance_due(session_factory, tenant.uid, allow_loopback=True)
    with clock.travel(clock.utcnow() + timedelta(minutes=5), tick=False):
        service.advance_due(session_factory, tenant.uid, allow_loopback=True)
    status = client.get(f"{BASE}/{ident}/status", headers=tenant.headers).json()
    assert status["status"] == "completed"
    done = clock.utcnow()
    with write_transaction(session_factory) as session:
        customer_id = session.scalars(select(Customer.id)).one()
        start = done + timedelta(hours=1)
        for n, minutes in enumerate((30, 50, 180)):  # Enterprise: first response within 60 min
            session.add(
                SupportTicket(
                    tenant_id=tenant.uid,
                    external_id=f"t-{n}",
                    customer_id=customer_id,
                    opened_at=start + timedelta(hours=n),
                    closed_at=start + timedelta(hours=n, minutes=minutes),
                )
            )
        # An hour down in 1,000 samples: 99.9 % < the 99.95 % target.
        for i in range(1000):
            session.add(
                HealthSample(
                    component="database",
                    status="down" if i < 1 else "ok",
                    source="job",
                    checked_at=start + timedelta(minutes=i),
                )
            )
    later = start + timedelta(days=40)
    with clock.travel(later, tick=False):
        sla = client.get(f"{BASE}/{ident}/sla", headers=tenant.headers).json()
        assert sla["tier"]["slug"] == "enterprise"
        months = {m["month"]: m for m in sla["response"]}
        assert sum(m["tickets"] for m in months.values()) == 3
        assert [b["ticket"] for m in months.values() for b in m["breaches"]] == ["t-2"]
        # One month holds the down sample (two, if the samples cross a month's end).
        (down,) = [m for m in sla["uptime"] if m["breached"]]
        uptime_bp = down["uptime_percent"] * 100
        assert uptime_bp <= 9990 < 9995
        assert down["credit_percent"] == sla_rules.credit_for(uptime_bp, sla["tier"]["credits"])
        assert down["credit_percent"] >= 10

        with write_transaction(session_factory) as session:
            assert service.raise_breaches(session, tenant.uid) == {"raised": 2}
        with write_transaction(session_factory) as session:
            assert service.raise_breaches(session, tenant.uid) == {"raised": 0}
        deliver_due(session_factory)
    with read_transaction(session_factory) as session:
        kinds = sorted(session.scalars(select(SlaBreach.kind)))
        assert kinds == ["response", "uptime"]
        assert (
            session.scalar(
                select(func.count()).select_from(Decision).where(Decision.kind == "sla_breach")
            )
            == 2
        )
        deliveries = session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.event_type == "sla.breach")
        ).all()
        assert len(deliveries) == 2 and all(d.decision_id is not None for d in deliveries)
    breach_events = [
        orjson.loads(r["body"])
        for r in receiver.requests
        if r["headers"].get("AetherCrown-Event") == "sla.breach"
    ]
    assert sorted(e["data"]["kind"] for e in breach_events) == ["response", "uptime"]
    assert all("AetherCrown-Signature" in r["headers"] for r in receiver.requests)
    assert uuid.UUID(breach_events[0]["id"])
