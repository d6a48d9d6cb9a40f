"""What to simulate: the size of the demo company, its window and its seed."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

# A fixed default window keeps "same seed, same company" true on every day the demo is loaded;
# pass another start to move the window.
DEFAULT_START = date(2025, 5, 1)


@dataclass(frozen=True)
class SimConfig:
    customers: int = 2000
    months: int = 18
    seed: int = 42
    start: date = DEFAULT_START
    # Share of the customers already subscribed when the window opens (the rest are acquired
    # from the marketing channels inside the window).
    existing_share: float = 0.35
    # Average monthly churn the hazard's intercept is calibrated to (before survivor selection).
    target_monthly_churn: float = 0.03
    # Scales every activity rate (sessions, logins, feature events).
    activity_scale: float = 1.0
    # Visitors a day in each experiment.
    experiment_daily_visitors: int = 500
    currency: str = "USD"

    def __post_init__(self) -> None:
        if not 1 <= self.customers <= 200_000:
            raise ValueError("customers must be between 1 and 200000")
        if not 2 <= self.months <= 120:
            raise ValueError("months must be between 2 and 120")
        if not 0 <= self.seed < 2**63:
            raise ValueError("seed must be a non-negative 63-bit integer")
        if not 0.0 <= self.existing_share < 1.0:
            raise ValueError("existing_share must be in [0, 1)")
        if not 0.0 < self.target_monthly_churn < 0.5:
            raise ValueError("target_monthly_churn must be in (0, 0.5)")
        if not 0.0 < self.activity_scale <= 10.0:
            raise ValueError("activity_scale must be in (0, 10]")
        if not 10 <= self.experiment_daily_visitors <= 100_000:
            raise ValueError("experiment_daily_visitors must be between 10 and 100000")
        if not (len(self.currency) == 3 and self.currency.isascii() and self.currency.isupper()):
            raise ValueError("currency must be an ISO 4217 code such as USD")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["start"] = self.start.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimConfig:
        values = dict(data)
        if isinstance(values.get("start"), str):
            values["start"] = date.fromisoformat(values["start"])
        return cls(**values)
