"""The tenant request counter keeps what it counted through a database outage."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from aethercrown.clock import utcnow
from aethercrown.core.metrics import TenantRequestCounter
from aethercrown.core.models import TenantRequestCount
from aethercrown.db.engine import make_engine
from tests.conftest import TenantHandle


@pytest.fixture(params=["sqlite-without-tables", "postgresql-refused"])
def unwritable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A real database that cannot take the counts: a SQLite file that lost its tables (the
    file was removed and opened afresh), or a PostgreSQL server refusing connections."""
    if request.param == "sqlite-without-tables":
        engine = make_engine(f"sqlite:///{tmp_path / 'gone.db'}")
    else:
        engine = make_engine(
            "postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 2}
        )
    yield engine
    engine.dispose()


def test_counts_are_put_back_on_a_failed_flush_and_written_by_the_next(
    tenant: TenantHandle, db: Engine, unwritable: Engine
) -> None:
    counter = TenantRequestCounter()
    day = utcnow().date()
    for status in (200, 200, 200, 429):
        counter.add(tenant.uid, day, status)
    counter.touch_key(tenant.uid, utcnow())  # an unknown key id: updates nothing, fails nothing

    assert counter.flush(unwritable) == 0
    assert counter.pending == 4  # nothing lost
    counter.add(tenant.uid, day, 200)  # counted during the outage

    assert counter.flush(db) == 3  # two (tenant, day, status) rows and the key
    assert counter.pending == 0
    with db.connect() as conn:
        stored = dict(
            conn.execute(
                select(TenantRequestCount.status, TenantRequestCount.count).where(
                    TenantRequestCount.tenant_id == tenant.uid
                )
            ).all()
        )
    assert stored == {200: 4, 429: 1}
