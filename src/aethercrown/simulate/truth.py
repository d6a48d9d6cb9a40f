"""The ground truth of a simulated company, and the helpers engines score themselves with.

The JSON part (``to_dict``) is stored with the tenant. The per-customer daily hazard and its
features are large (customers × days), so they live only in a generated company; a stored truth
gets them back by regenerating from its seed and config (``service.truth_for_tenant``), which is
bit-for-bit the same company.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aethercrown.simulate.curves import Curve, optimal_allocation

MONTHS_PER_INTERVAL = {"month": 1, "year": 12}


def monthly_value(sub: dict[str, Any]) -> float:
    """A subscription's MRR contribution: net of discounts, annual plans spread over 12 months."""
    gross = sub["amount"] * sub.get("quantity", 1) * (1.0 - sub.get("discount_percent", 0.0) / 100)
    return (gross - sub.get("discount_amount", 0)) / MONTHS_PER_INTERVAL[sub["interval"]]


def _parse(ts: str | None) -> datetime | None:
    return None if ts is None else datetime.fromisoformat(ts.replace("Z", "+00:00"))


@dataclass
class Truth:
    """Everything the simulator knows and the data only hints at. JSON-able via ``to_dict``."""

    seed: int
    config: dict[str, Any]
    origin: date  # day index 0 of the hazard matrix (the window start minus the burn-in)
    start: date
    end: date
    hazard: dict[str, Any]
    churn: list[dict[str, Any]]
    channels: dict[str, dict[str, Any]]
    acquisition_seasonality: dict[str, Any]
    activity_seasonality: dict[str, Any]
    experiments: list[dict[str, Any]]
    mrr_by_month: dict[str, float]  # minor units, at each month's end
    renewals: list[dict[str, Any]]
    plan_changes: list[dict[str, Any]]
    plans: dict[str, dict[str, Any]]
    usage: dict[str, Any]
    subscriptions: list[dict[str, Any]]
    customers: list[str]
    signup_day: list[int]  # day index (from origin) of each customer's signup
    # Large arrays, present in a generated company only (customers × days).
    daily_hazard: NDArray[np.float64] | None = field(default=None, repr=False)
    features: dict[str, NDArray[np.float32]] | None = field(default=None, repr=False)
    churn_day: NDArray[np.int64] | None = field(default=None, repr=False)

    # ---- churn -------------------------------------------------------------------------
    def _day(self, as_of: date | datetime) -> int:
        if isinstance(as_of, datetime):
            as_of = as_of.astimezone(UTC).date()
        return (as_of - self.origin).days

    def _require_hazard(self) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        if self.daily_hazard is None or self.churn_day is None:
            raise RuntimeError(
                "this truth has no hazard matrix; regenerate it (simulate.generate(config)) or "
                "use simulate.service.truth_for_tenant"
            )
        return self.daily_hazard, self.churn_day

    def alive_mask(self, as_of: date | datetime) -> NDArray[np.bool_]:
        """Customers signed up before ``as_of`` and not yet churned at its start."""
        _, churn_day = self._require_hazard()
        d = self._day(as_of)
        signup = np.asarray(self.signup_day)
        return (signup < d) & (churn_day >= d)

    def churn_probabilities(
        self, as_of: date | datetime, horizon_days: int, mode: str = "path"
    ) -> dict[str, float]:
        """Each customer alive at ``as_of``: the true probability of churning within the horizon.

        ``path`` (default) is exact given the simulator's latent path: 1 − exp(−Σ daily hazard
        over [as_of, as_of + horizon)). ``as_of`` freezes the hazard at its as-of value
        (1 − exp(−horizon · hazard(as_of))): the best a model of as-of features could know.
        Days past the simulated window repeat the window's last day.
        """
        if horizon_days < 1:
            raise ValueError("horizon_days must be ≥ 1")
        hazard, _ = self._require_hazard()
        d = self._day(as_of)
        days = hazard.shape[1]
        if not 0 <= d < days:
            raise ValueError(f"as_of must fall inside the simulated window ({self.origin}…)")
        alive = self.alive_mask(as_of)
        if mode == "path":
            stop = min(d + horizon_days, days)
            total = hazard[:, d:stop].sum(axis=1) + hazard[:, days - 1] * (d + horizon_days - stop)
        elif mode == "as_of":
            total = hazard[:, d] * horizon_days
        else:
            raise ValueError("mode must be 'path' or 'as_of'")
        prob = 1.0 - np.exp(-total)
        return {self.customers[i]: float(prob[i]) for i in np.flatnonzero(alive).tolist()}

    def churn_probability(
        self, customer_external_id: str, as_of: date | datetime, horizon_days: int
    ) -> float | None:
        """One customer's true churn probability; None when not a customer alive at ``as_of``."""
        return self.churn_probabilities(as_of, horizon_days).get(customer_external_id)

    def churned_within(self, as_of: date | datetime, horizon_days: int) -> dict[str, bool]:
        """The realised labels matching ``churn_probabilities``: churned in [as_of, +horizon)."""
        _, churn_day = self._require_hazard()
        d = self._day(as_of)
        alive = self.alive_mask(as_of)
        return {
            self.customers[i]: bool(churn_day[i] < d + horizon_days)
            for i in np.flatnonzero(alive).tolist()
        }

    # ---- marketing ---------------------------------------------------------------------
    def curve(self, channel: str) -> Curve:
        if channel not in self.channels:
            raise KeyError(f"unknown channel {channel!r}")
        return Curve(**self.channels[channel]["curve"])

    def channel_response(
        self, channel: str, spend: Any, metric: str = "customers"
    ) -> NDArray[np.float64]:
        """Steady-state expected daily response to a daily spend (minor units), at average
        seasonality: new customers a day, or their attributed revenue (first-year value)."""
        response = self.curve(channel).response(spend)
        if metric == "customers":
            return response
        if metric == "revenue":
            return response * self.channels[channel]["revenue_per_conversion"]
        raise ValueError("metric must be 'customers' or 'revenue'")

    def optimal_allocation(
        self, daily_budget: float, metric: str = "revenue", steps: int = 400
    ) -> dict[str, float]:
        """The true best split of a daily budget (minor units) over the channels."""
        return optimal_allocation(
            {
                name: (lambda s, n=name: self.channel_response(n, s, metric))
                for name in self.channels
            },
            daily_budget,
            steps,
        )

    # ---- revenue -----------------------------------------------------------------------
    def mrr_at(self, when: datetime) -> float:
        """True MRR (minor units) at an instant: subscriptions with started_at ≤ t < ended_at,
        out of trial (trial_end ≤ t), each net of discounts, annual ones spread over 12 months."""
        total = 0.0
        for sub in self.subscriptions:
            started, ended = _parse(sub["started_at"]), _parse(sub.get("ended_at"))
            trial_end = _parse(sub.get("trial_end"))
            assert started is not None
            if (
                started <= when
                and (ended is None or when < ended)
                and (trial_end is None or trial_end <= when)
            ):
                total += monthly_value(sub)
        return total

    # ---- serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "config": self.config,
            "origin": self.origin.isoformat(),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "hazard": self.hazard,
            "churn": self.churn,
            "channels": self.channels,
            "acquisition_seasonality": self.acquisition_seasonality,
            "activity_seasonality": self.activity_seasonality,
            "experiments": self.experiments,
            "mrr_by_month": self.mrr_by_month,
            "renewals": self.renewals,
            "plan_changes": self.plan_changes,
            "plans": self.plans,
            "usage": self.usage,
            "subscriptions": self.subscriptions,
            "customers": self.customers,
            "signup_day": self.signup_day,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Truth:
        values = dict(data)
        for key in ("origin", "start", "end"):
            values[key] = date.fromisoformat(values[key])
        return cls(**values)
