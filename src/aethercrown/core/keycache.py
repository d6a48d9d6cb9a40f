"""A per-process cache of authenticated API keys, so that a request does not look its key up.

An entry holds what authentication needs (the key's id, tenant, kind, scopes, expiry, revocation
and the tier's rate); expiry and revocation are still checked against the clock on every request,
so a scheduled expiry or the end of a rotation grace period takes effect at the exact second.

How long a change can go unseen:

- in the process that commits it: not at all. A commit whose unit of work touched a key, a tenant
  or a tier empties every cache of the process before the committing request answers;
- in other processes (API workers, the CLI, automation runners): an entry is used for at most
  ``TTL_SECONDS`` (1 s) after it was read from the database. With Redis configured, the commit is
  also published and every subscribed process empties its cache within milliseconds; the TTL
  still bounds the delay if a message is lost.

Unknown keys are never cached: each request with one is looked up.

The same cache (and bound) serves other secrets that open a tenant, such as the Segment write
keys of the connectors: their tables join the watched ones through ``watch_tables``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import redis
import redis.asyncio as aioredis
from sqlalchemy import Engine, event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

if TYPE_CHECKING:
    from aethercrown.core.auth import KeyUse

log = logging.getLogger("aethercrown.auth")

TTL_SECONDS = 1.0
MAX_ENTRIES = 10_000
CHANNEL = "aethercrown:auth-invalidate"
# The tables whose rows an entry is built from (watch_tables adds more).
_WATCHED_TABLES = {"api_keys", "tenants", "tiers"}
_CHANGED = "aethercrown_auth_changed"


@dataclass(slots=True)
class CachedKey:
    key_id: uuid.UUID
    tenant_id: uuid.UUID | None
    kind: str
    scopes: frozenset[str]
    expires_at: datetime | None
    revoked_at: datetime | None
    per_minute: int | None
    # Last use as stored or as last reported to the batched writer (updated in place).
    last_used_at: datetime | None
    loaded_at: float
    # What authentication derives from the entry (its principal, the rate limit's key, the row
    # scope), built by core.auth at the entry's first use and shared by the requests after it:
    # it changes only with the entry, which a change to the key replaces.
    use: KeyUse | None = None


class _Entry(Protocol):
    @property
    def loaded_at(self) -> float: ...


EntryT = TypeVar("EntryT", bound=_Entry)


def watch_tables(*tables: str) -> None:
    """Commits that change these tables empty the caches too (another kind of secret whose
    entries are built from them)."""
    _WATCHED_TABLES.update(tables)


class KeyCache(Generic[EntryT]):
    """Key hash -> entry (a CachedKey for API keys). Read on the event loop; emptied from any
    thread."""

    def __init__(self, ttl: float = TTL_SECONDS, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, EntryT] = {}
        self._lock = threading.Lock()
        # Bumped by every invalidation: a lookup that started before one must not store what it
        # read, since that may predate the change.
        self.generation = 0
        _CACHES.add(self)

    def get(self, key_hash: str) -> EntryT | None:
        entry = self._entries.get(key_hash)
        if entry is None or time.monotonic() - entry.loaded_at >= self.ttl:
            return None
        return entry

    def put(self, key_hash: str, entry: EntryT, generation: int) -> None:
        with self._lock:
            if generation != self.generation:
                return
            if len(self._entries) >= self.max_entries:
                self._entries = {}
            self._entries[key_hash] = entry

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries = {}

    def __len__(self) -> int:
        return len(self._entries)


_CACHES: weakref.WeakSet[KeyCache[Any]] = weakref.WeakSet()
# Engine -> Redis client to publish its invalidations to (when Redis is configured).
_PUBLISHERS: weakref.WeakKeyDictionary[Engine, redis.Redis] = weakref.WeakKeyDictionary()


def invalidate_local() -> None:
    for cache in list(_CACHES):
        cache.clear()


def publish_invalidations(engine: Engine, redis_url: str | None) -> None:
    """Make commits through ``engine`` that change keys, tenants or tiers reach other processes."""
    if redis_url:
        _PUBLISHERS[engine] = redis.Redis.from_url(
            redis_url, socket_connect_timeout=1, socket_timeout=1
        )


def _engine_of(session: Session) -> Engine | None:
    bind = session.bind
    if bind is None:
        return None
    return bind if isinstance(bind, Engine) else bind.engine


def _publish(session: Session) -> None:
    engine = _engine_of(session)
    client = _PUBLISHERS.get(engine) if engine is not None else None
    if client is None:
        return
    try:
        client.publish(CHANNEL, b"1")
    except redis.RedisError:
        # The change is committed; other processes see it once their entries expire (TTL).
        log.warning("could not publish a key cache invalidation", exc_info=True)


@event.listens_for(Session, "after_flush")
def _mark_flush(session: Session, _context: UOWTransaction) -> None:
    # After the flush the session still lists what it flushed as new, dirty or deleted.
    for obj in (*session.new, *session.dirty, *session.deleted):
        table = getattr(obj, "__tablename__", None)
        if table in _WATCHED_TABLES:
            session.info[_CHANGED] = True
            return


@event.listens_for(Session, "do_orm_execute")
def _mark_bulk(state: ORMExecuteState) -> None:
    if state.is_update or state.is_delete:
        table: Any = getattr(state.statement, "table", None)
        if getattr(table, "name", None) in _WATCHED_TABLES:
            state.session.info[_CHANGED] = True


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    # The mark is not cleared on rollback (a savepoint's rollback would clear it for changes
    # made outside the savepoint); a stale mark only costs one needless invalidation.
    if session.info.pop(_CHANGED, False):
        invalidate_local()
        _publish(session)


async def listen_for_invalidations(redis_url: str, *caches: KeyCache[Any]) -> None:
    """Empty ``caches`` whenever another process publishes a change; runs until cancelled.

    While the subscription is down, the cache is emptied after each attempt to re-subscribe,
    and entries still live at most TTL_SECONDS.
    """
    while True:
        client = aioredis.Redis.from_url(redis_url, socket_connect_timeout=1)
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(CHANNEL)
                # Anything published before the subscription took effect was missed.
                _clear(caches)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        _clear(caches)
        except asyncio.CancelledError:
            raise
        except Exception:
            _clear(caches)
            log.warning("key cache invalidation channel lost; re-subscribing", exc_info=True)
            await asyncio.sleep(1)
        finally:
            await client.aclose()


def _clear(caches: tuple[KeyCache[Any], ...]) -> None:
    for cache in caches:
        cache.clear()
