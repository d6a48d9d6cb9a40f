"""The damped-trend forecaster and its backtest on series whose answer is known."""

from __future__ import annotations

import math

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
    noisy = [1000 + 50 * t + (80 if t % 2 else -80) for t in range(24)]
    quiet = [1000 + 50 * t + (5 if t % 2 else -5) for t in range(24)]
    wide = forecast.damped_trend(noisy, 6)
    narrow = forecast.damped_trend(quiet, 6)
    widths = [u - lo for lo, u in zip(wide.lower, wide.upper, strict=True)]
    assert widths == sorted(widths)
    assert widths[0] > narrow.upper[0] - narrow.lower[0]


def test_short_history_falls_back_to_the_last_value() -> None:
    result = forecast.damped_trend([10.0, 12.0, 11.0], 2)
    assert result.model == "naive" and result.mean == [11.0, 11.0]
    assert result.upper[1] - result.lower[1] == pytest.approx(
        (result.upper[0] - result.lower[0]) * math.sqrt(2)
    )


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
