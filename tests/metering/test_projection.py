"""The usage projection is stable at any moment of a period, says how sure it is, and upsell acts
only on its low end. Hand-computed against stats.project's documented arithmetic:

    rate  = usage over the trailing 7 days (from the first day used, if later) / max(W, 1 day)
    point = to_date + rate × R                       (R: days left in the period)
    sd    = s × √(R + R² / W), s the sample sd of the window's whole days (s = rate if < 3)
    low   = to_date + max(rate × R − z × sd, 0), high = to_date + rate × R + z × sd, z = 1.2816
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from aethercrown import clock
from aethercrown.metering import service, stats
from tests.conftest import TenantHandle
from tests.metering.conftest import event

DEC_1 = date(2026, 12, 1)
JAN_1 = date(2027, 1, 1)
FIRST_MINUTE = datetime(2026, 12, 1, 0, 0, 30, tzinfo=UTC)
Z = 1.2815515655446004


def _days(first: date, values: list[float]) -> dict[date, float]:
    return {first + timedelta(days=i): v for i, v in enumerate(values)}


def test_first_minute_without_history_is_bounded_and_says_it_is_unsure() -> None:
    # 12,000 calls in the first 30 seconds of December, nothing before: read over one day.
    p = stats.project("count", 12_000, {DEC_1: 12_000}, DEC_1, JAN_1, FIRST_MINUTE)
    remaining = 31 - 30 / 86400
    assert math.isclose(p.point, 12_000 + 12_000 * remaining)  # 384,000, not 1.1e9
    sd = 12_000 * math.sqrt(remaining + remaining**2)
    assert math.isclose(p.high, 12_000 + 12_000 * remaining + Z * sd)
    assert p.low == 12_000  # all that is sure is what is already used


def test_first_minute_with_history_leans_on_the_days_before() -> None:
    # Nov 1–30: 200 and 400 calls on alternate days (mean 300); nothing yet on Dec 1.
    history = _days(date(2026, 11, 1), [200.0 if i % 2 == 0 else 400.0 for i in range(30)])
    series = history | {DEC_1: 0.0}
    p = stats.project("count", 0, series, DEC_1, JAN_1, FIRST_MINUTE)
    window = 6 + 30 / 86400  # Nov 25 00:00 → Dec 1 00:00:30
    in_window = 400 + 200 + 400 + 200 + 400 + 200  # Nov 25–30
    rate = in_window / window
    remaining = 31 - 30 / 86400
    assert math.isclose(p.point, rate * remaining)  # ≈ 9,300, where November ended
    whole = [400, 200, 400, 200, 400, 200]
    s = math.sqrt(sum((v - 300) ** 2 for v in whole) / 5)
    sd = s * math.sqrt(remaining + remaining**2 / window)
    assert math.isclose(p.low, rate * remaining - Z * sd)
    assert math.isclose(p.high, rate * remaining + Z * sd)
    assert p.low < 10_000 < p.high  # a Starter (10,000) customer is not sure to pass it


def test_the_projection_is_stable_through_the_first_day() -> None:
    """At the same pace (300 a day, spread evenly) the point barely moves from 00:00:30 to
    18:00 on the 1st; the old rule read 00:30 as the whole day's pace × 48."""
    history = _days(date(2026, 11, 1), [300.0] * 30)
    points = []
    for hours in (0.01, 0.5, 6, 18):
        now = datetime(2026, 12, 1, tzinfo=UTC) + timedelta(hours=hours)
        used = 300 * hours / 24
        p = stats.project("count", used, history | {DEC_1: used}, DEC_1, JAN_1, now)
        points.append(p.point)
    assert max(points) / min(points) < 1.01
    assert all(9_200 < x < 9_400 for x in points)


def test_mid_period_reads_the_trailing_week() -> None:
    # Dec 1–14: 1,000 a day, then 2,000 on Dec 15 by 12:00 (the 7-day window from Dec 9).
    series = _days(DEC_1, [1_000.0] * 14) | {date(2026, 12, 15): 2_000.0}
    now = datetime(2026, 12, 15, 12, tzinfo=UTC)
    p = stats.project("count", 16_000, series, DEC_1, JAN_1, now)
    rate = (6 * 1_000 + 2_000) / 6.5
    assert math.isclose(p.point, 16_000 + rate * 16.5)
    assert p.low == p.high == p.point  # six identical whole days: no measured spread


def test_gauges_project_along_their_trend_with_its_error() -> None:
    series = _days(DEC_1, [1.0, 2.0, 2.0, 4.0])  # slope 0.9
    now = datetime(2026, 12, 4, 12, tzinfo=UTC)
    p = stats.project("latest", 4.0, series, DEC_1, JAN_1, now)
    remaining = 27.5
    assert math.isclose(p.point, 4.0 + 0.9 * remaining)
    residuals = [1 - 0.9, 2 - 1.8, 2 - 2.7, 4 - 3.6]  # fitted 0.9 + 0.9x
    se = math.sqrt(sum(r * r for r in residuals) / 2 / 5)
    assert math.isclose(p.low, 4.0 + (0.9 - Z * se) * remaining)
    assert math.isclose(p.high, 4.0 + (0.9 + Z * se) * remaining)
    # one reading on the 1st: the level, no trend to extrapolate
    p = stats.project("max", 9.5, {DEC_1: 9.5}, DEC_1, JAN_1, FIRST_MINUTE)
    assert p.point == p.low == p.high == 9.5


# --- through the service: upsell acts on the low end ------------------------------------------


def _upsell(
    session_factory, tenant: TenantHandle, now: datetime, names: list[str]
) -> dict[str, object]:  # type: ignore[no-untyped-def]
    with session_factory() as s:
        analysis = service.analyse_upsell(s, tenant.uid, names, now=now)
    return {c.customer: c for c in analysis.candidates}


def test_upsell_at_the_first_minute_with_and_without_history(
    tenant: TenantHandle,
    session_factory,  # type: ignore[no-untyped-def]
    customers,
    track,
) -> None:
    customers(tenant.uid, "steady", "burst", "fresh")
    events = []
    for i in range(30):
        day = datetime(2026, 11, 1 + i, 9, tzinfo=UTC)
        events.append(event(f"s{i}", "steady", "api_calls", 300, day))
        events.append(event(f"b{i}", "burst", "api_calls", 300, day))
    # burst: 12,000 in its first 20 seconds of December after a quiet November;
    # fresh: the same 12,000 with no history at all.
    events.append(
        event("b-dec", "burst", "api_calls", 12_000, FIRST_MINUTE - timedelta(seconds=10))
    )
    events.append(
        event("f-dec", "fresh", "api_calls", 12_000, FIRST_MINUTE - timedelta(seconds=10))
    )
    track(tenant.uid, events, FIRST_MINUTE)
    found = _upsell(session_factory, tenant, FIRST_MINUTE, ["steady", "burst", "fresh"])
    # steady ran at 90 % of Starter's 10,000 pace all week (a signal) but is projected at
    # ≈ 9,300: no plan is sold on it
    steady = found["steady"]
    assert [r.trigger for r in steady.reasons] == ["sustained_high_usage"]
    assert steady.recommended_plan is None
    for name in ("burst", "fresh"):
        c = found[name]
        assert "projected_over_capacity" in [r.trigger for r in c.reasons]
        assert c.customer_name == name.title()  # lists name the customer, not only its id
        # already over Starter's 10,000: Professional covers what is sure; never Enterprise
        assert c.recommended_plan == "professional" and c.recommended_price == 9900
        assert c.projected_usage_low["api_calls"] >= 12_000
        assert c.projected_usage_low["api_calls"] <= c.projected_usage["api_calls"]
        assert c.projected_usage["api_calls"] < 1_000_000
        assert "e+" not in c.reasons[0].detail
    # with history the point leans on November's pace: (12,000 + 6 × 300) / 6 days
    burst = found["burst"].projected_usage["api_calls"]
    assert math.isclose(burst, 12_000 + 13_800 / (6 + 30 / 86400) * (31 - 30 / 86400), rel_tol=1e-6)


def test_fifty_thousand_calls_on_the_first_two_days_is_not_an_enterprise_upsell(
    tenant: TenantHandle,
    session_factory,  # type: ignore[no-untyped-def]
    customers,
    track,
) -> None:
    customers(tenant.uid, "c-1")
    now = datetime(2026, 12, 2, 18, tzinfo=UTC)
    events = [
        event(
            f"e{h}",
            "c-1",
            "api_calls",
            1_000,
            datetime(2026, 12, 1, tzinfo=UTC) + timedelta(hours=h),
        )
        for h in range(0, 42, 1)
    ]
    events += [event("extra", "c-1", "api_calls", 8_000, now - timedelta(hours=1))]
    track(tenant.uid, events, now)
    c = _upsell(session_factory, tenant, now, ["c-1"])["c-1"]
    assert c.recommended_plan == "professional"
    # 28,571 a day over 1.75 days projects ≈ 886,000, but with so few days only a little
    # more than the 50,000 already used is sure: Professional (100,000), not Enterprise
    assert 50_000 <= c.projected_usage_low["api_calls"] < 100_000
    assert c.projected_usage["api_calls"] > 800_000
    with session_factory() as s:
        report = service.usage_report(s, tenant.uid, "c-1", now=now)
    calls = {m.metric: m for m in report.metrics}["api_calls"]
    assert calls.projected_low <= calls.projected <= calls.projected_high


def test_mid_period_growth_alone_recommends_no_plan(
    tenant: TenantHandle,
    session_factory,  # type: ignore[no-untyped-def]
    customers,
    track,
) -> None:
    """Usage doubled but stays well within capacity: listed for its growth, not sold a plan."""
    customers(tenant.uid, "c-1")
    now = datetime(2026, 12, 15, 12, tzinfo=UTC)
    events = [
        event(f"n{d}", "c-1", "api_calls", 100, datetime(2026, 11, d, 9, tzinfo=UTC))
        for d in range(1, 31)
    ] + [
        event(f"d{d}", "c-1", "api_calls", 200, datetime(2026, 12, d, 9, tzinfo=UTC))
        for d in range(1, 16)
    ]
    track(tenant.uid, events, now)
    c = _upsell(session_factory, tenant, now, ["c-1"])["c-1"]
    assert [r.trigger for r in c.reasons] == ["growth"]
    assert c.recommended_plan is None


@pytest.mark.parametrize("when", [FIRST_MINUTE, datetime(2026, 12, 15, 12, tzinfo=UTC)])
def test_report_carries_the_interval_over_http(
    client: TestClient,
    tenant: TenantHandle,
    customers,
    when: datetime,  # type: ignore[no-untyped-def]
) -> None:
    customers(tenant.uid, "c-7")
    with clock.travel(when, tick=False):
        client.post(
            "/api/v1/enterprise/usage/track",
            json={"id": "x", "customer": "c-7", "metric": "api_calls", "value": 500},
            headers=tenant.headers,
        )
        body = client.get("/api/v1/enterprise/usage/c-7/report", headers=tenant.headers).json()
        tier = client.post(
            "/api/v1/revenue/pricing/recommend-tier",
            json={"customer": "c-7"},
            headers=tenant.headers,
        ).json()
    calls = {m["metric"]: m for m in body["metrics"]}["api_calls"]
    assert calls["projected_low"] == 500 <= calls["projected"] <= calls["projected_high"]
    assert tier["usage"]["api_calls"] == calls["projected"]
    assert tier["usage_interval"]["api_calls"] == [500, calls["projected_high"]]
