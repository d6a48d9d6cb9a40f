"""The pure metric math against the hand-computed company in fixtures.py."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from aethercrown.analytics import metrics
from aethercrown.analytics.metrics import RevenueInputs, SubscriptionRecord, subscription_mrr
from tests.analytics import fixtures as fx


def _inputs() -> RevenueInputs:
    daily: Counter[date] = Counter()
    seen_days = {(c, u, t.date()) for c, u, t in fx.ACTIVITY}
    for _, _, day in seen_days:
        daily[day] += 1
    return RevenueInputs(
        subscriptions=fx.SUBSCRIPTIONS,
        segments={c: metrics.segment_for_size(s) for c, s in fx.COMPANY_SIZE.items()},
        marketing_spend={"2026-03": sum(s for _, _, s in fx.MARKETING)},
        daily_active_users=dict(daily),
        monthly_active_users={"2026-03": len({(c, u) for c, u, _ in fx.ACTIVITY})},
    )


@pytest.fixture(scope="module")
def series() -> dict[str, dict]:
    return {row["month"]: row for row in metrics.revenue_series(_inputs(), fx.AS_OF)}


def test_subscription_mrr_spreads_annual_plans_and_deducts_discounts() -> None:
    at = fx.at(1, 1)
    assert (
        subscription_mrr(
            SubscriptionRecord("x", "p", 2900, "month", at, quantity=2, discount_percent=10)
        )
        == 5220
    )
    assert (
        subscription_mrr(SubscriptionRecord("x", "p", 10000, "month", at, discount_amount=1000))
        == 9000
    )
    assert subscription_mrr(SubscriptionRecord("x", "p", 10000, "year", at)) == 833
    assert subscription_mrr(SubscriptionRecord("x", "p", 10006, "year", at)) == 834  # 833.83
    assert (
        subscription_mrr(SubscriptionRecord("x", "p", 1000, "month", at, discount_amount=5000)) == 0
    )
    assert subscription_mrr(SubscriptionRecord("x", "p", 1000, "week", at)) == 0


def test_months_match_the_hand_computed_table(series: dict[str, dict]) -> None:
    assert list(series) == list(fx.EXPECTED)
    for month, expected in fx.EXPECTED.items():
        row = series[month]
        assert {k: row[k] for k in expected} == expected, month
        assert row["arr"] == 12 * row["mrr"]


def test_movements_reconcile_month_to_month(series: dict[str, dict]) -> None:
    previous = 0
    for row in series.values():
        assert row["mrr"] == previous + row["net_new_mrr"]
        previous = row["mrr"]


def test_rates_retention_ltv_and_quick_ratio(series: dict[str, dict]) -> None:
    march, april, may = series["2026-03"], series["2026-04"], series["2026-05"]
    assert march["logo_churn_rate"] == pytest.approx(0.3333)  # b of a, b, c
    assert march["revenue_churn_rate"] == pytest.approx(0.207)  # 5220 / 25220
    assert march["quick_ratio"] == pytest.approx(1.51)  # (2900 + 5000) / 5220
    assert march["arpa"] == 9300
    # Trailing three months: 1 churned of 2 + 3 starting customers -> 0.2; 9300 / 0.2.
    assert march["ltv"] == 46500
    assert april["nrr"] == pytest.approx(1.5018) and april["grr"] == 1.0  # 41900 / 27900
    assert may["nrr"] == pytest.approx(0.8807) and may["grr"] == pytest.approx(0.8807)
    assert may["reactivated_customers"] == 1 and may["new_customers"] == 0
    assert series["2026-01"]["nrr"] is None and series["2026-01"]["logo_churn_rate"] is None
    assert april["quick_ratio"] is None  # no losses


def test_cac_trials_and_dau_mau(series: dict[str, dict]) -> None:
    march = series["2026-03"]
    assert march["marketing_spend"] == 20000 and march["cac"] == 20000
    assert march["cac_payback_months"] == pytest.approx(6.9)  # 20000 / 2900
    assert march["cac_note"] is None
    # January: two new customers but no recorded spend — CAC undefined, not 0; April: no new
    # customers and no spend
    january, april = series["2026-01"], series["2026-04"]
    assert january["new_customers"] == 2 and january["cac"] is None
    assert january["cac_note"] == "no marketing spend recorded this month"
    assert april["cac"] is None and april["cac_payback_months"] is None
    feb = series["2026-02"]
    assert (feb["trials_started"], feb["trials_ended"], feb["trials_converted"]) == (2, 1, 1)
    assert (march["trials_started"], march["trials_ended"], march["trials_converted"]) == (1, 2, 1)
    assert march["trial_conversion_rate"] == 0.5
    assert march["mau"] == 3 and march["dau"] == pytest.approx(0.13)  # (2 + 2) / 31
    assert march["dau_mau"] == pytest.approx(0.043)


def test_breakdowns_by_plan_and_segment(series: dict[str, dict]) -> None:
    march = series["2026-03"]
    assert march["mrr_by_plan"] == {
        "addon": 5000,
        "enterprise": 10000,
        "pro": 10000,
        "starter": 2900,
    }
    assert march["customers_by_plan"] == {"addon": 1, "enterprise": 1, "pro": 1, "starter": 1}
    seg = march["by_segment"]
    assert seg["smb"]["mrr"] == 15000 and seg["smb"]["expansion"] == 5000
    assert seg["mid_market"]["churn"] == 5220 and seg["mid_market"]["customers"] == 0
    assert seg["enterprise"]["mrr"] == 10000
    assert seg["unknown"]["new"] == 2900


def test_empty_input_is_an_empty_series() -> None:
    assert metrics.revenue_series(RevenueInputs(subscriptions=[]), fx.AS_OF) == []


def test_auc_calibration_and_mape() -> None:
    assert metrics.auc([0.9, 0.8, 0.3, 0.2], [1, 1, 0, 0]) == 1.0
    assert metrics.auc([0.9, 0.8, 0.3, 0.2], [0, 0, 1, 1]) == 0.0
    # One inversion out of 2 × 2 pairs, one tie counted half: (4 - 1 - 0.5) / 4.
    assert metrics.auc([0.9, 0.5, 0.5, 0.7], [1, 1, 0, 0]) == 0.625
    assert metrics.auc([0.1, 0.2], [1, 1]) is None
    cal = metrics.calibration([0.05, 0.15, 0.95, 0.85], [0, 0, 1, 1], bins=2)
    assert cal["bins"][0]["mean_predicted"] == 0.1 and cal["bins"][0]["observed_rate"] == 0.0
    assert cal["ece"] == pytest.approx(0.1)
    assert cal["brier"] == pytest.approx((0.05**2 + 0.15**2 + 0.05**2 + 0.15**2) / 4, abs=1e-4)
    assert metrics.mape([110, 90], [100, 100]) == 0.1


def test_month_helpers_reject_malformed_months() -> None:
    for bad in ("2026-13", "2026-1", "26-01", "2026/01", "abcd-ef", "1900-01"):
        with pytest.raises(ValueError):
            metrics.parse_month(bad)
    assert metrics.add_months("2026-11", 3) == "2027-02"
    assert metrics.cmgr(100, 121, 2) == pytest.approx(0.1)


def test_histogram_forms_agree_with_the_raw_forms() -> None:
    import random

    rng = random.Random(3)
    scores = [round(rng.random(), 3) for _ in range(400)]
    labels = [1 if rng.random() < s else 0 for s in scores]
    bins: dict[tuple[float, int], list[float]] = {}
    for s, y in zip(scores, labels, strict=True):
        entry = bins.setdefault((s, y), [0, 0.0, 0.0])
        entry[0] += 1
        entry[1] += s
        entry[2] += (s - y) ** 2
    rows = [(s, y, int(v[0]), v[1], v[2]) for (s, y), v in bins.items()]
    assert metrics.auc_from_histogram(
        [(s, n if y else 0, 0 if y else n) for s, y, n, _, _ in rows]
    ) == metrics.auc(scores, labels)
    assert metrics.calibration_from_histogram(rows) == metrics.calibration(scores, labels)


def test_mrr_equals_the_sum_over_alive_subscriptions_on_random_books() -> None:
    """An independent brute force (per month, per subscription, plain arithmetic) agrees with
    the vectorised series on random subscriptions, trials, discounts and annual plans."""
    import random
    from datetime import timedelta

    rng = random.Random(42)
    subs = []
    for _ in range(300):
        start = fx.at(1, 1) + timedelta(hours=rng.randint(0, 24 * 300))
        end = start + timedelta(days=rng.randint(1, 400)) if rng.random() < 0.5 else None
        trial = start + timedelta(days=14) if rng.random() < 0.3 else None
        subs.append(
            SubscriptionRecord(
                f"c{rng.randint(0, 80)}",
                rng.choice(["a", "b"]),
                rng.choice([990, 2900, 49900]),
                rng.choice(["month", "month", "year"]),
                start,
                ended_at=end,
                quantity=rng.randint(1, 3),
                discount_percent=rng.choice([0, 0, 12.5, 50]),
                discount_amount=rng.choice([0, 0, 300]),
                trial_end=trial,
            )
        )
    as_of = fx.at(12, 20)
    series = metrics.revenue_series(RevenueInputs(subscriptions=subs), as_of)
    for row in series:
        boundary = metrics.month_start(metrics.add_months(row["month"], 1))
        expected = 0
        paying = set()
        for s in subs:
            if boundary > as_of:  # the current month, read now
                alive = s.started_at <= as_of and (s.ended_at is None or s.ended_at > as_of)
                alive = alive and (s.trial_end is None or s.trial_end <= as_of)
            else:  # alive at the month's last instant, just before the boundary
                alive = s.started_at < boundary and (s.ended_at is None or s.ended_at >= boundary)
                alive = alive and (s.trial_end is None or s.trial_end < boundary)
            if alive:
                net = max(
                    s.amount * s.quantity * (100 - s.discount_percent) / 100 - s.discount_amount, 0
                )
                value = int((net / 12 if s.interval == "year" else net) + 0.5)
                expected += value
                if value:
                    paying.add(s.customer)
        assert row["mrr"] == expected, row["month"]
        assert row["customers"] == len(paying), row["month"]
