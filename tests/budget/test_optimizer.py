"""The optimiser against brute force: global optimum also with S-shaped curves and bounds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from aethercrown.budget.curves import ResponseCurve
from aethercrown.budget.optimizer import CurveArrays, best_at_margin, maximise


def brute_force(
    curves: list[ResponseCurve], lo: np.ndarray, hi: np.ndarray, budget: float
) -> float:
    """Exhaustive grid over the first n−1 channels (the last takes the rest), then each grid
    optimum polished by a bounded local search: a lower bound on the true optimum."""
    n = len(curves)
    grids = [np.linspace(lo[i], hi[i], 1201 if n == 2 else 241) for i in range(n - 1)]
    mesh = np.meshgrid(*grids, indexing="ij")
    pts = np.stack([m.ravel() for m in mesh], axis=1)
    last = budget - pts.sum(axis=1)
    ok = (last >= lo[-1] - 1e-12) & (last <= hi[-1] + 1e-12)
    pts, last = pts[ok], last[ok]
    values = sum(curves[i].value(pts[:, i]) for i in range(n - 1)) + curves[-1].value(last)
    best = float(values.max())
    start = pts[int(np.argmax(values))]

    def negative(z: np.ndarray) -> float:
        rest = budget - z.sum()
        return -float(sum(curves[i].at(float(z[i])) for i in range(n - 1)) + curves[-1].at(rest))

    polished = minimize(
        negative,
        start,
        bounds=list(zip(lo[:-1], hi[:-1], strict=True)),
        constraints=[
            {"type": "ineq", "fun": lambda z: hi[-1] - (budget - z.sum())},
            {"type": "ineq", "fun": lambda z: (budget - z.sum()) - lo[-1]},
        ],
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    if polished.success and np.all(polished.x >= lo[:-1] - 1e-9):
        best = max(best, -float(polished.fun))
    return best


def random_case(
    rng: np.random.Generator, n: int
) -> tuple[list[ResponseCurve], np.ndarray, np.ndarray, float]:
    curves = [
        ResponseCurve(
            "hill" if rng.random() < 0.75 else "exponential",
            float(rng.uniform(50, 500)),
            float(rng.uniform(10, 100)),
            float(rng.uniform(0.6, 5.0)),
        )
        for _ in range(n)
    ]
    budget = float(rng.uniform(20, 300))
    lo = np.array([budget * float(rng.choice([0.0, 0.05, 0.1])) for _ in range(n)])
    hi = np.array(
        [budget if rng.random() < 0.7 else budget * float(rng.uniform(0.35, 1)) for _ in range(n)]
    )
    return curves, lo, hi, budget


@pytest.mark.parametrize("n", [2, 3])
def test_global_optimum_matches_brute_force_on_small_cases(n: int) -> None:
    rng = np.random.default_rng(20 + n)
    checked = s_shaped = 0
    while checked < (60 if n == 2 else 25):
        curves, lo, hi, budget = random_case(rng, n)
        if lo.sum() > budget or hi.sum() < budget:
            continue
        result = maximise(CurveArrays.of(curves), lo, hi, budget)
        assert result.x.sum() == pytest.approx(budget, rel=1e-12)
        assert np.all(result.x >= lo - 1e-9) and np.all(result.x <= hi + 1e-9)
        reference = brute_force(curves, lo, hi, budget)
        # Never worse than exhaustive search (within 1e-6), and its own certificate holds.
        assert result.value >= reference * (1 - 1e-6)
        assert result.upper_bound >= result.value
        assert result.gap <= 1e-6
        s_shaped += any(c.s_shaped for c in curves)
        checked += 1
    assert s_shaped > checked // 2


def test_s_shaped_trap_that_a_single_gradient_start_misses() -> None:
    # Two identical S-curves: splitting evenly puts both in their convex region; the optimum
    # concentrates the budget on one channel. A gradient method started at the even split (a
    # stationary point) stays there.
    curve = ResponseCurve("hill", 1000.0, 100.0, 4.0)
    curves = CurveArrays.of([curve, curve])
    lo, hi, budget = np.zeros(2), np.full(2, 160.0), 160.0
    result = maximise(curves, lo, hi, budget)
    even = 2 * curve.at(80.0)
    assert result.value > even * 1.4
    assert sorted(result.x.round(6).tolist()) == [0.0, 160.0]
    local = minimize(
        lambda z: -(curve.at(float(z[0])) + curve.at(budget - float(z[0]))),
        [80.0],
        bounds=[(0.0, 160.0)],
        method="SLSQP",
    )
    assert -local.fun < result.value * 0.8


def test_fixed_channels_and_tight_bounds_are_respected() -> None:
    curves = CurveArrays.of(
        [
            ResponseCurve("hill", 500.0, 50.0, 1.0),
            ResponseCurve("exponential", 400.0, 60.0),
            ResponseCurve("hill", 800.0, 90.0, 2.5),
        ]
    )
    lo = np.array([30.0, 0.0, 10.0])
    hi = np.array([30.0, 50.0, 400.0])
    result = maximise(curves, lo, hi, 200.0)
    assert result.x[0] == 30.0
    assert result.x[1] <= 50.0 + 1e-9
    assert result.x.sum() == pytest.approx(200.0)


def test_fifty_channels_have_equal_margins_at_the_optimum() -> None:
    rng = np.random.default_rng(7)
    curves = [
        ResponseCurve(
            "hill",
            float(rng.uniform(100, 900)),
            float(rng.uniform(20, 200)),
            float(rng.uniform(0.7, 3.0)),
        )
        for _ in range(50)
    ]
    arrays = CurveArrays.of(curves)
    budget = 5000.0
    result = maximise(arrays, np.zeros(50), np.full(50, budget), budget)
    assert result.gap <= 1e-9
    slopes = arrays.slope(result.x)
    spending = result.x > 1e-6
    # KKT: every funded channel has the same marginal return; unfunded ones a lower envelope slope.
    assert np.ptp(slopes[spending]) <= 1e-6 * slopes[spending].max()
    margin = float(slopes[spending].max())
    grid = np.linspace(1e-3, budget, 20_001)
    for i in np.flatnonzero(~spending):
        # Not worth starting: no amount returns more per unit than the common margin.
        assert float((curves[i].value(grid) / grid).max()) <= margin * (1 + 1e-6)


def test_best_at_margin_matches_a_grid() -> None:
    curves = [
        ResponseCurve("hill", 1000.0, 100.0, 3.0),
        ResponseCurve("exponential", 300.0, 50.0),
        ResponseCurve("hill", 200.0, 400.0, 2.0),
    ]
    arrays = CurveArrays.of(curves)
    lo, hi = np.zeros(3), np.full(3, 2000.0)
    for margin in (0.2, 1.0, 3.0):
        x = best_at_margin(arrays, lo, hi, margin)
        grid = np.linspace(0, 2000, 200_001)
        for i, curve in enumerate(curves):
            gains = curve.value(grid) - margin * grid
            assert curve.at(float(x[i])) - margin * x[i] >= gains.max() - 1e-6
