"""Saturating spend→response curves, geometric adstock and the exact optimal budget split.

Pure functions over numpy arrays; the simulator draws acquisitions from them and the truth uses
them to score a budget engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Curve:
    """A channel's steady-state response: expected new customers a day for a daily spend.

    ``hill``: beta * s^slope / (s^slope + half_saturation^slope) — S-shaped when slope > 1.
    ``exponential``: beta * (1 - exp(-s / half_saturation)) — concave from the first cent.
    Spend is in minor units a day. Adstock (``carryover`` λ) is normalised, a_t = (1-λ) s_t +
    λ a_{t-1}, so a constant spend s has adstock s and the steady-state response is curve(s).
    """

    kind: str
    beta: float
    half_saturation: float
    slope: float = 1.0
    carryover: float = 0.0

    def shape(self, spend: ArrayLike) -> FloatArray:
        s = np.maximum(np.asarray(spend, dtype=np.float64), 0.0)
        if self.kind == "hill":
            ratio = (s / self.half_saturation) ** self.slope
            return ratio / (1.0 + ratio)
        if self.kind == "exponential":
            return 1.0 - np.exp(-s / self.half_saturation)
        raise ValueError(f"unknown curve kind {self.kind!r}")

    def response(self, spend: ArrayLike) -> FloatArray:
        return self.beta * self.shape(spend)

    @property
    def s_shaped(self) -> bool:
        return self.kind == "hill" and self.slope > 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "beta": self.beta,
            "half_saturation": self.half_saturation,
            "slope": self.slope,
            "carryover": self.carryover,
        }


def adstock(spend: ArrayLike, carryover: float) -> FloatArray:
    """Normalised geometric adstock of a daily spend series (starting from zero stock)."""
    s = np.asarray(spend, dtype=np.float64)
    out = np.empty_like(s)
    stock = 0.0
    for t in range(s.shape[0]):
        stock = (1.0 - carryover) * s[t] + carryover * stock
        out[t] = stock
    return out


def optimal_allocation(
    responses: dict[str, Any], budget: float, steps: int = 400
) -> dict[str, float]:
    """The split of a daily budget over channels that maximises the summed response.

    ``responses`` maps a channel to a vectorised response function of spend. S-shaped curves
    make the problem non-concave, so a greedy marginal split is not optimal; this solves it
    exactly on a grid of ``steps`` equal increments by dynamic programming (O(channels·steps²)).
    """
    if budget < 0 or not np.isfinite(budget):
        raise ValueError("budget must be a finite non-negative amount")
    names = list(responses)
    if budget == 0 or not names:
        return dict.fromkeys(names, 0.0)
    grid = np.arange(steps + 1) * (budget / steps)
    values = np.stack([np.asarray(responses[n](grid), dtype=np.float64) for n in names])
    best = values[0].copy()  # best[k]: best total using channels[:i+1] with k increments
    choice = np.zeros((len(names), steps + 1), dtype=np.int64)
    choice[0] = np.arange(steps + 1)
    for i in range(1, len(names)):
        # total[k, j] = best[k - j] + values[i][j] for j <= k
        k = np.arange(steps + 1)[:, None]
        j = np.arange(steps + 1)[None, :]
        valid = j <= k
        total = np.where(valid, best[np.clip(k - j, 0, steps)] + values[i][j], -np.inf)
        choice[i] = np.argmax(total, axis=1)
        best = total[np.arange(steps + 1), choice[i]]
    allocation: dict[str, float] = {}
    remaining = steps
    for i in range(len(names) - 1, -1, -1):
        taken = int(choice[i][remaining]) if i > 0 else remaining
        allocation[names[i]] = float(grid[taken])
        remaining -= taken
    return {n: allocation[n] for n in names}
