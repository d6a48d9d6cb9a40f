"""Numbers written for people: grouped digits, never scientific notation ("2e+09",
"1.44568e+06" are what ``:g`` prints for large figures); and the percentiles every summary of
latencies and durations reports."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def plain(value: float | int | None, digits: int = 2) -> str:
    """``value`` with thousands grouped and at most ``digits`` decimals, trailing zeros dropped:
    1445680.0 → "1,445,680", 16.25 → "16.25", 0.5 → "0.5"; None → "–"."""
    if value is None:
        return "–"
    if not math.isfinite(value):
        return str(value)
    text = f"{value:,.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def percent(value: float | None) -> str:
    """A rate as a percentage with one decimal: 0.1234 → "12.3%"; None → "–"."""
    return "–" if value is None else f"{value * 100:.1f}%"


def percentiles(values: Sequence[float], *qs: float, digits: int = 3) -> list[float | None]:
    """numpy's linear-interpolation percentiles of ``values`` at each ``q`` in [0, 100], rounded
    to ``digits``; None for each when there are no values."""
    if not values:
        return [None] * len(qs)
    return [round(float(p), digits) for p in np.percentile(np.asarray(values, float), qs)]
