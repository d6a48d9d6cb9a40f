"""The budget optimize endpoint, the allocation ledger and the CLI, on both backends."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from aethercrown import clock
from aethercrown.budget import jobs
from aethercrown.budget.curves import ResponseCurve
from aethercrown.budget.models import BudgetFitCache
from aethercrown.cli import app as cli_app
from aethercrown.core.jobs import all_jobs
from aethercrown.core.models import Decision
from aethercrown.data.models import MarketingSpend
from aethercrown.data.service import ingest_rows
from aethercrown.db.session import write_transaction
from aethercrown.settings import Settings, get_settings
from tests.budget.conftest import START, TRUTH, rows, simulate
from tests.conftest import TenantHandle

URL = "/api/v1/optimization/budget/optimize"
SMALL = {name: TRUTH[name] for name in ("google_ads", "facebook_ads", "tv")}


@pytest.fixture(scope="module")
def history() -> list[dict[str, Any]]:
    return rows(simulate(SMALL, days=90, seed=11))


def post(client: TestClient, who: TenantHandle, body: dict[str, Any]) -> Any:
    return client.post(URL, json=body, headers=who.headers)


def test_optimize_from_given_rows(
    client: TestClient, tenant: TenantHandle, history: list[dict[str, Any]]
) -> None:
    response = post(
        client, tenant, {"total_budget": 3000, "historical_data": history, "bootstrap": 8}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body["allocations"]) == set(SMALL)
    assert sum(body["allocations"].values()) == pytest.approx(3000, abs=1e-6)
    assert all(v >= 150 - 0.01 for v in body["allocations"].values())  # 5% minimum share
    assert body["units"]["money"] == "as_given" and body["units"]["period_days"] == 1
    value = body["expected_return"]
    assert value["low"] <= value["value"] <= value["high"]
    assert body["optimizer"]["relative_gap"] <= 1e-6
    proportional = body["comparison"]["proportional_rule"]
    assert proportional["expected_return"] <= value["value"] + 1e-6
    assert proportional["uplift"] == pytest.approx(value["value"] - proportional["expected_return"])
    actions = {r["channel"]: r for r in body["recommendations"]}
    assert set(actions) == set(SMALL)
    for rec in actions.values():
        assert rec["action"] in {"increase", "decrease", "maintain"}
        assert "marginal ROI" in rec["reason"]
        assert rec["recommended_amount"] == body["allocations"][rec["channel"]]
    assert sum(r["recommended_amount"] for r in actions.values()) == pytest.approx(3000)
    for channel in body["channels"]:
        assert not channel["fallback"] and channel["fit"]["r2"] > 0.5
        assert channel["model"] in {"hill", "exponential"} and len(channel["curve"]) > 5
        assert body["marginal_roi"][channel["channel"]] == channel["marginal_roi"]


def test_horizon_fixed_channels_and_fallback_label(
    client: TestClient, tenant: TenantHandle, history: list[dict[str, Any]]
) -> None:
    extra = [
        {
            "channel": "podcast",
            "date": (START + timedelta(days=i)).isoformat(),
            "spend": 100,
            "revenue": 250,
        }
        for i in range(5)
    ]
    response = post(
        client,
        tenant,
        {
            "total_budget": 30 * 3000,
            "horizon_days": 30,
            "historical_data": history + extra,
            "fixed": {"tv": 30 * 1000},
            "channel_limits": {"facebook_ads": {"max_amount": 30 * 400}},
            "min_share": 0,
            "bootstrap": 5,
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    alloc = body["allocations"]
    assert sum(alloc.values()) == pytest.approx(90_000, abs=1e-6)
    assert alloc["tv"] == pytest.approx(30_000)
    assert alloc["facebook_ads"] <= 12_000 + 0.01
    podcast = next(c for c in body["channels"] if c["channel"] == "podcast")
    # Five days support no curve: the channel is held at its current spend, labelled as such.
    assert podcast["fallback"] and podcast["held"]
    assert "only 5 periods" in podcast["fallback_reason"]
    rec = next(r for r in body["recommendations"] if r["channel"] == "podcast")
    assert "held at its current spend" in rec["reason"]
    assert body["units"]["horizon_days"] == 30 and body["units"]["periods"] == 30


def test_target_scenarios(
    client: TestClient, tenant: TenantHandle, history: list[dict[str, Any]]
) -> None:
    margin = post(
        client, tenant, {"historical_data": history, "target_marginal_roi": 1.0, "bootstrap": 0}
    )
    assert margin.status_code == 200, margin.text
    assert margin.json()["scenario"]["kind"] == "target_marginal_roi"
    roas = post(client, tenant, {"historical_data": history, "target_roas": 1.4, "bootstrap": 0})
    assert roas.status_code == 200, roas.text
    body = roas.json()
    assert body["scenario"]["achieved_roas"] >= 1.4 - 1e-9
    assert body["expected_return"]["value"] / body["total_budget"] == pytest.approx(1.4, rel=1e-2)


def _errors(response: Any) -> str:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["type"].endswith("validation-error") and body["errors"]
    return " ".join(e["field"] + ": " + e["msg"] for e in body["errors"])


def test_bad_input_is_named(
    client: TestClient, tenant: TenantHandle, history: list[dict[str, Any]]
) -> None:
    base = {"total_budget": 1000, "historical_data": history[:200], "bootstrap": 0}
    assert "total_budget" in _errors(post(client, tenant, {**base, "total_budget": 0}))
    assert "total_budget" in _errors(post(client, tenant, {**base, "total_budget": -5}))
    negative = [dict(history[0], spend=-1.0), *history[1:200]]
    assert "historical_data.0.spend" in _errors(
        post(client, tenant, {**base, "historical_data": negative})
    )
    shares = {"channel_limits": {"google_ads": {"min_share": 0.7}, "tv": {"min_share": 0.5}}}
    assert "more than 100%" in _errors(post(client, tenant, {**base, **shares}))
    above = {"channel_limits": {"tv": {"min_amount": 500, "max_amount": 100}}}
    assert "min_amount is above max_amount" in _errors(post(client, tenant, {**base, **above}))
    assert "fixed.radio" in _errors(post(client, tenant, {**base, "fixed": {"radio": 10}}))
    assert "channels.0" in _errors(post(client, tenant, {**base, "channels": ["radio"]}))
    assert "historical_data" in _errors(post(client, tenant, {**base, "historical_data": []}))
    no_revenue = [{"channel": "a", "date": "2026-01-01", "spend": 1.0, "conversions": 3}]
    assert "revenue" in _errors(post(client, tenant, {**base, "historical_data": no_revenue}))
    raw = json.dumps(base).replace('"total_budget": 1000', '"total_budget": NaN')
    response = client.post(
        URL, content=raw, headers={**tenant.headers, "content-type": "application/json"}
    )
    assert "total_budget" in _errors(response)
    assert "total_budget" in _errors(post(client, tenant, {"historical_data": history[:50]}))
    many = [
        {"channel": f"c{i}", "date": "2026-01-01", "spend": 1.0, "revenue": 2.0} for i in range(201)
    ]
    assert "at most 200" in _errors(post(client, tenant, {**base, "historical_data": many}))
    # No history given and nothing stored.
    assert "historical_data" in _errors(post(client, tenant, {"total_budget": 100}))


def store(session_factory: Any, tenant: TenantHandle, first: date, days: int, seed: int) -> None:
    """Marketing rows in minor units, written through the shared ingestion service."""
    series = simulate(SMALL, days=days, seed=seed)
    batch = [
        {
            "channel": name,
            "day": (first + timedelta(days=i)).isoformat(),
            "spend": round(spend[i] * 100),
            "currency": "USD",
            "impressions": 0,
            "clicks": 0,
            "conversions": int(ret[i] // 10),
            "attributed_revenue": round(ret[i] * 100),
        }
        for name, (spend, ret) in series.items()
        for i in range(days)
    ]
    with write_transaction(session_factory) as session:
        ingest_rows(session, tenant.uid, "marketing", batch)


def test_stored_data_in_minor_units_is_isolated_per_tenant(
    client: TestClient, tenant: TenantHandle, other_tenant: TenantHandle, session_factory: Any
) -> None:
    store(session_factory, tenant, START, 60, seed=4)
    response = post(client, tenant, {"total_budget": 300_000, "window_days": 60, "bootstrap": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["units"]["money"] == "minor" and body["units"]["currency"] == "USD"
    assert all(float(v).is_integer() for v in body["allocations"].values())
    assert sum(body["allocations"].values()) == 300_000
    assert body["data_window"]["rows"] == 180
    assert "historical_data" in _errors(post(client, other_tenant, {"total_budget": 100}))
    conv = post(
        client, tenant, {"total_budget": 300_000, "objective": "conversions", "bootstrap": 0}
    )
    assert conv.status_code == 200, conv.text


def test_daily_job_records_and_closes_the_loop(
    client: TestClient, tenant: TenantHandle, other_tenant: TenantHandle, session_factory: Any
) -> None:
    assert "budget.daily_allocation" in {j.name for j in all_jobs()}
    store(session_factory, tenant, START, 60, seed=5)
    day = START + timedelta(days=60)
    with write_transaction(session_factory) as session:
        summary = jobs.daily_allocation(session, tenant.uid, datetime(2026, 3, 2, tzinfo=UTC))
    assert summary["period"] == day.isoformat() and summary["closed"] == 0
    with write_transaction(session_factory) as session:
        again = jobs.daily_allocation(session, tenant.uid, datetime(2026, 3, 2, tzinfo=UTC))
    assert "exists" in again["skipped"]
    listed = client.get("/api/v1/optimization/budget/allocations", headers=tenant.headers).json()
    (item,) = listed["items"]
    assert item["predicted_return"] == pytest.approx(summary["expected_return"])
    assert item["realised_return"] is None and item["period_start"] == day.isoformat()
    # The day's actual results arrive; the next run records them next to the prediction.
    store(session_factory, tenant, day, 1, seed=6)
    with write_transaction(session_factory) as session:
        actual = sum(
            r.attributed_revenue
            for r in session.scalars(select(MarketingSpend).where(MarketingSpend.day == day))
        )
        summary2 = jobs.daily_allocation(session, tenant.uid, datetime(2026, 3, 3, tzinfo=UTC))
    assert summary2["closed"] == 1
    listed = client.get("/api/v1/optimization/budget/allocations", headers=tenant.headers).json()
    assert len(listed["items"]) == 2
    closed = next(i for i in listed["items"] if i["period_start"] == day.isoformat())
    assert closed["realised_return"] == actual and closed["outcome_at"] is not None
    assert closed["predicted_return"] == pytest.approx(summary["expected_return"])
    with session_factory() as session:
        decision = session.scalars(
            select(Decision).where(Decision.id == uuid.UUID(closed["id"]))
        ).one()
        assert decision.outcome["predicted_at_actual_spend"] > 0
    other = client.get("/api/v1/optimization/budget/allocations", headers=other_tenant.headers)
    assert other.json()["items"] == []
    with write_transaction(session_factory) as session:
        empty = jobs.daily_allocation(session, other_tenant.uid, datetime(2026, 3, 3, tzinfo=UTC))
    assert "skipped" in empty


def test_an_allocation_is_closed_only_once_its_day_is_over(
    tenant: TenantHandle, session_factory: Any
) -> None:
    """With the day's row already stored (a replay of the past loads every row first), the job
    running on that day must not read it: the return comes in once the day is over."""
    store(session_factory, tenant, START, 61, seed=5)  # the allocated day's row included
    day = START + timedelta(days=60)
    midnight = datetime.combine(day, datetime.min.time(), UTC)
    with clock.travel(midnight + timedelta(hours=1), tick=False):
        with write_transaction(session_factory) as session:
            first = jobs.daily_allocation(session, tenant.uid, midnight)
        with write_transaction(session_factory) as session:
            again = jobs.daily_allocation(session, tenant.uid, midnight)
    assert first["period"] == day.isoformat() and again["closed"] == 0
    with (
        clock.travel(midnight + timedelta(days=1), tick=False),
        write_transaction(session_factory) as session,
    ):
        later = jobs.daily_allocation(session, tenant.uid, midnight + timedelta(days=1))
    assert later["closed"] == 1


def test_cli_prints_the_allocation(
    tenant: TenantHandle, session_factory: Any, settings: Settings, monkeypatch: Any
) -> None:
    store(session_factory, tenant, START, 40, seed=7)
    monkeypatch.setenv("AETHERCROWN_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        result = runner.invoke(
            cli_app,
            [
                "budget",
                "optimize",
                "--tenant",
                tenant.slug,
                "--budget",
                "250000",
                "--window-days",
                "40",
                "--min-share",
                "0.1",
            ],
        )
        assert result.exit_code == 0, result.output
        body = json.loads(result.stdout)
        assert sum(body["allocations"].values()) == 250_000
        assert min(body["allocations"].values()) >= 25_000
        bad = runner.invoke(
            cli_app, ["budget", "optimize", "--tenant", tenant.slug, "--budget", "-1"]
        )
        assert bad.exit_code == 2
    finally:
        get_settings.cache_clear()


def test_truth_curve_helper_is_consistent() -> None:
    curve = ResponseCurve("hill", 10.0, 2.0, 1.0)
    assert curve.at(2.0) == pytest.approx(5.0)


def test_stored_history_answer_is_sure_of_itself_and_its_fits_are_cached(
    client: TestClient, tenant: TenantHandle, session_factory: Any
) -> None:
    store(session_factory, tenant, START, 120, seed=5)
    request = {"total_budget": 300_000, "window_days": 120}
    first = post(client, tenant, request)
    assert first.status_code == 200, first.text
    body = first.json()
    assert sum(body["allocations"].values()) == 300_000
    value = body["expected_return"]
    assert value["low"] < value["value"] < value["high"]
    gain = body["gain_over_current"]
    assert gain["low"] <= gain["value"] <= gain["high"]
    assert 0 <= gain["probability_positive"] <= 1
    assert isinstance(body["confidence"], str) and len(body["confidence"]) > 40
    for channel in body["channels"]:
        assert channel["trusted_max_spend"] > 0
        assert channel["beyond_trusted"] is False
    assert cached_fits(session_factory, tenant) == 3
    again = post(client, tenant, request)
    assert again.json()["allocations"] == body["allocations"]
    assert cached_fits(session_factory, tenant) == 3
    # A new day of data is a new data version: refitted, not served from the old fits.
    store(session_factory, tenant, START + timedelta(days=120), 1, seed=6)
    assert post(client, tenant, request).status_code == 200
    assert cached_fits(session_factory, tenant) == 6


def cached_fits(session_factory: Any, tenant: TenantHandle) -> int:
    with write_transaction(session_factory) as session:
        return len(
            session.scalars(
                select(BudgetFitCache).where(BudgetFitCache.tenant_id == tenant.uid)
            ).all()
        )
