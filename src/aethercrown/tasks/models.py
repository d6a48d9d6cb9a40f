"""Scheduled tasks, their dependency edges, claim attempts, and the workers that run them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from aethercrown.clock import utcnow
from aethercrown.core.tenancy import TenantScoped
from aethercrown.db.base import Base, BigIntPK, UUIDPrimaryKey

# Task states. A queued task is claimable once blocked_by is 0 and available_at has passed.
QUEUED = "queued"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"  # terminal: attempts exhausted or failed without retry
TASK_STATES = (QUEUED, RUNNING, COMPLETED, FAILED)


class Task(TenantScoped, UUIDPrimaryKey, Base):
    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("tenant_id", "key"),
        # The claim query: a tenant's queued, unblocked tasks.
        Index("ix_tasks_claim", "tenant_id", "status", "blocked_by", "static_score"),
        # Expired-lease sweep.
        Index("ix_tasks_lease", "tenant_id", "status", "lease_expires_at"),
        # A worker's running tasks (its free capacity, lease renewal).
        Index("ix_tasks_worker_status", "worker_id", "status"),
    )

    # The client's id for the task, unique within the tenant; the API addresses tasks by it.
    key: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(100))
    priority: Mapped[int] = mapped_column(Integer)
    estimated_seconds: Mapped[float] = mapped_column(Float)
    dependencies: Mapped[list[Any]] = mapped_column(default=list)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default=QUEUED)
    # Dependencies not yet completed; 0 = eligible.
    blocked_by: Mapped[int] = mapped_column(Integer, default=0)
    # Tasks that depend on this one (the dependency term of the score).
    dependents: Mapped[int] = mapped_column(Integer, default=0)
    # priority, duration and dependency terms of the score; the age term is added at claim time.
    static_score: Mapped[float] = mapped_column(Float)
    # Unix seconds when the task was scheduled: the age term is computed from it in SQL on both
    # backends without dialect-specific date arithmetic.
    enqueued_ts: Mapped[float] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    # Earliest next claim (retry backoff); ready_at = when it last became claimable (wait time).
    available_at: Mapped[datetime] = mapped_column(default=utcnow)
    ready_at: Mapped[datetime | None] = mapped_column(nullable=True)
    worker_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    # Length of the current lease; a heartbeat of the worker renews it by as much.
    lease_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TaskDependency(TenantScoped, Base):
    """An edge: ``task_id`` waits for ``depends_on_id``."""

    __tablename__ = "task_dependencies"

    task_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    depends_on_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class TaskAttempt(TenantScoped, Base):
    """One claim of a task by a worker; its outcome feeds failure rate and percentiles."""

    __tablename__ = "task_attempts"
    __table_args__ = (
        # A task is claimed at most once per attempt number: a double claim cannot be stored.
        UniqueConstraint("task_id", "attempt"),
        Index("ix_task_attempts_tenant_claimed", "tenant_id", "claimed_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    worker_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("task_workers.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    wait_seconds: Mapped[float] = mapped_column(Float)
    # running | completed | failed | expired
    outcome: Mapped[str] = mapped_column(String(20), default=RUNNING)
    ended_at: Mapped[datetime | None] = mapped_column(nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class TaskWorker(TenantScoped, UUIDPrimaryKey, Base):
    __tablename__ = "task_workers"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    name: Mapped[str] = mapped_column(String(200))
    # How many tasks the worker runs at once.
    capacity: Mapped[int] = mapped_column(Integer, default=1)
    # active | stale (missed heartbeats) | retired
    status: Mapped[str] = mapped_column(String(20), default="active")
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
