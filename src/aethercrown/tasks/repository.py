"""Every query of the task scheduler."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, func, insert, literal, select

from aethercrown.core.models import Tenant
from aethercrown.core.tenancy import TenantRepository, where_given
from aethercrown.tasks import scoring
from aethercrown.tasks.models import (
    QUEUED,
    RUNNING,
    Task,
    TaskAttempt,
    TaskDependency,
    TaskWorker,
)


def age_score_sql(now_ts: float) -> Any:
    """The age term in SQL: +1 per minute since scheduling, capped (same as scoring.age_term)."""
    minutes = (literal(now_ts) - Task.enqueued_ts) / 60.0 * scoring.AGE_PER_MINUTE
    return case(
        (minutes >= scoring.AGE_CAP, literal(scoring.AGE_CAP)),
        (minutes <= 0, literal(0.0)),
        else_=minutes,
    )


class TaskRepository(TenantRepository[Task]):
    model = Task
    noun = "Task"

    def list_statement(self, *, status: str | None, type_: str | None) -> Select[Any]:
        # An empty status or type means "any", as None does.
        return where_given(self.select(), (Task.status, status or None), (Task.type, type_ or None))

    def by_key(self, key: str, *, lock: bool = False) -> Task | None:
        stmt = self.select().where(Task.key == key)
        if lock:
            stmt = stmt.with_for_update()
        return self.session.scalar(stmt)

    def by_keys(self, keys: Sequence[str], *, lock: bool = False) -> list[Task]:
        if not keys:
            return []
        stmt = self.select().where(Task.key.in_(list(keys))).order_by(Task.id)
        if lock:
            stmt = stmt.with_for_update()
        return list(self.session.scalars(stmt))

    def keys_by_id(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not ids:
            return {}
        rows = self.session.execute(self.select(Task.id, Task.key).where(Task.id.in_(list(ids))))
        return {r.id: r.key for r in rows}

    def claimable(self, now: datetime, now_ts: float, limit: int) -> list[Task]:
        """The best ``limit`` eligible tasks, locked for this transaction.

        PostgreSQL: FOR UPDATE SKIP LOCKED, so concurrent claimers take different rows without
        waiting. SQLite ignores the clause; there the caller holds the single write lock
        (BEGIN IMMEDIATE), so no other claimer runs between this read and the update.

        The age term is at most AGE_CAP, so no task whose static score is more than AGE_CAP
        below the ``limit``-th best static score can make the top ``limit``: the ordered scan
        is confined to that band (an index range) instead of sorting the whole queue. If rows
        in the band are locked by other claimers, the rest of the queue is tried.
        """
        eligible = (Task.status == QUEUED, Task.blocked_by == 0, Task.available_at <= now)
        # The limit-th best static score; with fewer eligible tasks, no floor at all.
        kth = (
            self.select(Task.static_score)
            .where(*eligible)
            .order_by(Task.static_score.desc())
            .offset(limit - 1)
            .limit(1)
            .scalar_subquery()
        )
        floor = func.coalesce(kth, literal(-1e18)) - scoring.AGE_CAP
        score = Task.static_score + age_score_sql(now_ts)
        stmt = (
            self.select()
            .where(*eligible)
            .order_by(score.desc(), Task.enqueued_ts, Task.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        got = list(self.session.scalars(stmt.where(Task.static_score >= floor)))
        if len(got) < limit:
            # Rows of the band were locked by other claimers (or the queue is short).
            rest = stmt.where(Task.static_score < floor).limit(limit - len(got))
            got.extend(self.session.scalars(rest))
        return got

    def mark_claimed(
        self,
        tasks: Sequence[Task],
        worker_id: uuid.UUID,
        lease_seconds: int,
        lease_end: datetime,
        now: datetime,
    ) -> None:
        """Lease the (already locked) tasks to the worker in one statement."""
        if not tasks:
            return
        self.session.execute(
            self.update()
            .where(Task.id.in_([t.id for t in tasks]))
            .values(
                status=RUNNING,
                worker_id=worker_id,
                attempts=Task.attempts + 1,
                lease_seconds=lease_seconds,
                lease_expires_at=lease_end,
                started_at=func.coalesce(Task.started_at, literal(now, Task.started_at.type)),
            )
            .execution_options(synchronize_session=False)
        )
        # The loaded objects are stale now: reload them if anything reads them again.
        for task in tasks:
            self.session.expire(task)

    def expired_leases(self, now: datetime) -> list[Task]:
        stmt = (
            self.select()
            .where(Task.status == RUNNING, Task.lease_expires_at < now)
            .order_by(Task.id)
            .with_for_update(skip_locked=True)
        )
        return list(self.session.scalars(stmt))

    def running_for(self, worker_id: uuid.UUID) -> int:
        return int(
            self.session.scalar(
                self.select(func.count()).where(Task.status == RUNNING, Task.worker_id == worker_id)
            )
            or 0
        )

    def running_by_worker(self) -> dict[uuid.UUID, int]:
        rows = self.session.execute(
            self.select(Task.worker_id, func.count())
            .where(Task.status == RUNNING)
            .group_by(Task.worker_id)
        )
        return {r[0]: int(r[1]) for r in rows if r[0] is not None}

    def running_tasks_of(self, worker_id: uuid.UUID) -> list[Task]:
        return list(
            self.session.scalars(
                self.select().where(Task.status == RUNNING, Task.worker_id == worker_id)
            )
        )

    def status_counts(self, now: datetime) -> dict[str, int]:
        ready = (Task.status == QUEUED) & (Task.blocked_by == 0) & (Task.available_at <= now)
        backoff = (Task.status == QUEUED) & (Task.blocked_by == 0) & (Task.available_at > now)
        blocked = (Task.status == QUEUED) & (Task.blocked_by > 0)
        row = self.session.execute(
            self.select(
                func.count(case((ready, 1))),
                func.count(case((backoff, 1))),
                func.count(case((blocked, 1))),
                func.count(case((Task.status == RUNNING, 1))),
                func.count(case((Task.status == "completed", 1))),
                func.count(case((Task.status == "failed", 1))),
            )
        ).one()
        names = ("ready", "backoff", "blocked", "running", "completed", "failed")
        return {name: int(value or 0) for name, value in zip(names, row, strict=True)}

    def unblock_dependents(self, task_id: uuid.UUID, now: datetime) -> int:
        """One dependency of each dependent is now complete; those with none left become ready."""
        waiting = select(TaskDependency.task_id).where(
            TaskDependency.tenant_id == self.tenant_id, TaskDependency.depends_on_id == task_id
        )
        result = self.session.execute(
            self.update()
            .where(Task.id.in_(waiting))
            .values(
                blocked_by=Task.blocked_by - 1,
                ready_at=case(
                    (Task.blocked_by == 1, literal(now, Task.ready_at.type)), else_=Task.ready_at
                ),
            )
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


class DependencyRepository(TenantRepository[TaskDependency]):
    model = TaskDependency
    noun = "Dependency"


class AttemptRepository(TenantRepository[TaskAttempt]):
    model = TaskAttempt
    noun = "Attempt"

    def insert_many(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.session.execute(insert(TaskAttempt), rows)

    def current(self, task_id: uuid.UUID, attempt: int) -> TaskAttempt | None:
        return self.session.scalar(
            self.select().where(TaskAttempt.task_id == task_id, TaskAttempt.attempt == attempt)
        )

    def outcome_counts(self, since: datetime) -> dict[str, int]:
        rows = self.session.execute(
            self.select(TaskAttempt.outcome, func.count())
            .where(TaskAttempt.ended_at >= since)
            .group_by(TaskAttempt.outcome)
        )
        return {r[0]: int(r[1]) for r in rows}

    def wait_seconds(self, since: datetime, limit: int) -> list[float]:
        rows = self.session.scalars(
            self.select(TaskAttempt.wait_seconds)
            .where(TaskAttempt.claimed_at >= since)
            .order_by(TaskAttempt.id.desc())
            .limit(limit)
        )
        return [float(v) for v in rows]

    def completed_spans(self, since: datetime, limit: int) -> list[tuple[datetime, datetime]]:
        rows = self.session.execute(
            self.select(TaskAttempt.claimed_at, TaskAttempt.ended_at)
            .where(TaskAttempt.outcome == "completed", TaskAttempt.ended_at >= since)
            .order_by(TaskAttempt.id.desc())
            .limit(limit)
        )
        return [(r[0], r[1]) for r in rows]


class WorkerRepository(TenantRepository[TaskWorker]):
    model = TaskWorker
    noun = "Worker"

    def by_name(self, name: str) -> TaskWorker | None:
        return self.session.scalar(self.select().where(TaskWorker.name == name))

    def live(self, fresh_since: datetime) -> list[TaskWorker]:
        return list(
            self.session.scalars(
                self.select()
                .where(TaskWorker.status == "active", TaskWorker.last_heartbeat_at >= fresh_since)
                .order_by(TaskWorker.id)
            )
        )

    def count_live(self, fresh_since: datetime) -> int:
        return int(
            self.session.scalar(
                self.select(func.count()).where(
                    TaskWorker.status == "active", TaskWorker.last_heartbeat_at >= fresh_since
                )
            )
            or 0
        )

    def missed_heartbeats(self, fresh_since: datetime) -> list[TaskWorker]:
        return list(
            self.session.scalars(
                self.select().where(
                    TaskWorker.status == "active", TaskWorker.last_heartbeat_at < fresh_since
                )
            )
        )

    def count_stale(self, fresh_since: datetime) -> int:
        return int(
            self.session.scalar(
                self.select(func.count()).where(
                    (TaskWorker.status == "stale")
                    | (
                        (TaskWorker.status == "active")
                        & (TaskWorker.last_heartbeat_at < fresh_since)
                    )
                )
            )
            or 0
        )

    def lock_tenant(self) -> None:
        """Serialises worker registration per tenant on PostgreSQL (the quota check)."""
        self.session.execute(select(Tenant.id).where(Tenant.id == self.tenant_id).with_for_update())
