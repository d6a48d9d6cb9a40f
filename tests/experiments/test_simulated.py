"""The simulator's experiments, with known true effects, through the engine end to end: created
over the API, every visitor's exposure and conversions tracked over the API in batches, and the
verdict read from /results with each engine."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from aethercrown.simulate import SimConfig, SimulatedCompany, generate
from aethercrown.simulate.experiments import batches, create_body, experiment_rows, tracking_events
from tests.conftest import TenantHandle
from tests.experiments.conftest import BASE

# Small company, busy site: 2 months give 18-day experiments of ~2,500 visitors a day (~45,000
# visitors each), enough for the sequential engine to find the 15 % and 20 % lifts.
CONFIG = SimConfig(
    customers=20,
    months=2,
    seed=7,
    end=datetime(2025, 7, 1, tzinfo=UTC),
    experiment_daily_visitors=2500,
)
ENGINES = ("frequentist", "bayesian", "sequential")


@pytest.fixture(scope="module")
def company() -> SimulatedCompany:
    return generate(CONFIG)


def run(
    client: TestClient, tenant: TenantHandle, company: SimulatedCompany, key: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, Any]]]:
    """Create the experiment ``key`` over the API, track its visitors and read the results with
    every engine. Returns (truth spec, tracked totals, {engine: results})."""
    spec = next(e for e in company.truth.experiments if e["key"] == key)
    rows = experiment_rows(company.rows["experiment_assignments"], key)
    response = client.post(
        f"{BASE}/create", json=create_body(spec, len(rows)), headers=tenant.headers
    )
    assert response.status_code == 201, response.text
    exp_id = response.json()["id"]
    totals = {"accepted": 0, "newly_exposed": 0}
    for batch in batches(tracking_events(rows, key)):
        tracked = client.post(
            f"{BASE}/{exp_id}/track", json={"events": batch}, headers=tenant.headers
        )
        assert tracked.status_code == 200, tracked.text
        for field in totals:
            totals[field] += tracked.json()[field]
    results = {}
    for engine in ENGINES:
        response = client.get(
            f"{BASE}/{exp_id}/results", params={"engine": engine}, headers=tenant.headers
        )
        assert response.status_code == 200, response.text
        results[engine] = response.json()
    variant = np.asarray(rows.columns["variant"].data)
    converted = np.asarray(rows.columns["converted"].data, dtype=bool)
    totals["rows"] = len(rows)
    totals["users"] = {v: int((variant == v).sum()) for v in ("control", "treatment")}
    totals["converted"] = {
        v: int(((variant == v) & converted).sum()) for v in ("control", "treatment")
    }
    return spec, totals, results


def metric(results: dict[str, Any], key: str) -> dict[str, Any]:
    return next(m for m in results["metrics"] if m["key"] == key)


def inside(interval: dict[str, Any], value: float) -> bool:
    low, high = interval["ci"]
    return (low is None or low <= value) and (high is None or value <= high)


def test_aa_test_finds_no_winner_with_any_engine(
    client: TestClient, tenant: TenantHandle, company: SimulatedCompany
) -> None:
    spec, totals, results = run(client, tenant, company, "homepage_hero_aa")
    assert not spec["has_real_effect"] and spec["true_absolute_lift"] == 0
    # Every visitor exposed once, in the variant the simulator drew.
    assert totals["newly_exposed"] == totals["rows"]
    for engine, body in results.items():
        assert not body["srm_detected"], engine
        assert body["verdict"] == "inconclusive" and body["winner"] is None, (engine, body)
        conversion = metric(body, "conversion")
        control, treatment = conversion["variants"]
        assert [control["users"], treatment["users"]] == list(totals["users"].values())
        assert [control["conversions"], treatment["conversions"]] == list(
            totals["converted"].values()
        )
        assert control["impressions"] == control["users"]
        assert treatment["significant"] is False, engine
        # The true effect (none) lies inside every interval.
        assert inside(treatment["relative"], 0.0) and inside(treatment["absolute"], 0.0), engine


def test_real_conversion_lift_is_a_winner_covering_the_true_effect(
    client: TestClient, tenant: TenantHandle, company: SimulatedCompany
) -> None:
    spec, totals, results = run(client, tenant, company, "pricing_page_cta")
    assert spec["has_real_effect"] and spec["true_relative_lift"] == pytest.approx(0.15)
    assert totals["newly_exposed"] == totals["rows"]
    for engine, body in results.items():
        assert not body["srm_detected"], engine
        assert body["verdict"] == "winner" and body["winner"] == "treatment", (engine, body)
        treatment = metric(body, "conversion")["variants"][1]
        assert treatment["significant"] is True
        assert inside(treatment["relative"], spec["true_relative_lift"]), (engine, treatment)
        assert inside(treatment["absolute"], spec["true_absolute_lift"]), (engine, treatment)
    # The sequential interval is always valid, so it is wider than the fixed-horizon one.
    width = {
        e: b["metrics"][0]["variants"][1]["relative"]["ci"][1]
        - b["metrics"][0]["variants"][1]["relative"]["ci"][0]
        for e, b in results.items()
    }
    assert width["sequential"] > width["frequentist"]


def test_order_value_lift_wins_on_revenue_with_conversion_as_guardrail(
    client: TestClient, tenant: TenantHandle, company: SimulatedCompany
) -> None:
    spec, totals, results = run(client, tenant, company, "checkout_annual_nudge")
    true_rpv = spec["revenue_per_visitor"]
    for engine, body in results.items():
        assert body["verdict"] == "winner" and body["winner"] == "treatment", (engine, body)
        revenue = metric(body, "revenue")
        assert revenue["role"] == "primary"
        control, treatment = revenue["variants"]
        assert [control["users"], treatment["users"]] == list(totals["users"].values())
        assert inside(treatment["relative"], spec["true_revenue_relative_lift"]), engine
        assert inside(treatment["absolute"], true_rpv["treatment"] - true_rpv["control"]), engine
        # Conversion is unchanged in truth: the guardrail is not harmed.
        guardrail = metric(body, "conversion")
        assert guardrail["role"] == "guardrail"
        assert guardrail["variants"][1]["significant"] is False, engine
        assert inside(guardrail["variants"][1]["absolute"], spec["true_absolute_lift"])
