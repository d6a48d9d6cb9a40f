"""The one clock: moved by travel() inside a process, by the shift variable across processes."""

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from aethercrown import clock

LEAP_DAY = datetime(2028, 2, 29, 23, 59, 30, tzinfo=UTC)


def test_travel_ticks_from_the_instant_and_restores_the_clock() -> None:
    before = clock.utcnow()
    with clock.travel(LEAP_DAY) as move:
        assert timedelta(0) <= clock.utcnow() - LEAP_DAY < timedelta(seconds=5)
        move(datetime(2027, 1, 1, tzinfo=UTC))
        assert clock.utcnow().date().isoformat() == "2027-01-01"
    assert abs(clock.utcnow() - before) < timedelta(seconds=5)


def test_a_frozen_clock_reads_the_same_instant_until_moved() -> None:
    with clock.travel(LEAP_DAY, tick=False) as move:
        assert clock.utcnow() == LEAP_DAY == clock.utcnow()
        move(LEAP_DAY + timedelta(seconds=30))
        assert clock.utcnow() == datetime(2028, 3, 1, tzinfo=UTC)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError), clock.travel(datetime(2028, 2, 29)):
        pass


def test_child_processes_share_the_clock_through_the_environment() -> None:
    shift = clock.shift_to(LEAP_DAY)
    env = {**os.environ, clock.SHIFT_ENV: str(shift.total_seconds())}
    out = subprocess.run(
        [sys.executable, "-c", "from aethercrown import clock; print(clock.utcnow().isoformat())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert timedelta(0) <= datetime.fromisoformat(out.strip()) - LEAP_DAY < timedelta(seconds=30)
    bad = subprocess.run(
        [sys.executable, "-c", "import aethercrown.clock"],
        env={**os.environ, clock.SHIFT_ENV: "tomorrow"},
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and clock.SHIFT_ENV in bad.stderr
