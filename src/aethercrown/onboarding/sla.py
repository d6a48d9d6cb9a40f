"""SLA measurement: first-response compliance by month and uptime against target with the
credit it earns. Pure: takes and returns plain values."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Ticket:
    external_id: str
    opened_at: datetime
    # When the customer first heard back; None while unanswered.
    responded_at: datetime | None


@dataclass
class ResponseMonth:
    month: date
    tickets: int = 0
    within_target: int = 0
    breaches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def compliance(self) -> float | None:
        return self.within_target / self.tickets if self.tickets else None


def month_of(at: datetime) -> date:
    return date(at.year, at.month, 1)


def response_compliance(
    tickets: Iterable[Ticket], target_minutes: int, now: datetime
) -> list[ResponseMonth]:
    """Per month the ticket was opened: how many were first answered within the target (an
    answer exactly at the target is within it). A ticket still unanswered counts once its
    target has passed (a breach), not before. Minutes are rounded to 0.01 (a second over
    the target shows as 60.02, not 60.0)."""
    target = timedelta(minutes=target_minutes)
    months: dict[date, ResponseMonth] = {}
    for t in sorted(tickets, key=lambda t: t.opened_at):
        answered = t.responded_at if t.responded_at is not None else None
        waited = (answered or now) - t.opened_at
        if answered is None and waited <= target:
            continue  # still within its target: not measured yet
        row = months.setdefault(month_of(t.opened_at), ResponseMonth(month_of(t.opened_at)))
        row.tickets += 1
        if answered is not None and waited <= target:
            row.within_target += 1
        else:
            row.breaches.append(
                {
                    "ticket": t.external_id,
                    "opened_at": t.opened_at.isoformat(),
                    "response_minutes": round(waited.total_seconds() / 60, 2),
                    "answered": answered is not None,
                }
            )
    return [months[m] for m in sorted(months)]


@dataclass(frozen=True)
class UptimeMonth:
    month: date
    samples: int
    up: int
    uptime_bp: float
    target_bp: int
    credit_percent: float

    @property
    def breached(self) -> bool:
        return self.uptime_bp < self.target_bp


def credit_for(uptime_bp: float, credits: Sequence[Mapping[str, Any]]) -> float:
    """The largest credit whose ``below_bp`` the uptime falls under (0 if none)."""
    earned = [float(c["credit_percent"]) for c in credits if uptime_bp < float(c["below_bp"])]
    return max(earned, default=0.0)


def uptime_by_month(
    samples: Iterable[tuple[datetime, str]], target_bp: int, credits: Sequence[Mapping[str, Any]]
) -> list[UptimeMonth]:
    """Uptime per month from health samples: a sample that is not ``down`` is up."""
    counts: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    for at, status in samples:
        row = counts[month_of(at)]
        row[0] += 1
        row[1] += status != "down"
    out = []
    for month in sorted(counts):
        total, up = counts[month]
        uptime = 10_000 * up / total
        out.append(UptimeMonth(month, total, up, uptime, target_bp, credit_for(uptime, credits)))
    return out
