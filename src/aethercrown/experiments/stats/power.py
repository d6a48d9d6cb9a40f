"""Power and sample size for a two-arm test of a relative effect (delta-method variance).

For a control with per-unit mean μ and variance σ²_a, and a variant whose mean is μ(1 + mde) with
variance σ²_b, the relative effect estimated from n units per arm has variance
(σ²_b / μ² + σ²_a (1 + mde)² / μ²) / n; the usual normal approximation then gives the units per
arm for a given power, and the power reached with a given n.
"""

from __future__ import annotations

import math
from typing import Literal

from scipy import special

Alternative = Literal["two-sided", "greater", "less"]


def _per_unit_variance(
    baseline_mean: float, baseline_variance: float, mde: float, binomial: bool
) -> float:
    treated_mean = baseline_mean * (1.0 + mde)
    treated_variance = treated_mean * (1.0 - treated_mean) if binomial else baseline_variance
    return (
        treated_variance / baseline_mean**2 + baseline_variance * treated_mean**2 / baseline_mean**4
    )


def _z_alpha(alpha: float, alternative: Alternative) -> float:
    return float(special.ndtri(1.0 - (alpha / 2.0 if alternative == "two-sided" else alpha)))


def sample_size_per_variant(
    baseline_mean: float,
    baseline_variance: float,
    mde: float,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: Alternative = "two-sided",
    binomial: bool = False,
) -> int:
    """Units each arm needs to detect a relative change of ``mde`` with the given power."""
    per_unit = _per_unit_variance(baseline_mean, baseline_variance, mde, binomial)
    z = _z_alpha(alpha, alternative) + float(special.ndtri(power))
    return max(2, math.ceil(z**2 * per_unit / mde**2))


def achieved_power(
    baseline_mean: float,
    baseline_variance: float,
    mde: float,
    n_per_variant: float,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    binomial: bool = False,
) -> float:
    """Probability of detecting a true relative change of ``mde`` with ``n_per_variant`` per arm."""
    if n_per_variant <= 0:
        return 0.0
    sd = math.sqrt(
        _per_unit_variance(baseline_mean, baseline_variance, mde, binomial) / n_per_variant
    )
    z = _z_alpha(alpha, alternative)
    shift = abs(mde) / sd
    result = float(special.ndtr(shift - z))
    if alternative == "two-sided":
        result += float(special.ndtr(-shift - z))
    return result


def minimum_detectable_effect(
    baseline_mean: float,
    baseline_variance: float,
    n_per_variant: float,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: Alternative = "two-sided",
    binomial: bool = False,
) -> float:
    """Smallest relative change detectable with ``power`` given ``n_per_variant`` (bisection)."""
    low, high = 1e-9, 1.0
    # The detectable effect can exceed 100% with few units; widen until it is bracketed.
    while (
        achieved_power(
            baseline_mean, baseline_variance, high, n_per_variant, alpha, alternative, binomial
        )
        < power
        and high < 1e6
    ):
        if binomial and baseline_mean * (1.0 + high * 2) > 1.0:
            break
        high *= 2.0
    for _ in range(100):
        mid = (low + high) / 2.0
        reached = achieved_power(
            baseline_mean, baseline_variance, mid, n_per_variant, alpha, alternative, binomial
        )
        low, high = (low, mid) if reached >= power else (mid, high)
    return high
