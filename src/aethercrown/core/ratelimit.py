"""Per-key request rate limits with the ``limits`` library.

Memory storage by default (one process); Redis when ``AETHERCROWN_REDIS_URL`` is set, so the
limit holds across every API process of the installation. The asyncio flavour of ``limits`` is
used: it checks on the event loop with no thread hop, and its memory storage expires windows with
an asyncio task instead of the synchronous storage's timer thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
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


class RateLimiter:
    def __init__(self, redis_url: str | None = None, namespace: str = "aethercrown") -> None:
        self.storage: Storage
        if redis_url:
            uri = "async+" + redis_url if not redis_url.startswith("async+") else redis_url
            storage = storage_from_string(uri, key_prefix=namespace, implementation="redispy")
            assert isinstance(storage, Storage)
            self.storage = storage
        else:
            self.storage = MemoryStorage()
        self._strategy = SlidingWindowCounterRateLimiter(self.storage)
        self._items: dict[int, RateLimitItemPerMinute] = {}
        # (identifier, per minute) -> the storage key: built by the library with string joins
        # and escaping on every call otherwise; bounded like the key cache's entries.
        self._keys: dict[tuple[str, int], str] = {}

    @property
    def backend(self) -> str:
        return "redis" if not isinstance(self.storage, MemoryStorage) else "memory"

    async def hit(self, identifier: str, per_minute: int) -> Verdict:
        """One hit of the sliding window counter, with the window's state for the headers.

        The storage is called directly, the same two calls as the library's strategy
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
        storage: Any = self.storage
        allowed = bool(await storage.acquire_sliding_window_entry(key, per_minute, expiry, 1))
        (
            previous,
            previous_expires_in,
            current,
            current_expires_in,
        ) = await storage.get_sliding_window(key, expiry)
        weighted = previous * previous_expires_in / expiry + current
        remaining = max(0, per_minute - math.floor(weighted))
        # As the library's get_window_stats: the sooner of the two windows' next expiry.
        reset_in = math.inf
        if previous:
            reset_in = previous_expires_in % (expiry / previous)
        if current:
            reset_in = min(reset_in, current_expires_in % expiry)
        reset = 0 if reset_in == math.inf else max(0, math.ceil(reset_in))
        return Verdict(allowed, per_minute, remaining, reset)

    async def check(self) -> bool:
        return bool(await self.storage.check())
