"""A hot-path SELECT compiled once and run straight on the DBAPI cursor of a unit of work.

SQLAlchemy's Core execution (compiled-cache lookup, execution context, result object, row
processors set up per call) costs ~90 us for a one-row primary-key read that sqlite3 itself
answers in ~15 us: on the authenticated tenant read it was a tenth of the request. A
``PreparedRead`` keeps what that machinery computes per dialect (the SQL text, the order of
its parameters, the bind and result type processors) and does only the rest per call.

It runs on ``session.connection()``, so the unit of work's transaction is begun exactly as
for any other query (``BEGIN`` on SQLite, the tenant scope for row-level security on
PostgreSQL: ``db.tenant_scope``), and driver errors are wrapped as SQLAlchemy's, so the API's
handling of a busy or lost database is the same. Only for fixed SELECTs that return plain
column values; no ORM objects, no events on the cursor.

A ``ReadUnit`` is a read unit of work for such reads alone, without an ORM ``Session``: a pooled
DBAPI connection checked out at its first read, its transaction begun there (``BEGIN`` on
SQLite; on PostgreSQL the transaction's tenant scope for row-level security, set as
``db.tenant_scope`` sets it for a session) and rolled back when the unit closes. Building,
beginning and closing a ``Session`` (its transaction object, a Core ``Connection``, the events
on both) cost more than the read itself on the authenticated tenant read.

On SQLite a unit's connection is not returned to the pool when it closes but kept, rolled
back, for the engine's next read unit (at most ``KEPT_READERS`` of them; more go back to the
pool): the pool's checkout and checkin (its queue, lock, reset and events) cost five times the
``BEGIN`` and ``ROLLBACK`` a read unit needs. A kept connection holds no transaction and no
snapshot between units; it is closed when the engine is disposed, and one found invalid (a
lost connection) is discarded, not kept. On PostgreSQL every unit checks out from the pool,
whose checkout pings a connection idle too long (``db.engine``).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Select, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.orm import Session
from sqlalchemy.pool import PoolProxiedConnection

from aethercrown.db import tenant_scope

Processor = Callable[[Any], Any] | None

# SQLite connections kept out of the pool between read units, per engine (see the module's
# doc). Read units overlap only when an endpoint awaits between its reads: two suffice.
KEPT_READERS = 2
_kept: weakref.WeakKeyDictionary[Engine, list[PoolProxiedConnection]] = weakref.WeakKeyDictionary()


def kept_readers(engine: Engine) -> list[PoolProxiedConnection]:
    """The idle connections ``engine``'s read units reuse (SQLite), closed with the engine."""
    kept = _kept.get(engine)
    if kept is None:
        kept = _kept[engine] = []

        @event.listens_for(engine, "engine_disposed")
        def _close_kept(_engine: Engine) -> None:
            while kept:
                kept.pop().close()

    return kept


def reserved_connections(engine: Engine) -> int:
    """How many of the pool's connections read units may keep out of it (0 on PostgreSQL)."""
    return KEPT_READERS if engine.dialect.name == "sqlite" else 0


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    # Positional drivers (sqlite3): the parameter names in placeholder order; named ones: None.
    positions: tuple[str, ...] | None
    binds: Mapping[str, Processor]
    names: tuple[str, ...]
    results: tuple[Processor, ...]


class PreparedRead:
    def __init__(self, statement: Select[*tuple[Any, ...]]) -> None:
        self.statement = statement
        self._plans: dict[str, _Plan] = {}

    def _plan(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            compiled = self.statement.compile(dialect=dialect)
            binds = {
                param.key: param.type._cached_bind_processor(dialect)
                for param in compiled.binds.values()
            }
            names: list[str] = []
            results: list[Processor] = []
            for column in compiled._result_columns:
                names.append(column.keyname)
                results.append(column.type._cached_result_processor(dialect, None))
            positions = compiled.positiontup
            plan = _Plan(
                sql=compiled.string,
                positions=tuple(positions) if dialect.positional and positions else None,
                binds=binds,
                names=tuple(names),
                results=tuple(results),
            )
            self._plans[dialect.name] = plan
        return plan

    def first(self, session: Session, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The first row as {column label: value}, typed as Core would return it, or None."""
        connection = session.connection()
        return self._first_on(connection.connection, connection.dialect, params, connection)

    def _first_on(
        self,
        dbapi_connection: PoolProxiedConnection,
        dialect: Dialect,
        params: Mapping[str, Any],
        invalidate: Any,
    ) -> dict[str, Any] | None:
        """Run on ``dbapi_connection``; ``invalidate`` (a Core connection or the pooled one)
        is invalidated if the driver says the connection is lost."""
        plan = self._plan(dialect)
        values = {
            name: (processor(params[name]) if processor is not None else params[name])
            for name, processor in plan.binds.items()
        }
        bound: Sequence[Any] | Mapping[str, Any] = (
            [values[name] for name in plan.positions] if plan.positions is not None else values
        )
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(plan.sql, bound)
            row = cursor.fetchone()
        except dialect.loaded_dbapi.Error as exc:
            raise _wrapped(
                exc, plan.sql, bound, dialect, dbapi_connection, cursor, invalidate
            ) from exc
        finally:
            cursor.close()
        if row is None:
            return None
        return {
            name: (processor(value) if processor is not None else value)
            for name, processor, value in zip(plan.names, plan.results, row, strict=True)
        }


def _wrapped(
    exc: Any,
    sql: str,
    params: Any,
    dialect: Dialect,
    dbapi_connection: Any,
    cursor: Any,
    invalidate: Any,
) -> StatementError:
    """The driver's error as SQLAlchemy's (so a busy database is still the API's 503), the
    connection invalidated if it is lost."""
    lost = dialect.is_disconnect(exc, dbapi_connection, cursor)
    if lost:
        invalidate.invalidate(exc)
    return DBAPIError.instance(
        sql,
        params,
        exc,
        dialect.loaded_dbapi.Error,
        connection_invalidated=lost,
        dialect=dialect,
    )


class ReadUnit:
    """A read unit of work of ``PreparedRead``s on a pooled connection (see the module's doc).

    ``scope`` is the unit's tenant scope for row-level security: a tenant id as text,
    ``tenant_scope.ALL_TENANTS`` or None (no tenant rows), as ``db.session.request_scope``
    gives it. Nothing is checked out until the first read; ``close`` (always called: the
    request's dependency registers it) rolls back and returns the connection (on SQLite, kept for
    the next unit: see the module's doc)."""

    __slots__ = ("_connection", "_dialect", "_engine", "_kept", "_scope")

    def __init__(self, engine: Engine, scope: str | None) -> None:
        self._engine = engine
        self._dialect = engine.dialect
        self._scope = scope
        self._connection: PoolProxiedConnection | None = None
        self._kept = kept_readers(engine) if engine.dialect.name == "sqlite" else None

    def first(self, read: PreparedRead, params: Mapping[str, Any]) -> dict[str, Any] | None:
        connection = self._connection
        if connection is None:
            connection = self._begin()
        return read._first_on(connection, self._dialect, params, connection)

    def _begin(self) -> PoolProxiedConnection:
        dialect = self._dialect
        kept = self._kept
        try:
            connection = kept.pop() if kept else self._engine.raw_connection()
        except IndexError:  # another thread took the last one between the test and the pop
            connection = self._engine.raw_connection()
        try:
            if kept is not None:
                # The driver runs in autocommit mode (db.engine): the unit's reads share one
                # snapshot only inside an explicit transaction, as a session's do.
                sql, params = "BEGIN DEFERRED", None
                connection.driver_connection.execute(sql)  # type: ignore[union-attr]
            else:
                sql, params = tenant_scope.driver_scope_statement(self._scope)
                cursor = connection.cursor()
                try:
                    cursor.execute(sql, params)
                finally:
                    cursor.close()
        except dialect.loaded_dbapi.Error as exc:
            error = _wrapped(exc, sql, params, dialect, connection, None, connection)
            connection.close()
            raise error from exc
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        return connection

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        kept = self._kept
        try:
            if connection.is_valid:  # not after a lost connection was invalidated
                connection.rollback()
                if kept is not None and len(kept) < KEPT_READERS:
                    kept.append(connection)
                    return
        except BaseException:
            connection.close()
            raise
        connection.close()  # back to the pool (or discarded, if invalidated)
