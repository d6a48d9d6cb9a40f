"""Per-variant summary statistics from sufficient statistics (n, sum, sum of squares).

Binomial metrics use p(1 - p) as the per-unit variance; mean metrics (revenue, counts, any
continuous value) use the unbiased sample variance. CUPED adjusts a mean by a pre-period covariate
with one theta shared by the two arms being compared.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Moments:
    """Arrays of equal shape: units, the (possibly CUPED-adjusted) mean, its per-unit variance and
    the unadjusted mean (the denominator of a relative effect)."""

    n: Array
    mean: Array
    variance: Array
    unadjusted_mean: Array


def _safe_div(num: Array, den: Array) -> Array:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, 1.0), 0.0)


def mean_of(n: Array, total: Array) -> Array:
    return _safe_div(total, n)


def sample_variance(n: Array, total: Array, sum_squares: Array) -> Array:
    """Unbiased variance; 0 where n < 2."""
    with np.errstate(divide="ignore", invalid="ignore"):
        var = (sum_squares - np.square(total) / np.where(n > 0, n, 1.0)) / np.where(
            n > 1, n - 1, 1.0
        )
    return np.where(n > 1, var, 0.0)


def proportion_variance(n: Array, total: Array) -> Array:
    p = mean_of(n, total)
    return p * (1.0 - p)


def moments(
    n: Array, total: Array, sum_squares: Array, binomial: NDArray[np.bool_] | bool
) -> Moments:
    mean = mean_of(n, total)
    variance = np.where(
        binomial, proportion_variance(n, total), sample_variance(n, total, sum_squares)
    )
    return Moments(n=n, mean=mean, variance=variance, unadjusted_mean=mean)


def covariance(n: Array, sum_x: Array, sum_y: Array, sum_xy: Array) -> Array:
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = (sum_xy - sum_x * sum_y / np.where(n > 0, n, 1.0)) / np.where(n > 1, n - 1, 1.0)
    return np.where(n > 1, cov, 0.0)


def cuped_theta(
    n_a: Array,
    n_b: Array,
    post_sum: tuple[Array, Array],
    post_sum_squares: tuple[Array, Array],
    pre_sum: tuple[Array, Array],
    pre_sum_squares: tuple[Array, Array],
    post_pre_sum: tuple[Array, Array],
    binomial: NDArray[np.bool_] | bool,
) -> Array:
    """Theta = cov(post, pre) / var(pre) over both arms pooled; 0 when either pooled variance is
    0 (then the adjustment is skipped, as gbstats does)."""
    n = n_a + n_b
    y, yy = post_sum[0] + post_sum[1], post_sum_squares[0] + post_sum_squares[1]
    x, xx = pre_sum[0] + pre_sum[1], pre_sum_squares[0] + pre_sum_squares[1]
    var_y = np.where(binomial, proportion_variance(n, y), sample_variance(n, y, yy))
    var_x = sample_variance(n, x, xx)
    cov = covariance(n, y, x, post_pre_sum[0] + post_pre_sum[1])
    ok = (var_x > 0) & (var_y > 0)
    return np.where(ok, _safe_div(cov, np.where(ok, var_x, 1.0)), 0.0)


def cuped_moments(
    n: Array,
    post_sum: Array,
    post_sum_squares: Array,
    pre_sum: Array,
    pre_sum_squares: Array,
    post_pre_sum: Array,
    theta: Array,
    binomial: NDArray[np.bool_] | bool,
) -> Moments:
    post = moments(n, post_sum, post_sum_squares, binomial)
    pre_mean = mean_of(n, pre_sum)
    pre_var = sample_variance(n, pre_sum, pre_sum_squares)
    cov = covariance(n, post_sum, pre_sum, post_pre_sum)
    variance = post.variance + np.square(theta) * pre_var - 2.0 * theta * cov
    variance = np.where(n > 1, variance, 0.0)
    return Moments(
        n=n,
        mean=post.mean - theta * pre_mean,
        variance=variance,
        unadjusted_mean=post.mean,
    )
