"""Always-valid inference: asymptotic confidence sequences (Waudby-Smith et al., 2023).

The interval may be looked at after every new unit without inflating the error rate. The tuning
parameter N* is the total sample size at which the sequence is tightest, as in gbstats'
``sequential_tuning_parameter``.
"""

from __future__ import annotations

import numpy as np

from aethercrown.experiments.stats.moments import Array


def rho(alpha: float | Array, tuning: float | Array) -> Array:
    """The mixture parameter that makes the sequence tightest at N* = ``tuning`` units (eq. 161)."""
    log_alpha = np.log(alpha)
    return np.sqrt((-2.0 * log_alpha + np.log(-2.0 * log_alpha + 1.0)) / tuning)


def half_width(
    variance: Array, n_total: Array, alpha: float | Array, tuning: float | Array
) -> Array:
    """Half-width of the two-sided confidence sequence (eq. 9); ``variance`` is the effect's."""
    r2 = np.square(rho(alpha, tuning))
    per_unit = variance * n_total
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = (2.0 * (n_total * r2 + 1.0) * np.log(np.sqrt(n_total * r2 + 1.0) / alpha)) / (
            np.square(n_total) * r2
        )
    return np.sqrt(per_unit) * np.sqrt(inner)


def p_value(
    point: Array,
    variance: Array,
    n_total: Array,
    alpha: float | Array,
    tuning: float | Array,
    null_value: float = 0.0,
) -> Array:
    """Always-valid p-value: the reciprocal of the mixture e-value, capped at 1 (eq. 155)."""
    r2 = np.square(rho(alpha, tuning))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        st2 = np.square(point - null_value) * n_total / variance
        scale = n_total * r2 + 1.0
        # log-space: the e-value overflows for huge effects, where p is simply 0.
        log_e = r2 * st2 / (2.0 * scale) - 0.5 * np.log(scale)
        return np.minimum(np.exp(-log_e), 1.0)
