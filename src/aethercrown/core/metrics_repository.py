"""The statement behind the per-tenant request counters (``core.metrics`` sums in memory)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from aethercrown.core.models import TenantRequestCount


def add_request_counts(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Adds each row's ``count`` to its (tenant, day, status) counter, creating it if new: an
    additive upsert, so several processes flushing at once add up."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(TenantRequestCount)
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant_id", "day", "status"],
        set_={"count": TenantRequestCount.count + stmt.excluded.count},
    )
    conn.execute(stmt, rows)
