"""Risk levels, the seed's retention campaigns, the random holdout and uplift (pure)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

RISK_LEVELS = ("low", "medium", "high", "critical")


@dataclass(frozen=True)
class CampaignPlan:
    name: str
    actions: tuple[str, ...]
    discount_percent: int


# The seed's rules per risk level; low risk gets no campaign.
CAMPAIGNS: dict[str, CampaignPlan | None] = {
    "critical": CampaignPlan(
        "critical_retention", ("email", "sms", "personal_outreach", "discount"), 30
    ),
    "high": CampaignPlan("high_retention", ("email", "in_app_message", "discount"), 20),
    "medium": CampaignPlan("gentle_reengagement", ("gentle_reminder", "feature_highlights"), 0),
    "low": None,
}


def risk_level(probability: float) -> str:
    """0–30% low, 30–50% medium, 50–70% high, 70–100% critical (lower bounds inclusive)."""
    if probability >= 0.7:
        return "critical"
    if probability >= 0.5:
        return "high"
    if probability >= 0.3:
        return "medium"
    return "low"


RISK_BOUNDS = (0.3, 0.5, 0.7)


def risk_levels(probabilities: Sequence[float] | npt.NDArray[np.float64]) -> list[str]:
    """``risk_level`` of many probabilities at once (vectorised for batch scoring)."""
    index = np.digitize(np.asarray(probabilities, dtype=np.float64), RISK_BOUNDS)
    return np.asarray(RISK_LEVELS, dtype=object)[index].tolist()


def cooldown_bucket(at: datetime, cooldown_days: int) -> int:
    return int(at.timestamp() // (cooldown_days * 86400))


def holdout_draw(tenant_slug: str, external_id: str, bucket: int) -> float:
    """A uniform [0, 1) draw fixed by (tenant, customer, cooldown bucket): the same customer is
    held out or not consistently across every scorer and retry within one cooldown. Keyed by the
    tenant's slug and the customer's external id, not by row ids (fresh random UUIDs on every
    load), so the same company loaded twice holds out the same customers."""
    digest = hashlib.sha256(f"{tenant_slug}:{external_id}:{bucket}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Uplift:
    treated: int
    treated_retained: int
    holdout: int
    holdout_retained: int
    uplift: float | None
    ci_low: float | None
    ci_high: float | None


def retention_uplift(
    treated: int, treated_retained: int, holdout: int, holdout_retained: int
) -> Uplift:
    """Retention rate of treated minus held-out customers, with Newcombe's 95% interval
    (hybrid Wilson score), which stays inside [-1, 1] and behaves at small counts."""
    if treated == 0 or holdout == 0:
        return Uplift(treated, treated_retained, holdout, holdout_retained, None, None, None)
    p1, p2 = treated_retained / treated, holdout_retained / holdout
    l1, u1 = wilson(treated_retained, treated)
    l2, u2 = wilson(holdout_retained, holdout)
    diff = p1 - p2
    low = diff - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = diff + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return Uplift(treated, treated_retained, holdout, holdout_retained, diff, low, high)
