"""Loading the demo replays the platform's own automation over its past: on the day it is
loaded the company is alive, and the decision ledger holds decisions whose outcomes were joined
by the jobs themselves — which the AI-performance figures are computed from."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from aethercrown import clock
from aethercrown.automation.models import AutomationRun
from aethercrown.core.errors import Conflict, InvalidInput
from aethercrown.core.models import Decision
from aethercrown.simulate import SimConfig
from aethercrown.simulate.replay import CADENCES, Cadence, schedule
from aethercrown.simulate.service import load_demo
from tests.conftest import TenantHandle

# "Today" for this test: mid-morning on the 2nd, the day the issue was filed.
TODAY = datetime(2026, 12, 2, 10, 37, tzinfo=UTC)
# The default cadences, lighter: fewer runs of the same jobs keep the test to seconds.
LIGHT = {
    "churn.retrain": Cadence(timedelta(weeks=13), timedelta(days=364)),
    "churn.score": Cadence(timedelta(weeks=4), timedelta(days=364)),
    "budget.daily_allocation": Cadence(timedelta(weeks=1), timedelta(days=8)),
}
HORIZON = timedelta(days=30)


def binned_auc(scores: list[float], labels: list[int], resolution: int = 200) -> float:
    """AUC over scores rounded to 1/resolution (half up), ties counted half: the figure the
    dashboard aggregates in SQL."""
    bins = np.floor(np.asarray(scores) * resolution + 0.5)
    y = np.asarray(labels)
    pos, neg = bins[y == 1], bins[y == 0]
    below = np.searchsorted(np.sort(neg), pos, side="left")
    ties = np.searchsorted(np.sort(neg), pos, side="right") - below
    return float((below + ties / 2).sum() / (len(pos) * len(neg)))


def test_schedule_counts_back_from_the_end_and_orders_training_first() -> None:
    end = datetime(2026, 12, 2, 10, 37, tzinfo=UTC)
    plan = schedule(datetime(2025, 6, 2).date(), end)
    assert plan[-1][0] == datetime(2026, 12, 2, tzinfo=UTC) and plan[-1][1][0] == "churn.retrain"
    assert all(moment < end and moment.hour == 0 for moment, _ in plan)
    scored = [m for m, names in plan if "churn.score" in names]
    assert {b - a for a, b in itertools.pairwise(scored)} == {CADENCES["churn.score"].every}
    assert scored[0] >= end - CADENCES["churn.score"].span
    # A window ending at a midnight replays nothing at that midnight (it is not in the past).
    midnight = datetime(2026, 12, 2, tzinfo=UTC)
    assert all(m < midnight for m, _ in schedule(datetime(2026, 6, 2).date(), midnight))


def test_the_demo_loaded_today_is_alive_and_its_past_is_measured(
    client: TestClient, tenant: TenantHandle, session_factory
) -> None:  # type: ignore[no-untyped-def]
    with clock.travel(TODAY):
        config = SimConfig(customers=300, months=8, seed=5, activity_scale=0.5)  # ends now
        assert config.end == TODAY
        result = load_demo(session_factory, tenant.slug, config, cadences=LIGHT)
        replay = result.replay
        assert replay is not None and replay["errors"] == []
        assert all(job["runs"] > 0 and job["failed"] == 0 for job in replay["jobs"].values())

        with session_factory() as session:
            decisions = session.scalars(
                select(Decision).where(Decision.tenant_id == tenant.uid)
            ).all()
            runs = session.scalars(select(AutomationRun)).all()
        assert runs and all(r.runner.startswith("demo-replay:") for r in runs)
        assert all(r.tenant_id == tenant.uid and r.status == "succeeded" for r in runs)
        # Decisions of each kind, and outcomes joined for each.
        known = {d.kind for d in decisions if d.outcome_at is not None}
        assert {"churn.score", "churn.campaign", "budget_allocation", "experiment_verdict"} <= known
        for d in decisions:
            # Nothing was decided or learnt after the window's end, and no outcome before it
            # could be known: a score's 30 days, an allocation's day.
            assert d.created_at < config.end
            if d.outcome_at is None:
                continue
            assert d.outcome_at < config.end
            if d.kind in ("churn.score", "churn.campaign"):
                assert d.outcome_at >= d.created_at + HORIZON
            if d.kind == "budget_allocation":
                assert d.outcome_at.date() > datetime.fromisoformat(d.output["period_end"]).date()
        # Every score whose 30 days had passed by the last scoring run was joined.
        last_scoring = max(d.created_at for d in decisions if d.kind == "churn.score")
        for d in decisions:
            if d.kind == "churn.score" and d.created_at <= last_scoring - HORIZON:
                assert d.outcome is not None and d.outcome_value == float(d.outcome["churned"])

        # The AI-performance figures are those of the ledger rows.
        body = client.post(
            "/api/v1/dashboard/metrics/ai-performance", json={}, headers=tenant.headers
        ).json()
        since = datetime.fromisoformat(body["start"] + "-01T00:00:00+00:00")
        period = [d for d in decisions if d.created_at >= since]
        assert body["decisions"]["total"] == len(period)
        assert body["decisions"]["with_outcome"] == sum(d.outcome_at is not None for d in period)
        scored = [
            d
            for d in period
            if d.kind == "churn.score"
            and d.predicted_value is not None
            and d.outcome_value is not None
        ]
        p = [d.predicted_value for d in scored]
        y = [int(d.outcome_value >= 0.5) for d in scored]  # type: ignore[operator]
        churn = body["churn_model"]
        assert churn["scored_with_outcome"] == len(scored) and churn["churned"] == sum(y) > 0
        assert churn["auc"] == pytest.approx(round(binned_auc(p, y), 4), abs=1e-4)  # type: ignore[arg-type]
        brier = sum((pi - yi) ** 2 for pi, yi in zip(p, y, strict=True)) / len(p)  # type: ignore[operator]
        assert churn["calibration"]["brier"] == round(brier, 4)
        assert 0.5 < churn["auc"] < 1
        campaigns = [d for d in period if d.kind == "churn.campaign" and d.outcome is not None]
        treated = [d for d in campaigns if not d.output["holdout"]]
        held = [d for d in campaigns if d.output["holdout"]]
        uplift = body["campaigns"]
        assert uplift["treated"] == len(treated) and uplift["holdout"] == len(held)
        assert uplift["treated_retained"] == sum(not d.outcome["churned"] for d in treated)
        assert uplift["holdout_retained"] == sum(not d.outcome["churned"] for d in held)
        if treated and held:
            expected = uplift["treated_retained"] / len(treated) - uplift["holdout_retained"] / len(
                held
            )
            assert uplift["retention_uplift"] == pytest.approx(expected)
        allocations = [d for d in period if d.kind == "budget_allocation" and d.outcome_value]
        budget = body["budget"]
        assert budget["decisions_with_outcome"] == len(allocations) > 0
        predicted = sum(d.predicted_value for d in allocations)  # type: ignore[misc]
        realised = sum(d.outcome_value for d in allocations)  # type: ignore[misc]
        assert budget["predicted_total"] == round(predicted, 2)
        assert budget["realised_total"] == round(realised, 2)
        mape = sum(
            abs(d.predicted_value - d.outcome_value) / abs(d.outcome_value)  # type: ignore[operator]
            for d in allocations
        ) / len(allocations)
        assert math.isclose(budget["mape"], round(mape, 4), abs_tol=1e-4)

        verdicts = [d for d in period if d.kind == "experiment_verdict"]
        experiments = body["experiments"]
        assert experiments["verdicts_judged"] == len(verdicts)
        assert experiments["verdicts_right"] == sum(d.outcome_value == 1.0 for d in verdicts)

        # Alive today: users active in the last 30 days, usage this month, an alert, an upsell.
        live = client.get("/api/v1/investor/dashboard/live", headers=tenant.headers).json()
        assert live["active_users_30d"] > 0
        alerts = client.get(
            "/api/v1/enterprise/usage/alerts", params={"limit": 100}, headers=tenant.headers
        ).json()["items"]
        this_month = TODAY.date().replace(day=1).isoformat()
        assert any(a["period_start"] == this_month for a in alerts)
        upsell = client.post(
            "/api/v1/enterprise/usage/analyze-upsell", json={}, headers=tenant.headers
        ).json()
        assert upsell["period_start"] == this_month and upsell["candidates"]
        customer = upsell["candidates"][0]["customer"]
        report = client.get(
            f"/api/v1/enterprise/usage/{customer}/report", headers=tenant.headers
        ).json()
        assert any(m["usage"] > 0 for m in report["metrics"])
        client.post(
            "/console/login",
            data={"key": tenant.key, "next": "/console"},
            headers={"origin": "http://testserver"},
        )
        page = client.get("/console")
        assert page.status_code == 200 and "Churn model Brier score" in page.text
        assert "uplift against the holdout" in page.text

        # Loading the same company again changes nothing; a later end is another company.
        again = load_demo(session_factory, tenant.slug, config, cadences=LIGHT)
        assert again.skipped and again.replay == replay
        with session_factory() as session:
            count = len(session.scalars(select(Decision.id)).all())
        assert count == len(decisions)
        earlier = SimConfig(
            customers=300, months=8, seed=5, activity_scale=0.5, end=TODAY - timedelta(days=1)
        )
        with pytest.raises(Conflict, match="another company"):
            load_demo(session_factory, tenant.slug, earlier, cadences=LIGHT)
        with pytest.raises(InvalidInput, match="future"):
            load_demo(session_factory, "future-demo", SimConfig(end=TODAY + timedelta(hours=1)))
