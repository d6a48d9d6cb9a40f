"""The engine's connection handling: on PostgreSQL a pooled connection that died while idle is
replaced before use, without pinging busy ones on every checkout; on SQLite a writer that waited
past busy_timeout is SQLAlchemy's OperationalError, which callers handle as a busy database."""

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from aethercrown.db import engine as engine_module
from aethercrown.db.engine import make_engine, make_session_factory
from aethercrown.db.session import is_database_busy, write_transaction
from tests.conftest import PG_URL, normalise_pg


def test_sqlite_begin_on_a_busy_database_is_sqlalchemys_operational_error(
    tmp_path: Path,
) -> None:
    db = tmp_path / "busy.db"
    eng = make_engine(f"sqlite:///{db}", pool_size=1, max_overflow=0)
    try:
        with eng.connect() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            conn.commit()
            # The one pooled connection gives up after 50 ms instead of 30 s.
            conn.exec_driver_sql("PRAGMA busy_timeout=50")
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with (
                pytest.raises(OperationalError) as raised,
                write_transaction(make_session_factory(eng)) as session,
            ):
                session.execute(text("INSERT INTO t VALUES (1)"))
            assert is_database_busy(raised.value)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        with write_transaction(make_session_factory(eng)) as session:
            session.execute(text("INSERT INTO t VALUES (2)"))
    finally:
        eng.dispose()


@pytest.mark.skipif(PG_URL is None, reason="AETHERCROWN_TEST_DATABASE_URL not set")
def test_a_connection_cut_while_idle_is_replaced_before_use(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert PG_URL is not None
    eng = make_engine(normalise_pg(PG_URL), pool_size=1, max_overflow=0)
    try:
        with eng.connect() as conn:
            first = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        # Recently returned: no ping, the same connection.
        with eng.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() == first
        # Cut it, as a server restart or a proxy timeout would, while it sits in the pool.
        other = make_engine(normalise_pg(PG_URL))
        with other.connect() as killer:
            killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        other.dispose()
        monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 0.0)
        with eng.connect() as conn:
            second = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        assert second != first
    finally:
        eng.dispose()
