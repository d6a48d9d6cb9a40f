"""Renewal dates and probabilities, and the MRR a campaign is expected to save (pure).

A churn score is the probability of churning within the model's horizon. Over a different span
(the days until a customer's next renewal) it is spread at a constant hazard: the chance of
lasting ``t`` days is ``(1 - p) ** (t / horizon)``. That is the probability the customer is
still there to renew, read from the model alone; nothing else is assumed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from dateutil.relativedelta import relativedelta

INTERVAL_MONTHS = {"month": 1, "year": 12}


@dataclass(frozen=True, slots=True)
class Life:
    """One subscription, as much of it as renewals and MRR need."""

    customer_id: uuid.UUID
    plan: str
    amount: int
    quantity: int
    interval: str
    discount_percent: float
    discount_amount: int
    started_at: datetime
    ended_at: datetime | None
    trial_end: datetime | None


def next_renewal(started_at: datetime, interval: str, now: datetime) -> datetime | None:
    """The first period boundary after ``now`` of a subscription billed every ``interval`` from
    ``started_at`` (None for an interval that does not renew). Calendar months, the day clamped
    to the month's length, as the metering renewal dates."""
    step = INTERVAL_MONTHS.get(interval)
    if step is None:
        return None
    elapsed = (now.year - started_at.year) * 12 + now.month - started_at.month
    # The boundary in now's month (or the last one before it) is at most one step short.
    k = max(elapsed // step, 1)
    while True:
        candidate = started_at + relativedelta(months=k * step)
        if candidate > now:
            return candidate
        k += 1


def monthly_minor(life: Life) -> float:
    """The subscription's MRR in minor units (the analytics rule: quantity × price, less the
    discounts, a yearly price spread over twelve months)."""
    step = INTERVAL_MONTHS.get(life.interval)
    if step is None:
        return 0.0
    gross = life.amount * max(life.quantity, 1)
    net = max(gross * (1 - (life.discount_percent or 0.0) / 100.0) - (life.discount_amount or 0), 0)
    return net / step


def alive(life: Life, at: datetime) -> bool:
    """Paying at ``at``: started, not ended, past any trial."""
    return (
        life.started_at <= at
        and (life.ended_at is None or life.ended_at > at)
        and (life.trial_end is None or life.trial_end <= at)
    )


def survival(probability: float, horizon_days: float, days: float) -> float:
    """The chance of lasting ``days`` for a churn ``probability`` over ``horizon_days``, at a
    constant hazard (see the module docstring)."""
    p = min(max(probability, 0.0), 1.0)
    if days <= 0:
        return 1.0
    if p >= 1.0:
        return 0.0
    return float((1.0 - p) ** (days / horizon_days))
