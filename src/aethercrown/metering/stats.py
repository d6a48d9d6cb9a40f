"""Usage arithmetic over daily rollups: period totals, projections, growth, sustained load.
Pure: takes and returns plain values.

Cumulative meters (count, sum) add up over the billing period; gauge meters (max, latest,
unique) measure a level. The two are projected differently: a cumulative meter at its trailing
seven-day rate, a gauge along its least-squares trend.

A projection is a point with an 80 % interval (its 10th and 90th percentiles under a normal
approximation). The cumulative rate is read over the last seven days whether or not they lie in
the current period, so on the 1st it is the customer's own pace of the days before, not the
first hour's; days before the customer's first usage are not observations, and the rate is never
read over less than one day (a day has a cycle: one busy hour says little about the whole day).
The interval widens with the days still to come and narrows with the days observed; with fewer
than three whole days seen, day-to-day spread is taken as large as the rate itself.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from statistics import NormalDist

CUMULATIVE = frozenset({"count", "sum"})
TRAILING_DAYS = 7
# The interval is the projection's 10th to 90th percentile.
INTERVAL_Z = NormalDist().inv_cdf(0.9)
# Whole days needed to measure a customer's day-to-day spread; below it, spread = rate (CV 1).
MIN_SPREAD_DAYS = 3
DEFAULT_DAY_CV = 1.0


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


def _slope_and_error(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares slope and its standard error (0 with fewer than three points)."""
    n = len(points)
    if n < 2:
        return 0.0, 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return 0.0, 0.0
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx
    if n < 3:
        return slope, 0.0
    residual = sum((y - my - slope * (x - mx)) ** 2 for x, y in points) / (n - 2)
    return slope, math.sqrt(residual / sxx)


@dataclass(frozen=True)
class Projection:
    """Usage expected by the period's end: the point and its 80 % interval."""

    point: float
    low: float
    high: float


def project(
    aggregation: str,
    to_date: float,
    series: Mapping[date, float],
    period_start: date,
    period_end: date,
    now: datetime,
) -> Projection:
    """Usage expected by the end of the period if the recent pattern holds. ``series`` is the
    daily figure up to today and may reach back before the period (the previous one)."""
    end_dt = day_start(period_end)
    remaining = max(0.0, (end_dt - now).total_seconds() / 86400)
    if aggregation in CUMULATIVE:
        return _project_cumulative(to_date, series, now, remaining)
    points = [((d - period_start).days, v) for d, v in sorted(series.items()) if d >= period_start]
    slope, slope_se = _slope_and_error(points)
    floor = to_date if aggregation == "max" else 0.0
    # A running maximum cannot fall; other gauges may trend down to zero.
    step = max(slope, 0.0) if aggregation == "max" else slope
    spread = INTERVAL_Z * slope_se * remaining
    point = max(to_date + step * remaining, floor)
    return Projection(
        point=point,
        low=min(max(to_date + step * remaining - spread, floor), point),
        high=max(to_date + step * remaining + spread, point),
    )


def _project_cumulative(
    to_date: float, series: Mapping[date, float], now: datetime, remaining: float
) -> Projection:
    used_days = sorted(d for d, v in series.items() if v > 0 and day_start(d) <= now)
    if not used_days:
        return Projection(to_date, to_date, to_date)
    window_start = max(
        day_start(now.date() - timedelta(days=TRAILING_DAYS - 1)), day_start(used_days[0])
    )
    window_days = max((now - window_start).total_seconds() / 86400, 1.0)
    in_window = sum(v for d, v in series.items() if window_start <= day_start(d) <= now)
    rate = in_window / window_days
    whole_days = [v for d, v in series.items() if window_start <= day_start(d) and d < now.date()]
    if len(whole_days) >= MIN_SPREAD_DAYS:
        mean = sum(whole_days) / len(whole_days)
        spread = math.sqrt(sum((v - mean) ** 2 for v in whole_days) / (len(whole_days) - 1))
    else:
        spread = DEFAULT_DAY_CV * rate
    # The rest of the period: each day varies (R·s²), and the rate itself is only known to
    # within s²/W over the W days it was read on (R²·s²/W).
    sd = spread * math.sqrt(remaining + remaining**2 / window_days)
    expected = rate * remaining
    return Projection(
        point=to_date + expected,
        low=to_date + max(expected - INTERVAL_Z * sd, 0.0),
        high=to_date + expected + INTERVAL_Z * sd,
    )


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
