"""Test fixtures: every database test runs on SQLite, and also on PostgreSQL when
AETHERCROWN_TEST_DATABASE_URL is set. The schema is built once per backend by the real
migrations; every test then starts from empty tables (tiers restored).

``AETHERCROWN_TEST_NOW=<ISO-8601 instant>`` runs the suite with the clock starting at that
instant (and ticking): `make test-calendar` runs it at the calendar's edges. Servers and CLIs
the tests start inherit the same clock through ``AETHERCROWN_CLOCK_SHIFT_SECONDS``."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, MetaData, create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

from aethercrown import clock
from aethercrown.app import create_app
from aethercrown.db import migrate
from aethercrown.db.engine import make_engine, make_session_factory
from aethercrown.db.registry import metadata
from aethercrown.db.session import write_transaction
from aethercrown.db.tenant_scope import APP_ROLE
from aethercrown.security.service import ensure_bootstrap_admin
from aethercrown.settings import Settings
from aethercrown.tenants.repository import counted_models

# Jobs resolve the installation's SecretBox from the environment; give tests a fixed one.
os.environ.setdefault("AETHERCROWN_SECRET_KEY", "test-secret-key-for-the-suite-only-0123456789")


def _start_clock_at_test_now() -> None:
    raw = os.environ.get("AETHERCROWN_TEST_NOW")
    if not raw:
        return
    instant = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    shift = clock.shift_to(instant if instant.tzinfo else instant.replace(tzinfo=UTC))
    os.environ[clock.SHIFT_ENV] = str(shift.total_seconds())
    clock.reset()


_start_clock_at_test_now()

PG_URL = os.environ.get("AETHERCROWN_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("AETHERCROWN_REDIS_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def normalise_pg(url: str) -> str:
    """The psycopg URL; under pytest-xdist, a database of this worker's own (created once)."""
    url = Settings(database_url=url).database_url
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    base = make_url(url)
    name = f"{base.database}_{worker}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if exists.first() is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


# The login the application connects as in the PostgreSQL runs: a member of the role migration
# 0012 creates (not a superuser, not the tables' owner), so row-level security applies to the
# application exactly as in a deployment; fixtures that set up and empty tables keep the owner.
APP_LOGIN = "aethercrown_test_app"


def app_url(owner_url: str) -> str:
    """The URL the application uses: on PostgreSQL the same database as ``APP_LOGIN``."""
    url = make_url(owner_url)
    if url.get_backend_name() != "postgresql":
        return owner_url
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            text(
                "DO $$ BEGIN "
                f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_LOGIN}') THEN "
                f"CREATE ROLE {APP_LOGIN} LOGIN IN ROLE {APP_ROLE}; END IF; "
                "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
            )
        )
    admin.dispose()
    return url.set(username=APP_LOGIN, password=None).render_as_string(hide_password=False)


def reset_postgres(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture
def frozen_now() -> Iterator[datetime]:
    """The clock stopped at the current instant for one test, which builds data "now" and reads
    it back for "this month": at a calendar edge (AETHERCROWN_TEST_NOW) a ticking clock could
    cross into the next month between the two."""
    with clock.travel(clock.utcnow(), tick=False):
        yield clock.utcnow()


@pytest.fixture(scope="session")
def _schemas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Backend name -> URL of a freshly migrated database (built lazily on first use)."""
    return {}


def _database_url(backend: str, schemas: dict[str, str], tmp: Path) -> str:
    if backend not in schemas:
        if backend == "sqlite":
            url = f"sqlite:///{tmp / 'test.db'}"
        else:
            assert PG_URL is not None
            url = normalise_pg(PG_URL)
            reset_postgres(url)
        migrate.upgrade(url)
        schemas[backend] = url
    return schemas[backend]


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest,
    _schemas: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    return _database_url(request.param, _schemas, tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def _tier_snapshot(engine: Engine) -> list[dict[str, Any]]:
    tiers = metadata.tables["tiers"]
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(tiers))]


def _truncate(engine: Engine, tier_rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
        conn.execute(insert(metadata.tables["tiers"]), tier_rows)


def stored_rows_mismatches(engine: Engine) -> dict[tuple[str, str], tuple[int, int]]:
    """(tenant id, table) -> (count the database's triggers kept, actual rows) wherever the two
    differ (``aethercrown.db.row_counts``); read as the owner, so every tenant at once. SQLite
    keeps no counts (it counts when the quota is read): nothing to differ."""
    if engine.dialect.name != "postgresql":
        return {}
    counts = metadata.tables["tenant_stored_rows"]
    with engine.connect() as conn:
        kept = {
            (str(r.tenant_id), r.table_name): int(r.n)
            for r in conn.execute(
                select(
                    counts.c.tenant_id, counts.c.table_name, func.sum(counts.c.row_count).label("n")
                ).group_by(counts.c.tenant_id, counts.c.table_name)
            )
        }
        actual: dict[tuple[str, str], int] = {}
        for name in counted_models():
            table = metadata.tables[name]
            rows = conn.execute(
                select(table.c.tenant_id, func.count().label("n")).group_by(table.c.tenant_id)
            )
            actual.update({(str(r.tenant_id), name): int(r.n) for r in rows})
    return {
        key: (kept.get(key, 0), actual.get(key, 0))
        for key in set(kept) | set(actual)
        if kept.get(key, 0) != actual.get(key, 0)
    }


@pytest.fixture
def db(engine: Engine, _tier_snapshot: list[dict[str, Any]]) -> Iterator[Engine]:
    """A database with empty tables (default tiers only), emptied again after the test. After
    each test, whatever it wrote, the stored-row counts the quota reads must equal the rows
    (PostgreSQL, where the database keeps them)."""
    _truncate(engine, _tier_snapshot)
    yield engine
    mismatches = stored_rows_mismatches(engine)
    _truncate(engine, _tier_snapshot)
    assert not mismatches, f"stored-row counts drifted from the tables: {mismatches}"


@pytest.fixture(scope="session")
def application_url(database_url: str) -> str:
    return app_url(database_url)


@pytest.fixture
def settings(db: Engine, application_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=application_url,
        redis_url=None,
        data_dir=tmp_path / "data",
        log_level="WARNING",
        usage_flush_seconds=3600,
        run_automation=False,
        usage_fold_seconds=0,  # tests fold through reads, or start a folder themselves
        warm_start=False,  # a few hundred ms per app: tests/test_app.py checks it once
    )


@pytest.fixture
def session_factory(db: Engine):  # type: ignore[no-untyped-def]
    return make_session_factory(db)


@pytest.fixture
def app(settings: Settings):  # type: ignore[no-untyped-def]
    return create_app(settings)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as c:
        yield c


@pytest.fixture
def admin_key(session_factory) -> str:  # type: ignore[no-untyped-def]
    with write_transaction(session_factory) as session:
        secret = ensure_bootstrap_admin(session, None)
    assert secret
    return secret


def bearer(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


@dataclass
class TenantHandle:
    id: str
    slug: str
    key: str

    @property
    def uid(self) -> uuid.UUID:
        return uuid.UUID(self.id)

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.key)


def create_tenant(
    client: TestClient, admin_key: str, slug: str | None = None, tier: str = "starter"
) -> TenantHandle:
    slug = slug or f"t-{uuid.uuid4().hex[:10]}"
    response = client.post(
        "/api/v1/tenants/create",
        json={"name": slug.title(), "slug": slug, "tier": tier},
        headers=bearer(admin_key),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return TenantHandle(id=body["id"], slug=slug, key=body["api_key"])


@pytest.fixture
def tenant(client: TestClient, admin_key: str) -> TenantHandle:
    return create_tenant(client, admin_key, "acme", tier="professional")


@pytest.fixture
def other_tenant(client: TestClient, admin_key: str) -> TenantHandle:
    return create_tenant(client, admin_key, "globex", tier="starter")


def fresh_database(name: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of each backend for migration tests (yields URLs)."""
    yield f"sqlite:///{tmp_path / (name + '.db')}"
    if PG_URL:
        base = make_url(normalise_pg(PG_URL))
        db_name = f"{base.database}_{name}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{db_name}"'))
        admin.dispose()
        yield base.set(database=db_name).render_as_string(hide_password=False)


def table_names(url: str) -> set[str]:
    eng = create_engine(url)
    meta = MetaData()
    meta.reflect(eng)
    eng.dispose()
    return set(meta.tables)
