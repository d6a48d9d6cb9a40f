"""Fitting and planning against known truth: the allocation's true return, fallbacks, scenarios."""

from __future__ import annotations

import numpy as np
import pytest

from aethercrown.budget.curves import ResponseCurve, adstock, fit_channel
from aethercrown.budget.optimizer import CurveArrays, maximise
from aethercrown.budget.planner import (
    ChannelHistory,
    Limits,
    PlanError,
    at_target_margin,
    at_target_roas,
    fit_all,
    optimise,
    recommend,
)
from tests.budget.conftest import TRUTH, simulate


@pytest.fixture(scope="module")
def fits():  # type: ignore[no-untyped-def]
    series = simulate(TRUTH, seed=3)
    return fit_all(
        [ChannelHistory(n, s.tolist(), r.tolist(), True) for n, (s, r) in series.items()],
        bootstrap=12,
    )


def true_value(names: list[str], x: np.ndarray) -> float:
    return float(CurveArrays.of([TRUTH[n] for n in names]).value(x).sum())


def test_fit_recovers_known_curves(fits) -> None:  # type: ignore[no-untyped-def]
    for fit in fits:
        truth = TRUTH[fit.channel]
        assert fit.curve is not None and fit.quality is not None
        assert fit.quality.r2 > 0.7
        assert fit.quality.mape is not None and fit.quality.mape < 0.15
        # The response over the observed range matches the truth within a few percent.
        grid = np.linspace(0.6, 2.0, 8) * truth.scale
        assert np.max(np.abs(fit.curve.value(grid) / truth.value(grid) - 1)) < 0.1
        assert len(fit.replicates) >= 10
    shapes = {f.channel: f.curve.shape for f in fits if f.curve}
    assert shapes["tv"] > 2  # S-shaped truth (k = 3) is found S-shaped


def test_adstock_is_recovered_from_daily_series() -> None:
    truth = ResponseCurve("hill", 2000.0, 400.0, 1.5, 0.6)
    rng = np.random.default_rng(1)
    spend = rng.uniform(0.1, 3.0, 150) * truth.scale
    value = truth.value(adstock(spend, truth.adstock)) * (1 + rng.normal(0, 0.03, 150))
    fit = fit_channel("x", spend, value, consecutive=True, bootstrap=0)
    assert fit.curve is not None and fit.curve.adstock == pytest.approx(0.5, abs=0.21)
    flat = fit_channel("x", spend, value, consecutive=False, bootstrap=0)
    assert flat.curve is not None and flat.curve.adstock == 0.0


def test_unsupported_histories_fall_back_with_a_reason() -> None:
    few = fit_channel("a", np.array([1.0, 2, 3]), np.array([2.0, 3, 4]), consecutive=True)
    assert few.is_fallback and "only 3 periods" in (few.fallback_reason or "")
    flat = fit_channel("b", np.full(30, 100.0), np.linspace(150, 250, 30), consecutive=True)
    assert flat.is_fallback and "barely varies" in (flat.fallback_reason or "")
    rng = np.random.default_rng(0)
    noise = fit_channel("c", rng.uniform(1, 100, 40), rng.uniform(0, 10, 40), consecutive=False)
    assert noise.is_fallback and "F-test" in (noise.fallback_reason or "")
    assert flat.roi == pytest.approx(200 / 100)


@pytest.mark.parametrize("budget", [1500.0, 4000.0, 9000.0])
def test_true_return_is_within_half_a_percent_of_the_true_optimum(fits, budget: float) -> None:  # type: ignore[no-untyped-def]
    plan = optimise(fits, budget, Limits())
    names = plan.channels
    truth = CurveArrays.of([TRUTH[n] for n in names])
    lo = np.full(len(names), 0.05 * budget)
    optimum = maximise(truth, lo, np.full(len(names), budget), budget)
    ours = true_value(names, plan.allocation)
    assert plan.allocation.sum() == pytest.approx(budget)
    assert ours >= 0.995 * optimum.value
    assert ours >= true_value(names, plan.proportional)
    assert plan.expected_low <= plan.expected <= plan.expected_high


def test_proportional_rule_is_the_original_without_other_constraints(fits) -> None:  # type: ignore[no-untyped-def]
    plan = optimise(fits, 1000.0, Limits(min_share=0.05))
    roi = np.array([f.roi for f in fits])
    expected = 50 + roi / roi.sum() * (1000 - 50 * len(fits))
    assert plan.proportional == pytest.approx(expected, rel=1e-9)


def test_constraints_hold_and_bad_ones_are_named(fits) -> None:  # type: ignore[no-untyped-def]
    limits = Limits(
        min_share=0.0,
        min_amount={"seo": 500.0},
        max_amount={"tv": 1000.0},
        fixed={"facebook_ads": 300.0},
    )
    plan = optimise(fits, 3000.0, limits)
    x = dict(zip(plan.channels, plan.allocation, strict=True))
    assert x["seo"] >= 500 - 1e-6 and x["tv"] <= 1000 + 1e-6
    assert x["facebook_ads"] == pytest.approx(300.0)
    assert sum(x.values()) == pytest.approx(3000.0)
    with pytest.raises(PlanError) as info:
        optimise(fits, 3000.0, Limits(min_share=0.3))
    assert info.value.field == "min_share"
    with pytest.raises(PlanError) as info:
        optimise(fits, 100.0, Limits(min_share=0.0, min_amount={"seo": 500.0}))
    assert info.value.field == "channel_limits.seo"
    with pytest.raises(PlanError) as info:
        optimise(fits, 3000.0, Limits(min_share=0.0, max_amount={n: 10.0 for n in TRUTH}))
    assert info.value.field == "channel_limits"


def test_recommendations_are_numeric_and_keep_the_budget(fits) -> None:  # type: ignore[no-untyped-def]
    plan = optimise(fits, 4000.0, Limits())
    recs = recommend(plan, Limits())
    assert sum(r.recommended_amount for r in recs) == pytest.approx(4000.0)
    assert sum(r.current_amount for r in recs) == pytest.approx(4000.0)
    for r in recs:
        assert r.action in {"increase", "decrease", "maintain"}
        assert "marginal ROI" in r.reason
        if r.action == "increase":
            assert r.recommended_amount > r.current_amount
            # Money goes where the next unit returns more than the optimum's common margin.
            assert r.marginal_roi_current > (plan.multiplier or 0)
        if r.action == "decrease":
            assert r.marginal_roi_current < (plan.multiplier or np.inf)


def test_target_marginal_roi_spends_until_the_margin(fits) -> None:  # type: ignore[no-untyped-def]
    plan = at_target_margin(fits, 1.2, Limits(min_share=0.0))
    for fit, x, m in zip(plan.fits, plan.allocation, plan.marginal, strict=True):
        if x > 1e-6 and fit.curve is not None and x < max(fit.spend_series) * 2.99:
            assert m == pytest.approx(1.2, rel=1e-6)


def test_target_roas_finds_the_largest_budget_that_meets_it(fits) -> None:  # type: ignore[no-untyped-def]
    plan = at_target_roas(fits, 1.5, Limits())
    assert plan.expected / plan.budget == pytest.approx(1.5, rel=1e-3)
    more = optimise(fits, plan.budget * 1.05, Limits())
    assert more.expected / more.budget < 1.5
    with pytest.raises(PlanError) as info:
        at_target_roas(fits, 1000.0, Limits())
    assert info.value.field == "target_roas"
