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

from aethercrown.budget.curves import ResponseCurve
from aethercrown.budget.optimizer import CurveArrays, maximise
from aethercrown.budget.planner import ChannelHistory, Limits, fit_all, optimise
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
