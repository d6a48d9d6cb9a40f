"""Welch's t-test on the absolute or relative difference of two means.

The relative effect is (mean_b - mean_a) / mean_a with its variance by the delta method; the
degrees of freedom by Welch–Satterthwaite. All functions broadcast over arrays.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import special

from aethercrown.experiments.stats.moments import Array, Moments

Alternative = Literal["two-sided", "greater", "less"]


def effect(a: Moments, b: Moments, relative: bool) -> Array:
    diff = b.mean - a.mean
    if not relative:
        return diff
    with np.errstate(divide="ignore", invalid="ignore"):
        return diff / a.unadjusted_mean


def effect_variance(a: Moments, b: Moments, relative: bool) -> Array:
    """Variance of the estimated effect (not per unit)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if not relative:
            return b.variance / b.n + a.variance / a.n
        mean_a, mean_b = a.unadjusted_mean, b.unadjusted_mean
        return b.variance / (np.square(mean_a) * b.n) + a.variance * np.square(mean_b) / (
            np.power(mean_a, 4) * a.n
        )


def welch_dof(a: Moments, b: Moments) -> Array:
    with np.errstate(divide="ignore", invalid="ignore"):
        num = np.square(b.variance / b.n + a.variance / a.n)
        den = np.square(b.variance) / (np.square(b.n) * (b.n - 1)) + np.square(a.variance) / (
            np.square(a.n) * (a.n - 1)
        )
        return num / den


def t_test(
    point: Array,
    variance: Array,
    dof: Array,
    alpha: float | Array,
    alternative: Alternative = "two-sided",
    null_value: float = 0.0,
) -> tuple[Array, Array, Array]:
    """(p-value, lower bound, upper bound); an unbounded side is ±inf."""
    sd = np.sqrt(variance)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_stat = (point - null_value) / sd
    if alternative == "two-sided":
        p = 2.0 * (1.0 - special.stdtr(dof, np.abs(t_stat)))
        width = special.stdtrit(dof, 1.0 - np.asarray(alpha) / 2.0) * sd
        return p, point - width, point + width
    width = special.stdtrit(dof, 1.0 - np.asarray(alpha)) * sd
    if alternative == "greater":
        return 1.0 - special.stdtr(dof, t_stat), point - width, np.full_like(point, np.inf)
    # gbstats' one-sided "lesser" interval is (-inf, point - width]; we report the correct upper
    # bound point + width (the comparison test documents this one deliberate difference).
    return special.stdtr(dof, t_stat), np.full_like(point, -np.inf), point + width
