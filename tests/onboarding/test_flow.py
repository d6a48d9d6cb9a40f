"""The eight steps through the API: each does its work once, waits on the customer with a
blocker and a next attempt, resumes through the runner's job, and survives a SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import icalendar
import orjson
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from aethercrown import clock
from aethercrown.automation.service import Runner
from aethercrown.core.crypto import secret_box
from aethercrown.core.jobs import all_jobs
from aethercrown.core.models import ApiKey, AuditEvent
from aethercrown.data.models import Customer, Subscription
from aethercrown.db.session import read_transaction, write_transaction
from aethercrown.metering.models import Meter
from aethercrown.onboarding import jobs, schemas, service
from aethercrown.onboarding.models import Onboarding, OnboardingStep
from aethercrown.settings import Settings, get_settings
from aethercrown.webhooks.service import signing_secrets, verify
from tests.conftest import TenantHandle, bearer
from tests.onboarding.conftest import BASE, PORTAL, request_body
from tests.webhooks.test_service import Receiver

REPO = Path(__file__).resolve().parents[2]


def _create(client: TestClient, tenant: TenantHandle, body: dict[str, object]) -> dict[str, object]:
    response = client.post(f"{BASE}/create", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _track(client: TestClient, tenant: TenantHandle, customer: str = "big-co") -> None:
    response = client.post(
        "/api/v1/enterprise/usage/track",
        json={
            "id": f"ev-{uuid.uuid4().hex}",
            "customer": customer,
            "metric": "api_calls",
            "value": 10,
        },
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text


def _advance_later(
    session_factory: sessionmaker[Session], tenant: TenantHandle, minutes: int = 5
) -> dict[str, object]:
    with clock.travel(clock.utcnow() + timedelta(minutes=minutes), tick=False):
        return service.advance_due(session_factory, tenant.uid, allow_loopback=True)


def test_create_runs_every_step_that_does_not_wait_then_the_runner_finishes_it(
    client: TestClient,
    tenant: TenantHandle,
    receiver: Receiver,
    session_factory: sessionmaker[Session],
) -> None:
    created = _create(client, tenant, request_body(receiver.url))
    steps = {s["name"]: s for s in created["steps"]}  # type: ignore[union-attr, index]
    assert [s["status"] for s in created["steps"]][:7] == ["done"] * 7  # type: ignore[union-attr, index]
    health = steps["initial_health_check"]
    assert health["status"] == "waiting"
    assert health["blocker"] == "no usage event from the customer yet"
    assert health["next_attempt_at"] is not None
    assert created["status"] == "blocked"
    assert created["blockers"] == [  # type: ignore[comparison-overlap]
        {
            "step": "initial_health_check",
            "reason": health["blocker"],
            "attempts": 1,
            "next_attempt_at": health["next_attempt_at"],
        }
    ]
    portal_key = created["portal_api_key"]
    assert isinstance(portal_key, str) and portal_key.startswith("ack_")

    # The ping was signed with the tenant's webhook secret.
    assert len(receiver.requests) == 1
    ping = receiver.requests[0]
    with write_transaction(session_factory) as session:
        secret = signing_secrets(session, tenant.uid, secret_box(get_settings()))[0]
    assert verify(ping["headers"]["AetherCrown-Signature"], secret, ping["body"])
    assert orjson.loads(ping["body"])["type"] == "onboarding.support_channel.test"

    # The status read does not show the key again.
    ident = created["id"]
    status = client.get(f"{BASE}/{ident}/status", headers=tenant.headers).json()
    assert "portal_api_key" not in status

    # Not due yet: the job leaves it; the customer's first event arrives; the retry finishes.
    assert service.advance_due(session_factory, tenant.uid, allow_loopback=True)["due"] == 0
    _track(client, tenant)
    assert _advance_later(session_factory, tenant) == {"due": 1, "advanced": 1, "completed": 1}
    status = client.get(f"{BASE}/{ident}/status", headers=tenant.headers).json()
    assert status["status"] == "completed" and status["blockers"] == []
    assert all(s["status"] == "done" for s in status["steps"])
    assert status["steps"][7]["attempts"] == 2

    report = client.get(f"{BASE}/{ident}/report", headers=tenant.headers).json()
    assert report["target_hours"] == 72 and report["within_target"] is True
    assert report["provisioned"]["environment_setup"]["plan"] == "enterprise"
    assert report["provisioned"]["api_key_generation"]["display_prefix"] == portal_key[:12]
    assert report["provisioned"]["support_channel_setup"]["status_code"] == 200
    actions = [a["action"] for a in report["audit"]]
    assert actions[0] == "onboarding.create" and actions.count("onboarding.step.done") == 8
    listed = client.get(BASE, headers=tenant.headers).json()
    assert [(o["customer"], o["status"]) for o in listed] == [("big-co", "completed")]

    with read_transaction(session_factory) as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 1
        assert session.scalar(select(func.count()).select_from(Subscription)) == 1
        assert (
            session.scalar(
                select(func.count()).select_from(ApiKey).where(ApiKey.name.like("customer portal%"))
            )
            == 1
        )


def test_a_webhook_that_fails_blocks_the_flow_until_it_answers(
    client: TestClient,
    tenant: TenantHandle,
    receiver: Receiver,
    session_factory: sessionmaker[Session],
) -> None:
    receiver.status = 503
    created = _create(client, tenant, request_body(receiver.url))
    ping = created["steps"][6]  # type: ignore[index]
    assert ping["status"] == "waiting" and ping["blocker"] == "support webhook answered 503"
    assert created["steps"][7]["status"] == "pending"  # type: ignore[index]
    assert created["current_step"] == "support_channel_setup"
    first_retry = ping["next_attempt_at"]

    # Still failing a retry later: the backoff doubles.
    _advance_later(session_factory, tenant, minutes=2)
    status = client.get(f"{BASE}/{created['id']}/status", headers=tenant.headers).json()
    assert (
        status["steps"][6]["attempts"] == 2 and status["steps"][6]["next_attempt_at"] > first_retry
    )

    receiver.status = 204
    _track(client, tenant)
    _advance_later(session_factory, tenant, minutes=10)
    status = client.get(f"{BASE}/{created['id']}/status", headers=tenant.headers).json()
    assert status["status"] == "completed"
    assert len(receiver.requests) == 3
    # Every retry is the same event to the receiver.
    assert len({r["headers"]["AetherCrown-Delivery"] for r in receiver.requests}) == 1


def test_the_training_schedule_is_an_icalendar_file_in_the_contacts_zone(
    client: TestClient, tenant: TenantHandle, receiver: Receiver
) -> None:
    created = _create(client, tenant, request_body(receiver.url))
    response = client.get(f"{BASE}/{created['id']}/training.ics", headers=tenant.headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(response.content)
    events = list(calendar.walk("VEVENT"))
    assert len(events) == 3
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == ["Europe/Berlin"]
    for event in events:
        start = event.decoded("DTSTART")
        assert str(start.tzinfo) == "Europe/Berlin"
        assert start.hour == 9 and start.weekday() < 5
        assert event.decoded("DTEND") - start == timedelta(hours=1)
        assert "ada@big.example" in str(event["ATTENDEE"])
    assert len({str(e["UID"]) for e in events}) == 3
    # Rendered on request from the stored sessions: the same file every time (stable UIDs,
    # DTSTAMP the step's time), whatever the clock reads now.
    with clock.travel(clock.utcnow() + timedelta(days=3)):
        again = client.get(f"{BASE}/{created['id']}/training.ics", headers=tenant.headers)
    assert again.content == response.content


def test_the_docs_link_is_signed_and_expires(
    client: TestClient, tenant: TenantHandle, receiver: Receiver
) -> None:
    body = request_body(receiver.url, docs_url="https://docs.acme.example/start")
    created = _create(client, tenant, body)
    report = client.get(f"{BASE}/{created['id']}/report", headers=tenant.headers).json()
    link = report["provisioned"]["documentation_access"]["url"]
    assert link.startswith("https://docs.acme.example/start?customer=big-co&expires=")

    def check(url: str) -> dict[str, object]:
        response = client.post(
            f"{BASE}/docs-link/verify", params={"url": url}, headers=tenant.headers
        )
        assert response.status_code == 200
        return response.json()  # type: ignore[no-any-return]

    assert check(link) == {"valid": True, "reason": None}
    assert check(link.replace("big-co", "other-co"))["reason"] == "bad signature"
    with clock.travel(clock.utcnow() + timedelta(days=31), tick=False):
        assert check(link)["reason"] == "expired"


def test_bad_input_is_a_422_that_changes_nothing(
    client: TestClient, tenant: TenantHandle, receiver: Receiver
) -> None:
    bad = [
        request_body(receiver.url, sla_tier="platinum"),
        request_body(receiver.url, plan="no-such-plan"),
        request_body("http://hooks.example.com/support"),
        request_body("https://10.0.0.7/hook"),
        request_body("https://169.254.169.254/latest"),
        request_body(
            receiver.url,
            contacts=[{"name": "A", "email": "a@b.example", "time_zone": "Mars/Olympus_Mons"}],
        ),
        request_body(receiver.url, training={"time_zone": "../../etc/passwd"}),
        request_body(receiver.url, meters=[{"name": "api_calls", "capacity": 1}] * 2),
    ]
    for body in bad:
        response = client.post(f"{BASE}/create", json=body, headers=tenant.headers)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    unknown_tier = client.post(f"{BASE}/create", json=bad[0], headers=tenant.headers).json()
    assert unknown_tier["errors"][0]["field"] == "sla_tier"
    assert client.get(BASE, headers=tenant.headers).json() == []
    # The same customer twice is a conflict.
    _create(client, tenant, request_body(receiver.url))
    again = client.post(f"{BASE}/create", json=request_body(receiver.url), headers=tenant.headers)
    assert again.status_code == 409


def test_unknown_and_other_tenants_onboardings_are_404(
    client: TestClient, tenant: TenantHandle, other_tenant: TenantHandle, receiver: Receiver
) -> None:
    created = _create(client, tenant, request_body(receiver.url))
    for path in ("status", "report", "sla", "training.ics"):
        for ident, who in ((created["id"], other_tenant), (uuid.uuid4(), tenant), ("nope", tenant)):
            response = client.get(f"{BASE}/{ident}/{path}", headers=who.headers)
            assert response.status_code == 404, (path, ident, response.text)
    assert client.get(BASE, headers=other_tenant.headers).json() == []


def test_the_portal_key_reads_only_its_own_customers_figures(
    client: TestClient, tenant: TenantHandle, receiver: Receiver
) -> None:
    created = _create(client, tenant, request_body(receiver.url))
    _create(client, tenant, request_body(receiver.url, external_id="small-co"))
    _track(client, tenant)
    _track(client, tenant, "small-co")
    portal = bearer(str(created["portal_api_key"]))
    usage = client.get(f"{PORTAL}/usage", headers=portal)
    assert usage.status_code == 200, usage.text
    assert usage.json()["customer"] == "big-co" and usage.json()["plan"] == "enterprise"
    invoice = client.get(f"{PORTAL}/invoice-preview", headers=portal)
    assert invoice.status_code == 200 and invoice.json()["customer"] == "big-co"
    assert client.get(f"{PORTAL}/alerts", headers=portal).status_code == 200
    sla = client.get(f"{PORTAL}/sla", headers=portal)
    assert sla.status_code == 200 and sla.json()["tier"]["slug"] == "enterprise"
    # Nothing of the tenant's: no tenant route, no other customer.
    for path in (BASE, "/api/v1/enterprise/usage/small-co/report", "/api/v1/data/customers"):
        assert client.get(path, headers=portal).status_code == 403, path
    # A tenant key is not a portal key.
    assert client.get(f"{PORTAL}/usage", headers=tenant.headers).status_code == 403
    # Reissued: the old key stops working, the new one is shown once.
    again = client.post(f"{BASE}/{created['id']}/portal-key", headers=tenant.headers)
    assert again.status_code == 201
    assert client.get(f"{PORTAL}/usage", headers=portal).status_code == 401
    new = bearer(again.json()["portal_api_key"])
    assert client.get(f"{PORTAL}/usage", headers=new).status_code == 200


def test_sla_tiers_are_editable_rows(client: TestClient, tenant: TenantHandle) -> None:
    tiers = client.get(f"{BASE}/sla-tiers", headers=tenant.headers).json()
    assert [(t["slug"], t["response_minutes"], t["uptime_target_percent"]) for t in tiers] == [
        ("standard", 1440, 99.5),
        ("premium", 240, 99.9),
        ("enterprise", 60, 99.95),
    ]
    assert [(t["dedicated_support"], t["custom_integration"]) for t in tiers] == [
        (False, False),
        (True, False),
        (True, True),
    ]
    response = client.patch(
        f"{BASE}/sla-tiers/premium",
        json={"response_minutes": 120, "credits": [{"below_bp": 9990, "credit_percent": 15}]},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["response_minutes"] == 120
    assert (
        client.patch(f"{BASE}/sla-tiers/gold", json={}, headers=tenant.headers).status_code == 404
    )
    bad = client.patch(
        f"{BASE}/sla-tiers/premium", json={"uptime_target_bp": 20000}, headers=tenant.headers
    )
    assert bad.status_code == 422
    a_bool = client.patch(
        f"{BASE}/sla-tiers/premium",
        json={"credits": [{"below_bp": 9990, "credit_percent": False}]},
        headers=tenant.headers,
    )
    assert a_bool.status_code == 422  # JSON false is not a percentage


def test_the_runner_knows_the_onboarding_jobs() -> None:
    names = {job.name for job in all_jobs()}
    assert {"onboarding_advance", "sla_measurement"} <= names


def test_a_flow_killed_inside_a_step_resumes_and_finishes_once(
    db: Engine,
    tenant: TenantHandle,
    client: TestClient,
    receiver: Receiver,
    session_factory: sessionmaker[Session],
) -> None:
    with write_transaction(session_factory) as session:
        onboarding = service.start(
            session,
            tenant.uid,
            schemas.OnboardingCreate.model_validate(request_body(receiver.url)),
            "test",
            allow_loopback=True,
        )
        onboarding_id = onboarding.id
    url = db.url.render_as_string(hide_password=False)
    # Killed inside the portal key's step: its key was made but never committed.
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.onboarding.flow_process",
            url,
            tenant.id,
            str(onboarding_id),
            "4",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "inside step 4"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    with read_transaction(session_factory) as session:
        row = session.get(Onboarding, onboarding_id)
        assert row is not None and row.current_step == 4
        done = session.scalars(
            select(OnboardingStep.name).where(OnboardingStep.status == "done")
        ).all()
        assert len(done) == 3
        assert (
            session.scalar(
                select(func.count()).select_from(ApiKey).where(ApiKey.name.like("customer portal%"))
            )
            == 0
        )

    # The next advance (the runner's job, here called directly) resumes at step 4.
    _track(client, tenant)
    flow = service.advance(session_factory, tenant.uid, onboarding_id, allow_loopback=True)
    assert flow.steps_done == [
        "api_key_generation",
        "documentation_access",
        "training_schedule",
        "support_channel_setup",
        "initial_health_check",
    ]
    assert flow.portal_secret is not None
    # Again: nothing left to do, nothing doubled.
    assert (
        service.advance(session_factory, tenant.uid, onboarding_id, allow_loopback=True).steps_done
        == []
    )
    with read_transaction(session_factory) as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 1
        assert session.scalar(select(func.count()).select_from(Subscription)) == 1
        assert (
            session.scalar(
                select(func.count()).select_from(ApiKey).where(ApiKey.name.like("customer portal%"))
            )
            == 1
        )
        assert session.scalar(select(func.count()).select_from(Meter)) == 0
        per_step = session.execute(
            select(OnboardingStep.name, OnboardingStep.attempts).order_by(OnboardingStep.position)
        ).all()
        assert all(attempts == 1 for _, attempts in per_step)
        done_events = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "onboarding.step.done")
        )
        assert done_events == 8
    assert len(receiver.requests) == 1


def test_the_automation_runner_retries_a_waiting_step(
    client: TestClient,
    tenant: TenantHandle,
    receiver: Receiver,
    session_factory: sessionmaker[Session],
    settings: Settings,
) -> None:
    receiver.status = 502
    created = _create(client, tenant, request_body(receiver.url))
    assert created["status"] == "blocked"
    receiver.status = 200
    _track(client, tenant)
    runner = Runner(session_factory, jobs.JOBS, settings=settings)
    with clock.travel(clock.utcnow() + timedelta(minutes=3), tick=False):
        results = {r.job: r for r in runner.tick()}
    advance = results["onboarding_advance"]
    assert advance.status == "succeeded", advance.error
    assert advance.summary == {"due": 1, "advanced": 1, "completed": 1}
    status = client.get(f"{BASE}/{created['id']}/status", headers=tenant.headers).json()
    assert status["status"] == "completed"
