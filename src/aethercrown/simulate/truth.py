"""The ground truth of a simulated company, and the helpers engines score themselves with.

The JSON part (``to_dict``) is stored with the tenant. The per-customer daily hazard and its
features are large (customers × days), so they live only in a generated company; a stored truth
gets them back by regenerating from its seed and config (``service.truth_for_tenant``), which is
bit-for-bit the same company.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aethercrown.simulate.config import as_end, iso_end
from aethercrown.simulate.curves import Curve, adstock, optimal_allocation

MONTHS_PER_INTERVAL = {"month": 1, "year": 12}


def monthly_value(sub: dict[str, Any]) -> int:
    """A subscription's MRR in minor units, defined as analytics defines it: amount × quantity,
    less discount_percent percent, less discount_amount (per interval), floored at zero, annual
    plans spread over 12 months, rounded half-up to a whole minor unit per subscription."""
    gross = Decimal(sub["amount"]) * Decimal(sub.get("quantity", 1))
    net = gross * (Decimal(100) - Decimal(str(sub.get("discount_percent", 0.0)))) / Decimal(100)
    net = max(net - Decimal(sub.get("discount_amount", 0)), Decimal(0))
    net /= Decimal(MONTHS_PER_INTERVAL[sub["interval"]])
    return int(net.quantize(Decimal(1), rounding=ROUND_HALF_UP))


DEFINITIONS = {
    "mrr": "mrr_by_month[M] is read at the first instant of the month after M, or at the "
    "window's end for the month the window ends in: the sum of "
    "monthly_value over subscriptions with started_at < t ≤ ended_at (or no end) and no trial "
    "running (trial_end < t); monthly_value is amount × quantity less discount_percent percent "
    "less discount_amount, floored at 0, /12 for annual plans, rounded half-up per subscription "
    "(no generated timestamp falls on a month boundary, so < and ≤ agree)",
    "churn": "a customer churns on decided_at (the hazard's event); a monthly plan ends then, an "
    "annual plan at its next anniversary (ended_at; renewal lost), the customer dormant meanwhile",
    "trial": "a trial converts when its subscription outlives trial_end; one that does not "
    "is cancelled in its last week (unless the hazard's churn came first; not a hazard churn, "
    "so not in churn), P(convert) logistic in the customer's latent health at trial_end",
    "churn_probability": "P(decided_at in [as_of, as_of + H days) | alive at as_of)",
}


def _parse(ts: str | None) -> datetime | None:
    return None if ts is None else datetime.fromisoformat(ts.replace("Z", "+00:00"))


@dataclass
class Truth:
    """Everything the simulator knows and the data only hints at. JSON-able via ``to_dict``."""

    seed: int
    config: dict[str, Any]
    origin: date  # day index 0 of the hazard matrix (the window start minus the burn-in)
    start: date  # the window's first day
    end: datetime  # the instant the window ends (exclusive): no row lies at or after it
    hazard: dict[str, Any]
    churn: list[dict[str, Any]]
    channels: dict[str, dict[str, Any]]
    acquisition_seasonality: dict[str, Any]
    activity_seasonality: dict[str, Any]
    experiments: list[dict[str, Any]]
    mrr_by_month: dict[str, int]  # minor units, at each month's end
    renewals: list[dict[str, Any]]
    plan_changes: list[dict[str, Any]]
    plans: dict[str, dict[str, Any]]
    usage: dict[str, Any]
    subscriptions: list[dict[str, Any]]
    customers: list[str]
    signup_day: list[int]  # day index (from origin) of each customer's signup
    definitions: dict[str, str] = field(default_factory=lambda: dict(DEFINITIONS))
    # Each trial: customer, subscription, trial_end, converted (None while running), probability.
    trials: list[dict[str, Any]] = field(default_factory=list)
    # Large arrays, present in a generated company only (customers × days).
    daily_hazard: NDArray[np.float64] | None = field(default=None, repr=False)
    features: dict[str, NDArray[np.float32]] | None = field(default=None, repr=False)
    churn_day: NDArray[np.int64] | None = field(default=None, repr=False)
    # The day a customer left otherwise than by the hazard (a trial cancelled before it
    # converted), a far-future day for everyone else.
    left_day: NDArray[np.int64] | None = field(default=None, repr=False)

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
        """Customers signed up before ``as_of`` and neither churned nor gone (a trial cancelled)
        at its start."""
        _, churn_day = self._require_hazard()
        d = self._day(as_of)
        signup = np.asarray(self.signup_day)
        alive = (signup < d) & (churn_day >= d)
        if self.left_day is not None:
            alive &= self.left_day >= d
        return alive

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

    def features_as_of(self, as_of: date | datetime) -> dict[str, dict[str, float]]:
        """The hazard's true features of every customer alive at ``as_of`` (from data before it)."""
        if self.features is None:
            raise RuntimeError("this truth has no feature matrix; regenerate it")
        d = self._day(as_of)
        alive = np.flatnonzero(self.alive_mask(as_of)).tolist()
        return {
            self.customers[i]: {name: float(m[i, d]) for name, m in self.features.items()}
            for i in alive
        }

    # ---- marketing ---------------------------------------------------------------------
    def seasonality(self, days: Any) -> NDArray[np.float64]:
        """The acquisition seasonality multiplier of each date (mean 1 over a year)."""
        season = self.acquisition_seasonality
        stamps = np.asarray(days, dtype="datetime64[D]")
        weekday = (stamps.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
        doy = (stamps - stamps.astype("datetime64[Y]")).astype(np.int64)
        weekly = np.asarray(season["weekly_monday_first"])[weekday]
        yearly = 1 + season["yearly_amplitude"] * np.cos(
            2 * np.pi * (doy - season["yearly_peak_day_of_year"]) / 365.25
        )
        return np.asarray(weekly * yearly, dtype=np.float64)

    def expected_series(
        self, channel: str, days: Any, spend: Any, metric: str = "customers"
    ) -> NDArray[np.float64]:
        """Expected daily response to a spend series over consecutive ``days``: the curve of the
        adstocked spend (carryover from the series' first day) times the day's seasonality."""
        curve = self.curve(channel)
        response = curve.response(adstock(np.asarray(spend, dtype=np.float64), curve.carryover))
        response = response * self.seasonality(days)
        if metric == "revenue":
            return response * self.channels[channel]["revenue_per_conversion"]
        return response

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
    def mrr_at(self, when: datetime) -> int:
        """True MRR (minor units) at an instant: subscriptions with started_at ≤ t < ended_at,
        out of trial (trial_end ≤ t), each net of discounts, annual ones spread over 12 months."""
        total = 0
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
            "end": iso_end(self.end),
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
            "definitions": self.definitions,
            "trials": self.trials,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Truth:
        values = dict(data)
        for key in ("origin", "start"):
            values[key] = date.fromisoformat(values[key])
        # A truth stored before windows ended at an instant holds a date: its midnight.
        values["end"] = as_end(values["end"])
        return cls(**values)
