"""Units of work: writers queue in FIFO order for SQLite's one write lock, a writer that waits
too long is told to retry (503), and concurrent clients mixing reads and writes over real HTTP
get no 503 or 5xx."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from benchmarks.concurrency import prepare, run_mix, serving
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from aethercrown.db import session as units
from aethercrown.db.session import WriteQueue, write_queue, write_queue_turn
from tests.conftest import TenantHandle


def test_writers_get_the_queue_in_arrival_order() -> None:
    queue = WriteQueue()
    assert queue.acquire(1)
    order: list[int] = []

    def writer(n: int) -> None:
        assert queue.acquire(10)
        order.append(n)
        queue.release()

    threads = []
    for n in range(6):
        thread = threading.Thread(target=writer, args=(n,))
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 10
        while queue.waiting < n + 1:  # queued before the next one starts
            assert time.monotonic() < deadline
            time.sleep(0.001)
    queue.release()
    for thread in threads:
        thread.join(10)
    assert order == list(range(6))


def test_a_wait_past_the_bound_gives_up_and_leaves_the_queue() -> None:
    queue = WriteQueue()
    assert queue.acquire(1)
    assert not queue.acquire(0.05)
    assert queue.waiting == 0
    queue.release()
    assert queue.acquire(0.05)  # free again: the timed-out waiter did not keep a place


def test_a_writer_queued_too_long_gets_503_with_retry_after(
    client: TestClient, tenant: TenantHandle, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    if db.dialect.name != "sqlite":
        pytest.skip("PostgreSQL writers lock rows, not the database: there is no write queue")
    monkeypatch.setattr(units, "WRITE_QUEUE_TIMEOUT_SECONDS", 0.2)
    held = threading.Event()
    done = threading.Event()

    def hold_the_queue() -> None:
        with write_queue_turn(db):
            held.set()
            done.wait(10)

    holder = threading.Thread(target=hold_the_queue)
    holder.start()
    try:
        assert held.wait(10)
        busy = client.patch(
            f"/api/v1/tenants/{tenant.id}", json={"name": "Renamed"}, headers=tenant.headers
        )
        # Reads never wait for the writer.
        read = client.get(f"/api/v1/tenants/{tenant.id}", headers=tenant.headers)
    finally:
        done.set()
        holder.join(10)
    assert busy.status_code == 503
    assert busy.headers["content-type"] == "application/problem+json"
    assert busy.headers["retry-after"] == "1"
    assert busy.json()["type"].endswith("database-busy")
    assert read.status_code == 200 and read.json()["name"] != "Renamed"
    queue = write_queue(db)
    assert queue is not None and queue.waiting == 0
    again = client.patch(
        f"/api/v1/tenants/{tenant.id}", json={"name": "Renamed"}, headers=tenant.headers
    )
    assert again.status_code == 200 and again.json()["name"] == "Renamed"


def test_sixteen_clients_mixing_reads_and_writes_get_no_503_or_5xx(
    db: Engine, tmp_path: Path
) -> None:
    """The real server (uvicorn in a subprocess) over HTTP: every client its own tenant,
    cycling through every route of benchmarks/concurrency.py's mix (settings PUT, A/B assign,
    track and results, churn predict, tenant rename and read, data ingest and list, health
    check, KPIs), all starting together."""
    url = db.url.render_as_string(hide_password=False)
    with serving(url, tmp_path / "data") as (base, admin_key):
        clients = prepare(base, admin_key, 16, customers=10)
        try:
            tally, _wall = run_mix(clients, 12)
        finally:
            for client in clients:
                client.http.close()
    assert sum(tally.classes.values()) == 16 * 12
    assert tally.errors == 0, tally.failures
    assert tally.classes["2xx"] == 16 * 12, tally.by_route


def test_a_bulk_load_unit_skips_fsync_on_its_own_connection_and_restores_it(
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    engine = session_factory.kw["bind"]
    if engine.dialect.name != "sqlite":
        pytest.skip("a SQLite connection setting")
    with units.write_transaction(session_factory, bulk_load=True) as session:
        driver = session.connection().connection.driver_connection
        assert session.connection().exec_driver_sql("PRAGMA synchronous").scalar() == 0
        assert session.connection().exec_driver_sql("PRAGMA temp_store").scalar() == 2
    # The connection went back to the pool with the settings every unit of work expects.
    assert driver.execute("PRAGMA synchronous").fetchone() == (1,)
    assert driver.execute("PRAGMA temp_store").fetchone() == (0,)
    with units.write_transaction(session_factory) as session:
        assert session.connection().exec_driver_sql("PRAGMA synchronous").scalar() == 1
