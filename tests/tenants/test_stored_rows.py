"""The stored-row counts the quota reads (``aethercrown.db.row_counts``): on PostgreSQL kept by
the database's triggers on every write path, read in one query, folded, and rebuilt by ``tenants
recount-rows``; on SQLite counted in one statement when read. Every PostgreSQL database test
checks the counts against the tables when it ends (the ``db`` fixture), so the connectors',
metering's and the demo's tests check their write paths too."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from aethercrown.cli import app as cli_app
from aethercrown.core.models import TenantStoredRows
from aethercrown.data.models import Customer
from aethercrown.data.service import ingest_rows
from aethercrown.db.row_counts import counted_tables
from aethercrown.db.session import write_transaction
from aethercrown.settings import Settings, get_settings
from aethercrown.tenants.repository import FOLD_AFTER, counted_models
from aethercrown.tenants.service import stored_rows_total
from tests.conftest import TenantHandle, bearer, stored_rows_mismatches
from tests.data.conftest import sample_rows

DATA = "/api/v1/data"
DAY = date(2025, 5, 1)


@pytest.fixture
def rows() -> dict[str, list[dict[str, Any]]]:
    return sample_rows()


def _metrics(client: TestClient, tenant: TenantHandle) -> dict[str, Any]:
    response = client.get(f"/api/v1/tenants/{tenant.id}/metrics", headers=tenant.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _actual_by_domain(db: Engine, tenant: TenantHandle) -> dict[str, int]:
    by_domain: dict[str, int] = {}
    with Session(db) as session:
        for cls in counted_models().values():
            n = session.scalar(
                select(func.count()).select_from(cls).where(cls.tenant_id == tenant.uid)
            )
            domain = cls.__module__.split(".")[1]
            by_domain[domain] = by_domain.get(domain, 0) + int(n or 0)
    return dict(sorted(by_domain.items()))


def test_every_tenant_table_is_counted(db: Engine) -> None:
    # A TenantScoped table added without ``count_tenant_rows`` in its migration fails here.
    with db.connect() as conn:
        counted = counted_tables(conn)
    assert counted == (set(counted_models()) if db.dialect.name == "postgresql" else set())


def test_counts_follow_writes_and_deletes_and_usage_reports_them(
    client: TestClient, db: Engine, tenant: TenantHandle, rows: dict[str, Any]
) -> None:
    for kind, batch in rows.items():
        response = client.post(f"{DATA}/{kind}", json=batch, headers=tenant.headers)
        assert response.status_code == 200, response.text
    assert stored_rows_mismatches(db) == {}
    usage = _metrics(client, tenant)
    assert usage["stored_rows"] == _actual_by_domain(db, tenant)
    assert usage["stored_rows_total"] == sum(usage["stored_rows"].values()) > 0
    # A customer deleted takes its subscriptions, activity, payments… along (foreign-key
    # cascades): the triggers of every table the cascade reaches count them out.
    with Session(db) as session, session.begin():
        session.execute(delete(Customer).where(Customer.external_id == "c1"))
    assert stored_rows_mismatches(db) == {}
    after = _metrics(client, tenant)
    assert after["stored_rows"] == _actual_by_domain(db, tenant)
    assert after["stored_rows_total"] < usage["stored_rows_total"]


def test_the_quota_counts_what_is_stored_to_the_row(
    client: TestClient, admin_key: str, tenant: TenantHandle, rows: dict[str, Any]
) -> None:
    response = client.post(f"{DATA}/customers", json=rows["customers"], headers=tenant.headers)
    assert response.status_code == 200
    stored = _metrics(client, tenant)["stored_rows_total"]
    tier = client.get(f"/api/v1/tenants/{tenant.id}", headers=tenant.headers).json()["tier"]
    patched = client.patch(
        f"/api/v1/platform/tiers/{tier}",
        json={"max_stored_rows": stored + 1},
        headers=bearer(admin_key),
    )
    assert patched.status_code == 200
    two = [{"external_id": f"q{i}", "name": f"Q {i}", "signup_date": "2025-05-01"} for i in (1, 2)]
    refused = client.post(f"{DATA}/customers", json=two, headers=tenant.headers)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert (
        refused.json()["stored_rows"] == stored and refused.json()["max_stored_rows"] == stored + 1
    )
    assert _metrics(client, tenant)["stored_rows_total"] == stored  # nothing written
    one = client.post(f"{DATA}/customers", json=two[:1], headers=tenant.headers)
    assert one.status_code == 200
    assert _metrics(client, tenant)["stored_rows_total"] == stored + 1


def test_many_small_writes_are_folded_and_the_sum_stays_exact(
    client: TestClient, db: Engine, tenant: TenantHandle
) -> None:
    for i in range(FOLD_AFTER + 20):
        one = [{"external_id": f"f{i}", "name": "F", "signup_date": "2025-05-01"}]
        assert client.post(f"{DATA}/customers", json=one, headers=tenant.headers).status_code == 200
    with Session(db) as session:
        kept = session.scalars(
            select(TenantStoredRows.row_count).where(
                TenantStoredRows.tenant_id == tenant.uid,
                TenantStoredRows.table_name == "customers",
            )
        ).all()
    if db.dialect.name == "postgresql":  # a delta per statement, folded past FOLD_AFTER
        assert sum(kept) == FOLD_AFTER + 20 and len(kept) <= FOLD_AFTER
    else:  # counted when read
        assert kept == []
    assert stored_rows_mismatches(db) == {}
    assert _metrics(client, tenant)["stored_rows"]["data"] == FOLD_AFTER + 20


@pytest.fixture
def run_cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("AETHERCROWN_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("AETHERCROWN_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_recount_rows_rebuilds_counts_the_triggers_did_not_see(
    client: TestClient,
    db: Engine,
    tenant: TenantHandle,
    rows: dict[str, Any],
    run_cli: CliRunner,
) -> None:
    if db.dialect.name != "postgresql":
        pytest.skip("SQLite keeps no counts to rebuild")
    response = client.post(f"{DATA}/customers", json=rows["customers"], headers=tenant.headers)
    assert response.status_code == 200
    # What a restore that bypassed the triggers leaves: counts that are not the rows.
    with db.begin() as conn:  # the owner's engine
        conn.execute(delete(TenantStoredRows))
    assert stored_rows_mismatches(db) != {}
    result = run_cli.invoke(cli_app, ["tenants", "recount-rows", tenant.slug])
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout)
    n = len(rows["customers"])
    assert line == {"tenant": tenant.slug, "corrected": {"customers": {"kept": 0, "actual": n}}}
    assert stored_rows_mismatches(db) == {}
    again = run_cli.invoke(cli_app, ["tenants", "recount-rows"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == {"tenant": tenant.slug, "corrected": {}}


def test_concurrent_writers_of_one_tenant_keep_an_exact_count(
    db: Engine, session_factory: sessionmaker[Session], tenant: TenantHandle
) -> None:
    # PostgreSQL: eight writers append deltas and fold them at once; none waits on a shared
    # counter row, so none deadlocks, and the sum is every row written.
    def write(worker: int) -> None:
        for i in range(40):
            row = {"external_id": f"w{worker}-{i}", "name": "W", "signup_date": "2025-05-01"}
            with write_transaction(session_factory) as session:
                ingest_rows(session, tenant.uid, "customers", [row])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(8)))
    assert stored_rows_mismatches(db) == {}
    with write_transaction(session_factory) as session:
        assert stored_rows_total(session, tenant.uid) == 8 * 40


def test_the_count_includes_the_unit_of_works_own_pending_rows(
    session_factory: sessionmaker[Session], tenant: TenantHandle
) -> None:
    with write_transaction(session_factory) as session:
        before = stored_rows_total(session, tenant.uid)
        session.add(Customer(tenant_id=tenant.uid, external_id="p1", name="P", signup_date=DAY))
        assert stored_rows_total(session, tenant.uid) == before + 1  # flushed first
