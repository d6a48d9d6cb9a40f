"""What to simulate: the size of the demo company, its window and its seed.

The window is defined by its end: ``[start, end)`` where ``end`` is an instant (UTC, whole
seconds) and ``start`` is midnight of the day ``months`` calendar months before ``end``'s day
(clamped to the month's last day: 18 months before 2028-02-29 is 2026-08-29, one month before
2026-03-31 is 2026-02-28). The company is alive on its last day up to ``end`` and holds no row at
or after it. By default ``end`` is now, to the minute, so the company is loaded alive: its
current month has data up to the moment it was generated. Same seed and same end, same company
bit for bit; a later end is another company (the window moves, and every draw with it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta

from aethercrown.clock import utcnow

# Ends before this would push the existing base's history (up to ~3 years before the window)
# before 1970, which the row encoding cannot hold; ends after the other bound are typos.
EARLIEST_END = datetime(1976, 1, 1, tzinfo=UTC)
LATEST_END = datetime(2200, 1, 1, tzinfo=UTC)


def default_end() -> datetime:
    """Now, to the whole minute: the default window ends when the demo is generated."""
    return utcnow().replace(second=0, microsecond=0)


def as_end(value: date | datetime | str) -> datetime:
    """An end instant from a datetime (naive means UTC), a date (its midnight UTC, so the window
    holds the days before it) or the ISO text of either."""
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    if not isinstance(value, datetime):
        value = datetime.combine(value, time.min)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@dataclass(frozen=True)
class SimConfig:
    customers: int = 2000
    months: int = 18
    seed: int = 42
    # The instant the window ends (exclusive); see the module docstring.
    end: datetime = field(default_factory=default_end)
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
        if not isinstance(self.end, date):
            raise ValueError("end must be a date or a datetime")
        # Normalised so that equal windows compare (and serialise) equal: UTC, whole seconds.
        end = as_end(self.end).replace(microsecond=0)
        object.__setattr__(self, "end", end)
        if not 1 <= self.customers <= 200_000:
            raise ValueError("customers must be between 1 and 200000")
        if not 2 <= self.months <= 120:
            raise ValueError("months must be between 2 and 120")
        if not 0 <= self.seed < 2**63:
            raise ValueError("seed must be a non-negative 63-bit integer")
        if not EARLIEST_END + timedelta(days=31 * self.months) <= end < LATEST_END:
            raise ValueError(
                f"end must fall between {EARLIEST_END.year} plus the window and {LATEST_END.year}"
            )
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

    @property
    def start(self) -> date:
        """The window's first day (its midnight UTC is the window's first instant)."""
        return self.end.date() - relativedelta(months=self.months)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["end"] = iso_end(self.end)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimConfig:
        """A config from ``to_dict``; also reads the earlier shape defined by its ``start``
        (the window then was ``months`` calendar months from start)."""
        values = dict(data)
        start = values.pop("start", None)
        if start is not None and "end" not in values:
            first = date.fromisoformat(start) if isinstance(start, str) else start
            values["end"] = first + relativedelta(months=int(values.get("months", cls.months)))
        if isinstance(values.get("end"), str):
            values["end"] = as_end(values["end"])
        return cls(**values)


def iso_end(end: datetime) -> str:
    return end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
