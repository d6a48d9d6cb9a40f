"""Thompson sampling traffic weights with a floor.

Each arm's mean gets a normal posterior N(mean, variance / n) (a flat prior); the weight of an arm
is the posterior probability that it is the best, estimated from seeded draws so that a rerun over
the same data gives the same weights. Every arm keeps at least ``floor`` of the traffic so that a
wrong early leader can still be overturned.
"""

from __future__ import annotations

import numpy as np

from aethercrown.experiments.stats.moments import Array


def probability_best(
    means: Array,
    variances: Array,
    n: Array,
    draws: int = 20_000,
    seed: int = 0,
    lower_is_better: bool = False,
) -> Array:
    means = np.asarray(means, dtype=float)
    n_safe = np.maximum(np.asarray(n, dtype=float), 1.0)
    # An arm with no data yet gets a wide posterior, so it is explored rather than starved.
    sd = np.where(np.asarray(n) > 0, np.sqrt(np.maximum(variances, 1e-12) / n_safe), 1e6)
    rng = np.random.default_rng(seed)
    samples = rng.standard_normal((draws, means.size)) * sd + means
    best = samples.argmin(axis=1) if lower_is_better else samples.argmax(axis=1)
    return np.bincount(best, minlength=means.size) / draws


def floored_weights(probabilities: Array, floor: float) -> Array:
    """Weights ≥ floor that sum to 1: floor + (1 − k·floor) × P(best)."""
    p = np.asarray(probabilities, dtype=float)
    k = p.size
    if floor * k > 1.0:
        raise ValueError(f"a floor of {floor} cannot hold for {k} arms")
    total = p.sum()
    share = p / total if total > 0 else np.full(k, 1.0 / k)
    return floor + (1.0 - k * floor) * share
