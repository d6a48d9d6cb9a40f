"""Health checks (what each caller sees, every sample stored) and trends over stored samples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from aethercrown.automation.service import Runner
from aethercrown.clock import utcnow
from aethercrown.core.jobs import all_jobs
from aethercrown.db.session import write_transaction
from aethercrown.health import service, trends
from aethercrown.health.models import HealthSample
from tests.conftest import TenantHandle, bearer

BASE = "/api/v1/operational/health"


def test_operator_check_measures_every_component_and_stores_the_samples(
    client: TestClient, admin_key: str, tenant: TenantHandle, session_factory: sessionmaker[Session]
) -> None:
    response = client.get(f"{BASE}/check", headers=bearer(admin_key))
    assert response.status_code == 200
    report = response.json()
    assert report["scope"] == "installation"
    by_name = {c["component"]: c for c in report["components"]}
    assert {"database", "migrations", "disk", "workers"} <= set(by_name)
    assert {f"job:{j.name}" for j in all_jobs()} <= set(by_name)
    assert "redis" not in by_name and "llm" not in by_name  # neither is configured
    assert by_name["database"]["status"] == "ok" and by_name["database"]["latency_ms"] >= 0
    assert (
        by_name["migrations"]["status"] == "ok" and by_name["migrations"]["detail"]["pending"] == []
    )
    assert by_name["disk"]["detail"]["total_bytes"] > 0
    # No run yet, and the tenant is brand new: nothing is late, but jobs never ran.
    assert by_name["job:task_scheduling"]["detail"]["never_ran"] == 1
    with session_factory() as session:
        stored = session.scalars(select(HealthSample)).all()
    assert len(stored) == len(report["components"])
    assert {s.tenant_id for s in stored} == {None} and {s.source for s in stored} == {"api"}


def test_tenant_check_hides_installation_detail_and_shows_its_own_components(
    client: TestClient, tenant: TenantHandle, session_factory: sessionmaker[Session]
) -> None:
    client.post(
        "/api/v1/optimization/tasks/workers/register", json={"name": "w"}, headers=tenant.headers
    )
    report = client.get(f"{BASE}/check", headers=tenant.headers).json()
    assert report["scope"] == "tenant"
    by_name = {c["component"]: c for c in report["components"]}
    assert by_name["disk"]["detail"] == {} and by_name["database"]["detail"] == {}
    assert "job:health_checks" not in by_name  # installation job: the operator's concern
    assert by_name["workers"]["detail"]["live"] == 1
    with session_factory() as session:
        tenants = set(session.scalars(select(HealthSample.tenant_id)))
    assert tenants == {tenant.uid}


def test_job_lag_is_measured_from_the_last_successful_period(
    session_factory: sessionmaker[Session], tenant: TenantHandle
) -> None:
    jobs = [j for j in all_jobs() if j.name == "task_scheduling"]
    now = utcnow()
    Runner(session_factory, jobs).tick(now - timedelta(hours=5))
    with session_factory() as session:
        late = service.check_jobs(session, None, jobs, now)[0]
    # Last success: the period starting 5 h ago (rounded down to the hour); due within 2 h.
    last_start = (now - timedelta(hours=5)).replace(minute=0, second=0, microsecond=0)
    expected_lag = (now - last_start).total_seconds() - 2 * 3600
    assert late.status == "down"  # more than one interval late
    assert late.detail["lag_seconds"] == pytest.approx(expected_lag, abs=1)
    Runner(session_factory, jobs).tick(now)
    with session_factory() as session:
        fresh = service.check_jobs(session, None, jobs, now)[0]
    assert fresh.status == "ok" and fresh.detail["lag_seconds"] == 0


def test_trends_give_uptime_latency_percentiles_and_incidents(
    client: TestClient, admin_key: str, tenant: TenantHandle, session_factory: sessionmaker[Session]
) -> None:
    now = utcnow()
    statuses = ["ok", "ok", "degraded", "down", "ok", "ok", "ok", "down", "ok", "ok"]
    with write_transaction(session_factory) as session:
        for i, status in enumerate(statuses):
            session.add(
                HealthSample(
                    component="database",
                    status=status,
                    latency_ms=float(10 * (i + 1)),
                    detail={},
                    source="job",
                    checked_at=now - timedelta(minutes=10 * (10 - i)),
                )
            )
        # Outside the window: ignored.
        session.add(
            HealthSample(
                component="database",
                status="down",
                latency_ms=1.0,
                detail={},
                source="job",
                checked_at=now - timedelta(hours=30),
            )
        )
    body = client.get(f"{BASE}/trends", params={"hours": 24}, headers=bearer(admin_key)).json()
    database = next(c for c in body["components"] if c["component"] == "database")
    assert database["samples"] == 10
    assert database["uptime_percent"] == 80.0  # two of ten samples down
    assert database["ok_percent"] == 70.0
    # Latencies 10…100: p50 = 55, p95 = 95.5 (linear interpolation).
    assert database["latency_p50_ms"] == 55.0 and database["latency_p95_ms"] == 95.5
    incidents = database["incidents"]
    assert [(i["worst_status"], i["samples"]) for i in incidents] == [("down", 2), ("down", 1)]
    assert all(i["ended_at"] is not None for i in incidents)
    # A tenant sees the installation's samples of shared components too.
    mine = client.get(f"{BASE}/trends", headers=tenant.headers).json()
    assert [c["component"] for c in mine["components"]] == ["database"]
    bad = client.get(f"{BASE}/trends", params={"hours": 0}, headers=tenant.headers)
    assert bad.status_code == 422


def test_incident_still_open_at_the_last_sample() -> None:
    at = datetime(2030, 1, 1, tzinfo=UTC)
    samples = [
        trends.Sample(at, "ok", 1.0),
        trends.Sample(at + timedelta(minutes=1), "degraded", 2.0),
        trends.Sample(at + timedelta(minutes=2), "degraded", None),
    ]
    trend = trends.component_trend("x", samples)
    assert trend.uptime_percent == 100.0 and trend.last_status == "degraded"
    assert len(trend.incidents) == 1 and trend.incidents[0].ended_at is None
    assert trend.incidents[0].samples == 2
    empty = trends.component_trend("y", [])
    assert empty.uptime_percent is None and empty.latency_p50_ms is None


def test_health_needs_a_key(client: TestClient) -> None:
    assert client.get(f"{BASE}/check").status_code == 401
    assert client.get(f"{BASE}/trends").status_code == 401


def test_webhook_failures_show_in_the_tenants_and_the_operators_check(
    client: TestClient,
    admin_key: str,
    tenant: TenantHandle,
    other_tenant: TenantHandle,
    session_factory: sessionmaker[Session],
) -> None:
    from aethercrown.webhooks.models import WebhookDelivery

    def delivery(tenant_id: object, status: str, attempts: int) -> WebhookDelivery:
        return WebhookDelivery(
            tenant_id=tenant_id,
            event_type="test",
            payload={},
            url="http://127.0.0.1:9/hook",
            status=status,
            attempts=attempts,
        )

    with write_transaction(session_factory) as session:
        session.add(delivery(tenant.uid, "delivered", 1))
        session.add(delivery(tenant.uid, "pending", 2))  # failed once, retrying
        session.add(delivery(other_tenant.uid, "failed", 8))  # gave up

    def webhooks(headers: dict[str, str]) -> dict[str, object]:
        report = client.get(f"{BASE}/check", headers=headers).json()
        return next(c for c in report["components"] if c["component"] == "webhooks")

    mine = webhooks(tenant.headers)
    assert mine["status"] == "degraded"
    assert mine["detail"] == {"total": 2, "failed": 0, "retrying": 1, "delivered": 1}
    everyone = webhooks(bearer(admin_key))
    assert everyone["status"] == "down" and everyone["detail"]["failed"] == 1  # type: ignore[index]
