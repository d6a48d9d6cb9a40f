"""Numbers written for people: grouped digits, never scientific notation ("2e+09",
"1.44568e+06" are what ``:g`` prints for large figures)."""

from __future__ import annotations

import math


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
