"""The noise-robust budget split (budget/robust.py) on hand-built histories: the curve is
trusted only up to the spend it was fitted on, weak fits are held, intervals bracket the point,
and the split never looks worse than the current one at its lower bound."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from aethercrown.budget import robust
from aethercrown.budget.curves import ResponseCurve, adstock

DAYS = 364


def history(
    curve: ResponseCurve, low: float, high: float, seed: int, noise: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """Weekly flights of daily spend between ``low`` and ``high``; return = curve × noise."""
    rng = np.random.default_rng(seed)
    levels = np.repeat(rng.uniform(low, high, DAYS // 14 + 1), 14)[:DAYS]
    spend = np.round(levels * np.exp(rng.normal(0, 0.05, DAYS)), 2)
    value = curve.value(adstock(spend, curve.adstock)) * np.exp(rng.normal(0, noise, DAYS))
    return spend, np.round(value, 2)


def fit(
    name: str, curve: ResponseCurve, low: float, high: float, seed: int
) -> robust.ChannelPosterior:
    spend, value = history(curve, low, high, seed)
    return robust.fit_channel(name, spend.tolist(), value.tolist(), seed=seed)


def test_return_beyond_the_trusted_range_is_flat_and_flagged() -> None:
    # A linear channel seen only between 100 and 300 a day: its curve says nothing past that.
    post = fit("search", ResponseCurve("hill", 1e7, 1e6, 1.0), 100, 300, seed=1)
    assert not post.weak
    assert 250 <= post.trusted_max <= 320
    edge = post.mean(post.trusted_max)
    assert post.mean(10 * post.trusted_max) == edge
    assert post.marginal(2 * post.trusted_max) == 0.0
    # Against a saturated twin, a budget far past the seen range: the extra spend earns nothing
    # in the plan's figures, and the channel is flagged past its trusted range.
    flat = fit("display", ResponseCurve("hill", 3000.0, 50.0, 1.0), 100, 300, seed=2)
    budget = 4000.0
    plan = robust.optimise([post, flat], budget, np.zeros(2), np.full(2, budget), interval=0.9)
    assert abs(plan.allocation.sum() - budget) < 1e-6
    over = [a > p.trusted_max for p, a in zip([post, flat], plan.allocation, strict=True)]
    assert plan.beyond_trusted == over and any(over)
    assert plan.expected <= post.mean(post.trusted_max) + flat.mean(flat.trusted_max) + 1e-6


def test_a_channel_whose_fit_explains_nothing_is_held_at_its_current_spend() -> None:
    rng = np.random.default_rng(3)
    spend = np.repeat(rng.uniform(50, 500, DAYS // 14 + 1), 14)[:DAYS]
    noise_only = rng.gamma(2.0, 200.0, DAYS)  # return unrelated to spend
    weak = robust.fit_channel("radio", spend.tolist(), noise_only.tolist(), seed=3)
    strong = fit("search", ResponseCurve("hill", 2000.0, 300.0, 1.0), 50, 600, seed=4)
    assert weak.weak and "explains too little" in (weak.weak_reason or "")
    assert not strong.weak
    budget = weak.current + strong.current
    plan = robust.optimise([weak, strong], budget, np.zeros(2), np.full(2, budget))
    assert plan.held == [True, False]
    assert abs(plan.allocation[0] - plan.current[0]) < 1e-6
    # Its uncertainty is still there to show.
    at = weak.values(weak.current)[:, 0]
    assert np.percentile(at, 95) > np.percentile(at, 5)


def test_too_short_a_history_is_held_with_its_reason() -> None:
    post = robust.fit_channel("podcast", [100.0] * 5, [250.0] * 5)
    assert post.weak and "only 5 periods" in (post.weak_reason or "")


def test_intervals_come_from_the_posterior_and_bracket_the_point() -> None:
    posts = [
        fit("search", ResponseCurve("hill", 3000.0, 800.0, 2.2, 0.3), 200, 2000, seed=5),
        fit("social", ResponseCurve("hill", 1500.0, 300.0, 1.0), 60, 700, seed=6),
        fit("seo", ResponseCurve("exponential", 1200.0, 500.0, 1.0, 0.5), 100, 1200, seed=7),
    ]
    budget = sum(p.current for p in posts)
    plan = robust.optimise(posts, budget, np.full(3, 0.05 * budget), np.full(3, budget))
    assert plan.expected_low < plan.expected < plan.expected_high
    assert plan.gain_low <= plan.gain_mean <= plan.gain_high
    # The chosen split's 5% lower bound of the gain is at least the current split's (zero).
    assert np.quantile(_gain_draws(posts, plan.allocation, plan.current), 0.05) >= -1e-6
    text = robust.confidence(plan, posts, "{:,.2f}")
    assert "Confidence" in text or "No change" in text


def test_noisier_data_gives_wider_intervals() -> None:
    curve = ResponseCurve("hill", 2000.0, 300.0, 1.0)
    widths = []
    for noise in (0.05, 0.4):
        spend, value = history(curve, 50, 600, seed=8, noise=noise)
        post = robust.fit_channel("search", spend.tolist(), value.tolist(), seed=8)
        at = post.values(300.0)[:, 0]
        widths.append(float(np.percentile(at, 95) - np.percentile(at, 5)))
    assert widths[1] > 2 * widths[0]


def test_poisson_counts_fit_recovers_a_known_curve() -> None:
    curve = ResponseCurve("hill", 6.0, 400.0, 1.5, 0.3)  # conversions a day
    rng = np.random.default_rng(9)
    spend = np.repeat(rng.uniform(50, 1200, DAYS // 14 + 1), 14)[:DAYS]
    counts = rng.poisson(curve.value(adstock(spend, curve.adstock)))
    revenue = counts * 100.0
    post = robust.fit_channel(
        "search", spend.tolist(), revenue.tolist(), counts=counts.tolist(), seed=9
    )
    for x in (200.0, 600.0, 1000.0):
        lo, hi = np.percentile(post.values(x)[:, 0], [1, 99])
        assert lo <= 100.0 * curve.at(x) <= hi


def test_fit_round_trips_through_its_plain_form() -> None:
    post = fit("search", ResponseCurve("hill", 2000.0, 300.0, 1.0), 50, 600, seed=10)
    again = robust.ChannelPosterior.from_dict(post.to_dict())
    assert np.array_equal(again.values([10.0, 300.0]), post.values([10.0, 300.0]))
    assert robust.fingerprint("a", [1.0], [2.0], True, 1) != robust.fingerprint(
        "a", [1.0], [2.5], True, 1
    )


def _gain_draws(
    posts: list[robust.ChannelPosterior], x: np.ndarray, current: np.ndarray
) -> np.ndarray:
    return np.asarray(
        sum(
            p.values(a)[:, 0] - p.values(c)[:, 0] for p, a, c in zip(posts, x, current, strict=True)
        )
    )


def test_the_shared_yearly_season_is_recovered_from_the_channels_together() -> None:
    # Three channels with independent spend flights over 18 months, their conversions all
    # multiplied by the same yearly season (+12 % in late January): fitted together, the
    # season's coefficients come back, and a channel fitted with it is not credited with it.
    days = [date(2025, 6, 1) + timedelta(days=i) for i in range(548)]
    cos, sin = 0.11, 0.05
    season = robust.season_multipliers(days, cos, sin)
    rng = np.random.default_rng(21)
    curves = [
        ResponseCurve("hill", 40.0, 600.0, 2.0, 0.3),
        ResponseCurve("exponential", 30.0, 500.0, 1.0, 0.5),
        ResponseCurve("hill", 25.0, 400.0, 1.0, 0.0),
    ]
    series, spends, counts_by = [], [], []
    for curve in curves:
        spend = np.repeat(rng.uniform(50, 1500, len(days) // 14 + 1), 14)[: len(days)]
        counts = rng.poisson(curve.value(adstock(spend, curve.adstock)) * season)
        series.append(
            robust.SeasonSeries(spend.tolist(), (counts * 100.0).tolist(), counts.tolist())
        )
        spends.append(spend)
        counts_by.append(counts)
    fitted = robust.fit_season(days, series)
    assert abs(fitted[0] - cos) <= 0.03 and abs(fitted[1] - sin) <= 0.03
    # Too short a history for a yearly season: none.
    assert robust.fit_season(
        days[:200],
        [
            robust.SeasonSeries(s.spend[:200], s.returns[:200], list(s.counts or [])[:200])
            for s in series
        ],
    ) == (0.0, 0.0)
    post = robust.fit_channel(
        "search",
        spends[0].tolist(),
        (counts_by[0] * 100.0).tolist(),
        counts=counts_by[0].tolist(),
        season=robust.season_multipliers(days, *fitted),
    )
    for x in (300.0, 800.0, 1200.0):
        lo, hi = np.percentile(post.values(x)[:, 0], [1, 99])
        assert lo <= 100.0 * curves[0].at(x) <= hi
