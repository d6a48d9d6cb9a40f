"""Period arithmetic for the runner (pure)."""

from __future__ import annotations

from datetime import UTC, datetime


def period_start(now: datetime, interval_seconds: int) -> datetime:
    """The start of the period containing ``now``: periods are aligned to the Unix epoch, so
    every runner process on every machine computes the same boundaries."""
    seconds = int(now.timestamp())
    return datetime.fromtimestamp(seconds - seconds % interval_seconds, UTC)


def effective_interval(job_interval: int, tier_min_interval: int | None) -> int:
    """A tenant's job never runs more often than its tier allows."""
    return max(job_interval, tier_min_interval or 0)


def lag_seconds(now: datetime, last_period_start: datetime | None, interval: int) -> float | None:
    """How late a job is: 0 while the latest successful run covers the current or previous
    period (the current one may simply not have been reached by a tick yet)."""
    if last_period_start is None:
        return None
    due_by = last_period_start.timestamp() + 2 * interval
    return max(0.0, now.timestamp() - due_by)
