"""The database's own count of each tenant's stored rows, per table (``tenant_stored_rows``).

The tier's ``max_stored_rows`` quota is checked on every ingest. Counting the rows of every
tenant table each time costs one ``count(*)`` per table and grows with the tenant's data, so on
PostgreSQL the database keeps the count itself: triggers on each counted table add what every
statement inserts and subtract what it deletes, in the writing transaction. Triggers see every
write path alike (ORM flushes, Core bulk inserts, ``COPY``, ``ON CONFLICT`` inserts — only the
rows really inserted — and foreign-key cascades), so no code path can forget to count; a write
that rolls back takes its count with it.

They are statement-level triggers over transition tables, so a statement costs one extra
``INSERT … SELECT count(*) … GROUP BY tenant_id`` whatever its size, and each statement *appends*
a delta row rather than updating one counter row: concurrent writers of a tenant never wait on
each other's count, so they can never deadlock over it. A tenant's deltas are summed on read and
folded into one row per table from time to time (``tenants.repository.TenantUsageRepository``).
A delete whose tenant is gone in the same transaction (a tenant removed with its rows by
``ON DELETE CASCADE``) records nothing: the tenant's counts go with it.

SQLite keeps no counts (the table exists, empty, so both schemas match): it has only row-level
triggers, whose cost on every inserted row (measured: bulk inserts of activity 60 % slower)
outweighs counting the tenant's rows in one statement when the quota is read, with one writer
at a time making that count exact.

A new tenant table is counted by calling ``count_tenant_rows`` in the migration that creates it;
tests/tenants/test_stored_rows.py fails for a ``TenantScoped`` table that is not counted.
``TRUNCATE`` and an ``UPDATE`` of ``tenant_id`` are not seen (the application does neither);
``aethercrown tenants recount-rows`` rebuilds the counts from the tables.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

TABLE = "tenant_stored_rows"
_FUNCTION_ADD = "aethercrown_count_inserted_rows"
_FUNCTION_SUB = "aethercrown_count_deleted_rows"
_PREFIX = "count_rows"


def _names(table: str) -> tuple[str, str]:
    """The insert and delete triggers' names on ``table``."""
    return f"{_PREFIX}_ins_{table}", f"{_PREFIX}_del_{table}"


def create_count_functions(connection: Connection) -> None:
    """The two trigger functions every counted table shares (PostgreSQL; idempotent)."""
    if connection.dialect.name != "postgresql":
        return
    connection.execute(
        text(
            f"CREATE OR REPLACE FUNCTION {_FUNCTION_ADD}() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            f"INSERT INTO {TABLE} (tenant_id, table_name, row_count) "
            "SELECT tenant_id, TG_TABLE_NAME, count(*) FROM new_rows "
            "WHERE tenant_id IS NOT NULL GROUP BY tenant_id; "
            "RETURN NULL; END $$"
        )
    )
    connection.execute(
        text(
            f"CREATE OR REPLACE FUNCTION {_FUNCTION_SUB}() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            f"INSERT INTO {TABLE} (tenant_id, table_name, row_count) "
            "SELECT o.tenant_id, TG_TABLE_NAME, -count(*) FROM old_rows o "
            "WHERE EXISTS (SELECT 1 FROM tenants t WHERE t.id = o.tenant_id) "
            "GROUP BY o.tenant_id; "
            "RETURN NULL; END $$"
        )
    )


def drop_count_functions(connection: Connection) -> None:
    if connection.dialect.name != "postgresql":
        return
    connection.execute(text(f"DROP FUNCTION IF EXISTS {_FUNCTION_ADD}()"))
    connection.execute(text(f"DROP FUNCTION IF EXISTS {_FUNCTION_SUB}()"))


def count_tenant_rows(connection: Connection, table: str) -> None:
    """Count ``table``'s rows per tenant from now on (PostgreSQL; idempotent; after
    ``create_count_functions``). Rows already there are counted by ``fill_counts``."""
    if connection.dialect.name != "postgresql":
        return
    uncount_tenant_rows(connection, table)
    ins, dele = _names(table)
    connection.execute(
        text(
            f'CREATE TRIGGER {ins} AFTER INSERT ON "{table}" '
            "REFERENCING NEW TABLE AS new_rows "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {_FUNCTION_ADD}()"
        )
    )
    connection.execute(
        text(
            f'CREATE TRIGGER {dele} AFTER DELETE ON "{table}" '
            "REFERENCING OLD TABLE AS old_rows "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {_FUNCTION_SUB}()"
        )
    )


def uncount_tenant_rows(connection: Connection, table: str) -> None:
    if connection.dialect.name != "postgresql":
        return
    for name in _names(table):
        connection.execute(text(f'DROP TRIGGER IF EXISTS {name} ON "{table}"'))


def counted_tables(connection: Connection) -> set[str]:
    """The tables whose rows the triggers count, read from the database itself (none on
    SQLite)."""
    if connection.dialect.name != "postgresql":
        return set()
    rows = connection.execute(
        text(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND t.tgname LIKE :ins"
        ),
        {"ins": f"{_PREFIX}_ins_%"},
    )
    return {row[0] for row in rows}


def fill_counts(connection: Connection, table: str) -> None:
    """Record the rows ``table`` holds now, per tenant (a migration that starts counting a
    table that already has rows; the triggers count every later write)."""
    if connection.dialect.name != "postgresql":
        return
    connection.execute(
        text(
            f"INSERT INTO {TABLE} (tenant_id, table_name, row_count) "
            f"SELECT tenant_id, '{table}', count(*) FROM \"{table}\" "
            "WHERE tenant_id IS NOT NULL GROUP BY tenant_id"
        )
    )
