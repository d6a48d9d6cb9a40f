"""Histories generated from known response curves, so the optimiser's answers can be checked
against the truth."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np

from aethercrown.budget.curves import ResponseCurve, adstock

TRUTH: dict[str, ResponseCurve] = {
    "google_ads": ResponseCurve("hill", 3000.0, 800.0, 2.2, 0.3),
    "facebook_ads": ResponseCurve("hill", 1500.0, 300.0, 1.0, 0.0),
    "seo": ResponseCurve("exponential", 1200.0, 500.0, 1.0, 0.5),
    "tv": ResponseCurve("hill", 5000.0, 2500.0, 3.0, 0.0),
}
START = date(2026, 1, 1)


def simulate(
    truth: dict[str, ResponseCurve],
    days: int = 120,
    noise: float = 0.08,
    seed: int = 0,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Daily spend varying around each curve's scale; return = curve(adstocked spend) × noise."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, curve in truth.items():
        spend = rng.uniform(0.2, 2.5, days) * curve.scale
        value = curve.value(adstock(spend, curve.adstock)) * (1 + rng.normal(0, noise, days))
        out[name] = (np.round(spend, 2), np.round(np.maximum(value, 0.0), 2))
    return out


def rows(series: dict[str, tuple[np.ndarray, np.ndarray]], start: date = START) -> list[Any]:
    return [
        {
            "channel": name,
            "date": (start + timedelta(days=i)).isoformat(),
            "spend": float(s),
            "revenue": float(r),
        }
        for name, (spend, ret) in series.items()
        for i, (s, r) in enumerate(zip(spend, ret, strict=True))
    ]
