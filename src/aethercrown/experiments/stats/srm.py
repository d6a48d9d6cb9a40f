"""Sample-ratio mismatch: does the observed split of units match the configured weights?"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import special

from aethercrown.experiments.stats.moments import Array

# Below this p-value the split is treated as broken and no verdict is given.
SRM_THRESHOLD = 0.001


def srm_p_value(counts: Array | Sequence[float], weights: Array | Sequence[float]) -> Array:
    """Chi-square goodness-of-fit p-value per row; rows are experiments, columns variants.

    Variants with weight 0 are left out of the statistic (their expected count is 0) but still
    count towards the degrees of freedom, as in gbstats. No units at all gives p = 1.
    """
    observed = np.atleast_2d(np.asarray(counts, dtype=float))
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    total = observed.sum(axis=1, keepdims=True)
    share = w / w.sum(axis=1, keepdims=True)
    expected = share * total
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(
            w > 0, np.square(observed - expected) / np.where(w > 0, expected, 1.0), 0.0
        )
    statistic = terms.sum(axis=1)
    p = special.chdtrc(observed.shape[1] - 1, statistic)
    return np.where(total[:, 0] > 0, p, 1.0)
