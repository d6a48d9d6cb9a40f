"""Forecasts of monthly series (MRR, customers, churn) with prediction intervals.

The model is additive damped-trend exponential smoothing, ETS(A,Ad,N) (Hyndman & Athanasopoulos,
*Forecasting: Principles and Practice*, §8.2 and §8.7): level ℓ, trend b and damping φ, fitted by
a grid search over (α, β, φ) minimising the one-step squared error. The h-step prediction
variance is σ²·[1 + Σ_{j=1}^{h-1} (α + αβφ_j)²], φ_j = φ + … + φ^j, σ² the one-step residual
variance; intervals are normal at the asked level. A damped trend keeps a young SaaS company's
growth from being extrapolated linearly for ever, which is where straight-line forecasts fail.

With fewer than ``MIN_POINTS`` observations there is not enough to fit three parameters: the
forecast is then the last value with a random-walk interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product
from statistics import NormalDist

import numpy as np

MIN_POINTS = 6
ALPHAS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.99)
BETAS = (0.01, 0.05, 0.1, 0.2, 0.3, 0.5)
PHIS = (0.8, 0.85, 0.9, 0.95, 0.98)


@dataclass(frozen=True, slots=True)
class Forecast:
    mean: list[float]
    lower: list[float]
    upper: list[float]
    level: float
    model: str
    params: dict[str, float]


def _run(y: np.ndarray, alpha: float, beta: float, phi: float) -> tuple[float, float, float, float]:
    """SSE and the final level/trend of ETS(A,Ad,N) over y; also returns the residual count."""
    level = float(y[0])
    trend = float(y[1] - y[0])
    sse = 0.0
    for t in range(1, len(y)):
        predicted = level + phi * trend
        error = float(y[t]) - predicted
        sse += error * error
        new_level = predicted + alpha * error
        trend = phi * trend + alpha * beta * error
        level = new_level
    return sse, level, trend, float(len(y) - 1)


def damped_trend(
    history: Sequence[float], horizon: int, level: float = 0.8, floor: float | None = 0.0
) -> Forecast:
    """Forecast ``horizon`` steps ahead with a ``level`` prediction interval (clipped at
    ``floor``: MRR and counts are never negative)."""
    if horizon < 1:
        raise ValueError("horizon must be at least 1")
    if not 0 < level < 1:
        raise ValueError("level must be in (0, 1)")
    y = np.asarray(history, dtype=float)
    if len(y) == 0:
        raise ValueError("no history to forecast from")
    if not np.isfinite(y).all():
        raise ValueError("history must be finite")
    z = NormalDist().inv_cdf(0.5 + level / 2)
    if len(y) < MIN_POINTS:
        last = float(y[-1])
        steps = np.diff(y)
        sigma = float(np.std(steps, ddof=1)) if len(steps) > 1 else abs(last) * 0.1
        mean = [last] * horizon
        half = [z * sigma * math.sqrt(h) for h in range(1, horizon + 1)]
        return _clip(
            Forecast(
                mean,
                [m - w for m, w in zip(mean, half, strict=True)],
                [m + w for m, w in zip(mean, half, strict=True)],
                level,
                "naive",
                {"sigma": sigma},
            ),
            floor,
        )
    best: tuple[float, float, float, float, float, float, float] | None = None
    for alpha, beta, phi in product(ALPHAS, BETAS, PHIS):
        sse, lvl, trd, n = _run(y, alpha, beta, phi)
        if best is None or sse < best[0]:
            best = (sse, lvl, trd, n, alpha, beta, phi)
    assert best is not None
    sse, lvl, trd, n, alpha, beta, phi = best
    sigma2 = sse / max(n - 3, 1)
    mean, lower, upper = [], [], []
    phi_sum = 0.0
    variance_terms = 0.0
    for h in range(1, horizon + 1):
        phi_sum += phi**h
        point = lvl + phi_sum * trd
        if h > 1:
            phi_j = sum(phi**k for k in range(1, h))
            variance_terms += (alpha + alpha * beta * phi_j) ** 2
        width = z * math.sqrt(sigma2 * (1 + variance_terms))
        mean.append(point)
        lower.append(point - width)
        upper.append(point + width)
    return _clip(
        Forecast(
            mean,
            lower,
            upper,
            level,
            "ets_additive_damped",
            {"alpha": alpha, "beta": beta, "phi": phi, "sigma": math.sqrt(sigma2)},
        ),
        floor,
    )


def _clip(forecast: Forecast, floor: float | None) -> Forecast:
    if floor is None:
        return forecast
    return Forecast(
        [max(v, floor) for v in forecast.mean],
        [max(v, floor) for v in forecast.lower],
        [max(v, floor) for v in forecast.upper],
        forecast.level,
        forecast.model,
        forecast.params,
    )


@dataclass(frozen=True, slots=True)
class Backtest:
    horizon: int
    origins: int
    mape: float | None
    coverage: float | None


def backtest(
    history: Sequence[float], horizon: int = 3, level: float = 0.8, min_train: int = MIN_POINTS
) -> Backtest:
    """Rolling-origin evaluation: fit on the first t points for every t that leaves ``horizon``
    points to check, forecast, and score the ``horizon``-step-ahead point (MAPE over non-zero
    actuals) and whether it fell inside the interval (coverage)."""
    y = [float(v) for v in history]
    errors: list[float] = []
    inside = 0
    origins = 0
    for t in range(min_train, len(y) - horizon + 1):
        forecast = damped_trend(y[:t], horizon, level)
        actual = y[t + horizon - 1]
        origins += 1
        if forecast.lower[-1] <= actual <= forecast.upper[-1]:
            inside += 1
        if actual != 0:
            errors.append(abs(forecast.mean[-1] - actual) / abs(actual))
    return Backtest(
        horizon=horizon,
        origins=origins,
        mape=round(sum(errors) / len(errors), 4) if errors else None,
        coverage=round(inside / origins, 4) if origins else None,
    )
