"""Per-key request rate limits with the ``limits`` library.

Memory storage by default (one process); Redis when ``AETHERCROWN_REDIS_URL`` is set, so the
limit holds across every API process of the installation. The asyncio flavour of ``limits`` is
used: it checks on the event loop with no thread hop, and its memory storage expires windows with
an asyncio task instead of the synchronous storage's timer thread.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string


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

    @property
    def backend(self) -> str:
        return "redis" if not isinstance(self.storage, MemoryStorage) else "memory"

    async def hit(self, identifier: str, per_minute: int) -> Verdict:
        item = self._items.get(per_minute)
        if item is None:
            item = self._items[per_minute] = RateLimitItemPerMinute(per_minute)
        allowed = await self._strategy.hit(item, identifier)
        stats = await self._strategy.get_window_stats(item, identifier)
        # The limits library keeps its windows on the wall clock, so the reset is read on it too.
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        return Verdict(allowed, per_minute, max(0, stats.remaining), reset)

    async def check(self) -> bool:
        return bool(await self.storage.check())
