"""The dashboard routes against the hand-computed company, on every backend."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from aethercrown import clock
from aethercrown.clock import utcnow
from aethercrown.core.ledger import record_decision, record_outcome
from aethercrown.db.session import write_transaction
from aethercrown.health.models import HealthSample
from aethercrown.tasks.models import Task
from tests.analytics import fixtures as fx
from tests.conftest import TenantHandle, create_tenant

REVENUE = "/api/v1/dashboard/metrics/revenue"


def test_revenue_months_match_the_hand_computed_table(
    client: TestClient, tenant: TenantHandle, company: dict[str, uuid.UUID]
) -> None:
    response = client.post(
        REVENUE, json={"start": "2026-01", "end": "2026-06"}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["currency"] == "USD"
    months = {m["month"]: m for m in body["months"]}
    assert list(months) == list(fx.EXPECTED)
    for month, expected in fx.EXPECTED.items():
        assert {k: months[month][k] for k in expected} == expected, month
    assert months["2026-03"]["cac"] == 20000 and months["2026-03"]["mau"] == 3
    assert months["2026-03"]["trial_conversion_rate"] == 0.5
    assert body["totals"]["new"] == 15220 + 10000 + 2900 + 833
    assert body["totals"]["churn"] == 5220 and body["totals"]["ending_mrr"] == 46733


def test_revenue_filters_by_plan_and_segment(
    client: TestClient, tenant: TenantHandle, company: dict[str, uuid.UUID]
) -> None:
    period = {"start": "2026-03", "end": "2026-05"}
    starter = client.post(REVENUE, json=period | {"plan": "starter"}, headers=tenant.headers)
    rows = starter.json()["months"]
    # Within the starter plan: b leaves in March (churn 5220), e converts (new 2900).
    assert [(r["month"], r["mrr"], r["churn"], r["new"]) for r in rows] == [
        ("2026-03", 2900, 5220, 2900),
        ("2026-04", 2900, 0, 0),
        ("2026-05", 2900, 0, 0),
    ]
    ent = client.post(REVENUE, json=period | {"segment": "enterprise"}, headers=tenant.headers)
    assert [r["mrr"] for r in ent.json()["months"]] == [10000, 24000, 24000]


def test_bad_periods_are_422_naming_the_field(client: TestClient, tenant: TenantHandle) -> None:
    h = tenant.headers
    bad = client.post(REVENUE, json={"start": "2026-05", "end": "2026-01"}, headers=h)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "end"
    for body, field in (
        ({"start": "2026-13", "end": "2026-12"}, "start"),
        ({"start": "2026-1", "end": "2026-12"}, "start"),
        ({"start": "2026-01", "end": 202612}, "end"),
        ({"start": "2026-01", "end": "2026-02", "currency": "usd"}, "currency"),
        ({"start": "2026-01", "segment": "whales"}, "segment"),
        ({"start": "2026-01", "unknown": 1}, "unknown"),
        ({"start": "2000-01", "end": "2030-01"}, "end"),
    ):
        response = client.post(REVENUE, json=body, headers=h)
        assert response.status_code == 422, body
        assert field in {e["field"] for e in response.json()["errors"]}, body
    assert client.post(REVENUE, content=b"[1,", headers=h).status_code == 422


def test_a_period_without_data_is_an_empty_answer(
    client: TestClient, admin_key: str, tenant: TenantHandle, company: dict[str, uuid.UUID]
) -> None:
    empty = client.post(
        REVENUE, json={"start": "2020-01", "end": "2020-12"}, headers=tenant.headers
    )
    assert empty.status_code == 200
    assert empty.json()["months"] == [] and empty.json()["totals"]["ending_mrr"] is None
    other = create_tenant(client, admin_key, "empty")
    for path in (
        "/executive/summary",
        "/metrics/revenue",
        "/metrics/growth",
        "/metrics/ai-performance",
        "/metrics/system-health",
    ):
        response = client.post("/api/v1/dashboard" + path, json={}, headers=other.headers)
        assert response.status_code == 200, (path, response.text)


def test_tenants_see_only_their_own_figures(
    client: TestClient,
    tenant: TenantHandle,
    other_tenant: TenantHandle,
    company: dict[str, uuid.UUID],
) -> None:
    period = {"start": "2026-01", "end": "2026-06"}
    assert client.post(REVENUE, json=period, headers=other_tenant.headers).json()["months"] == []
    assert client.post(REVENUE, json=period).status_code == 401


def test_snapshot_follows_the_data(
    client: TestClient, tenant: TenantHandle, company: dict[str, uuid.UUID], session_factory
) -> None:  # type: ignore[no-untyped-def]
    from aethercrown.data.models import Subscription

    period = {"start": "2026-06", "end": "2026-06"}
    first = client.post(REVENUE, json=period, headers=tenant.headers).json()["months"][0]
    assert first["mrr"] == 46733
    with write_transaction(session_factory) as session:
        session.add(
            Subscription(
                tenant_id=tenant.uid,
                external_id="late",
                customer_id=company["d"],
                plan="pro",
                amount=5000,
                currency="USD",
                interval="month",
                started_at=fx.at(6, 3),
            )
        )
    second = client.post(REVENUE, json=period, headers=tenant.headers).json()["months"][0]
    assert second["mrr"] == 46733 + 5000 and second["reactivation"] == 0
    assert second["new"] == 833 + 5000


def test_growth_and_summary(
    client: TestClient, tenant: TenantHandle, company: dict[str, uuid.UUID]
) -> None:
    period = {"start": "2026-01", "end": "2026-06"}
    # Read in mid-July 2026, when the company has six complete months (the forecast's history
    # grows with the clock, and the suite also runs years later).
    with clock.travel(datetime(2026, 7, 15, 12, tzinfo=UTC)):
        growth = client.post(
            "/api/v1/dashboard/metrics/growth", json=period, headers=tenant.headers
        ).json()
    assert growth["months"][1]["mrr_growth_rate"] == pytest.approx(0.657)  # 10000 / 15220
    assert growth["mrr_cmgr"] == pytest.approx(round((46733 / 15220) ** (1 / 5) - 1, 4))
    assert set(growth["forecasts"]) == {"mrr", "customers", "churn_rate"}
    mrr_forecast = growth["forecasts"]["mrr"]
    assert len(mrr_forecast["mean"]) == 6
    bounds = list(
        zip(mrr_forecast["lower"], mrr_forecast["mean"], mrr_forecast["upper"], strict=True)
    )
    assert all((lo is None and hi is None) or lo <= m <= hi for lo, m, hi in bounds)
    # A short history: too few past 6-month errors to measure that interval, so it is unknown
    # (null), not an invented width.
    assert bounds[-1][0] is None and bounds[-1][2] is None
    summary = client.post(
        "/api/v1/dashboard/executive/summary", json=period, headers=tenant.headers
    ).json()
    assert summary["latest"]["month"] == "2026-06" and summary["latest"]["mrr"] == 46733
    assert summary["latest"]["arr"] == 46733 * 12
    assert summary["period"]["net_new_mrr"] == 46733
    assert summary["health"]["status"] == "no samples yet"


def test_ai_performance_is_measured_from_the_ledger(
    client: TestClient, tenant: TenantHandle, session_factory, frozen_now: datetime
) -> None:  # type: ignore[no-untyped-def]
    now = frozen_now
    with write_transaction(session_factory) as session:
        # Churn scores against what really happened: one inversion in 2 × 2 pairs -> AUC 0.75.
        for i, (score, churned) in enumerate([(0.9, 1), (0.4, 1), (0.6, 0), (0.1, 0)]):
            d = record_decision(
                session,
                tenant_id=tenant.uid,
                kind="churn_prediction",
                subject_type="customer",
                subject_id=f"c{i}",
                inputs={"i": i},
                output={"p": score},
                model="churn-gbm",
                model_version="1",
                predicted_value=score,
            )
            record_outcome(d, {"churned": bool(churned)}, float(churned))
        record_decision(
            session,
            tenant_id=tenant.uid,
            kind="churn_prediction",
            subject_type="customer",
            subject_id="open",
            inputs={},
            output={},
            model="churn-gbm",
            model_version="1",
            predicted_value=0.5,
        )
        # Retention campaigns against their random holdout: treated 1 of 2 retained, held out
        # 1 of 1. They carry the score that triggered them, and count as campaigns only.
        for i, (holdout, churned) in enumerate([(False, 0), (False, 1), (True, 0)]):
            d = record_decision(
                session,
                tenant_id=tenant.uid,
                kind="churn.campaign",
                subject_type="customer",
                subject_id=f"c{i}",
                inputs={"i": i},
                output={"holdout": holdout},
                model="churn-campaign-rules",
                model_version="1",
                predicted_value=0.9,
            )
            record_outcome(d, {"churned": bool(churned), "holdout": holdout}, float(churned))
        for predicted, realised in ((100.0, 80.0), (200.0, 220.0)):
            d = record_decision(
                session,
                tenant_id=tenant.uid,
                kind="budget_allocation",
                subject_type="channel",
                subject_id="search",
                inputs={},
                output={},
                model="budget",
                model_version="1",
                predicted_value=predicted,
            )
            record_outcome(d, {"return": realised}, realised)
        record_decision(
            session,
            tenant_id=tenant.uid,
            kind="experiment_verdict",
            subject_type="experiment",
            subject_id="e1",
            inputs={},
            output={},
            model="bayes",
            model_version="1",
        )
        done = record_decision(
            session,
            tenant_id=tenant.uid,
            kind="task_assignment",
            subject_type="task",
            subject_id="t1",
            inputs={},
            output={},
            model="scheduler",
            model_version="1",
        )
        record_outcome(done, {"status": "done"}, 1.0, at=now)
        record_decision(
            session,
            tenant_id=tenant.uid,
            kind="task_assignment",
            subject_type="task",
            subject_id="t2",
            inputs={},
            output={},
            model="scheduler",
            model_version="1",
        )
        base = {"priority": 1, "estimated_seconds": 60.0, "static_score": 1.0, "enqueued_ts": 0.0}
        session.add(Task(tenant_id=tenant.uid, key="a", type="t", status="running", **base))
        session.add(
            Task(
                tenant_id=tenant.uid,
                key="b",
                type="t",
                status="completed",
                started_at=now - timedelta(seconds=90),
                finished_at=now,
                **base,
            )
        )
        session.add(
            Task(
                tenant_id=tenant.uid,
                key="c",
                type="t",
                status="failed",
                started_at=now - timedelta(seconds=5),
                finished_at=now,
                **base,
            )
        )
    month = now.strftime("%Y-%m")
    body = client.post(
        "/api/v1/dashboard/metrics/ai-performance",
        json={"start": month, "end": month},
        headers=tenant.headers,
    ).json()
    assert body["decisions"]["total"] == 13 and body["decisions"]["with_outcome"] == 10
    kinds = {k["kind"]: k["decisions"] for k in body["decisions"]["by_kind"]}
    assert kinds == {
        "budget_allocation": 2,
        "churn.campaign": 3,
        "churn_prediction": 5,
        "experiment_verdict": 1,
        "task_assignment": 2,
    }
    churn = body["churn_model"]
    assert churn["scored_with_outcome"] == 4 and churn["auc"] == 0.75
    assert churn["calibration"]["n"] == 4
    assert churn["calibration"]["brier"] == round((0.1**2 + 0.6**2 + 0.6**2 + 0.1**2) / 4, 4)
    campaigns = body["campaigns"]
    assert (campaigns["treated"], campaigns["treated_retained"]) == (2, 1)
    assert (campaigns["holdout"], campaigns["holdout_retained"]) == (1, 1)
    assert campaigns["retention_uplift"] == pytest.approx(0.5 - 1.0)
    low, high = campaigns["ci95"]
    assert -1 <= low < -0.5 < high <= 1
    assert body["budget"]["predicted_total"] == 300 and body["budget"]["realised_total"] == 300
    assert body["budget"]["mape"] == pytest.approx(round((0.25 + 20 / 220) / 2, 4))
    assert body["experiments"]["decided"] == 1
    assert body["experiments"]["verdicts_judged"] == body["experiments"]["verdicts_right"] == 0
    tasks = body["tasks"]
    # Assignments from the ledger; running/completed/failed and run time from the task queue.
    assert (tasks["assigned"], tasks["running"], tasks["completed"], tasks["failed"]) == (
        2,
        1,
        1,
        1,
    )
    assert tasks["mean_run_seconds"] == 90.0


def test_system_health_from_health_samples(
    client: TestClient, tenant: TenantHandle, session_factory
) -> None:  # type: ignore[no-untyped-def]
    path = "/api/v1/dashboard/metrics/system-health"
    month = utcnow().strftime("%Y-%m")
    empty = client.post(path, json={"start": month}, headers=tenant.headers).json()
    assert empty["health_samples"]["status"] == "no samples yet"
    now = utcnow()
    with write_transaction(session_factory) as session:
        for hours, status in ((4, "ok"), (3, "down"), (2, "ok"), (1, "degraded")):
            session.add(
                HealthSample(
                    tenant_id=tenant.uid,
                    component="api",
                    status=status,
                    latency_ms=10.0 * hours,
                    source="job",
                    checked_at=now - timedelta(hours=hours),
                )
            )
    body = client.post(path, json={}, headers=tenant.headers).json()["health_samples"]
    assert body["samples"] == 4 and body["uptime"] == 0.75  # one of four samples down
    assert body["status"] == "degraded"
    [api] = body["components"]
    assert api["component"] == "api" and api["incidents"] == 2
