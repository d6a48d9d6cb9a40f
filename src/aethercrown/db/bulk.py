"""Bulk writes handed to the SQLite driver directly (the PostgreSQL paths stay SQLAlchemy's).

SQLAlchemy builds a parameter dict per row and runs every value through its type's processor;
for a million rows that costs about as much as SQLite's own insert. ``sqlite_executemany``
compiles the statement once, chooses each column's conversion once (the text SQLAlchemy's SQLite
types store, so rows written either way read back alike) and hands the driver tuples.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Dialect,
    String,
    Table,
    Uuid,
    bindparam,
    cast,
    column,
    func,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from aethercrown.db.base import UTCDateTime
from aethercrown.db.session import WROTE

CHUNK = 10_000


def sqlite_executemany(
    session: Session, stmt: Any, table: Table, rows: Sequence[dict[str, Any]]
) -> int | None:
    """Execute ``stmt`` (an INSERT of ``table``) for every row in the session's transaction;
    returns the rows it changed (for ``ON CONFLICT DO NOTHING``, those inserted), or None —
    nothing written — when a column of the statement is missing from the rows (SQLAlchemy would
    fill in its default). The session is marked as having written, as ORM writes mark it, so a
    request's unit of work commits it."""
    if not rows:
        return 0
    connection = session.connection()
    dialect = connection.dialect
    compiled = stmt.compile(dialect=dialect, column_keys=list(rows[0]))
    names = list(compiled.positiontup or [])
    if not set(names) <= set(rows[0]):
        return None
    converters = [_converter(table.c[name].type, dialect) for name in names]
    # One C call per row picks its values; a row lacking an optional key takes the slow path.
    pick = itemgetter(*names) if len(names) > 1 else None
    sql = str(compiled)
    changed = 0
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        try:
            picked = list(map(pick, chunk)) if pick is not None else None
        except KeyError:
            picked = None
        if picked is None:
            picked = [tuple(r.get(name) for name in names) for r in chunk]
        # Column by column: one conversion applied down a list costs less than a tuple built
        # value by value.
        columns: list[Sequence[Any]] = list(zip(*picked, strict=True))
        for i, convert in enumerate(converters):
            if convert is not None:
                columns[i] = [None if v is None else convert(v) for v in columns[i]]
        changed += connection.exec_driver_sql(sql, list(zip(*columns, strict=True))).rowcount
    session.info[WROTE] = True
    return changed


def postgres_upsert(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    conflict: Sequence[str],
    updated: Sequence[str],
    where: Callable[[Any], ColumnElement[bool]] | None = None,
) -> bool:
    """``INSERT … ON CONFLICT (conflict) DO UPDATE SET updated`` of every row as one statement
    on PostgreSQL: the rows travel as one JSON array that ``jsonb_to_recordset`` turns back
    into typed columns. An executemany runs one statement a row, and each fires the table's
    statement-level row-count trigger (most of a few hundred rows' cost); a multi-row
    ``VALUES`` is new, long SQL text for every row count, whose parsing by psycopg cost about
    what the trigger saved. This statement's text is the same for any number of rows.
    ``where(excluded)``: the condition for updating a stored row. Returns False, writing
    nothing, when the rows do not all name the same columns (an executemany fills in the
    missing ones' defaults) or one holds a value JSON cannot carry exactly."""
    if not rows:
        return True
    names = [c.name for c in table.columns if c.name in rows[0]]
    if len(names) != len(rows[0]) or any(
        len(row) != len(names) or not all(n in row for n in names) for row in rows
    ):
        return False
    # JSON has no NaN or infinity (orjson would send null): such rows go the executemany way.
    if any(isinstance(v, float) and not math.isfinite(v) for row in rows for v in row.values()):
        return False
    given = cast(bindparam("rows", type_=String), postgresql.JSONB)
    source = (
        func.jsonb_to_recordset(given)
        .table_valued(*[column(n, table.c[n].type) for n in names])
        .render_derived(name="given", with_types=True)
    )
    stmt = postgresql.insert(table).from_select(names, select(*[source.c[n] for n in names]))
    stmt = stmt.on_conflict_do_update(
        index_elements=list(conflict),
        set_={c: stmt.excluded[c] for c in updated if c not in conflict},
        where=where(stmt.excluded) if where is not None else None,
    )
    for start in range(0, len(rows), CHUNK):
        chunk = list(rows[start : start + CHUNK])
        given_json = orjson.dumps(chunk, default=str, option=orjson.OPT_NON_STR_KEYS)
        session.execute(stmt, {"rows": given_json.decode()})
    return True


def sqlite_time(moment: datetime) -> str:
    """UTCDateTime's SQLite text: naive UTC, always with microseconds."""
    if moment.tzinfo is not UTC:
        if moment.tzinfo is None:
            raise ValueError("naive datetime given where a UTC timestamp is required")
        moment = moment.astimezone(UTC)
    # An aware UTC time's text is the naive one plus "+00:00": cutting it off costs less than
    # building a naive copy (this runs on every timestamp of a bulk load).
    return moment.isoformat(" ", "microseconds")[:26]


def _uuid_hex() -> Callable[[uuid.UUID], str]:
    # A batch names the same few customers, experiments (and one tenant) over and over.
    known: dict[uuid.UUID, str] = {}

    def convert(value: uuid.UUID) -> str:
        text = known.get(value)
        if text is None:
            text = known[value] = value.hex
        return text

    return convert


def _converter(column_type: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """The two hot types directly, every other one through SQLAlchemy's own processor."""
    if isinstance(column_type, UTCDateTime):
        return sqlite_time
    if isinstance(column_type, Uuid):
        return _uuid_hex()
    processor: Callable[[Any], Any] | None = column_type._cached_bind_processor(dialect)
    return processor
