"""Reports, projections and upsell triggers against a hand-computed month.

now = 2026-03-11 12:00 UTC; the period is March (31 days), the previous one February.
c-1 (starter: 10,000 api_calls, 10 GB): 100 calls a day on Feb 1–11, 200 a day on Mar 1–11;
storage 2 GB through Feb 1–11, then 1 + 0.5 × (day − 1) GB on Mar 1–11.
c-2 (starter): storage 9 GB every day of March so far.
c-3 (starter): 10 calls a day in both months.
"""

import math
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from aethercrown.core.errors import ProblemError
from aethercrown.core.models import Decision
from aethercrown.db.session import write_transaction
from aethercrown.metering import service
from aethercrown.metering.models import UsageAlert
from tests.conftest import TenantHandle
from tests.metering.conftest import event

NOW = datetime(2026, 3, 11, 12, tzinfo=UTC)


@pytest.fixture
def month(tenant: TenantHandle, customers, track) -> None:  # type: ignore[no-untyped-def]
    customers(tenant.uid, "c-1", "c-2", "c-3")
    events = []
    for d in range(1, 12):
        feb = datetime(2026, 2, d, 6, tzinfo=UTC)
        mar = datetime(2026, 3, d, 6, tzinfo=UTC)
        events += [
            event(f"f-a-{d}", "c-1", "api_calls", 100, feb),
            event(f"m-a-{d}", "c-1", "api_calls", 200, mar),
            event(f"f-s-{d}", "c-1", "storage_gb", 2, feb),
            event(f"m-s-{d}", "c-1", "storage_gb", 1 + 0.5 * (d - 1), mar),
            event(f"m-s2-{d}", "c-2", "storage_gb", 9, mar),
            event(f"f-a3-{d}", "c-3", "api_calls", 10, feb),
            event(f"m-a3-{d}", "c-3", "api_calls", 10, mar),
        ]
    track(tenant.uid, events, NOW)


def report(session_factory, tenant: TenantHandle, customer: str):  # type: ignore[no-untyped-def]
    with session_factory() as s:
        out = service.usage_report(s, tenant.uid, customer, now=NOW)
    return out, {m.metric: m for m in out.metrics}


def test_report_usage_capacity_series_growth_and_projection(
    month: None,
    tenant: TenantHandle,
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    out, metrics = report(session_factory, tenant, "c-1")
    assert out.plan == "starter"
    assert (out.period_start, out.period_end) == (date(2026, 3, 1), date(2026, 4, 1))
    calls = metrics["api_calls"]
    assert calls.usage == 2200 and calls.capacity == 10_000 and calls.percent_of_capacity == 22
    assert [p.value for p in calls.daily] == [200] * 11
    assert calls.previous_period_same_span == 1100 and calls.growth_rate == 1.0
    # trailing window Mar 5 00:00 → Mar 11 12:00 = 6.5 days holding 1,400 calls; 20.5 days left
    assert math.isclose(calls.projected, 2200 + 1400 / 6.5 * 20.5, rel_tol=1e-6)
    storage = metrics["storage_gb"]
    assert storage.usage == 6 and storage.percent_of_capacity == 60
    assert storage.growth_rate == 2.0  # 6 GB against 2 GB on the same days of February
    # least-squares slope 0.5 GB/day over the period's days, 20.5 days left
    assert math.isclose(storage.projected, 6 + 0.5 * 20.5, rel_tol=1e-6)
    # every capacity of the plan is reported, used or not
    assert metrics["seats"].usage == 0 and metrics["seats"].capacity == 5

    with session_factory() as s:
        feb = service.usage_report(s, tenant.uid, "c-1", period=date(2026, 2, 1), now=NOW)
    feb_calls = {m.metric: m for m in feb.metrics}["api_calls"]
    assert feb_calls.usage == 1100 and feb_calls.projected == 1100  # a closed period


def test_alerts_fired_once_for_the_gauge_near_capacity(
    month: None,
    tenant: TenantHandle,
    session_factory,
    track,  # type: ignore[no-untyped-def]
) -> None:
    with session_factory() as s:
        alerts = s.scalars(select(UsageAlert)).all()
    # c-2 at 9 GB of 10 crossed the 80% warning, not the 95% critical; c-1 peaked at 60%.
    assert [(a.metric, a.level, a.usage, a.capacity) for a in alerts] == [
        ("storage_gb", "warning", 9.0, 10.0)
    ]
    # the same reading again fires nothing new; 9.6 GB crosses critical once
    track(tenant.uid, [event("again", "c-2", "storage_gb", 9, NOW)], NOW)
    track(tenant.uid, [event("peak", "c-2", "storage_gb", 9.6, NOW)], NOW)
    track(tenant.uid, [event("peak2", "c-2", "storage_gb", 9.9, NOW)], NOW)
    with session_factory() as s:
        levels = sorted(a.level for a in s.scalars(select(UsageAlert)))
    assert levels == ["critical", "warning"]


def test_upsell_triggers_and_recommendation(
    month: None,
    tenant: TenantHandle,
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    with session_factory() as s:
        analysis = service.analyse_upsell(s, tenant.uid, None, now=NOW)
    assert analysis.analysed == 3
    found = {c.customer: c for c in analysis.candidates}
    assert set(found) == {"c-1", "c-2"}  # c-3 is flat and small
    c1 = found["c-1"]
    assert {(r.trigger, r.metric) for r in c1.reasons} == {
        ("growth", "api_calls"),
        ("growth", "storage_gb"),
        ("projected_over_capacity", "storage_gb"),
    }
    assert (c1.recommended_plan, c1.recommended_price, c1.current_price) == (
        "professional",
        9900,
        2900,
    )
    c2 = found["c-2"]
    # 9 GB of 10 (90% > 85%) on each of the 7 days before today
    assert [(r.trigger, r.metric) for r in c2.reasons] == [("sustained_high_usage", "storage_gb")]
    assert c2.reasons[0].value == 0.9


def test_trigger_upsell_opens_one_campaign_per_period_in_the_ledger(
    month: None,
    tenant: TenantHandle,
    session_factory,  # type: ignore[no-untyped-def]
    track,
) -> None:
    with write_transaction(session_factory) as s:
        first = service.trigger_upsell(s, tenant.uid, "c-1", "key:test", now=NOW)
    with write_transaction(session_factory) as s:
        second = service.trigger_upsell(s, tenant.uid, "c-1", "key:test", now=NOW)
    assert first.created and not second.created and first.id == second.id
    assert first.recommended_plan == "professional" and first.monthly_price == 9900
    with session_factory() as s:
        decisions = s.scalars(select(Decision).where(Decision.kind == "upsell_campaign")).all()
    assert len(decisions) == 1 and decisions[0].id == first.decision_id
    assert decisions[0].output["recommended_plan"] == "professional"
    with write_transaction(session_factory) as s, pytest.raises(ProblemError) as exc:
        service.trigger_upsell(s, tenant.uid, "c-3", "key:test", now=NOW)
    assert exc.value.status == 409
    # a new period is a new campaign: on April 1, 10.5 GB is over the 10 GB it has for sure
    april_now = datetime(2026, 4, 1, 12, tzinfo=UTC)
    track(
        tenant.uid,
        [event("apr", "c-1", "storage_gb", 10.5, april_now - timedelta(hours=6))],
        april_now,
    )
    with write_transaction(session_factory) as s:
        april = service.trigger_upsell(s, tenant.uid, "c-1", "key:test", now=april_now)
    assert april.created and april.period_start == date(2026, 4, 1)


def test_report_and_upsell_over_http(
    client: TestClient,
    tenant: TenantHandle,
    customers,  # type: ignore[no-untyped-def]
    frozen_now: datetime,
) -> None:
    """At whatever instant the suite runs (the first minute of a period too): the clock is only
    stopped, so tracking and reading fall in the same period."""
    customers(tenant.uid, "c-9")
    base = "/api/v1/enterprise/usage"
    response = client.post(
        f"{base}/track",
        # over capacity already, so the projection exceeds it at any moment of the month
        json={"id": "x", "customer": "c-9", "metric": "api_calls", "value": 12_000},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    body = client.get(f"{base}/c-9/report", headers=tenant.headers).json()
    calls = {m["metric"]: m for m in body["metrics"]}["api_calls"]
    assert calls["usage"] == 12_000 and calls["percent_of_capacity"] == 120
    assert client.get(f"{base}/nobody/report", headers=tenant.headers).status_code == 404
    bad = client.get(f"{base}/c-9/report", params={"period": "2026-13"}, headers=tenant.headers)
    assert bad.status_code == 422
    alerts = client.get(f"{base}/alerts", headers=tenant.headers).json()["items"]
    assert {a["level"] for a in alerts} == {"warning", "critical"}
    assert all(a["customer"] == "c-9" and a["customer_name"] == "C-9" for a in alerts)
    analysis = client.post(f"{base}/analyze-upsell", json={}, headers=tenant.headers).json()
    assert [c["customer"] for c in analysis["candidates"]] == ["c-9"]
    assert (
        client.post(
            f"{base}/analyze-upsell", json={"customers": ["ghost"]}, headers=tenant.headers
        ).status_code
        == 422
    )
    campaign = client.post(f"{base}/c-9/trigger-upsell", headers=tenant.headers)
    assert campaign.status_code == 200 and campaign.json()["created"] is True
    repeat = client.post(f"{base}/c-9/trigger-upsell", headers=tenant.headers).json()
    assert repeat["created"] is False and repeat["id"] == campaign.json()["id"]
    revenue = client.post(
        "/api/v1/revenue/upsell/analyze", json={"customers": ["c-9"]}, headers=tenant.headers
    ).json()
    assert revenue["candidates"][0]["recommended_plan"] == "professional"


def test_settings_thresholds(client: TestClient, tenant: TenantHandle) -> None:
    url = "/api/v1/enterprise/usage/settings"
    assert client.get(url, headers=tenant.headers).json()["warning_bp"] == 8000
    ok = client.patch(url, json={"warning_bp": 7000}, headers=tenant.headers)
    assert ok.status_code == 200 and ok.json()["warning_bp"] == 7000
    assert client.patch(url, json={"warning_bp": 9900}, headers=tenant.headers).status_code == 422
    assert client.patch(url, json={"critical_bp": -1}, headers=tenant.headers).status_code == 422
