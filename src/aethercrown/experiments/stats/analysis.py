"""One vectorised pass over many metric comparisons: every row is one metric of one experiment,
every column one variant (column 0 is the control). Each engine compares every variant with the
control at once, so a thousand experiments cost a handful of numpy operations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from aethercrown.experiments.stats import bayesian, frequentist, sequential
from aethercrown.experiments.stats.frequentist import Alternative
from aethercrown.experiments.stats.moments import (
    Array,
    Moments,
    cuped_moments,
    cuped_theta,
    moments,
)
from aethercrown.experiments.stats.srm import srm_p_value

Engine = Literal["frequentist", "bayesian", "sequential"]

# Why a comparison has no result (0 = it has one).
OK, CONTROL_MEAN_ZERO, ZERO_VARIANCE, NO_UNITS = 0, 1, 2, 3
PROBLEMS = {
    CONTROL_MEAN_ZERO: "the control's mean is 0, so a relative effect is undefined",
    ZERO_VARIANCE: "a variant has zero variance (every unit has the same value)",
    NO_UNITS: "a variant has fewer than two units",
}


@dataclass
class MetricBatch:
    """Sufficient statistics, shape (rows, variants). ``pre_*`` are the CUPED covariate's sums
    (rows without a covariate have ``has_covariate`` False)."""

    n: Array
    total: Array
    sum_squares: Array
    binomial: NDArray[np.bool_]
    weights: Array | None = None
    pre_total: Array | None = None
    pre_sum_squares: Array | None = None
    post_pre_sum: Array | None = None
    has_covariate: NDArray[np.bool_] | None = None
    inverse: NDArray[np.bool_] | None = None


@dataclass
class BatchResult:
    """Per-variant columns (rows, variants) and per-comparison columns (rows, variants − 1)."""

    mean: Array
    variance: Array
    effect: Array
    stddev: Array
    ci_low: Array
    ci_high: Array
    problem: NDArray[np.int_]
    srm_p_value: Array
    theta: Array
    p_value: Array | None = None
    chance_to_win: Array | None = None
    risk: Array | None = None
    risk_control: Array | None = None
    extra: dict[str, Array] = field(default_factory=dict)


def _unadjusted(n: Array, batch: MetricBatch, binomial: NDArray[np.bool_]) -> Moments:
    """Every variant's own moments, shape (rows, variants): CUPED with theta 0, i.e. the
    variance is 0 below two units."""
    plain = moments(
        n,
        np.asarray(batch.total, dtype=float),
        np.asarray(batch.sum_squares, dtype=float),
        binomial,
    )
    variance = np.where(n > 1, plain.variance, 0.0)
    return Moments(n=n, mean=plain.mean, variance=variance, unadjusted_mean=plain.mean)


def _comparison_moments(batch: MetricBatch, unadjusted: Moments) -> tuple[Moments, Moments, Array]:
    """Control and variant moments (the control's broadcast against the variants', shape
    (rows, variants − 1)), CUPED-adjusted where asked."""
    n = unadjusted.n
    if batch.pre_total is None or batch.pre_sum_squares is None or batch.post_pre_sum is None:
        # No covariate: the adjustment is the identity (theta 0), so the variants' own
        # moments serve as they are; this is also the one-experiment path of the API, where
        # each numpy call costs more than its arithmetic.
        def columns(take: slice) -> Moments:
            return Moments(
                n=n[:, take],
                mean=unadjusted.mean[:, take],
                variance=unadjusted.variance[:, take],
                unadjusted_mean=unadjusted.mean[:, take],
            )

        return columns(slice(0, 1)), columns(slice(1, None)), np.zeros_like(n[:, 1:])
    binomial = np.asarray(batch.binomial, dtype=bool)[:, None]
    n_a, n_b = n[:, :1], n[:, 1:]
    post = np.asarray(batch.total, dtype=float)
    post_ss = np.asarray(batch.sum_squares, dtype=float)
    pre = np.asarray(batch.pre_total, dtype=float)
    pre_ss = np.asarray(batch.pre_sum_squares, dtype=float)
    cross = np.asarray(batch.post_pre_sum, dtype=float)
    has = batch.has_covariate
    use = (
        np.ones((n.shape[0], 1), dtype=bool)
        if has is None
        else np.asarray(has, dtype=bool)[:, None]
    )
    theta = cuped_theta(
        n_a,
        n_b,
        (post[:, :1], post[:, 1:]),
        (post_ss[:, :1], post_ss[:, 1:]),
        (pre[:, :1], pre[:, 1:]),
        (pre_ss[:, :1], pre_ss[:, 1:]),
        (cross[:, :1], cross[:, 1:]),
        binomial,
    )
    theta = np.where(use, theta, 0.0)
    a = cuped_moments(
        np.broadcast_to(n_a, theta.shape),
        np.broadcast_to(post[:, :1], theta.shape),
        np.broadcast_to(post_ss[:, :1], theta.shape),
        np.broadcast_to(pre[:, :1], theta.shape),
        np.broadcast_to(pre_ss[:, :1], theta.shape),
        np.broadcast_to(cross[:, :1], theta.shape),
        theta,
        binomial,
    )
    b = cuped_moments(
        n_b, post[:, 1:], post_ss[:, 1:], pre[:, 1:], pre_ss[:, 1:], cross[:, 1:], theta, binomial
    )
    return a, b, theta


def analyse(
    batch: MetricBatch,
    engine: Engine,
    *,
    relative: bool = True,
    alternative: Alternative = "two-sided",
    alpha: float = 0.05,
    sequential_tuning: float = 5000.0,
    prior_mean: float = 0.0,
    prior_variance: float = 1.0,
    proper_prior: bool = False,
) -> BatchResult:
    n = np.asarray(batch.n, dtype=float)
    unadjusted = _unadjusted(n, batch, np.asarray(batch.binomial, dtype=bool)[:, None])
    a, b, theta = _comparison_moments(batch, unadjusted)

    problem = np.zeros(theta.shape, dtype=int)
    problem = np.where((a.variance <= 0) | (b.variance <= 0), ZERO_VARIANCE, problem)
    if relative or engine != "bayesian":
        # gbstats refuses a comparison against a zero control mean even for absolute effects
        # in its frequentist engine; we follow it so the numbers line up.
        problem = np.where((a.mean == 0) | (a.unadjusted_mean == 0), CONTROL_MEAN_ZERO, problem)
    problem = np.where((a.n < 2) | (b.n < 2), NO_UNITS, problem)
    bad = problem != OK

    point = frequentist.effect(a, b, relative)
    variance = frequentist.effect_variance(a, b, relative)
    weights = batch.weights if batch.weights is not None else np.ones_like(n)
    result = BatchResult(
        mean=unadjusted.mean,
        variance=unadjusted.variance,
        effect=point,
        stddev=np.sqrt(np.where(bad, 0.0, variance)),
        ci_low=point,
        ci_high=point,
        problem=problem,
        srm_p_value=srm_p_value(n, weights),
        theta=theta,
    )
    safe_var = np.where(bad, 1.0, variance)
    if engine == "bayesian":
        inverse = (
            np.zeros((n.shape[0], 1), dtype=bool)
            if batch.inverse is None
            else np.asarray(batch.inverse, dtype=bool)[:, None]
        )
        if alternative == "less":
            inverse = ~inverse
        mean, sd = bayesian.posterior(point, safe_var, prior_mean, prior_variance, proper_prior)
        low, high = bayesian.credible_interval(mean, sd, alpha)
        risk_control, risk_variant = bayesian.risk(mean, sd, inverse)
        result.effect, result.stddev = mean, sd
        result.ci_low, result.ci_high = low, high
        result.chance_to_win = bayesian.chance_to_win(mean, sd, inverse)
        result.risk, result.risk_control = risk_variant, risk_control
    elif engine == "frequentist":
        dof = frequentist.welch_dof(a, b)
        p, low, high = frequentist.t_test(
            point, safe_var, np.where(bad, 2.0, dof), alpha, alternative
        )
        result.p_value, result.ci_low, result.ci_high = p, low, high
    else:
        n_total = a.n + b.n
        width = sequential.half_width(safe_var, n_total, alpha, sequential_tuning)
        result.p_value = sequential.p_value(point, safe_var, n_total, alpha, sequential_tuning)
        result.ci_low, result.ci_high = point - width, point + width
    _blank(result, bad)
    return result


def _blank(result: BatchResult, bad: NDArray[np.bool_]) -> None:
    """Comparisons without a result carry NaN, never a number that looks like one."""
    for name in (
        "effect",
        "stddev",
        "ci_low",
        "ci_high",
        "p_value",
        "chance_to_win",
        "risk",
        "risk_control",
    ):
        value = getattr(result, name)
        if value is not None:
            setattr(result, name, np.where(bad, np.nan, value))
