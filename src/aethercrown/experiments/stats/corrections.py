"""Multiple-comparison adjustment of p-values across variants × metrics."""

from __future__ import annotations

from typing import Literal

import numpy as np

from aethercrown.experiments.stats.moments import Array

Correction = Literal["holm", "bh", "none"]


def holm(p_values: Array) -> Array:
    """Holm–Bonferroni adjusted p-values (family-wise error rate); NaNs are left out."""
    p = np.asarray(p_values, dtype=float)
    out = np.full_like(p, np.nan)
    valid = ~np.isnan(p)
    m = int(valid.sum())
    if m == 0:
        return out
    values = p[valid]
    order = np.argsort(values, kind="stable")
    scaled = (m - np.arange(m)) * values[order]
    adjusted = np.minimum(np.maximum.accumulate(scaled), 1.0)
    result = np.empty(m)
    result[order] = adjusted
    out[valid] = result
    return out


def benjamini_hochberg(p_values: Array) -> Array:
    """Benjamini–Hochberg adjusted p-values (false discovery rate); NaNs are left out."""
    p = np.asarray(p_values, dtype=float)
    out = np.full_like(p, np.nan)
    valid = ~np.isnan(p)
    m = int(valid.sum())
    if m == 0:
        return out
    values = p[valid]
    order = np.argsort(values, kind="stable")
    scaled = values[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    result = np.empty(m)
    result[order] = adjusted
    out[valid] = result
    return out


def adjust(p_values: Array, method: Correction) -> Array:
    if method == "holm":
        return holm(p_values)
    if method == "bh":
        return benjamini_hochberg(p_values)
    return np.asarray(p_values, dtype=float)
