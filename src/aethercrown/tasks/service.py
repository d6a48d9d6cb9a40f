"""Scheduling, claiming, finishing and measuring tasks. Never commits: the caller's unit of work
does. Functions that claim or change tasks must run in a ``db.session.write_transaction`` (on
SQLite that is the single writer; on PostgreSQL row locks do the work)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from aethercrown.clock import utcnow
from aethercrown.core.errors import Conflict, InvalidInput, NotFound, ProblemError, field_error
from aethercrown.core.ledger import audit, record_decision
from aethercrown.core.numbers import percentiles
from aethercrown.core.tenant_repository import find_tenant, tenant_or_404
from aethercrown.db.base import new_id
from aethercrown.tasks import graph, schemas, scoring, stats
from aethercrown.tasks.models import (
    COMPLETED,
    FAILED,
    QUEUED,
    RUNNING,
    Task,
    TaskDependency,
    TaskWorker,
)
from aethercrown.tasks.repository import (
    AttemptRepository,
    DependencyRepository,
    TaskRepository,
    WorkerRepository,
)

# A worker that has not sent a heartbeat (or asked for work) for this long is stale: it no longer
# counts against the tier's AI agent quota and gets no new tasks until it heartbeats again.
WORKER_STALE_SECONDS = 90
HEARTBEAT_RESOLUTION = timedelta(seconds=5)
# Percentiles are computed over at most this many recent attempts.
PERCENTILE_SAMPLE = 10_000
MODEL_VERSION = "1"


def _ts(moment: datetime) -> float:
    return moment.timestamp()


def task_out(task: Task, now: datetime) -> schemas.TaskOut:
    waited = max(0.0, _ts(now) - task.enqueued_ts)
    parts = scoring.terms(task.priority, task.estimated_seconds, task.dependents, waited)
    return schemas.TaskOut(
        id=task.key,
        type=task.type,
        priority=task.priority,
        estimated_duration=task.estimated_seconds,
        dependencies=list(task.dependencies),
        payload=task.payload,
        status=task.status,
        blocked_by=task.blocked_by,
        dependents=task.dependents,
        attempts=task.attempts,
        max_attempts=task.max_attempts,
        available_at=task.available_at,
        worker_id=task.worker_id,
        lease_expires_at=task.lease_expires_at,
        started_at=task.started_at,
        finished_at=task.finished_at,
        result=task.result,
        error=task.error,
        created_at=task.created_at,
        score=schemas.ScoreOut(
            total=round(parts.total, 3),
            priority=parts.priority,
            age=round(parts.age, 3),
            duration=round(parts.duration, 3),
            dependency=parts.dependency,
        ),
    )


# --- scheduling -----------------------------------------------------------------------------


def schedule(
    session: Session,
    tenant_id: uuid.UUID,
    body: schemas.ScheduleRequest,
    actor: str,
    now: datetime | None = None,
) -> list[Task]:
    now = now or utcnow()
    repo = TaskRepository(session, tenant_id)
    position = _batch_positions(body)
    deps_of = {item.id: list(dict.fromkeys(item.dependencies)) for item in body.tasks}
    already = repo.by_keys(list(position))
    if already:
        names = ", ".join(t.key for t in already[:20])
        raise Conflict(f"Tasks already scheduled: {names}", slug="duplicate-task")
    referenced = sorted({d for deps in deps_of.values() for d in deps if d not in position})
    # Locked: their dependents counter (and so their score) changes below.
    stored = {t.key: t for t in repo.by_keys(referenced, lock=True)}
    _check_dependencies(deps_of, position, stored)
    dependents = _count_dependents(deps_of, position, stored)
    created = [
        repo.add(_new_task(item, deps_of[item.id], position, stored, dependents[item.id], now))
        for item in body.tasks
    ]
    ids = {t.key: t.id for t in created} | {k: t.id for k, t in stored.items()}
    edges = DependencyRepository(session, tenant_id)
    session.flush()
    for task in created:
        for dep in task.dependencies:
            edges.add(TaskDependency(task_id=task.id, depends_on_id=ids[dep]))
    audit(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="tasks.scheduled",
        target_type="task",
        target_id=created[0].key if len(created) == 1 else f"{len(created)} tasks",
        details={"count": len(created), "ids": [t.key for t in created[:100]]},
    )
    return created


def _batch_positions(body: schemas.ScheduleRequest) -> dict[str, int]:
    """Each task id's position in the batch; an id given twice is a 422."""
    seen: dict[str, int] = {}
    for i, item in enumerate(body.tasks):
        if item.id in seen:
            raise InvalidInput(
                f"Task id '{item.id}' appears twice in the batch",
                [field_error(["tasks", i, "id"], f"duplicate of tasks[{seen[item.id]}]")],
            )
        seen[item.id] = i
    return seen


def _check_dependencies(
    deps_of: dict[str, list[str]], position: dict[str, int], stored: dict[str, Task]
) -> None:
    """Every dependency exists (in the batch or stored), none has failed, and none is a cycle."""
    unknown = graph.unknown_dependencies(deps_of, set(stored))
    if unknown:
        listed = ", ".join(f"'{dep}' (of '{task}')" for task, _, dep in unknown[:20])
        raise InvalidInput(
            f"Unknown dependencies: {listed}",
            [
                field_error(["tasks", position[task], "dependencies", i], f"unknown task '{dep}'")
                for task, i, dep in unknown
            ],
        )
    dead = [
        (task, d)
        for task, deps in deps_of.items()
        for d in deps
        if d in stored and stored[d].status == FAILED
    ]
    if dead:
        waiter, dep = dead[0]
        raise InvalidInput(
            f"Task '{waiter}' depends on '{dep}', which has failed permanently",
            [field_error(["tasks", position[waiter], "dependencies"], f"'{dep}' has failed")],
        )
    cycle = graph.find_cycle(deps_of)
    if cycle:
        path = " → ".join(cycle)
        raise InvalidInput(
            f"Dependency cycle: {path}",
            [field_error(["tasks", position[cycle[0]], "dependencies"], f"cycle {path}")],
        )


def _count_dependents(
    deps_of: dict[str, list[str]], position: dict[str, int], stored: dict[str, Task]
) -> dict[str, int]:
    """How many tasks wait on each new task; stored tasks that gain dependents are rescored."""
    dependents: dict[str, int] = dict.fromkeys(position, 0)
    for deps in deps_of.values():
        for dep in deps:
            if dep in dependents:
                dependents[dep] += 1
            else:
                stored_dep = stored[dep]
                stored_dep.dependents += 1
                stored_dep.static_score = scoring.static_score(
                    stored_dep.priority, stored_dep.estimated_seconds, stored_dep.dependents
                )
    return dependents


def _new_task(
    item: schemas.TaskIn,
    deps: list[str],
    position: dict[str, int],
    stored: dict[str, Task],
    dependents: int,
    now: datetime,
) -> Task:
    blocked = sum(1 for d in deps if d in position or stored[d].status != COMPLETED)
    return Task(
        id=new_id(),
        key=item.id,
        type=item.type,
        priority=item.priority,
        estimated_seconds=item.estimated_duration,
        dependencies=deps,
        payload=item.payload,
        status=QUEUED,
        blocked_by=blocked,
        dependents=dependents,
        static_score=scoring.static_score(item.priority, item.estimated_duration, dependents),
        enqueued_ts=_ts(now),
        attempts=0,
        max_attempts=item.max_attempts,
        available_at=now,
        ready_at=now if blocked == 0 else None,
        created_at=now,
    )


def get_task(session: Session, tenant_id: uuid.UUID, key: str) -> Task:
    task = TaskRepository(session, tenant_id).by_key(key)
    if task is None:
        raise NotFound("Task", key)
    return task


# --- workers --------------------------------------------------------------------------------


def _fresh_since(now: datetime) -> datetime:
    return now - timedelta(seconds=WORKER_STALE_SECONDS)


def register_worker(
    session: Session,
    tenant_id: uuid.UUID,
    body: schemas.WorkerRegister,
    actor: str,
    now: datetime | None = None,
) -> tuple[TaskWorker, bool]:
    """Register (or re-register by name) a worker; the tier caps live workers."""
    now = now or utcnow()
    workers = WorkerRepository(session, tenant_id)
    workers.lock_tenant()
    existing = workers.by_name(body.name)
    live = workers.count_live(_fresh_since(now))
    counted = (
        existing is not None
        and existing.status == "active"
        and (existing.last_heartbeat_at >= _fresh_since(now))
    )
    _check_worker_quota(session, tenant_id, live - (1 if counted else 0))
    if existing is not None:
        existing.capacity = body.capacity
        existing.status = "active"
        existing.last_heartbeat_at = now
        return existing, False
    worker = workers.add(
        TaskWorker(name=body.name, capacity=body.capacity, registered_at=now, last_heartbeat_at=now)
    )
    session.flush()
    audit(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="task_worker.registered",
        target_type="task_worker",
        target_id=worker.id,
        details={"name": worker.name, "capacity": worker.capacity},
    )
    return worker, True


def _check_worker_quota(session: Session, tenant_id: uuid.UUID, live_others: int) -> None:
    tenant = tenant_or_404(session, tenant_id)
    cap = tenant.tier.max_ai_agents
    if live_others >= cap:
        raise ProblemError(
            403,
            "quota-exceeded",
            "AI agent quota reached",
            f"The {tenant.tier.name} tier allows {cap} live workers (AI agents); {live_others} "
            "are live. Wait for one to go stale, or scale the tenant to a larger tier.",
        )


def heartbeat(
    session: Session, tenant_id: uuid.UUID, worker_id: uuid.UUID, now: datetime | None = None
) -> TaskWorker:
    """A worker is alive: refresh it and renew the leases of the tasks it is running."""
    now = now or utcnow()
    workers = WorkerRepository(session, tenant_id)
    worker = workers.get_or_404(worker_id)
    if worker.status != "active" or worker.last_heartbeat_at < _fresh_since(now):
        workers.lock_tenant()
        _check_worker_quota(session, tenant_id, workers.count_live(_fresh_since(now)))
    worker.status = "active"
    worker.last_heartbeat_at = now
    for task in TaskRepository(session, tenant_id).running_tasks_of(worker.id):
        task.lease_expires_at = now + timedelta(seconds=task.lease_seconds or 0)
    return worker


def list_workers(
    session: Session, tenant_id: uuid.UUID, now: datetime | None = None
) -> list[schemas.WorkerOut]:
    now = now or utcnow()
    running = TaskRepository(session, tenant_id).running_by_worker()
    out = []
    for worker in WorkerRepository(session, tenant_id).all():
        item = schemas.WorkerOut.model_validate(worker)
        if worker.status == "active" and worker.last_heartbeat_at < _fresh_since(now):
            item.status = "stale"
        item.running = running.get(worker.id, 0)
        out.append(item)
    return out


def live_worker_count(session: Session, tenant_id: uuid.UUID, now: datetime | None = None) -> int:
    """Workers counted against the tier's AI agent quota."""
    return WorkerRepository(session, tenant_id).count_live(_fresh_since(now or utcnow()))


# --- claiming -------------------------------------------------------------------------------


def requeue_expired(session: Session, tenant_id: uuid.UUID, now: datetime) -> int:
    """Every running task whose lease ran out goes back to the queue (or fails at its limit)."""
    repo = TaskRepository(session, tenant_id)
    attempts = AttemptRepository(session, tenant_id)
    expired = repo.expired_leases(now)
    for task in expired:
        ended = task.lease_expires_at.isoformat() if task.lease_expires_at else "?"
        message = f"lease expired at {ended}"
        _end_attempt(attempts, task, "expired", now, message)
        # The backoff counts from when the lease ended, not from when the sweep noticed.
        _retry_or_fail(task, message, task.lease_expires_at or now, retry=True)
    return len(expired)


def _end_attempt(
    attempts: AttemptRepository, task: Task, outcome: str, now: datetime, error: str | None = None
) -> None:
    """The task's current attempt, when it has one, ended now with ``outcome`` (and ``error``)."""
    attempt = attempts.current(task.id, task.attempts)
    if attempt is not None:
        attempt.outcome = outcome
        attempt.ended_at = now
        if error is not None:
            attempt.error = error


def _retry_or_fail(task: Task, error: str, now: datetime, *, retry: bool) -> None:
    task.worker_id = None
    task.lease_expires_at = None
    task.lease_seconds = None
    task.error = error
    if retry and task.attempts < task.max_attempts:
        task.status = QUEUED
        task.available_at = now + timedelta(seconds=scoring.backoff_seconds(task.attempts))
        task.ready_at = task.available_at
    else:
        task.status = FAILED
        task.finished_at = now


def assign(
    session: Session,
    tenant_id: uuid.UUID,
    body: schemas.AssignRequest,
    actor: str,
    now: datetime | None = None,
) -> schemas.AssignResponse:
    now = now or utcnow()
    workers = WorkerRepository(session, tenant_id)
    worker = workers.get_or_404(body.worker_id)
    if worker.status == "retired":
        raise Conflict(f"Worker {worker.id} is retired", slug="worker-retired")
    if worker.status != "active" or worker.last_heartbeat_at < _fresh_since(now):
        workers.lock_tenant()
        _check_worker_quota(session, tenant_id, workers.count_live(_fresh_since(now)))
    # Asking for work is a sign of life; recorded at most every HEARTBEAT_RESOLUTION, so that
    # a busy worker's claims do not each rewrite its row.
    if worker.status != "active" or now - worker.last_heartbeat_at >= HEARTBEAT_RESOLUTION:
        worker.status = "active"
        worker.last_heartbeat_at = now
    requeue_expired(session, tenant_id, now)

    repo = TaskRepository(session, tenant_id)
    free = worker.capacity - repo.running_for(worker.id)
    wanted = min(body.max_tasks or free, free)
    if wanted <= 0:
        return schemas.AssignResponse(worker_id=worker.id, assigned=[], free_capacity=0)

    tasks = repo.claimable(now, _ts(now), wanted)
    lease_end = now + timedelta(seconds=body.lease_seconds)
    assigned: list[schemas.Assignment] = []
    attempt_rows: list[dict[str, Any]] = []
    for task in tasks:
        out = task_out(task, now)
        attempt = task.attempts + 1
        ready = task.ready_at or task.created_at
        attempt_rows.append(
            {
                "tenant_id": tenant_id,
                "task_id": task.id,
                "worker_id": worker.id,
                "attempt": attempt,
                "score": out.score.total,
                "claimed_at": now,
                "wait_seconds": max(0.0, (now - ready).total_seconds()),
                "outcome": RUNNING,
            }
        )
        out.status, out.worker_id, out.attempts = RUNNING, worker.id, attempt
        out.lease_expires_at, out.started_at = lease_end, task.started_at or now
        assigned.append(schemas.Assignment(task=out, attempt=attempt, lease_expires_at=lease_end))
    # One UPDATE and one INSERT for the whole batch (the loaded rows were only read).
    repo.mark_claimed(tasks, worker.id, body.lease_seconds, lease_end, now)
    AttemptRepository(session, tenant_id).insert_many(attempt_rows)
    if assigned:
        # One ledger entry per assignment round: which tasks went to which worker, and why.
        record_decision(
            session,
            tenant_id=tenant_id,
            kind="task_assignment",
            subject_type="task_worker",
            subject_id=worker.id,
            inputs={"worker": str(worker.id), "free": free, "at": now.isoformat()},
            output={
                "tasks": [
                    {"id": a.task.id, "attempt": a.attempt, "score": a.task.score.model_dump()}
                    for a in assigned
                ],
                "lease_expires_at": lease_end.isoformat(),
            },
            model="priority-score",
            model_version=MODEL_VERSION,
            predicted_value=sum(a.task.estimated_duration for a in assigned),
            actor=actor,
        )
    return schemas.AssignResponse(
        worker_id=worker.id, assigned=assigned, free_capacity=free - len(assigned)
    )


def _leased_task(session: Session, tenant_id: uuid.UUID, key: str, worker_id: uuid.UUID) -> Task:
    task = TaskRepository(session, tenant_id).by_key(key, lock=True)
    if task is None:
        raise NotFound("Task", key)
    if task.status != RUNNING or task.worker_id != worker_id:
        raise Conflict(
            f"Task '{key}' is not leased to worker {worker_id} (status {task.status}); "
            "its lease may have expired and the task been requeued",
            slug="lease-lost",
        )
    return task


def complete(
    session: Session,
    tenant_id: uuid.UUID,
    key: str,
    body: schemas.CompleteRequest,
    now: datetime | None = None,
) -> Task:
    now = now or utcnow()
    task = _leased_task(session, tenant_id, key, body.worker_id)
    _end_attempt(AttemptRepository(session, tenant_id), task, COMPLETED, now)
    task.status = COMPLETED
    task.result = body.result
    task.error = None
    task.finished_at = now
    task.lease_expires_at = None
    task.lease_seconds = None
    session.flush()
    TaskRepository(session, tenant_id).unblock_dependents(task.id, now)
    return task


def fail(
    session: Session,
    tenant_id: uuid.UUID,
    key: str,
    body: schemas.FailRequest,
    now: datetime | None = None,
) -> Task:
    now = now or utcnow()
    task = _leased_task(session, tenant_id, key, body.worker_id)
    _end_attempt(AttemptRepository(session, tenant_id), task, FAILED, now, body.error)
    _retry_or_fail(task, body.error, now, retry=body.retry)
    return task


# --- housekeeping and metrics ---------------------------------------------------------------


def housekeeping(session: Session, tenant_id: uuid.UUID, now: datetime) -> dict[str, Any]:
    """Expire leases, requeue their tasks, and mark workers that missed heartbeats stale."""
    requeued = requeue_expired(session, tenant_id, now)
    stale = WorkerRepository(session, tenant_id).missed_heartbeats(_fresh_since(now))
    for worker in stale:
        worker.status = "stale"
    return {"leases_expired": requeued, "workers_marked_stale": len(stale)}


def metrics(
    session: Session, tenant_id: uuid.UUID, window_hours: int, now: datetime | None = None
) -> schemas.TaskMetrics:
    now = now or utcnow()
    since = now - timedelta(hours=window_hours)
    counts = TaskRepository(session, tenant_id).status_counts(now)
    workers = WorkerRepository(session, tenant_id)
    live = workers.live(_fresh_since(now))
    capacity = sum(w.capacity for w in live)
    attempts = AttemptRepository(session, tenant_id)
    outcomes = attempts.outcome_counts(since)
    finished = sum(v for k, v in outcomes.items() if k != RUNNING)
    failed = outcomes.get(FAILED, 0) + outcomes.get("expired", 0)
    waits = attempts.wait_seconds(since, PERCENTILE_SAMPLE)
    runs = [
        (end - start).total_seconds()
        for start, end in attempts.completed_spans(since, PERCENTILE_SAMPLE)
    ]
    queue_length = counts["ready"] + counts["backoff"]
    open_tasks = queue_length + counts["blocked"] + counts["running"]
    utilisation = counts["running"] / capacity if capacity else None
    failure_rate = failed / finished if finished else None
    blocked_share = counts["blocked"] / open_tasks if open_tasks else None
    tenant = find_tenant(session, tenant_id)
    found = stats.bottlenecks(
        queue_length=queue_length,
        workers=len(live),
        utilisation=utilisation,
        failure_rate=failure_rate,
        blocked_share=blocked_share,
    )
    return schemas.TaskMetrics(
        window_hours=window_hours,
        queue_length=queue_length,
        waiting_backoff=counts["backoff"],
        blocked=counts["blocked"],
        running=counts["running"],
        completed_total=counts["completed"],
        failed_total=counts["failed"],
        workers_active=len(live),
        workers_stale=workers.count_stale(_fresh_since(now)),
        capacity=capacity,
        worker_utilisation=_round(utilisation),
        failure_rate=_round(failure_rate),
        blocked_share=_round(blocked_share),
        wait_seconds=_percentiles(waits),
        run_seconds=_percentiles(runs),
        throughput_per_hour=round(outcomes.get(COMPLETED, 0) / window_hours, 3),
        attempts_finished=finished,
        attempts_failed=failed,
        bottlenecks=[schemas.BottleneckOut(**b.__dict__) for b in found],
        max_workers=tenant.tier.max_ai_agents if tenant else 0,
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _percentiles(values: list[float]) -> schemas.Percentiles:
    p50, p95 = percentiles(values, 50, 95)
    return schemas.Percentiles(p50=p50, p95=p95, count=len(values))
