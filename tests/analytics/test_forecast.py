"""The damped-trend forecaster and its backtest on series whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from aethercrown.analytics import forecast


def test_linear_growth_is_followed_with_a_narrow_interval() -> None:
    history = [1000.0 + 100 * t for t in range(24)]
    result = forecast.damped_trend(history, 3)
    # A perfectly linear series: the damped trend continues it (φ ≤ 0.98 bends it slightly).
    for h, mean in enumerate(result.mean, start=1):
        assert 3300 + 100 * (h - 1) - 60 * h <= mean <= 3400 + 100 * (h - 1)
    assert all(
        lo <= m <= hi for lo, m, hi in zip(result.lower, result.mean, result.upper, strict=True)
    )


def test_intervals_widen_with_the_horizon_and_with_noise() -> None:
    steps = np.random.default_rng(3).normal(0, 1, 24)
    noisy = (1000 + 50 * np.arange(24) + 80 * np.cumsum(steps)).tolist()
    quiet = (1000 + 50 * np.arange(24) + 5 * np.cumsum(steps)).tolist()
    wide = forecast.damped_trend(noisy, 6)
    narrow = forecast.damped_trend(quiet, 6)
    widths = [u - lo for lo, u in zip(wide.lower, wide.upper, strict=True)]  # type: ignore[operator]
    assert widths[-1] > widths[0]
    assert widths[0] > narrow.upper[0] - narrow.lower[0]  # type: ignore[operator]


def test_short_history_says_the_interval_is_unknown() -> None:
    result = forecast.damped_trend([10.0, 12.0, 11.0], 2)
    assert result.model == "naive" and result.mean == [11.0, 11.0]
    assert result.lower == [None, None] and result.upper == [None, None]
    # Fitted, but too few past errors at the longer horizons to measure an interval there.
    fitted = forecast.damped_trend([100.0 + 3 * t + (t % 3) for t in range(12)], 6)
    assert fitted.model == "ets_additive_damped"
    assert fitted.lower[0] is not None and fitted.upper[0] is not None
    assert fitted.lower[-1] is None and fitted.upper[-1] is None


def test_intervals_cover_their_level_on_series_with_known_noise() -> None:
    # Random walks with drift and Gaussian steps: the 80 % interval should hold about 80 % of
    # the next values and of those three steps on.
    rng = np.random.default_rng(5)
    inside = {1: 0, 3: 0}
    runs = 150
    for _ in range(runs):
        steps = 10 + rng.normal(0, 20, 33)
        path = 2000 + np.cumsum(steps)
        history, future = path[:30].tolist(), path[30:]
        result = forecast.damped_trend(history, 3)
        for h in inside:
            low, high = result.lower[h - 1], result.upper[h - 1]
            assert low is not None and high is not None
            inside[h] += low <= future[h - 1] <= high
    for h, count in inside.items():
        assert 0.7 <= count / runs <= 0.9, (h, count / runs)


def test_backtest_scores_the_three_month_ahead_point() -> None:
    history = [1000.0 + 100 * t for t in range(20)]
    result = forecast.backtest(history, horizon=3)
    assert result.origins == 20 - forecast.MIN_POINTS - 3 + 1
    assert result.mape is not None and result.mape < 0.02


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError):
        forecast.damped_trend([], 3)
    with pytest.raises(ValueError):
        forecast.damped_trend([1.0, float("nan")], 3)
    with pytest.raises(ValueError):
        forecast.damped_trend([1.0, 2.0], 0)
