"""Per-key request rate limits with the ``limits`` library.

Memory storage by default (one process); Redis when ``AETHERCROWN_REDIS_URL`` is set, so the
limit holds across every API process of the installation.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter


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
            storage = storage_from_string(redis_url, key_prefix=namespace)
            assert isinstance(storage, Storage)
            self.storage = storage
        else:
            self.storage = MemoryStorage()
        self._strategy = SlidingWindowCounterRateLimiter(self.storage)
        self._items: dict[int, RateLimitItemPerMinute] = {}

    @property
    def backend(self) -> str:
        return "redis" if not isinstance(self.storage, MemoryStorage) else "memory"

    def hit(self, identifier: str, per_minute: int) -> Verdict:
        item = self._items.get(per_minute)
        if item is None:
            item = self._items[per_minute] = RateLimitItemPerMinute(per_minute)
        allowed = self._strategy.hit(item, identifier)
        stats = self._strategy.get_window_stats(item, identifier)
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        return Verdict(allowed, per_minute, max(0, stats.remaining), reset)

    def check(self) -> bool:
        return bool(self.storage.check())
