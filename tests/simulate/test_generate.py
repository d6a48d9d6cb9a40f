"""The pure generator: determinism, the row contract, and realism against its own truth."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from aethercrown.simulate import SimConfig, SimulatedCompany, Truth, generate

# A fixed window (May–August 2025): the same company on any day the suite runs.
END = datetime(2025, 9, 1, tzinfo=UTC)

CONTRACT_FIELDS = {
    "customers": {"external_id", "name", "signup_date", "currency"},
    "subscriptions": {
        "external_id",
        "customer",
        "plan",
        "amount",
        "currency",
        "interval",
        "quantity",
        "started_at",
    },
    "activity": {"external_id", "customer", "user_id", "kind", "occurred_at"},
    "tickets": {"external_id", "customer", "opened_at", "priority"},
    "payments": {"external_id", "customer", "occurred_at", "status", "amount", "currency"},
    "marketing": {
        "channel",
        "day",
        "spend",
        "currency",
        "impressions",
        "clicks",
        "conversions",
        "attributed_revenue",
    },
    "usage": {"id", "customer", "metric", "value", "timestamp"},
}


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_same_seed_same_company_bit_for_bit() -> None:
    config = SimConfig(customers=120, months=4, seed=5, end=END)
    a, b = generate(config), generate(config)
    assert a.counts() == b.counts()
    for kind in a.rows:
        assert a.rows[kind].fingerprint() == b.rows[kind].fingerprint(), kind
    assert json.dumps(a.truth.to_dict(), sort_keys=True) == json.dumps(
        b.truth.to_dict(), sort_keys=True
    )
    assert np.array_equal(a.truth.daily_hazard, b.truth.daily_hazard)  # type: ignore[arg-type]
    other = generate(SimConfig(customers=120, months=4, seed=6, end=END))
    assert other.rows["activity"].fingerprint() != a.rows["activity"].fingerprint()


def test_bad_config_is_refused() -> None:
    for bad in (
        {"customers": 0},
        {"months": 1},
        {"seed": -1},
        {"target_monthly_churn": 0.9},
        {"currency": "usd"},
    ):
        with pytest.raises(ValueError):
            SimConfig(**bad)  # type: ignore[arg-type]


def test_rows_follow_the_contract(company: SimulatedCompany) -> None:
    rows = company.rows
    for kind, fields in CONTRACT_FIELDS.items():
        assert len(rows[kind]) > 0, kind
        for row in rows[kind][:200]:
            assert fields <= set(row), (kind, row)
    customers = {r["external_id"]: r for r in rows["customers"]}
    assert len(customers) == 1500
    subs = {r["external_id"]: r for r in rows["subscriptions"]}
    for sub in subs.values():
        assert sub["customer"] in customers
        assert sub["interval"] in ("month", "year") and sub["amount"] > 0
        assert 0 <= sub["discount_percent"] <= 100 and sub["discount_amount"] >= 0
        if "ended_at" in sub:
            assert ts(sub["ended_at"]) > ts(sub["started_at"])
    for pay in rows["payments"]:
        assert pay["customer"] in customers and pay["subscription"] in subs
        assert pay["status"] in ("succeeded", "failed", "refunded") and pay["amount"] > 0
    kinds = Counter()
    for act in rows["activity"][:50_000]:
        kinds[act["kind"]] += 1
        if act["kind"] == "session":
            assert act["duration_seconds"] >= 0
        if act["kind"] == "feature":
            assert act["feature"]
    assert set(kinds) == {"session", "login", "feature"}
    for ticket in rows["tickets"]:
        assert 1 <= ticket.get("satisfaction", 3) <= 5
        assert ticket["priority"] in ("low", "normal", "high", "urgent")
    assert all(m["spend"] >= 0 and m["clicks"] <= m["impressions"] for m in rows["marketing"])
    assert len({(m["channel"], m["day"]) for m in rows["marketing"]}) == len(rows["marketing"])
    activity_ids = rows["activity"].column("external_id")
    assert len(set(activity_ids)) == len(activity_ids)


def test_monthly_churn_is_plausible_and_matches_the_truth(company: SimulatedCompany) -> None:
    truth = company.truth
    churn_day, signup = truth.churn_day, np.array(truth.signup_day)
    assert churn_day is not None and truth.daily_hazard is not None
    days = truth.daily_hazard.shape[1]
    burn_in = (truth.start - truth.origin).days
    exposure = np.clip(np.minimum(churn_day, days) - np.maximum(signup + 1, burn_in), 0, None)
    monthly = (churn_day < days).sum() / (exposure.sum() / 30.44)
    assert 0.015 < monthly < 0.06
    # The churn list holds the hazard's churns of customers still there (not gone with a
    # cancelled trial first).
    assert truth.left_day is not None
    assert len(truth.churn) == int(((churn_day < days) & (churn_day < truth.left_day)).sum())
    # Monthly plans end on the churn: the rows show it.
    ended = {r["customer"] for r in company.rows["subscriptions"] if "ended_at" in r}
    monthly_churned = {c["customer"] for c in truth.churn if c["interval"] == "month"}
    assert monthly_churned <= ended
    reasons = Counter(c["reason"] for c in truth.churn)
    assert reasons["payment_failed"] > 0 and reasons["voluntary"] > reasons["payment_failed"]


def test_logistic_regression_on_the_true_features_recovers_the_hazard(
    company: SimulatedCompany,
) -> None:
    truth = company.truth
    assert truth.features is not None and truth.churn_day is not None
    days = next(iter(truth.features.values())).shape[1]
    grid = np.arange(days)[None, :]
    signup = np.array(truth.signup_day)[:, None]
    burn_in = (truth.start - truth.origin).days
    at_risk = (grid >= burn_in) & (grid > signup) & (grid <= truth.churn_day[:, None])
    names = list(truth.hazard["coefficients"])
    x = np.stack([truth.features[n][at_risk] for n in names], axis=1)
    y = (grid == truth.churn_day[:, None])[at_risk]
    fitted = LogisticRegression(C=100.0, max_iter=3000).fit(x, y).coef_[0]
    for name, estimate in zip(names, fitted, strict=True):
        true = truth.hazard["coefficients"][name]
        assert np.sign(estimate) == np.sign(true), (name, true, estimate)


def test_oracle_churn_probabilities_rank_the_churners(company: SimulatedCompany) -> None:
    truth = company.truth
    as_of = truth.start + timedelta(days=200)
    probabilities = truth.churn_probabilities(as_of, 60)
    labels = truth.churned_within(as_of, 60)
    assert set(probabilities) == set(labels) and sum(labels.values()) >= 20
    ids = list(labels)
    auc = roc_auc_score([labels[i] for i in ids], [probabilities[i] for i in ids])
    assert auc > 0.8
    # Expected churners ≈ observed (the probabilities are calibrated, not just ranked).
    expected = sum(probabilities.values())
    observed = sum(labels.values())
    assert abs(observed - expected) < 4 * np.sqrt(expected) + 3
    first = ids[0]
    assert truth.churn_probability(first, as_of, 60) == probabilities[first]
    assert truth.churn_probability("cus_nobody", as_of, 60) is None
    frozen = truth.churn_probabilities(as_of, 60, mode="as_of")
    assert roc_auc_score([labels[i] for i in ids], [frozen[i] for i in ids]) > 0.75


def test_channel_curves_saturate_and_some_are_s_shaped(company: SimulatedCompany) -> None:
    truth = company.truth
    assert len(truth.channels) >= 6
    s_shaped = [c for c, spec in truth.channels.items() if spec["s_shaped"]]
    assert len(s_shaped) >= 2
    kinds = {spec["curve"]["kind"] for spec in truth.channels.values()}
    assert kinds == {"hill", "exponential"}
    assert any(spec["curve"]["carryover"] > 0 for spec in truth.channels.values())
    for channel, spec in truth.channels.items():
        base = spec["base_daily_spend"]
        r = truth.channel_response(channel, np.array([base, 5 * base, 10 * base, 20 * base]))
        assert r[1] > r[0] > 0
        assert (r[3] - r[2]) < 0.15 * (r[1] - 0)  # diminishing returns: the curve flattens
    for channel in s_shaped:
        half = truth.channels[channel]["curve"]["half_saturation"]
        low = truth.channel_response(channel, np.array([0.1, 0.2, 0.3]) * half)
        assert low[2] - low[1] > low[1] - low[0]  # convex below the inflection
    # Spend is varied (identifiable): every channel spans at least a 4× range of daily spend.
    spend = defaultdict(list)
    for row in company.rows["marketing"]:
        spend[row["channel"]].append(row["spend"])
    for values in spend.values():
        positive = np.array([v for v in values if v > 0])
        assert np.percentile(positive, 90) > 4 * np.percentile(positive, 10)


def test_acquisitions_come_from_the_channels(company: SimulatedCompany) -> None:
    truth = company.truth
    acquired = [c for c in company.rows["customers"] if c["attributes"]["acquired_in_window"]]
    marketing = company.rows["marketing"]
    assert sum(m["conversions"] for m in marketing) == len(acquired)
    revenue = sum(m["attributed_revenue"] for m in marketing)
    expected = sum(
        m["conversions"] * truth.channels[m["channel"]]["revenue_per_conversion"] for m in marketing
    )
    assert abs(revenue - expected) / expected < 0.1
    # Observed conversions track the true curve: days with top-quartile spend convert more.
    by_channel: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for m in marketing:
        by_channel[m["channel"]].append((m["spend"], m["conversions"]))
    for pairs in by_channel.values():
        spends = np.array([p[0] for p in pairs])
        conv = np.array([p[1] for p in pairs])
        q1, q3 = np.percentile(spends, [25, 75])
        assert conv[spends >= q3].mean() > conv[spends <= q1].mean()


def test_expected_series_matches_observed_conversions(company: SimulatedCompany) -> None:
    truth = company.truth
    for channel in truth.channels:
        rows = [m for m in company.rows["marketing"] if m["channel"] == channel]
        days = [m["day"] for m in rows]
        expected = truth.expected_series(channel, days, [m["spend"] for m in rows])
        observed = np.array([m["conversions"] for m in rows])
        # Poisson-like counts around the true daily rate: totals agree within 5 sd.
        assert abs(observed.sum() - expected.sum()) < 5 * np.sqrt(expected.sum()) + 2, channel
    as_of = truth.start + timedelta(days=90)
    features = truth.features_as_of(as_of)
    assert set(features) == set(truth.churn_probabilities(as_of, 30))
    assert set(next(iter(features.values()))) == set(truth.hazard["coefficients"])


def test_optimal_allocation_beats_any_other_split(company: SimulatedCompany) -> None:
    truth = company.truth
    budget = 250_000.0
    best = truth.optimal_allocation(budget)
    assert abs(sum(best.values()) - budget) < 1e-6
    value = sum(float(truth.channel_response(c, s, "revenue")) for c, s in best.items())
    rng = np.random.default_rng(0)
    names = list(truth.channels)
    for _ in range(300):
        split = rng.dirichlet(np.ones(len(names))) * budget
        other = sum(
            float(truth.channel_response(c, s, "revenue"))
            for c, s in zip(names, split, strict=True)
        )
        assert value >= other - 1e-6
    equal = sum(float(truth.channel_response(c, budget / len(names), "revenue")) for c in names)
    assert value > equal


def test_experiments_show_their_true_effects(company: SimulatedCompany) -> None:
    arms: dict[tuple[str, str], list[tuple[bool, int]]] = defaultdict(list)
    for row in company.rows["experiment_assignments"]:
        arms[(row["experiment"], row["variant"])].append((row["converted"], row["revenue"]))
    truth = {e["key"]: e for e in company.truth.experiments}
    assert len(truth) == 3 and {e["kind"] for e in truth.values()} == {
        "conversion",
        "aa",
        "revenue",
    }
    for key, spec in truth.items():
        c = np.array(arms[(key, "control")], dtype=float)
        t = np.array(arms[(key, "treatment")], dtype=float)
        if spec["kind"] == "revenue":
            diff = t[:, 1].mean() - c[:, 1].mean()
            se = np.sqrt(t[:, 1].var() / len(t) + c[:, 1].var() / len(c))
            true = spec["revenue_per_visitor"]["treatment"] - spec["revenue_per_visitor"]["control"]
        else:
            diff = t[:, 0].mean() - c[:, 0].mean()
            se = np.sqrt(t[:, 0].var() / len(t) + c[:, 0].var() / len(c))
            true = spec["true_absolute_lift"]
        assert abs(diff - true) < 4 * se, (key, diff, true, se)
    assert truth["homepage_hero_aa"]["true_absolute_lift"] == 0
    assert not truth["homepage_hero_aa"]["has_real_effect"]


def _mrr_from_rows(subscriptions: list[dict], instant: datetime) -> int:
    total = 0
    for s in subscriptions:
        if ts(s["started_at"]) > instant:
            continue
        if "ended_at" in s and ts(s["ended_at"]) <= instant:
            continue
        if "trial_end" in s and ts(s["trial_end"]) > instant:
            continue
        # Written out independently of the generator: Decimal, half-up per subscription.
        net = (
            Decimal(s["amount"] * s["quantity"]) * (100 - Decimal(str(s["discount_percent"]))) / 100
            - s["discount_amount"]
        )
        net = max(net, Decimal(0)) / (12 if s["interval"] == "year" else 1)
        total += int(net.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return total


def test_true_mrr_is_the_sum_over_active_generated_subscriptions(
    company: SimulatedCompany,
) -> None:
    subs = list(company.rows["subscriptions"])
    truth = company.truth
    assert len(truth.mrr_by_month) == 12
    for month, mrr in truth.mrr_by_month.items():
        year, mon = map(int, month.split("-"))
        instant = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=UTC)
        assert mrr == _mrr_from_rows(subs, instant), month
        assert truth.mrr_at(instant) == mrr
    values = list(truth.mrr_by_month.values())
    assert values[-1] > values[0] > 0


def test_plans_change_and_usage_presses_on_capacity(company: SimulatedCompany) -> None:
    truth = company.truth
    kinds = Counter(c["kind"] for c in truth.plan_changes)
    assert kinds["upgrade"] > 0 and kinds["downgrade"] > 0
    plans_per_customer = defaultdict(set)
    for s in company.rows["subscriptions"]:
        plans_per_customer[s["customer"]].add(s["plan"])
    assert sum(len(p) > 1 for p in plans_per_customer.values()) >= len(truth.plan_changes) * 0.5
    intervals = Counter(s["interval"] for s in company.rows["subscriptions"])
    assert intervals["year"] > 0 and intervals["month"] > intervals["year"]
    assert any("trial_end" in s for s in company.rows["subscriptions"])
    assert any(s["discount_percent"] > 0 for s in company.rows["subscriptions"])
    n = len(company.rows["customers"])
    assert 0 < len(truth.usage["customers_over_capacity"]) < n / 3
    # From the events alone: some customer's monthly api_calls exceed its plan's capacity.
    monthly: dict[tuple[str, str], float] = defaultdict(float)
    for event in company.rows["usage"]:
        if event["metric"] == "api_calls":
            monthly[(event["customer"], event["timestamp"][:7])] += event["value"]
    capacity_starter = truth.plans["starter"]["capacities"]["api_calls"]
    assert any(v > capacity_starter for v in monthly.values())
    assert {e["metric"] for e in company.rows["usage"][:2000]} == {
        "api_calls",
        "storage_gb",
        "compute_units",
        "seats",
    }
    assert truth.renewals and any(r["renewed"] for r in truth.renewals)


def test_activity_has_weekly_seasonality(company: SimulatedCompany) -> None:
    activity = company.rows["activity"]
    sessions = activity.select(activity.columns["kind"].data == "session")
    weekday = Counter(ts(t).weekday() for t in sessions.column("occurred_at")[::5])
    assert weekday[2] > 2 * weekday[6]


def test_truth_is_json_and_round_trips(company: SimulatedCompany) -> None:
    data = json.loads(json.dumps(company.truth.to_dict()))
    again = Truth.from_dict(data)
    assert again.to_dict() == company.truth.to_dict()
    assert again.channel_response("google_ads", 50_000) == company.truth.channel_response(
        "google_ads", 50_000
    )
    with pytest.raises(RuntimeError):
        again.churn_probabilities(again.start, 30)


def test_some_trials_do_not_convert_and_never_pay(company: SimulatedCompany) -> None:
    truth = company.truth
    decided = [t for t in truth.trials if t["converted"] is not None]
    converted = sum(t["converted"] for t in decided)
    assert decided and 0.4 < converted / len(decided) < 0.85
    subscriptions = {r["external_id"]: r for r in company.rows["subscriptions"]}
    for trial in decided:
        sub = subscriptions[trial["subscription"]]
        assert sub.get("trial_end") is not None
        ended = sub.get("ended_at")
        # A trial that did not convert ended at or before its trial end; one that did, after.
        if trial["converted"]:
            assert ended is None or ended > sub["trial_end"]
        else:
            assert ended is not None and ended <= sub["trial_end"]
