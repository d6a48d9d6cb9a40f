"""Renewal dates and the constant-hazard renewal probability (pure)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from aethercrown.churn import renewal


def at(month: int, day: int, year: int = 2026) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


def test_next_renewal_is_the_first_boundary_after_now() -> None:
    assert renewal.next_renewal(at(1, 10), "month", at(3, 2)) == at(3, 10)
    assert renewal.next_renewal(at(1, 10), "month", at(3, 10)) == at(4, 10)
    # The day is clamped to the month's length, counted from the start each time.
    assert renewal.next_renewal(at(1, 31), "month", at(2, 1)) == at(2, 28)
    assert renewal.next_renewal(at(1, 31), "month", at(3, 1)) == at(3, 31)
    assert renewal.next_renewal(at(2, 1), "year", at(12, 3)) == at(2, 1, 2027)
    assert renewal.next_renewal(at(6, 1), "month", at(3, 1)) == at(7, 1)
    assert renewal.next_renewal(at(1, 1), "week", at(3, 1)) is None


def test_survival_spreads_the_horizon_probability_at_a_constant_hazard() -> None:
    # 19% over 30 days → 90% for 15 days, 81% for 30, 72.9% for 45.
    assert renewal.survival(0.19, 30, 15) == pytest.approx(0.9)
    assert renewal.survival(0.19, 30, 30) == pytest.approx(0.81)
    assert renewal.survival(0.19, 30, 45) == pytest.approx(0.729)
    assert renewal.survival(0.5, 30, 0) == 1.0
    assert renewal.survival(1.0, 30, 1) == 0.0
    assert renewal.survival(-0.1, 30, 10) == 1.0


def test_monthly_minor_and_alive_follow_the_analytics_rules() -> None:
    def life(**kw: object) -> renewal.Life:
        base: dict[str, object] = dict(
            customer_id=uuid.uuid4(),
            plan="pro",
            amount=2900,
            quantity=2,
            interval="month",
            discount_percent=10.0,
            discount_amount=0,
            started_at=at(1, 1),
            ended_at=None,
            trial_end=None,
        )
        return renewal.Life(**{**base, **kw})  # type: ignore[arg-type]

    assert renewal.monthly_minor(life()) == pytest.approx(5220)
    assert renewal.monthly_minor(life(interval="year", quantity=1, discount_percent=0)) == (
        pytest.approx(2900 / 12)
    )
    assert renewal.monthly_minor(life(discount_amount=10_000)) == 0
    assert renewal.alive(life(), at(2, 1))
    assert not renewal.alive(life(ended_at=at(2, 1)), at(2, 1))
    assert not renewal.alive(life(trial_end=at(3, 1)), at(2, 1))
