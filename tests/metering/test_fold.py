"""Folding stored events into the rollups after ingestion: exactly once, whatever runs
alongside, and always before a read of the rollups."""

import threading
import time
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select

from aethercrown.app import create_app
from aethercrown.clock import utcnow
from aethercrown.data.models import Customer
from aethercrown.db.session import write_transaction
from aethercrown.metering import service
from aethercrown.metering.fold import catch_up
from aethercrown.metering.models import UsageAlert, UsageDaily, UsageEvent, UsageFoldCursor
from aethercrown.settings import Settings
from tests.conftest import TenantHandle
from tests.metering.conftest import event

TRACK = "/api/v1/enterprise/usage/track"


def rollup_totals(session_factory) -> tuple[int, float, int, float]:  # type: ignore[no-untyped-def]
    """(events stored, their value sum, events counted in the rollups, rollup value sum)."""
    with session_factory() as s:
        return (
            s.scalar(select(func.count()).select_from(UsageEvent)) or 0,
            s.scalar(select(func.coalesce(func.sum(UsageEvent.value), 0))) or 0,
            s.scalar(select(func.coalesce(func.sum(UsageDaily.event_count), 0))) or 0,
            s.scalar(select(func.coalesce(func.sum(UsageDaily.value_sum), 0))) or 0,
        )


def test_folding_while_batches_arrive_counts_every_event_once(
    tenant: TenantHandle,
    customers,
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    customers(tenant.uid, "c-1", "c-2", "c-3")
    now = utcnow() - timedelta(minutes=5)
    errors: list[BaseException] = []
    done = threading.Event()

    def ingest(sender: int) -> None:
        try:
            for b in range(8):
                # Senders 0 and 1 send the same ids: each event must still count once.
                prefix = f"s{max(sender, 1)}-{b}"
                batch = [
                    event(f"{prefix}-{i}", f"c-{1 + i % 3}", "api_calls", 1 + i % 5, now)
                    for i in range(60)
                ]
                with write_transaction(session_factory) as s:
                    service.track(s, tenant.uid, batch, now=now)
        except BaseException as exc:  # reported below
            errors.append(exc)

    def fold() -> None:
        try:
            while not done.is_set():
                catch_up(session_factory, limit=70)  # small folds: many interleavings
        except BaseException as exc:
            errors.append(exc)

    senders = [threading.Thread(target=ingest, args=(n,)) for n in range(4)]
    folders = [threading.Thread(target=fold) for _ in range(2)]
    for t in senders + folders:
        t.start()
    for t in senders:
        t.join()
    done.set()
    for t in folders:
        t.join()
    assert not errors, errors
    catch_up(session_factory)
    stored, stored_sum, counted, counted_sum = rollup_totals(session_factory)
    assert stored == 3 * 8 * 60  # senders 0 and 1 shared their ids
    assert (counted, counted_sum) == (stored, stored_sum)
    with session_factory() as s:
        top = s.scalar(select(func.max(UsageEvent.id)))
        assert s.scalar(select(UsageFoldCursor.last_event_id)) == top


def test_a_read_right_after_the_acknowledgement_counts_the_events(
    client: TestClient,
    tenant: TenantHandle,
    customers,
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    customers(tenant.uid, "c-1")
    for i in range(3):
        body = {
            "events": [
                {"id": f"e{i}-{j}", "customer": "c-1", "metric": "api_calls", "value": 10}
                for j in range(5)
            ]
        }
        assert client.post(TRACK, json=body, headers=tenant.headers).status_code == 200
        report = client.get("/api/v1/enterprise/usage/c-1/report", headers=tenant.headers)
        assert report.status_code == 200, report.text
        calls = {m["metric"]: m for m in report.json()["metrics"]}["api_calls"]
        assert calls["usage"] == 50 * (i + 1)
    with session_factory() as s:
        assert not service.has_unfolded(s, tenant.uid)


def test_the_api_folder_folds_and_alerts_with_no_reads(
    settings: Settings,
    tenant: TenantHandle,
    customers,
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    customers(tenant.uid, "c-1")  # starter: 10,000 api_calls a month
    app = create_app(settings.model_copy(update={"usage_fold_seconds": 0.05}))
    with TestClient(app) as client:
        body = {"id": "big", "customer": "c-1", "metric": "api_calls", "value": 9_600}
        assert client.post(TRACK, json=body, headers=tenant.headers).status_code == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with session_factory() as s:
                levels = set(s.scalars(select(UsageAlert.level)))
            if levels:
                break
            time.sleep(0.05)
    assert levels == {"warning", "critical"}
    assert rollup_totals(session_factory) == (1, 9_600, 1, 9_600)


def test_event_ids_are_never_reused_after_a_delete(
    tenant: TenantHandle,
    customers,
    session_factory,  # type: ignore[no-untyped-def]
    track,  # type: ignore[no-untyped-def]
) -> None:
    customers(tenant.uid, "c-1", "c-2")
    now = utcnow() - timedelta(minutes=1)
    track(tenant.uid, [event("a", "c-1", "api_calls", 1, now)], now)
    track(tenant.uid, [event(f"b{i}", "c-2", "api_calls", 1, now) for i in range(3)], now)
    with write_transaction(session_factory) as s:  # the newest events go with their customer
        s.execute(delete(Customer).where(Customer.external_id == "c-2"))
    with write_transaction(session_factory) as s:
        service.track(s, tenant.uid, [event("c", "c-1", "api_calls", 5, now)], now=now)
    catch_up(session_factory)
    assert rollup_totals(session_factory) == (2, 6, 2, 6)


def test_the_automation_job_folds_what_is_pending(
    tenant: TenantHandle,
    customers,
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    from aethercrown.core.jobs import all_jobs

    customers(tenant.uid, "c-1")
    now = utcnow() - timedelta(minutes=1)
    with write_transaction(session_factory) as s:
        service.track(s, tenant.uid, [event("j", "c-1", "api_calls", 7, now)], now=now)
    job = next(j for j in all_jobs() if j.name == "usage_fold")
    assert not job.per_tenant
    with write_transaction(session_factory) as s:
        assert job.run(s, None, now)["events"] == 1
    assert rollup_totals(session_factory) == (1, 7, 1, 7)


def test_a_long_transaction_storing_events_does_not_hold_the_fold_forever(
    tenant: TenantHandle,
    customers,
    session_factory,  # type: ignore[no-untyped-def]
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    import pytest

    from aethercrown.metering import repository

    if session_factory.kw["bind"].dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers: a fold waits for the write lock instead")
    monkeypatch.setattr(repository, "FOLD_LOCK_WAIT", "200ms")
    customers(tenant.uid, "c-1")
    now = utcnow() - timedelta(minutes=1)
    with write_transaction(session_factory) as s:
        service.track(s, tenant.uid, [event("done", "c-1", "api_calls", 1, now)], now=now)
    with session_factory() as long_load:  # stores events and stays open, like a demo load
        service.track(long_load, tenant.uid, [event("open", "c-1", "api_calls", 5, now)], now=now)
        started = time.monotonic()
        out = catch_up(session_factory)
        assert out.blocked and out.events == 0 and time.monotonic() - started < 3
        long_load.commit()
    assert catch_up(session_factory).events == 2
    assert rollup_totals(session_factory) == (2, 6, 2, 6)
