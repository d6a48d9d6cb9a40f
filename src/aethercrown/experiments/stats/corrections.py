"""Multiple-comparison adjustment of p-values across variants × metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np

from aethercrown.experiments.stats.moments import Array

Correction = Literal["holm", "bh", "none"]


def _step_adjusted(p_values: Array, adjust_sorted: Callable[[Array, int], Array]) -> Array:
    """``adjust_sorted`` applied to the p-values that are not NaN, sorted ascending (with
    their count), and its answers put back in the p-values' places; NaNs stay NaN."""
    p = np.asarray(p_values, dtype=float)
    out = np.full_like(p, np.nan)
    valid = ~np.isnan(p)
    m = int(valid.sum())
    if m == 0:
        return out
    values = p[valid]
    order = np.argsort(values, kind="stable")
    result = np.empty(m)
    result[order] = adjust_sorted(values[order], m)
    out[valid] = result
    return out


def _holm_sorted(ascending: Array, m: int) -> Array:
    scaled = (m - np.arange(m)) * ascending
    return np.minimum(np.maximum.accumulate(scaled), 1.0)


def _benjamini_hochberg_sorted(ascending: Array, m: int) -> Array:
    scaled = ascending * m / np.arange(1, m + 1)
    return np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)


def holm(p_values: Array) -> Array:
    """Holm–Bonferroni adjusted p-values (family-wise error rate); NaNs are left out."""
    return _step_adjusted(p_values, _holm_sorted)


def benjamini_hochberg(p_values: Array) -> Array:
    """Benjamini–Hochberg adjusted p-values (false discovery rate); NaNs are left out."""
    return _step_adjusted(p_values, _benjamini_hochberg_sorted)


def adjust(p_values: Array, method: Correction) -> Array:
    if method == "holm":
        return holm(p_values)
    if method == "bh":
        return benjamini_hochberg(p_values)
    return np.asarray(p_values, dtype=float)
