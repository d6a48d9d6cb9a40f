"""The scheduler's claims, leases, retries and metrics with a controlled clock."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from aethercrown.core.models import Decision
from aethercrown.db.session import write_transaction
from aethercrown.tasks import schemas, service
from aethercrown.tasks.models import TaskAttempt
from tests.conftest import TenantHandle
from tests.tasks.conftest import task

T = TypeVar("T")
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def run(factory: sessionmaker[Session], fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    with write_transaction(factory) as session:
        return fn(session, *args, **kwargs)


def add_tasks(
    factory: sessionmaker[Session], tenant: uuid.UUID, now: datetime, *items: Any
) -> None:
    body = schemas.ScheduleRequest.model_validate({"tasks": list(items)})
    run(factory, service.schedule, tenant, body, "test", now=now)


def add_worker(
    factory: sessionmaker[Session], tenant: uuid.UUID, name: str, now: datetime, capacity: int = 1
) -> uuid.UUID:
    body = schemas.WorkerRegister(name=name, capacity=capacity)
    worker, _ = run(factory, service.register_worker, tenant, body, "test", now=now)
    return worker.id


def claim(
    factory: sessionmaker[Session],
    tenant: uuid.UUID,
    worker: uuid.UUID,
    now: datetime,
    lease: int = 60,
    max_tasks: int | None = None,
) -> list[str]:
    body = schemas.AssignRequest(worker_id=worker, lease_seconds=lease, max_tasks=max_tasks)
    out = run(factory, service.assign, tenant, body, "test", now=now)
    return [a.task.id for a in out.assigned]


def test_age_term_lets_older_tasks_overtake_and_is_capped(
    session_factory: sessionmaker[Session], tenant: TenantHandle
) -> None:
    add_tasks(session_factory, tenant.uid, T0, task("old", priority=2, duration=1800))
    add_tasks(
        session_factory,
        tenant.uid,
        T0 + timedelta(minutes=50),
        task("new", priority=2, duration=1800),
        task("urgent", priority=3, duration=1800),
    )
    worker = add_worker(session_factory, tenant.uid, "w", T0, capacity=3)
    # At T0 + 60 min: old = 200 + 60, new = 200 + 10, urgent = 300 + 10.
    at = T0 + timedelta(minutes=60)
    assert claim(session_factory, tenant.uid, worker, at) == ["urgent", "old", "new"]
    with session_factory() as session:
        scores = dict(session.execute(select(TaskAttempt.attempt, TaskAttempt.score)).all())
        got = sorted(session.scalars(select(TaskAttempt.score)))
    assert got == pytest.approx([210, 260, 310])
    assert scores
    # The cap: after five hours, waiting more adds nothing.
    assert service.scoring.age_term(5 * 3600) == service.scoring.AGE_CAP == 60


def test_an_expired_lease_requeues_the_task_once_with_backoff(
    session_factory: sessionmaker[Session], tenant: TenantHandle
) -> None:
    add_tasks(session_factory, tenant.uid, T0, task("job", max_attempts=3))
    a = add_worker(session_factory, tenant.uid, "a", T0)
    b = add_worker(session_factory, tenant.uid, "b", T0)
    assert claim(session_factory, tenant.uid, a, T0, lease=30) == ["job"]
    # Still leased: nobody else gets it.
    assert claim(session_factory, tenant.uid, b, T0 + timedelta(seconds=29)) == []
    # Lease ran out at +30; the sweep requeues it with 30 s backoff (first retry).
    assert claim(session_factory, tenant.uid, b, T0 + timedelta(seconds=31)) == []
    assert claim(session_factory, tenant.uid, b, T0 + timedelta(seconds=62)) == ["job"]
    # The first worker's late completion is refused: the lease is lost.
    with pytest.raises(service.ProblemError) as lost:
        run(
            session_factory,
            service.complete,
            tenant.uid,
            "job",
            schemas.CompleteRequest(worker_id=a),
            now=T0 + timedelta(seconds=63),
        )
    assert lost.value.status == 409
    done = run(
        session_factory,
        service.complete,
        tenant.uid,
        "job",
        schemas.CompleteRequest(worker_id=b, result={"ok": True}),
        now=T0 + timedelta(seconds=70),
    )
    assert done.status == "completed" and done.attempts == 2
    with session_factory() as session:
        outcomes = session.execute(
            select(TaskAttempt.attempt, TaskAttempt.outcome).order_by(TaskAttempt.attempt)
        ).all()
    assert [tuple(o) for o in outcomes] == [(1, "expired"), (2, "completed")]


def test_heartbeat_renews_leases(
    session_factory: sessionmaker[Session], tenant: TenantHandle
) -> None:
    add_tasks(session_factory, tenant.uid, T0, task("long"))
    a = add_worker(session_factory, tenant.uid, "a", T0)
    b = add_worker(session_factory, tenant.uid, "b", T0)
    claim(session_factory, tenant.uid, a, T0, lease=30)
    run(session_factory, service.heartbeat, tenant.uid, a, now=T0 + timedelta(seconds=25))
    # Renewed to +55: at +50 the task is still a's.
    assert claim(session_factory, tenant.uid, b, T0 + timedelta(seconds=50)) == []


def test_retries_back_off_exponentially_up_to_the_limit(
    session_factory: sessionmaker[Session], tenant: TenantHandle
) -> None:
    add_tasks(session_factory, tenant.uid, T0, task("flaky", max_attempts=3))
    w = add_worker(session_factory, tenant.uid, "w", T0)
    now = T0
    for attempt, backoff in ((1, 30), (2, 60)):
        assert claim(session_factory, tenant.uid, w, now) == ["flaky"]
        failed = run(
            session_factory,
            service.fail,
            tenant.uid,
            "flaky",
            schemas.FailRequest(worker_id=w, error=f"boom {attempt}"),
            now=now,
        )
        assert failed.status == "queued"
        assert failed.available_at == now + timedelta(seconds=backoff)
        assert claim(session_factory, tenant.uid, w, now + timedelta(seconds=backoff - 1)) == []
        now += timedelta(seconds=backoff)
    assert claim(session_factory, tenant.uid, w, now) == ["flaky"]
    last = run(
        session_factory,
        service.fail,
        tenant.uid,
        "flaky",
        schemas.FailRequest(worker_id=w, error="boom 3"),
        now=now,
    )
    assert last.status == "failed" and last.attempts == 3 and last.finished_at == now
    assert claim(session_factory, tenant.uid, w, now + timedelta(days=1)) == []
    with session_factory() as session:
        decisions = session.scalars(
            select(Decision).where(Decision.kind == "task_assignment")
        ).all()
    assert len(decisions) == 3


def test_metrics_and_every_bottleneck_rule(
    session_factory: sessionmaker[Session], tenant: TenantHandle
) -> None:
    # 12 independent tasks + a chain root with 6 dependents.
    add_tasks(
        session_factory,
        tenant.uid,
        T0,
        *(task(f"free{i}") for i in range(12)),
        task("root", duration=60),
        *(task(f"dep{i}", priority=3, deps=["root"]) for i in range(6)),
    )
    w = add_worker(session_factory, tenant.uid, "w", T0, capacity=4)
    at = T0 + timedelta(seconds=10)
    claimed = claim(session_factory, tenant.uid, w, at, max_tasks=2)
    assert claimed[0] == "root"  # 200 + 29 + 50 (dependency term capped at 50)
    finish_at = at + timedelta(seconds=20)
    run(
        session_factory,
        service.complete,
        tenant.uid,
        claimed[0],
        schemas.CompleteRequest(worker_id=w),
        now=finish_at,
    )
    run(
        session_factory,
        service.fail,
        tenant.uid,
        claimed[1],
        schemas.FailRequest(worker_id=w, error="x", retry=False),
        now=finish_at,
    )
    claimed2 = claim(session_factory, tenant.uid, w, finish_at, max_tasks=1)
    assert claimed2[0].startswith("dep")  # 300 + 29: ready now that root is done
    with session_factory() as session:
        m = service.metrics(session, tenant.uid, 24, now=finish_at + timedelta(seconds=5))
    # Ready: 11 free + 5 deps = 16 (1 dep running, 1 free failed, root done).
    assert m.queue_length == 16 and m.running == 1 and m.blocked == 0
    assert m.completed_total == 1 and m.failed_total == 1
    assert m.workers_active == 1 and m.capacity == 4
    assert m.worker_utilisation == 0.25
    assert m.failure_rate == 0.5
    assert m.blocked_share == 0.0
    assert m.wait_seconds.count == 3
    # Waits: root and free waited 10 s from scheduling; the dep became ready at completion.
    assert m.wait_seconds.p50 == 10.0
    assert m.run_seconds.p50 == 20.0 and m.run_seconds.count == 1
    assert m.throughput_per_hour == pytest.approx(1 / 24, abs=1e-3)
    rules = {b.rule for b in m.bottlenecks}
    assert rules == {"queue_length", "worker_utilisation", "failure_rate"}
    assert all(b.action for b in m.bottlenecks)


def test_blocked_share_rule(session_factory: sessionmaker[Session], tenant: TenantHandle) -> None:
    add_tasks(
        session_factory,
        tenant.uid,
        T0,
        task("root"),
        *(task(f"dep{i}", deps=["root"]) for i in range(3)),
    )
    for i in range(2):
        add_worker(session_factory, tenant.uid, f"w{i}", T0)
    with session_factory() as session:
        m = service.metrics(session, tenant.uid, 24, now=T0)
    assert m.blocked == 3 and m.queue_length == 1
    assert m.blocked_share == 0.75
    assert m.worker_utilisation == 0.0
    assert {b.rule for b in m.bottlenecks} == {"blocked_by_dependencies", "worker_utilisation"}


def test_housekeeping_marks_silent_workers_stale_and_frees_their_quota(
    session_factory: sessionmaker[Session], tenant: TenantHandle
) -> None:
    add_tasks(session_factory, tenant.uid, T0, task("a"))
    w = add_worker(session_factory, tenant.uid, "w", T0)
    claim(session_factory, tenant.uid, w, T0, lease=60)
    later = T0 + timedelta(seconds=service.WORKER_STALE_SECONDS + 61)
    summary = run(session_factory, service.housekeeping, tenant.uid, later)
    assert summary == {"leases_expired": 1, "workers_marked_stale": 1}
    with session_factory() as session:
        assert service.live_worker_count(session, tenant.uid, later) == 0
        assert service.list_workers(session, tenant.uid, later)[0].status == "stale"


def test_claims_take_the_best_scores_exactly_as_a_full_ranking_would(
    session_factory: sessionmaker[Session], tenant: TenantHandle
) -> None:
    """The claim query prunes by static score; the result must equal ranking every task."""
    import random

    rng = random.Random(7)
    expected: dict[str, float] = {}
    for batch in range(6):
        at = T0 + timedelta(minutes=25 * batch)
        items = []
        for i in range(25):
            key = f"b{batch}-{i}"
            priority, duration = rng.randint(1, 4), rng.uniform(1, 1790)  # no ties
            items.append(task(key, priority=priority, duration=duration))
            expected[key] = (priority, duration, at)  # type: ignore[assignment]
        add_tasks(session_factory, tenant.uid, at, *items)
    now = T0 + timedelta(minutes=160)

    def score(key: str) -> float:
        priority, duration, at = expected[key]  # type: ignore[misc]
        return service.scoring.terms(priority, duration, 0, (now - at).total_seconds()).total

    ranking = sorted(expected, key=score, reverse=True)
    w = add_worker(session_factory, tenant.uid, "w", T0, capacity=150)
    got: list[str] = []
    for size in (1, 7, 30, 100):
        got.extend(claim(session_factory, tenant.uid, w, now, max_tasks=size))
    assert got == ranking[: len(got)] and len(got) == 138
