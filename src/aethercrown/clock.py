"""The one clock. Everything in ``src`` reads the time of day through :func:`utcnow`.

Two ways to move it, both for whole processes (the clock is process-wide state, so every thread
of a test's server sees the same time):

- ``AETHERCROWN_CLOCK_SHIFT_SECONDS`` in the environment shifts the process's clock from the
  wall clock by a fixed number of seconds (it still ticks). Child processes inherit it, so a test
  run pinned to an instant (``tests/conftest.py``) starts its servers and CLIs at the same time.
- :func:`travel` moves the clock to an instant for the duration of a ``with`` block, ticking from
  there or frozen: tests pin "now" with it, and the demo's replay walks the automation runner
  through the company's history with it.

Durations (timeouts, caches' ages) are measured with ``time.monotonic``, which this clock never
moves: a timeout must not expire because a test jumped a month.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

SHIFT_ENV = "AETHERCROWN_CLOCK_SHIFT_SECONDS"


def _shift_from_env() -> timedelta:
    raw = os.environ.get(SHIFT_ENV, "").strip()
    if not raw:
        return timedelta(0)
    try:
        return timedelta(seconds=float(raw))
    except ValueError as exc:  # a typo here would silently run on the wrong date
        raise RuntimeError(f"{SHIFT_ENV} must be a number of seconds, not {raw!r}") from exc


_shift = _shift_from_env()
_frozen: datetime | None = None


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    if _frozen is not None:
        return _frozen
    return datetime.now(UTC) + _shift


def reset() -> None:
    """Read ``SHIFT_ENV`` again (after a test run set it for its own processes)."""
    global _shift, _frozen
    _shift, _frozen = _shift_from_env(), None


def shift_to(instant: datetime) -> timedelta:
    """The shift that makes a ticking clock read ``instant`` now (for ``SHIFT_ENV``)."""
    return _require_utc(instant) - datetime.now(UTC)


@contextmanager
def travel(instant: datetime, *, tick: bool = True) -> Iterator[Callable[[datetime], None]]:
    """Set the clock to ``instant`` inside the block; it ticks on from there unless ``tick`` is
    false. Yields a function that moves it again (to a later or an earlier instant). The clock
    reads what it read before once the block ends."""
    global _shift, _frozen
    saved = _shift, _frozen

    def move(to: datetime) -> None:
        global _shift, _frozen
        if tick:
            _shift, _frozen = shift_to(to), None
        else:
            _frozen = _require_utc(to)

    move(instant)
    try:
        yield move
    finally:
        _shift, _frozen = saved


def _require_utc(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise ValueError("the clock takes timezone-aware times")
    return instant.astimezone(UTC)
