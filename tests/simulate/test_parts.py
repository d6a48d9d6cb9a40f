"""Each part of the simulated company drawn alone, on hand-built inputs (issue 16: one function
per part, each testable without the rest of the company)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np

from aethercrown.simulate import SimConfig
from aethercrown.simulate import generator as g

CONFIG = SimConfig(customers=40, months=3, seed=7, end=datetime(2026, 3, 15, 12, 0, tzinfo=UTC))


def customers(n: int = 3, **overrides: object) -> g._Customers:
    values: dict[str, object] = {
        "n": n,
        "signup": np.zeros(n, np.int64),
        "signup_seconds": np.full(n, 9 * 3600, np.int64),
        "channel": np.zeros(n, np.int64),
        "is_new": np.zeros(n, bool),
        "plan0": np.zeros(n, np.int64),
        "annual": np.zeros(n, bool),
        "interval": np.array(["month"] * n),
        "discount_percent": np.zeros(n),
        "discount_amount": np.zeros(n, np.int64),
        "trial": np.zeros(n, bool),
        "users": np.full(n, 5, np.int64),
        "company_size": np.full(n, 10.0),
        "annual_revenue": np.full(n, 1e8),
        "country": np.zeros(n, np.int64),
    }
    values.update(overrides)
    return g._Customers(**values)


def test_the_window_keeps_the_partial_last_day_up_to_the_end() -> None:
    w = g._window(CONFIG)
    assert w.start == date(2025, 12, 15)
    assert w.full_days == 90 and w.cut == 12 * 3600 and w.window_days == 91
    assert w.days == g.BURN_IN_DAYS + 91
    assert w.horizon == (g.BURN_IN_DAYS + 90) * g.DAY + 12 * 3600
    assert w.weekday[g.BURN_IN_DAYS] == date(2025, 12, 15).weekday()
    assert w.epoch_seconds(w.horizon) == int(CONFIG.end.timestamp())


def test_spend_flights_visit_every_level_stratum() -> None:
    level = g._spend_levels(np.random.default_rng(1), 400)
    running = level[level > 0]
    assert running.min() < 0.6 and running.max() > 2.5
    assert (level == 0).mean() < 0.3


def test_a_plan_change_splits_the_subscription_into_segments() -> None:
    cust, plan, start, end = g._segments(customers(2), [(1, 40, 0, 1)])
    assert cust.tolist() == [0, 1, 1]
    assert plan.tolist() == [0, 0, 1]
    change = 40 * g.DAY + g.CHANGE_HOUR
    assert start.tolist() == [9 * 3600, 9 * 3600, change]
    assert end.tolist() == [g.NEVER * g.DAY, change, g.NEVER * g.DAY]


def test_monthly_bills_keep_their_day_of_month_capped_at_the_28th() -> None:
    w = g._window(CONFIG)
    # A segment starting on the window's 1st day at 10:00, and one on the 31st of a month.
    jan31 = (date(2026, 1, 31) - w.origin).days
    first = np.array([g.BURN_IN_DAYS * g.DAY + 36000, jan31 * g.DAY + 36000])
    b_seg, b_time = g._bills(w, first, np.array([1, 1]), np.full(2, g.NEVER * g.DAY))
    days = [w.origin.toordinal() + t // g.DAY for t in b_time.tolist()]
    dates = [date.fromordinal(d) for d in days]
    assert [d for d, s in zip(dates, b_seg.tolist(), strict=True) if s == 0] == [
        date(2025, 12, 15),
        date(2026, 1, 15),
        date(2026, 2, 15),
        date(2026, 3, 15),
    ]
    # The 31st bills on the 28th of the next months; nothing at or after the end.
    assert [d for d, s in zip(dates, b_seg.tolist(), strict=True) if s == 1] == [
        date(2026, 1, 31),
        date(2026, 2, 28),
    ]
    assert (b_time < w.horizon).all()


def test_an_annual_anniversary_after_a_moment() -> None:
    origin = date(2025, 1, 1)
    start = 10 * g.DAY + 3600  # 2025-01-11 01:00
    after = g._anniversary_after(origin, start, 400 * g.DAY)
    assert date.fromordinal(origin.toordinal() + after // g.DAY) == date(2027, 1, 11)
    assert after % g.DAY == 3600


def test_tickets_grow_and_satisfaction_falls_with_poor_health() -> None:
    n, days = 200, 120
    exists = np.ones((n, days), bool)
    health = np.where(np.arange(n)[:, None] < n // 2, 1.5, -1.5) * np.ones((1, days))
    t = g._tickets(customers(n), exists, health, np.random.default_rng(3))
    healthy = t.cust < n // 2
    assert (~healthy).sum() > 3 * healthy.sum()
    rated = t.satisfaction > 0
    assert set(np.unique(t.satisfaction[rated]).tolist()) <= {1, 2, 3, 4, 5}
    assert t.satisfaction[rated & healthy].mean() > t.satisfaction[rated & ~healthy].mean() + 1
    assert (t.closed > t.opened).all()
