"""Engine and session factory. Made by ``create_app`` or the CLI, never at import time."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy issue BEGIN itself (see _sqlite_on_begin) so that writers can take
    # the write lock up front instead of failing on lock upgrade.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_on_begin(conn: Any) -> None:
    # BEGIN IMMEDIATE when the connection was marked as a writer (db.session.write_transaction),
    # so writers of other processes queue on busy_timeout rather than fail on a lock upgrade.
    # Straight to the driver: exec_driver_sql would run SQLAlchemy's whole execution path
    # (context, events, result) for a statement with no result, on every request.
    mode = conn.info.get("sqlite_begin", "DEFERRED")
    try:
        conn.connection.driver_connection.execute(f"BEGIN {mode}")
    except sqlite3.OperationalError as exc:
        # Raised from the driver here, it would escape SQLAlchemy's wrapping, and everything
        # that handles a busy database (the API's 503, a best-effort cache write) catches
        # SQLAlchemy's OperationalError: a writer busy past busy_timeout became a 500.
        raise OperationalError(f"BEGIN {mode}", None, exc) from exc


def prepare_sqlite_directory(url: str) -> None:
    """Create the directory of a SQLite database file. SQLite creates a missing file but not its
    directory, so every way of opening the database (the engine here, the migrations' own engine)
    calls this first: a fresh checkout has no ``.aethercrown/`` yet."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return
    database = parsed.database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def make_engine(url: str, *, sqlite_cache_mib: int | None = None, **kwargs: Any) -> Engine:
    """``sqlite_cache_mib`` gives every SQLite connection of this engine a page cache of that
    size instead of SQLite's 2 MiB: for a bulk load (the demo company), whose index inserts
    otherwise spend most of their time evicting and rereading pages."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        prepare_sqlite_directory(url)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=kwargs.pop("pool_size", 16),
            max_overflow=kwargs.pop("max_overflow", 16),
            **kwargs,
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        if sqlite_cache_mib:
            pragma = f"PRAGMA cache_size=-{int(sqlite_cache_mib) * 1024}"
            event.listen(engine, "connect", lambda conn, _record: conn.execute(pragma))
        return engine
    # Sessions in UTC, as every stored time is: SQL date arithmetic then agrees with the
    # application's days, and psycopg returns datetime.UTC itself, which needs no conversion.
    connect_args = {"options": "-c timezone=UTC", **kwargs.pop("connect_args", {})}
    engine = create_engine(
        url,
        connect_args=connect_args,
        pool_size=kwargs.pop("pool_size", 10),
        max_overflow=kwargs.pop("max_overflow", 20),
        **kwargs,
    )
    event.listen(engine, "checkin", _mark_checkin)
    event.listen(engine, "checkout", _ping_if_idle)
    return engine


# A connection back in the pool less than this long ago is taken as alive: pinging every
# checkout (pool_pre_ping) cost a round trip per request, a third of a primary-key read's time.
PING_AFTER_IDLE_SECONDS = 10.0


def _mark_checkin(_dbapi_conn: Any, record: Any) -> None:
    record.info["checked_in_at"] = time.monotonic()


def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
    """A connection idle long enough to have been cut (a server restart, a proxy's timeout) is
    pinged before use; a dead one makes the pool retry with a fresh connection."""
    checked_in = record.info.get("checked_in_at")
    if checked_in is None or time.monotonic() - checked_in < PING_AFTER_IDLE_SECONDS:
        return
    try:
        dbapi_conn.execute("SELECT 1")
    except Exception as exc:  # any failure: the connection is unusable
        raise DisconnectionError() from exc


def ping(bind: Connection | Session) -> None:
    """One round trip to the database (the readiness and health probes)."""
    bind.execute(text("SELECT 1")).scalar()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)
