"""Rates with Wilson score intervals. Pure: counts in, plain numbers out."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import norm


@dataclass(frozen=True)
class Rate:
    successes: int
    trials: int
    rate: float | None
    low: float | None
    high: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "successes": self.successes,
            "trials": self.trials,
            "rate": self.rate,
            "low": self.low,
            "high": self.high,
        }


def wilson(successes: int, trials: int, confidence: float = 0.95) -> Rate:
    """The rate and its Wilson score interval; undefined (None) without trials, or when more
    successes than trials were tracked (a click without its view), rather than a made-up rate."""
    if trials <= 0 or successes < 0 or successes > trials:
        return Rate(successes, trials, None, None, None)
    z = float(norm.ppf(0.5 + confidence / 2))
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return Rate(successes, trials, p, max(0.0, centre - half), min(1.0, centre + half))
