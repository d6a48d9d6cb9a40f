"""Events reach alert channels through the outbox: routed by each channel's filter in the
emitting unit of work, delivered by the runner with no transaction open, to a real
Slack-compatible HTTP server (Block Kit checked) and a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from aethercrown.alerts import service as alerts
from aethercrown.alerts.models import AlertDelivery
from aethercrown.automation.service import Runner
from aethercrown.clock import utcnow
from aethercrown.core.jobs import JobSpec, all_jobs
from aethercrown.db.session import write_transaction
from aethercrown.settings import Settings
from aethercrown.webhooks.service import enqueue_webhook
from tests.alerts.conftest import BASE, Mailbox, SlackReceiver
from tests.conftest import TenantHandle

USAGE = {
    "alert_id": "a-1",
    "customer": "cust-42",
    "metric": "api_calls",
    "level": "critical",
    "threshold_percent": 100.0,
    "usage": 10_500,
    "capacity": 10_000,
    "percent_of_capacity": 105.0,
    "plan": "starter",
    "period_start": "2026-12-01T00:00:00+00:00",
}


def _channel(client: TestClient, tenant: TenantHandle, **body: Any) -> str:
    response = client.post(BASE, json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _emit(session_factory, tenant: TenantHandle, event: str, payload: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    with write_transaction(session_factory) as s:
        enqueue_webhook(s, tenant.uid, event, payload)


def _rows(session_factory) -> list[AlertDelivery]:  # type: ignore[no-untyped-def]
    with session_factory() as s:
        return list(s.scalars(select(AlertDelivery).order_by(AlertDelivery.created_at)).all())


def test_an_event_goes_to_slack_as_block_kit_with_a_link_to_the_console(
    client: TestClient,
    tenant: TenantHandle,
    slack: SlackReceiver,
    settings: Settings,
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    _channel(
        client,
        tenant,
        name="usage",
        kind="slack",
        webhook_url=slack.url,
        event_types=["usage.alert.*"],
        min_severity="warning",
    )
    _emit(session_factory, tenant, "usage.alert.critical", USAGE)
    _emit(session_factory, tenant, "content.due", {"title": "Launch post"})  # not in the filter
    assert [r.event_type for r in _rows(session_factory)] == ["usage.alert.critical"]
    assert alerts.deliver_due(session_factory, settings) == {
        "delivered": 1,
        "retrying": 0,
        "failed": 0,
    }
    [body] = slack.bodies
    header, section, context = body["blocks"]
    assert header["type"] == "header" and header["text"]["type"] == "plain_text"
    assert "Usage at capacity" in header["text"]["text"]
    assert section["type"] == "section"
    fields = {f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in section["fields"]}
    assert fields["*Customer*"] == "cust-42" and fields["*Usage*"] == "10,500"
    assert fields["*Of capacity*"] == "105"
    assert context["type"] == "context"
    assert (
        "<https://console.example/console/usage|Open in AetherCrown>"
        in (context["elements"][0]["text"])
    )
    assert "CRITICAL" in context["elements"][0]["text"] and "Acme" in context["elements"][0]["text"]
    assert body["text"].startswith("Usage at capacity")  # the notification's fallback text
    assert alerts.deliver_due(session_factory, settings)["delivered"] == 0  # sent once
    [row] = _rows(session_factory)
    assert row.status == "delivered" and row.attempts == 1 and row.last_status_code == 200


def test_a_429_waits_for_its_retry_after_and_errors_keep_the_url_secret(
    client: TestClient,
    tenant: TenantHandle,
    slack: SlackReceiver,
    settings: Settings,
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    _channel(client, tenant, name="all", kind="slack", webhook_url=slack.url)
    _emit(session_factory, tenant, "sla.breach", {"customer": "big-co", "onboarding": "o-1"})
    now = utcnow()
    slack.answers.append((429, {"Retry-After": "120"}, "rate_limited"))
    assert alerts.deliver_due(session_factory, settings, now)["retrying"] == 1
    [row] = _rows(session_factory)
    assert row.last_status_code == 429 and row.attempts == 1
    # Retry-After (120 s) is longer than the first backoff (30 s): it wins.
    assert row.next_attempt_at == now + timedelta(seconds=120)
    assert alerts.deliver_due(session_factory, settings, now + timedelta(seconds=119)) == {
        "delivered": 0,
        "retrying": 0,
        "failed": 0,
    }
    # A receiver whose error names the URL: the log keeps it redacted.
    slack.answers.append((500, {}, f"boom at {slack.url}"))
    later = now + timedelta(seconds=120)
    assert alerts.deliver_due(session_factory, settings, later)["retrying"] == 1
    [row] = _rows(session_factory)
    assert row.last_status_code == 500 and "XXXXsecretXXXX" not in (row.last_error or "")
    assert "[redacted]" in (row.last_error or "")
    assert row.next_attempt_at == later + alerts.POLICY.backoff(2)
    assert alerts.deliver_due(session_factory, settings, row.next_attempt_at)["delivered"] == 1
    assert len(slack.bodies) == 3
    link = slack.bodies[-1]["blocks"][2]["elements"][0]["text"]
    assert "https://console.example/console/onboarding/o-1" in link


def test_email_arrives_as_text_and_html_to_every_recipient(
    client: TestClient,
    tenant: TenantHandle,
    mailbox: Mailbox,
    settings: Settings,
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    _channel(
        client,
        tenant,
        name="finance",
        kind="email",
        recipients=["cfo@acme.example", "ops@acme.example"],
        event_types=["budget.*"],
    )
    payload = {
        "period": "2026-12-02",
        "allocations": {"search": 120_000, "social": 80_050},
        "expected_return": 512_000,
        "currency": "USD",
    }
    _emit(session_factory, tenant, "budget.allocation.recorded", payload)
    assert alerts.deliver_due(session_factory, settings)["delivered"] == 1
    [(to, message)] = mailbox.messages
    assert to == ["cfo@acme.example", "ops@acme.example"]
    assert message["Subject"] == "[AetherCrown] [INFO] Marketing budget re-allocated — Acme"
    assert message["From"] == "AetherCrown <alerts@aethercrown.example>"
    assert message["To"] == "cfo@acme.example, ops@acme.example"
    assert message.is_multipart() and message.get_content_subtype() == "alternative"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "search USD 1,200.00, social USD 800.50" in text
    assert "Expected return:" in text and "USD 5,120.00" in text
    assert "https://console.example/console/budget" in text
    assert '<a href="https://console.example/console/budget">' in html
    assert '<th scope="row"' in html


def test_a_refused_recipient_is_a_failed_attempt_and_a_busy_one_is_retried_alone(
    client: TestClient,
    tenant: TenantHandle,
    mailbox: Mailbox,
    settings: Settings,
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    _channel(
        client,
        tenant,
        name="mail",
        kind="email",
        recipients=["ok@acme.example", "gone@acme.example"],
    )
    mailbox.refuse.add("gone@acme.example")
    _emit(session_factory, tenant, "sla.breach", {"customer": "big-co"})
    assert alerts.deliver_due(session_factory, settings)["failed"] == 1
    [(to, _)] = mailbox.messages
    assert to == ["ok@acme.example"]
    [row] = _rows(session_factory)
    assert row.status == "failed" and row.attempts == 1 and row.last_status_code == 550
    assert "gone@acme.example refused: 550" in (row.last_error or "")

    # Busy (4xx): the others get it now, the busy one on a later attempt, nobody twice.
    mailbox.messages.clear()
    mailbox.refuse.clear()
    mailbox.busy.add("gone@acme.example")
    _emit(session_factory, tenant, "sla.breach", {"customer": "big-co", "kind": "uptime"})
    now = utcnow()
    assert alerts.deliver_due(session_factory, settings, now)["retrying"] == 1
    row = next(r for r in _rows(session_factory) if r.status == "pending")
    assert row.pending_recipients == ["gone@acme.example"] and row.last_status_code == 451
    mailbox.busy.clear()
    assert alerts.deliver_due(session_factory, settings, row.next_attempt_at)["delivered"] == 1
    assert [to for to, _ in mailbox.messages] == [["ok@acme.example"], ["gone@acme.example"]]


def test_filters_disabled_channels_and_severity_choose_who_hears_what(
    client: TestClient,
    tenant: TenantHandle,
    other_tenant: TenantHandle,
    slack: SlackReceiver,
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    critical = _channel(
        client, tenant, name="pager", kind="slack", webhook_url=slack.url, min_severity="critical"
    )
    churn = _channel(
        client, tenant, name="churn", kind="slack", webhook_url=slack.url, event_types=["churn.*"]
    )
    _channel(client, tenant, name="off", kind="slack", webhook_url=slack.url, enabled=False)
    _channel(client, other_tenant, name="theirs", kind="slack", webhook_url=slack.url)
    campaign = {"external_id": "c-1", "risk_level": "high", "churn_probability": 0.6}
    _emit(session_factory, tenant, "churn.campaign.created", campaign)
    _emit(session_factory, tenant, "churn.campaign.created", {**campaign, "risk_level": "critical"})
    _emit(session_factory, tenant, "usage.alert.warning", USAGE)
    routed = sorted((str(r.channel_id), r.severity) for r in _rows(session_factory))
    assert routed == sorted([(churn, "warning"), (churn, "critical"), (critical, "critical")])
    # Every row of one event shares its event id.
    by_event: dict[uuid.UUID, int] = {}
    for row in _rows(session_factory):
        by_event[row.event_id] = by_event.get(row.event_id, 0) + 1
    assert sorted(by_event.values()) == [1, 2]


def test_two_runners_never_send_one_alert_twice(
    client: TestClient,
    tenant: TenantHandle,
    slack: SlackReceiver,
    settings: Settings,
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    _channel(client, tenant, name="all", kind="slack", webhook_url=slack.url)
    for i in range(12):
        _emit(session_factory, tenant, "content.due", {"title": f"post {i}"})
    totals: list[dict[str, int]] = []

    def run() -> None:
        totals.append(alerts.deliver_due(session_factory, settings, limit=5))

    for _ in range(3):
        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sum(t["delivered"] for t in totals) == 12
    assert sorted(b["blocks"][1]["fields"][0]["text"] for b in slack.bodies) == sorted(
        f"*Title*\npost {i}" for i in range(12)
    )


def test_a_failed_job_is_an_alert_and_the_runner_delivers_alerts(
    client: TestClient,
    tenant: TenantHandle,
    slack: SlackReceiver,
    settings: Settings,
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    _channel(
        client,
        tenant,
        name="ops",
        kind="slack",
        webhook_url=slack.url,
        event_types=["automation.*"],
    )

    def broken(session: Any, tenant_id: uuid.UUID | None, start: datetime) -> dict[str, Any]:
        raise RuntimeError("the model file is missing")

    start = datetime(2026, 12, 3, 10, 0, tzinfo=utcnow().tzinfo)
    runner = Runner(session_factory, [JobSpec("nightly", 3600, broken)], max_attempts=2)
    runner.tick(start)
    runner.tick(start + timedelta(minutes=1))
    rows = _rows(session_factory)
    assert [(r.event_type, r.severity, r.payload["attempt"]) for r in rows] == [
        ("automation.job.failed", "warning", 1),
        ("automation.job.failed", "critical", 2),  # the last attempt
    ]
    assert "the model file is missing" in rows[0].payload["error"]
    delivery = next(j for j in all_jobs() if j.name == "alert_delivery")
    sender = Runner(session_factory, [delivery], settings=settings)
    [result] = sender.tick(utcnow())
    assert result.status == "succeeded" and result.summary == {
        "delivered": 2,
        "retrying": 0,
        "failed": 0,
    }
    assert "Automation job failed" in slack.bodies[0]["blocks"][0]["text"]["text"]


def test_slack_hosts_must_resolve_to_public_addresses_at_creation_and_at_each_send(
    client: TestClient,
    tenant: TenantHandle,
    slack: SlackReceiver,
    settings: Settings,
    session_factory,  # type: ignore[no-untyped-def]
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    """The rule onboarding's support webhooks follow (``core.outbound``): a name is only as
    safe as what it resolves to, when it is saved and again before every send (rebinding)."""
    answers = {"hooks.example.com": ["10.1.2.3"]}

    def lookup(host: str, port: int) -> list[str]:
        if host not in answers:
            raise OSError("no such host")
        return answers[host]

    monkeypatch.setattr("aethercrown.core.outbound.system_resolver", lookup)
    url = "https://hooks.example.com/services/T1/B1/secret"
    refused = client.post(
        BASE, json={"name": "x", "kind": "slack", "webhook_url": url}, headers=tenant.headers
    )
    assert refused.status_code == 422, refused.text
    assert "resolves to a private or reserved address" in refused.text
    # Public at creation, the cloud's metadata address at send time: nothing is sent there.
    answers["hooks.example.com"] = ["93.184.216.34"]
    _channel(client, tenant, name="room", kind="slack", webhook_url=url)
    answers["hooks.example.com"] = ["93.184.216.34", "169.254.169.254"]
    _emit(session_factory, tenant, "sla.breach", {"customer": "big-co", "onboarding": "o-1"})
    assert alerts.deliver_due(session_factory, settings)["failed"] == 1
    [row] = _rows(session_factory)
    assert row.status == "failed" and row.attempts == 1 and row.last_status_code is None
    assert row.last_error == "refused: the host name resolves to a private or reserved address"
    # A name that stops resolving is tried again later, not given up on.
    del answers["hooks.example.com"]
    channel_id = row.channel_id
    _emit(session_factory, tenant, "sla.breach", {"customer": "big-co", "onboarding": "o-2"})
    assert alerts.deliver_due(session_factory, settings)["retrying"] == 1
    assert {r.channel_id for r in _rows(session_factory)} == {channel_id}


def test_loopback_receivers_only_when_the_installation_allows_them(
    client: TestClient,
    tenant: TenantHandle,
    slack: SlackReceiver,
    settings: Settings,
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    """The suite's receivers are on loopback: allowed by ``alerts_allow_loopback_webhooks``
    (as onboarding's tests set ``onboarding_allow_loopback_webhooks``), refused without it."""
    _channel(client, tenant, name="room", kind="slack", webhook_url=slack.url)
    _emit(session_factory, tenant, "sla.breach", {"customer": "big-co", "onboarding": "o-1"})
    strict = settings.model_copy(update={"alerts_allow_loopback_webhooks": False})
    assert alerts.deliver_due(session_factory, strict)["failed"] == 1
    [row] = _rows(session_factory)
    assert row.last_error == "refused: the host name resolves to a loopback address"
    assert slack.bodies == []
    assert alerts.webhook_url_problem(slack.url, strict) == "the URL must use https"
    https_name = slack.url.replace("http://127.0.0.1", "https://localhost")
    assert alerts.webhook_url_problem(https_name, strict) == "loopback addresses are not allowed"
    assert alerts.webhook_url_problem(slack.url, settings) is None
    _emit(session_factory, tenant, "sla.breach", {"customer": "big-co", "onboarding": "o-2"})
    assert alerts.deliver_due(session_factory, settings)["delivered"] == 1
    assert len(slack.bodies) == 1
