"""Usage arithmetic over daily rollups: period totals, projections, growth, sustained load.
Pure: takes and returns plain values.

Cumulative meters (count, sum) add up over the billing period; gauge meters (max, latest,
unique) measure a level. The two are projected differently: a cumulative meter at its trailing
seven-day rate, a gauge along its least-squares trend.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

CUMULATIVE = frozenset({"count", "sum"})
TRAILING_DAYS = 7


@dataclass(frozen=True)
class DayRollup:
    day: date
    event_count: int
    value_sum: float
    value_max: float
    latest_value: float
    latest_at: datetime
    unique_count: int


def period_bounds(moment: datetime) -> tuple[date, date]:
    """The billing period containing ``moment``: its calendar month in UTC, [start, end)."""
    start = date(moment.year, moment.month, 1)
    days = calendar.monthrange(moment.year, moment.month)[1]
    return start, start + timedelta(days=days)


def previous_period(start: date) -> tuple[date, date]:
    return period_bounds(datetime.combine(start - timedelta(days=1), time(), UTC))


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def daily_value(aggregation: str, row: DayRollup) -> float:
    """The day's figure for the daily series."""
    if aggregation == "count":
        return float(row.event_count)
    if aggregation == "sum":
        return row.value_sum
    if aggregation == "max":
        return row.value_max
    if aggregation == "latest":
        return row.latest_value
    return float(row.unique_count)


def combine(aggregation: str, rows: Sequence[DayRollup], distinct: int | None = None) -> float:
    """The aggregate over several days. ``distinct`` is the period's distinct count for unique
    meters (days' distinct counts do not add)."""
    if not rows:
        return 0.0
    if aggregation == "count":
        return float(sum(r.event_count for r in rows))
    if aggregation == "sum":
        return float(sum(r.value_sum for r in rows))
    if aggregation == "max":
        return max(r.value_max for r in rows)
    if aggregation == "latest":
        return max(rows, key=lambda r: r.latest_at).latest_value
    return float(distinct if distinct is not None else max(r.unique_count for r in rows))


def _slope(points: Sequence[tuple[float, float]]) -> float:
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in points) / sxx


def project(
    aggregation: str,
    to_date: float,
    series: Mapping[date, float],
    period_start: date,
    period_end: date,
    now: datetime,
) -> float:
    """Usage expected by the end of the period if the recent pattern holds."""
    end_dt = day_start(period_end)
    remaining = max(0.0, (end_dt - now).total_seconds() / 86400)
    if aggregation in CUMULATIVE:
        window_start = max(day_start(period_start), day_start(now.date() - timedelta(days=6)))
        window_days = max((now - window_start).total_seconds() / 86400, 1 / 24)
        in_window = sum(v for d, v in series.items() if day_start(d) >= window_start)
        return to_date + in_window / window_days * remaining
    points = [((d - period_start).days, v) for d, v in sorted(series.items())]
    slope = _slope(points)
    projected = to_date + max(slope, 0.0 if aggregation == "max" else slope) * remaining
    return max(projected, to_date) if aggregation == "max" else max(projected, 0.0)


def growth_rate(current: float, previous: float) -> float | None:
    """Relative change against the previous period over the same elapsed days."""
    if previous <= 0:
        return None
    return current / previous - 1.0


def utilisation_by_day(
    aggregation: str, series: Mapping[date, float], capacity: float, days: Sequence[date]
) -> list[float]:
    """Each day's load as a share of capacity: a gauge's level, or a cumulative meter's pace
    (the day's amount × days in its period, i.e. where the period ends at that rate)."""
    out = []
    for d in days:
        value = series.get(d, 0.0)
        if aggregation in CUMULATIVE:
            start, end = period_bounds(day_start(d))
            value *= (end - start).days
        out.append(value / capacity if capacity > 0 else 0.0)
    return out
