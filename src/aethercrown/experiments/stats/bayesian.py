"""Gaussian posterior on the effect (absolute or relative), as in gbstats' effect-size engine.

With the default improper (flat) prior the posterior is the normal approximation of the data; a
proper prior N(mean, variance) on the effect shrinks it. Chance to win is P(effect > 0) (or < 0 for
metrics where lower is better); risk is the expected loss of each choice.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from aethercrown.experiments.stats.moments import Array

_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


def posterior(
    point: Array,
    variance: Array,
    prior_mean: float = 0.0,
    prior_variance: float = 1.0,
    proper: bool = False,
) -> tuple[Array, Array]:
    """(posterior mean, posterior standard deviation) of the effect."""
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = 1.0 / variance + (1.0 / prior_variance if proper else 0.0)
        mean = (point / variance + prior_mean / prior_variance) / precision if proper else point
        return mean, np.sqrt(1.0 / precision)


def chance_to_win(mean: Array, sd: Array, inverse: bool | Array = False) -> Array:
    with np.errstate(divide="ignore", invalid="ignore"):
        p_positive = special.ndtr(mean / sd)
    return np.where(inverse, 1.0 - p_positive, p_positive)


def credible_interval(mean: Array, sd: Array, alpha: float | Array) -> tuple[Array, Array]:
    z = special.ndtri(1.0 - np.asarray(alpha) / 2.0)
    return mean - z * sd, mean + z * sd


def risk(mean: Array, sd: Array, inverse: bool | Array = False) -> tuple[Array, Array]:
    """(risk of keeping control, risk of shipping the variant): the expected effect lost by each
    choice, i.e. E[max(effect, 0)] and E[max(-effect, 0)] (swapped when lower is better)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = mean / sd
        density = _INV_SQRT_2PI * np.exp(-0.5 * np.square(z))
        # E[max(X, 0)] for X ~ N(mean, sd²) = mean·Φ(z) + sd·φ(z); E[max(-X, 0)] = that − mean.
        gain = mean * special.ndtr(z) + sd * density
        loss = gain - mean
    return np.where(inverse, loss, gain), np.where(inverse, gain, loss)
