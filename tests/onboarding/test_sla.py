"""SLAs measured after onboarding: first responses by month against the tier's target, uptime
from health samples with the credit table's credit; each breach raised once (signed webhook,
ledger decision)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

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
from aethercrown.webhooks.models import WebhookDelivery
from aethercrown.webhooks.service import deliver_due
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
        for n in range(3):
            session.add(
                SupportTicket(
                    tenant_id=tenant.uid,
                    external_id=f"t-{n}",
                    customer_id=customer_id,
                    opened_at=start + timedelta(hours=n),
                    # Closed within the target each: the close is not the first response.
                    closed_at=start + timedelta(hours=n, minutes=20),
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
    for n, minutes in enumerate((30, 50, 180)):  # Enterprise: first response within 60 min
        with clock.travel(start + timedelta(hours=6), tick=False):
            answered = client.post(
                f"{BASE}/tickets/t-{n}/first-response",
                json={"responded_at": (start + timedelta(hours=n, minutes=minutes)).isoformat()},
                headers=tenant.headers,
            )
        assert answered.status_code == 201, answered.text
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


def _complete(
    client: TestClient,
    tenant: TenantHandle,
    receiver: Receiver,
    factory: sessionmaker[Session],
    move: Callable[[datetime], None],
    at: datetime,
) -> str:
    created = client.post(f"{BASE}/create", json=request_body(receiver.url), headers=tenant.headers)
    assert created.status_code == 201, created.text
    client.post(
        "/api/v1/enterprise/usage/track",
        json={"id": "first", "customer": "big-co", "metric": "api_calls", "value": 1},
        headers=tenant.headers,
    )
    service.advance_due(factory, tenant.uid, allow_loopback=True)
    move(at + timedelta(minutes=5))
    service.advance_due(factory, tenant.uid, allow_loopback=True)
    status = client.get(f"{BASE}/{created.json()['id']}/status", headers=tenant.headers).json()
    assert status["status"] == "completed", status
    return str(created.json()["id"])


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_first_responses_drive_breaches_at_the_boundary_and_across_a_month_end(
    client: TestClient,
    tenant: TenantHandle,
    other_tenant: TenantHandle,
    receiver: Receiver,
    session_factory: sessionmaker[Session],
) -> None:
    """The tickets of test_pure's hand-computed case, through the API: the close of a ticket
    never counts, its recorded first response does (Enterprise: 60 minutes)."""
    start = _at("2027-01-30 09:00")
    with clock.travel(start, tick=False) as move:
        ident = _complete(client, tenant, receiver, session_factory, move, start)
        tickets = [
            # (id, opened, closed): closes that would flatter or hurt if they were counted.
            ("at-limit", "2027-01-30 12:00", "2027-01-30 20:00"),
            ("one-second-over", "2027-01-30 14:00", "2027-01-30 14:10"),
            ("month-end", "2027-01-31 23:30", None),
            ("february", "2027-02-01 00:10", None),
            ("unanswered", "2027-02-01 01:00", "2027-02-01 01:20"),
        ]
        rows = [
            {
                "external_id": ext,
                "customer": "big-co",
                "opened_at": _at(opened).isoformat(),
                "closed_at": _at(closed).isoformat() if closed else None,
            }
            for ext, opened, closed in tickets
        ]
        loaded = client.post("/api/v1/data/tickets", json=rows, headers=tenant.headers)
        assert loaded.status_code == 200, loaded.text

        def respond(ticket: str, at: str | None, who: TenantHandle = tenant) -> Any:
            body = {"responded_at": _at(at).isoformat()} if at else None
            return client.post(
                f"{BASE}/tickets/{ticket}/first-response", json=body, headers=who.headers
            )

        move(_at("2027-02-01 00:45"))
        first = respond("at-limit", "2027-01-30 13:00:00")
        assert first.status_code == 201, first.text
        assert first.json()["response_minutes"] == 60.0 and first.json()["recorded_now"]
        assert respond("one-second-over", "2027-01-30 15:00:01").json()["response_minutes"] == (
            60.02
        )
        now_answer = respond("month-end", None).json()  # the clock's now: 00:45
        assert now_answer["responded_at"].startswith("2027-02-01T00:45:00")
        assert now_answer["response_minutes"] == 75.0
        # Bad input changes nothing: before the opening, in the future, no such ticket,
        # another tenant's ticket; a second answer leaves the first.
        assert respond("february", "2027-02-01 00:09").status_code == 422
        assert respond("february", "2027-02-01 00:50").status_code == 422
        assert respond("no-such-ticket", None).status_code == 404
        assert respond("february", None, other_tenant).status_code == 404
        move(_at("2027-02-01 00:50"))
        assert respond("february", "2027-02-01 00:40").json()["response_minutes"] == 30.0
        again = respond("at-limit", "2027-01-30 12:05").json()
        assert again["recorded_now"] is False and again["response_minutes"] == 60.0

        move(_at("2027-02-01 02:00:00"))
        sla = client.get(f"{BASE}/{ident}/sla", headers=tenant.headers).json()
        january, february = sla["response"]
        assert (january["month"], january["tickets"], january["within_target"]) == (
            "2027-01-01",
            3,
            1,
        )
        assert [(b["ticket"], b["response_minutes"]) for b in january["breaches"]] == [
            ("one-second-over", 60.02),
            ("month-end", 75.0),
        ]
        assert (february["tickets"], february["within_target"]) == (1, 1)

        move(_at("2027-02-01 02:00:01"))
        with write_transaction(session_factory) as session:
            assert service.raise_breaches(session, tenant.uid) == {"raised": 3}
        with write_transaction(session_factory) as session:
            assert service.raise_breaches(session, tenant.uid) == {"raised": 0}
    with read_transaction(session_factory) as session:
        breaches = session.scalars(select(SlaBreach).order_by(SlaBreach.subject)).all()
        assert [
            (b.subject, b.month.isoformat(), b.measured, b.target, b.credit_percent)
            for b in breaches
        ] == [
            ("month-end", "2027-01-01", 75.0, 60.0, 0.0),
            ("one-second-over", "2027-01-01", 60.02, 60.0, 0.0),
            ("unanswered", "2027-02-01", 60.02, 60.0, 0.0),
        ]
