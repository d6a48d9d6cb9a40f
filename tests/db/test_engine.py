"""The engine's connection handling on PostgreSQL: a pooled connection that died while idle is
replaced before use, without pinging busy ones on every checkout."""

import pytest
from sqlalchemy import text

from aethercrown.db import engine as engine_module
from aethercrown.db.engine import make_engine
from tests.conftest import PG_URL, normalise_pg

pytestmark = pytest.mark.skipif(PG_URL is None, reason="AETHERCROWN_TEST_DATABASE_URL not set")


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
