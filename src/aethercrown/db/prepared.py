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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

Processor = Callable[[Any], Any] | None


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
        dialect = connection.dialect
        plan = self._plan(dialect)
        values = {
            name: (processor(params[name]) if processor is not None else params[name])
            for name, processor in plan.binds.items()
        }
        bound: Sequence[Any] | Mapping[str, Any] = (
            [values[name] for name in plan.positions] if plan.positions is not None else values
        )
        dbapi_connection = connection.connection
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(plan.sql, bound)
            row = cursor.fetchone()
        except dialect.loaded_dbapi.Error as exc:
            lost = dialect.is_disconnect(exc, dbapi_connection, cursor)
            if lost:
                connection.invalidate(exc)
            raise DBAPIError.instance(
                plan.sql,
                bound,
                exc,
                dialect.loaded_dbapi.Error,
                connection_invalidated=lost,
                dialect=dialect,
            ) from exc
        finally:
            cursor.close()
        if row is None:
            return None
        return {
            name: (processor(value) if processor is not None else value)
            for name, processor, value in zip(plan.names, plan.results, row, strict=True)
        }
