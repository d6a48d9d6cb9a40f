"""Quality against the demo simulator's ground truth (aethercrown.simulate).

Spend is the simulated company's own daily marketing spend (flights over 0.1–3× each channel's
base, weekend dips, pauses); the return is the simulator's expected daily revenue for that spend
(its true curves with carry-over and its weekly and yearly seasonality) with 5% noise. The
optimiser only sees those rows; its allocation is scored on the true steady-state curves."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pytest

from aethercrown.budget import service
from aethercrown.budget.curves import ResponseCurve
from aethercrown.budget.optimizer import CurveArrays, maximise
from aethercrown.budget.planner import ChannelHistory, Limits, fit_all, optimise
from aethercrown.budget.schemas import OptimizeRequest
from aethercrown.simulate.config import SimConfig
from aethercrown.simulate.generator import generate


@pytest.fixture(scope="module")
def company() -> Any:
    return generate(
        SimConfig(customers=300, months=12, seed=7, end=datetime(2026, 5, 1, tzinfo=UTC))
    )


@pytest.fixture(scope="module")
def fits(company: Any) -> Any:
    truth = company.truth
    per_channel: dict[str, list[tuple[date, float]]] = defaultdict(list)
    for row in company.rows["marketing"]:
        day = row["day"] if isinstance(row["day"], date) else date.fromisoformat(row["day"])
        per_channel[row["channel"]].append((day, float(row["spend"])))
    rng = np.random.default_rng(0)
    histories = []
    for channel, points in sorted(per_channel.items()):
        points.sort()
        days = [d for d, _ in points]
        spend = np.array([s for _, s in points])
        expected = truth.expected_series(channel, days, spend, "revenue")
        observed = expected * np.exp(rng.normal(0.0, 0.05, len(expected)))
        histories.append(ChannelHistory(channel, spend.tolist(), observed.tolist(), True, days))
    return fit_all(histories, bootstrap=0)


def true_curves(company: Any, names: list[str]) -> CurveArrays:
    curves = []
    for name in names:
        c = company.truth.curve(name)
        value = company.truth.channels[name]["revenue_per_conversion"]
        curves.append(ResponseCurve(c.kind, c.beta * value, c.half_saturation, c.slope))
    return CurveArrays.of(curves)


@pytest.mark.parametrize("scale", [0.5, 1.0, 2.0])
def test_true_return_reaches_the_true_optimum(company: Any, fits: Any, scale: float) -> None:
    names = [f.channel for f in fits]
    assert len(names) >= 5 and not any(f.is_fallback for f in fits)
    truth = true_curves(company, names)
    budget = scale * sum(f.mean_spend for f in fits)  # a day's budget, minor units
    plan = optimise(fits, budget, Limits(min_share=0.05))
    lo, hi = np.full(len(names), 0.05 * budget), np.full(len(names), budget)
    optimum = maximise(truth, lo, hi, budget)
    ours = float(truth.value(plan.allocation).sum())
    proportional = float(truth.value(plan.proportional).sum())
    assert ours >= 0.995 * optimum.value
    assert ours >= proportional
    # Without minimum shares, the true optimum is at least the simulator's own optimum (a
    # dynamic programme exact up to its grid).
    unconstrained = maximise(truth, np.zeros(len(names)), hi, budget)
    reference = company.truth.optimal_allocation(budget, "revenue", steps=200)
    grid_value = sum(
        float(company.truth.channel_response(name, amount, "revenue"))
        for name, amount in reference.items()
    )
    assert unconstrained.value >= grid_value * (1 - 1e-9)


def demo_history(company: Any) -> service.History:
    """A generated company's marketing rows as the endpoint reads them (minor units, daily)."""
    per: dict[str, list[tuple[date, float, float, float]]] = defaultdict(list)
    for row in company.rows["marketing"]:
        day = row["day"] if isinstance(row["day"], date) else date.fromisoformat(row["day"])
        per[row["channel"]].append(
            (day, float(row["spend"]), float(row["attributed_revenue"]), float(row["conversions"]))
        )
    channels = []
    for name in sorted(per):
        points = sorted(per[name])
        channels.append(
            ChannelHistory(
                name,
                [p[1] for p in points],
                [p[2] for p in points],
                True,
                [p[0] for p in points],
                [p[3] for p in points],
            )
        )
    days = [p[0] for p in sorted(per[sorted(per)[0]])]
    return service.History(channels, 1, "minor", "USD", days[0], days[-1], len(channels))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_decision_on_the_demos_own_noisy_history_is_no_worse_than_the_current_split(
    seed: int,
) -> None:
    """The endpoint's decision, from the demo's own rows (realised conversions and revenue), on
    the simulator's true curves: never worse than keeping the current split, and close to the
    true optimum. Small companies (fast): most channels' fits are weak there and held."""
    company = generate(
        SimConfig(customers=800, months=12, seed=seed, end=datetime(2026, 6, 1, tzinfo=UTC))
    )
    history = demo_history(company)
    names = [c.channel for c in history.channels]
    truth = true_curves(company, names)
    level = sum(float(np.mean(c.spend)) for c in history.channels)
    for scale in (0.5, 1.0, 2.0):
        budget = scale * level
        result = service.plan_from_history(
            demo_history(company), OptimizeRequest(total_budget=budget)
        )
        ours = np.array([result.allocations[n] for n in names])
        current = np.array([result.comparison["current_split"].allocations[n] for n in names])
        lo, hi = np.full(len(names), 0.05 * budget), np.full(len(names), budget)
        optimum = maximise(truth, lo, hi, budget).value
        true_ours = float(truth.value(ours).sum())
        assert true_ours >= float(truth.value(current).sum()) * (1 - 1e-6)
        assert true_ours >= 0.8 * optimum
        # The answer says how sure it is, and its interval brackets its point.
        value = result.expected_return
        assert value.low <= value.value <= value.high and result.confidence
