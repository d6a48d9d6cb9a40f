"""Per-key request rate limits: the ``limits`` library's sliding window counter.

In process memory by default (one process); Redis when ``AETHERCROWN_REDIS_URL`` is set, so the
limit holds across every API process of the installation. On Redis the asyncio flavour of
``limits`` is used: it checks on the event loop with no thread hop. In memory ``SlidingWindows``
keeps the same counters as the library's ``MemoryStorage`` and gives the same verdicts and
headers hit for hit (``tests/core/test_ratelimit.py`` replays one sequence of hits through
both), without the storage's per-call coroutines, error-wrapping decorators, locks and expiry
task: about a tenth of the authenticated read's CPU went there.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, Storage
from limits.storage import storage_from_string

_MAX_KEYS = 10_000


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    @property
    def retry_after(self) -> int:
        return max(1, self.reset_seconds)

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }


class SlidingWindows:
    """The sliding window counters of ``limits``' memory storage, kept in a dict.

    Per key, one counter per window of ``expiry`` seconds, numbered ``int(now / expiry)`` as
    the library numbers them; a counter is created by its window's first allowed hit and lives
    ``2 * expiry`` seconds from then (the library's expiry: it is still the previous window's
    count for the whole next window). A hit is allowed when the previous window's count,
    weighted by the share of it still inside the sliding minute, plus the current window's
    count stays within the limit: the library's arithmetic, step for step and in the same
    floating-point order. ``now`` is the library's clock (``time.time``): the windows are the
    library's, which it numbers by the wall clock, and a test passes its own.

    Runs on the event loop without awaiting, so a hit is atomic as the library's locks make
    it."""

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._now = now
        # key -> window number -> [count, the counter's expiry time]
        self._windows: dict[str, dict[int, list[float]]] = {}
        self._sweep_at = 0.0

    def hit(self, key: str, limit: int, expiry: int) -> Verdict:
        """One hit (``acquire_sliding_window_entry`` with amount 1), then the window's state for
        the headers (``get_sliding_window``), as ``RateLimiter`` asks the library's storage."""
        now = self._now()
        if now >= self._sweep_at:
            self._sweep(now, expiry)
        windows = self._windows.get(key)
        if windows is None:
            windows = self._windows[key] = {}
        current_window = int(now / expiry)
        previous = _count(windows, int((now - expiry) / expiry), now)
        current = _count(windows, current_window, now)
        previous_ttl = 0.0 if previous == 0 else (1 - (((now - expiry) / expiry) % 1)) * expiry
        allowed = math.floor(previous * previous_ttl / expiry + current) + 1 <= limit
        if allowed:
            counter = windows.get(current_window)
            if counter is None:
                windows[current_window] = [1, now + 2 * expiry]
            else:
                counter[0] += 1
            current += 1
        current_ttl = (1 - ((now / expiry) % 1)) * expiry + expiry
        return _verdict(allowed, limit, expiry, previous, previous_ttl, current, current_ttl)

    def _sweep(self, now: float, expiry: int) -> None:
        """Drop expired counters and keys left without any (the library's expiry task), at
        most once a window."""
        for key in list(self._windows):
            windows = self._windows[key]
            for number in [n for n, (_, expires) in windows.items() if expires <= now]:
                del windows[number]
            if not windows:
                del self._windows[key]
        self._sweep_at = now + expiry


def _count(windows: dict[int, list[float]], number: int, now: float) -> int:
    """A window's count, 0 once its counter expired (dropped then, as the library's get)."""
    counter = windows.get(number)
    if counter is None:
        return 0
    if counter[1] <= now:
        del windows[number]
        return 0
    return int(counter[0])


def _verdict(
    allowed: bool,
    limit: int,
    expiry: int,
    previous: int,
    previous_expires_in: float,
    current: int,
    current_expires_in: float,
) -> Verdict:
    """The verdict with the window's state, as the library's ``get_window_stats`` reads it."""
    weighted = previous * previous_expires_in / expiry + current
    remaining = max(0, limit - math.floor(weighted))
    # The sooner of the two windows' next expiry.
    reset_in = math.inf
    if previous:
        reset_in = previous_expires_in % (expiry / previous)
    if current:
        reset_in = min(reset_in, current_expires_in % expiry)
    reset = 0 if reset_in == math.inf else max(0, math.ceil(reset_in))
    return Verdict(allowed, limit, remaining, reset)


class RateLimiter:
    def __init__(
        self,
        redis_url: str | None = None,
        namespace: str = "aethercrown",
        *,
        storage: Storage | None = None,
    ) -> None:
        """Redis with ``redis_url``, else ``SlidingWindows`` in memory; ``storage`` (a test's
        reference) makes it ask that ``limits`` storage instead."""
        self.storage: Storage | None = storage
        self.memory: SlidingWindows | None = None
        if storage is not None:
            pass
        elif redis_url:
            uri = "async+" + redis_url if not redis_url.startswith("async+") else redis_url
            redis = storage_from_string(uri, key_prefix=namespace, implementation="redispy")
            assert isinstance(redis, Storage)
            self.storage = redis
        else:
            self.memory = SlidingWindows()
        self._items: dict[int, RateLimitItemPerMinute] = {}
        # (identifier, per minute) -> the storage key: built by the library with string joins
        # and escaping on every call otherwise; bounded like the key cache's entries.
        self._keys: dict[tuple[str, int], str] = {}

    @property
    def backend(self) -> str:
        return (
            "redis"
            if self.memory is None and not isinstance(self.storage, MemoryStorage)
            else "memory"
        )

    async def hit(self, identifier: str, per_minute: int) -> Verdict:
        """One hit of the sliding window counter, with the window's state for the headers.

        A ``limits`` storage is called directly, the same two calls as the library's strategy
        (``SlidingWindowCounterRateLimiter.hit`` then ``get_window_stats``) and the same
        arithmetic, without rebuilding the item's key twice per request."""
        item = self._items.get(per_minute)
        if item is None:
            item = self._items[per_minute] = RateLimitItemPerMinute(per_minute)
        key = self._keys.get((identifier, per_minute))
        if key is None:
            if len(self._keys) >= _MAX_KEYS:
                self._keys = {}
            key = self._keys[(identifier, per_minute)] = item.key_for(identifier)
        expiry = item.get_expiry()
        if self.memory is not None:
            return self.memory.hit(key, per_minute, expiry)
        storage: Any = self.storage
        allowed = bool(await storage.acquire_sliding_window_entry(key, per_minute, expiry, 1))
        (
            previous,
            previous_expires_in,
            current,
            current_expires_in,
        ) = await storage.get_sliding_window(key, expiry)
        return _verdict(
            allowed, per_minute, expiry, previous, previous_expires_in, current, current_expires_in
        )

    async def check(self) -> bool:
        if self.storage is None:
            return True  # in memory: as the library's MemoryStorage.check
        return bool(await self.storage.check())
