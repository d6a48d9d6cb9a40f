"""Alembic environment: runs every domain's migrations on SQLite and PostgreSQL alike."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import create_engine, pool, text

from aethercrown.db.engine import prepare_sqlite_directory
from aethercrown.db.registry import metadata

config = context.config

# Every command migrates a database it finds behind, and several API processes or runners may
# start at once after an upgrade. So an upgrade runs as one transaction that first takes a lock
# (PostgreSQL: this advisory lock; SQLite: its write lock, BEGIN IMMEDIATE); the others queue,
# and each finds the migrations applied, since Alembic reads the heads only after. The key is
# arbitrary; it only has to be the same in every process.
MIGRATION_LOCK_KEY = 0x61657468  # "aeth"


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    prepare_sqlite_directory(url)
    engine = create_engine(url, poolclass=pool.NullPool, connect_args=_connect_args(url))
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # pysqlite would run each DDL statement in its own transaction; inside this one
            # Alembic sees an external transaction and adds none, so the upgrade is atomic.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        context.configure(
            connection=connection,
            target_metadata=metadata,
            # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            # aethercrown.db.migrate.upgrade collects what was applied, to report it.
            on_version_apply=config.attributes.get("on_version_apply", ()),
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
            context.run_migrations()
        if sqlite:
            connection.commit()
    engine.dispose()


def _connect_args(url: str) -> dict[str, Any]:
    # Wait for another process's upgrade as long as the application waits for a writer.
    return {"timeout": 30} if url.startswith("sqlite") else {}


run_migrations_online()
