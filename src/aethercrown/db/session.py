"""Units of work: the one place that opens, commits and ends database transactions.

Two kinds, for jobs, the CLI and requests alike:

- ``read_transaction``: a deferred transaction that is rolled back at its end. On SQLite (WAL)
  readers never wait for the writer.
- ``write_transaction``: committed on success, rolled back on error. On SQLite it first takes
  this process's place in the write queue (FIFO, bounded wait) and then starts with
  ``BEGIN IMMEDIATE``, so the read-then-write of a claim or a quota check cannot interleave
  with another writer, and concurrent writers queue in arrival order instead of failing on a
  lock upgrade. Other processes are waited for by SQLite's busy timeout. On PostgreSQL it is
  an ordinary transaction; claimers use row locks (FOR UPDATE SKIP LOCKED) instead.

A request gets one session (``DbSession``): a read unit for GET/HEAD/OPTIONS, a write unit for
every other method, committed before the response is sent, so anything acknowledged is durable.
A write unit still waiting for the queue after ``WRITE_QUEUE_TIMEOUT_SECONDS`` answers 503
problem+json with ``Retry-After``.

On PostgreSQL each transaction of a unit of work is also scoped to one tenant for row-level
security (``db.tenant_scope``: set per transaction with ``set_config(..., true)`` when it
begins, from the tenant ``core.tenancy.TenantRepository`` serves; never left on a pooled
connection).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Engine, event, inspect
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from aethercrown.db import tenant_scope  # also registers the per-transaction scope

log = logging.getLogger("aethercrown.db")

WROTE = "aethercrown_wrote"
# How long a writer waits for its turn in this process before giving up (a 503 for a request,
# a failed and retried run for a job). Past SQLite's own busy timeout it would fail anyway.
WRITE_QUEUE_TIMEOUT_SECONDS = 10.0
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@event.listens_for(Session, "after_flush")
def _mark_flush(session: Session, _context: Any) -> None:
    session.info[WROTE] = True


@event.listens_for(Session, "do_orm_execute")
def _mark_dml(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[WROTE] = True


def is_database_busy(exc: OperationalError) -> bool:
    """SQLite's single writer stayed busy past busy_timeout (or this process's write queue past
    its wait), or a read snapshot went stale before its transaction wrote: the client may simply
    retry. The API answers these 503 with Retry-After (core.errors)."""
    return "database is locked" in str(exc.orig)


def wrote(session: Session) -> bool:
    return bool(session.info.get(WROTE) or session.new or session.dirty or session.deleted)


class WriteQueueTimeout(OperationalError):
    """The write queue stayed busy past its bounded wait. An OperationalError reading "database
    is locked", so everything that handles a busy database (the API's 503) handles it too."""

    def __init__(self, waited: float) -> None:
        reason = sqlite3.OperationalError(
            f"database is locked: waited {waited:.1f} s for this process's write queue"
        )
        super().__init__("write queue", None, reason)


class WriteQueue:
    """A FIFO lock: SQLite has one writer, and a plain lock (or SQLite's busy handler, which
    polls) lets a late writer overtake one that has waited for seconds. Each waiter parks on
    its own event; release hands the lock to the oldest waiter directly. It may be released
    from another thread than the one that acquired it (a request's unit of work begins and
    ends in different worker threads)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: deque[threading.Event] = deque()

    def acquire(self, timeout: float) -> bool:
        with self._mutex:
            if not self._held and not self._waiters:
                self._held = True
                return True
            turn = threading.Event()
            self._waiters.append(turn)
        if turn.wait(timeout):
            return True
        with self._mutex:
            if turn.is_set():  # handed over between the timeout and here
                return True
            self._waiters.remove(turn)
            return False

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().set()  # stays held: ownership passes to that waiter
            else:
                self._held = False

    @property
    def waiting(self) -> int:
        return len(self._waiters)


_queues: dict[str, WriteQueue] = {}
_queues_lock = threading.Lock()
# The queue this context (a request, a job run, a CLI command) holds, so that a unit of work
# nested inside a write unit (a fold before a quote, a best-effort cache write) does not wait for
# itself.
_holding: ContextVar[WriteQueue | None] = ContextVar("aethercrown_write_queue", default=None)


def write_queue(engine: Engine) -> WriteQueue | None:
    """The write queue of a SQLite database file (shared by every engine of this process on
    that file); None on PostgreSQL, whose writers lock rows rather than the database."""
    if engine.dialect.name != "sqlite":
        return None
    key = str(engine.url.database or ":memory:")
    with _queues_lock:
        return _queues.setdefault(key, WriteQueue())


def holds_write_lock(engine: Engine) -> bool:
    """Whether this context is inside a write unit of ``engine``'s database (always False on
    PostgreSQL)."""
    queue = write_queue(engine)
    return queue is not None and _holding.get() is queue


def _engine_of(factory: sessionmaker[Session]) -> Engine:
    bind = factory.kw["bind"]
    return bind if isinstance(bind, Engine) else bind.engine


@contextmanager
def write_queue_turn(engine: Engine, timeout: float | None = None) -> Iterator[None]:
    """This process's turn to write to ``engine``'s database (nothing to wait for on
    PostgreSQL, or when the context already has the turn)."""
    queue = write_queue(engine)
    if queue is None or _holding.get() is queue:
        yield
        return
    wait = WRITE_QUEUE_TIMEOUT_SECONDS if timeout is None else timeout
    started = time.monotonic()
    if not queue.acquire(wait):
        raise WriteQueueTimeout(time.monotonic() - started)
    token = _holding.set(queue)
    try:
        yield
    finally:
        _holding.reset(token)
        queue.release()


# SQLite settings of a fresh database's bulk load (write_transaction(bulk_load=True)), and what
# _sqlite_on_connect (db.engine) gives every connection, which they are restored to afterwards.
# Each is per connection and can only change outside a transaction: set before BEGIN.
_BULK_LOAD_PRAGMAS = ("PRAGMA synchronous=OFF", "PRAGMA temp_store=MEMORY")
_NORMAL_PRAGMAS = ("PRAGMA synchronous=NORMAL", "PRAGMA temp_store=DEFAULT")


def _open_writer(factory: sessionmaker[Session], bulk_load: bool = False) -> Session:
    conn = _engine_of(factory).connect()
    conn.info["sqlite_begin"] = "IMMEDIATE"
    if bulk_load and conn.dialect.name == "sqlite":
        conn.info["sqlite_bulk_load"] = True
        driver = conn.connection.driver_connection
        for pragma in _BULK_LOAD_PRAGMAS:
            driver.execute(pragma)  # type: ignore[union-attr]
    session = factory(bind=conn)
    try:
        session.connection()  # BEGIN now: wait for another process's writer here
    except BaseException:
        _close_writer(session, commit=False)
        raise
    return session


def _close_writer(session: Session, *, commit: bool) -> None:
    conn = session.get_bind()
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()
        conn.info.pop("sqlite_begin", None)  # type: ignore[union-attr]
        if conn.info.pop("sqlite_bulk_load", False):  # type: ignore[union-attr]
            # Back to the settings every other unit of work counts on, before the connection
            # returns to the pool.
            driver = conn.connection.driver_connection  # type: ignore[union-attr]
            for pragma in _NORMAL_PRAGMAS:
                driver.execute(pragma)  # type: ignore[union-attr]
        conn.close()  # type: ignore[union-attr]


@contextmanager
def write_transaction(
    factory: sessionmaker[Session], *, timeout: float | None = None, bulk_load: bool = False
) -> Iterator[Session]:
    """A unit of work that writes: the write lock is taken up front (see the module's doc),
    committed on success, rolled back on error.

    ``bulk_load`` (SQLite; only for filling a fresh database that holds nothing else, such as
    the first demo load): this connection skips fsync (synchronous=OFF) and keeps its
    temporary sorts in memory for the unit, then gets the usual settings back. Skipping fsync
    means a power cut or OS crash during the load may corrupt the database file; the file then
    holds nothing but this load, which is redone from its seed, so no acknowledged write of
    anyone is at risk. Every other unit of work keeps synchronous=NORMAL (in WAL mode: a
    committed transaction survives a crash of the process; a power cut may lose the last few,
    never corrupt the file)."""
    with write_queue_turn(_engine_of(factory), timeout):
        session = _open_writer(factory, bulk_load)
        try:
            yield session
        except BaseException:
            _close_writer(session, commit=False)
            raise
        _close_writer(session, commit=True)


@contextmanager
def read_transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work that only reads; rolled back at its end, so a write slipped into it is
    lost loudly in tests rather than committed outside the write queue."""
    session = factory()
    try:
        yield session
        if wrote(session):
            raise RuntimeError("a read unit of work wrote; use write_transaction")
    finally:
        session.close()


@contextmanager
def read_then_record(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A read unit whose additions and changes are written after it, in a short write unit:
    for work that reads, calls out (probes) or computes for a while, then records what it
    found, without holding the write lock meanwhile. Nothing is flushed before the end."""
    session = factory()
    session.autoflush = False
    try:
        yield session
        if wrote(session):
            _record_after_read(factory, session)
    finally:
        session.close()


def _record_after_read(factory: sessionmaker[Session], read: Session) -> None:
    """Write what a read request added or changed, in a short write unit of its own: the rows
    it added move over as they are; of the rows it changed, only the changed columns are set on
    the current row, so a concurrent writer's other changes are kept."""
    if read.info.get(WROTE):
        # Flushed inside the read transaction already (an explicit flush): commit it as it is.
        log.warning("a read request flushed writes in its read transaction")
        read.commit()
        return
    added = list(read.new)
    changed: list[tuple[type[Any], Any, dict[str, Any]]] = []
    for obj in read.dirty:
        state = inspect(obj)
        values = {a.key: a.value for a in state.attrs if a.history.has_changes()}
        if values and state.identity is not None:
            changed.append((type(obj), state.identity, values))
    removed = [(type(obj), inspect(obj).identity) for obj in read.deleted]
    for obj in added:
        read.expunge(obj)
    with write_transaction(factory) as writer:
        tenant_scope.inherit_scope(writer, read)  # the read's tenant, for row-level security
        for cls, identity, values in changed:
            current = writer.get(cls, identity)
            if current is not None:
                for key, value in values.items():
                    setattr(current, key, value)
        for cls, identity in removed:
            current = writer.get(cls, identity)
            if current is not None:
                writer.delete(current)
        writer.add_all(added)


def request_scope(request: Request) -> str | None:
    """A request's tenant for row-level security: the tenant its key (or an operator's
    ``X-Tenant``) resolved to; every tenant for an operator acting for the installation; none
    (no tenant row) before or without authentication."""
    tenant_id = getattr(request.state, "tenant_id", None)
    if tenant_id is not None:
        return str(tenant_id)
    if getattr(request.state, "operator", False):
        return tenant_scope.ALL_TENANTS
    return None


async def get_session(request: Request) -> AsyncIterator[Session]:
    """The request's unit of work: a read unit for GET/HEAD/OPTIONS (opened and closed on the
    event loop: no worker-thread hop), a write unit for every other method (its queue wait and
    COMMIT, which may wait on the disk, in a worker thread)."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    if request.method in READ_METHODS:
        session = factory()
        tenant_scope.scope_by_default(session, lambda: request_scope(request))
        # Nothing flushed into the read transaction: what a read decided (a prediction it
        # records in the ledger) is written after it, in a write unit (see _record_after_read).
        session.autoflush = False
        try:
            yield session
            if wrote(session):
                await run_in_threadpool(_record_after_read, factory, session)
        finally:
            session.close()  # rolls back: the read transaction never writes
        return
    queue = write_queue(_engine_of(factory))
    if queue is not None:
        started = time.monotonic()
        # Not abandoned on cancellation: the await returns once the thread has its answer, so
        # a turn that was granted is always released below.
        if not await run_in_threadpool(queue.acquire, WRITE_QUEUE_TIMEOUT_SECONDS):
            # An OperationalError reading "database is locked": the API answers 503.
            raise WriteQueueTimeout(time.monotonic() - started)
    # The queue is held by this request from here: nested units of work inside it (run in
    # worker threads, which copy this context) must not wait for it.
    token = _holding.set(queue)
    try:
        session = await run_in_threadpool(_open_writer, factory)
        tenant_scope.scope_by_default(session, lambda: request_scope(request))
        try:
            yield session
        except BaseException:
            await run_in_threadpool(_close_writer, session, commit=False)
            raise
        await run_in_threadpool(_close_writer, session, commit=True)
    finally:
        _holding.reset(token)
        if queue is not None:
            queue.release()


def get_session_factory(request: Request) -> sessionmaker[Session]:
    return request.app.state.session_factory


# For a read route that records what it decided in a write unit of its own after the read.
SessionFactory = Annotated[sessionmaker[Session], Depends(get_session_factory)]
# scope="function": the commit runs when the endpoint returns, before the response goes out.
DbSession = Annotated[Session, Depends(get_session, scope="function")]
# The same unit: kept as the name routes that read then write under concurrency (claims, quota
# checks) use, to say so. Those routes are POST/PUT/PATCH/DELETE, hence write units.
WriteSession = DbSession
