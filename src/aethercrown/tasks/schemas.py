"""API shapes of the task scheduler."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TaskKey = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")
MAX_BATCH = 1000


class TaskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = TaskKey
    type: str = Field(min_length=1, max_length=100)
    priority: int = Field(ge=1, le=4, description="1 low … 4 critical", strict=True)
    estimated_duration: float = Field(
        gt=0,
        le=7 * 86400,
        allow_inf_nan=False,
        description="Estimated run time in seconds",
        strict=True,
    )
    dependencies: list[str] = Field(default_factory=list, max_length=100)
    payload: dict[str, Any] = Field(default_factory=dict)
    max_attempts: int = Field(default=3, ge=1, le=20, strict=True)


class ScheduleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tasks: list[TaskIn] = Field(min_length=1, max_length=MAX_BATCH)


class ScoreOut(BaseModel):
    total: float
    priority: float
    age: float
    duration: float
    dependency: float


class TaskOut(BaseModel):
    id: str
    type: str
    priority: int
    estimated_duration: float
    dependencies: list[str]
    payload: dict[str, Any]
    status: str
    blocked_by: int
    dependents: int
    attempts: int
    max_attempts: int
    available_at: datetime
    worker_id: uuid.UUID | None
    lease_expires_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime
    score: ScoreOut


class ScheduleResponse(BaseModel):
    scheduled: int
    tasks: list[TaskOut]


class TaskPage(BaseModel):
    items: list[TaskOut]
    next_cursor: str | None = None


class WorkerRegister(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    capacity: int = Field(default=1, ge=1, le=1000, strict=True)


class WorkerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    capacity: int
    status: str
    registered_at: datetime
    last_heartbeat_at: datetime
    running: int = 0


class AssignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    worker_id: uuid.UUID
    max_tasks: int | None = Field(
        default=None, ge=1, le=100, description="Default: the worker's free capacity", strict=True
    )
    lease_seconds: int = Field(default=300, ge=1, le=86400, strict=True)


class Assignment(BaseModel):
    task: TaskOut
    attempt: int
    lease_expires_at: datetime


class AssignResponse(BaseModel):
    worker_id: uuid.UUID
    assigned: list[Assignment]
    free_capacity: int


class CompleteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    worker_id: uuid.UUID
    result: dict[str, Any] = Field(default_factory=dict)


class FailRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    worker_id: uuid.UUID
    error: str = Field(min_length=1, max_length=10_000)
    retry: bool = Field(default=True, description="False: fail permanently now", strict=True)


class Percentiles(BaseModel):
    p50: float | None
    p95: float | None
    count: int


class BottleneckOut(BaseModel):
    rule: Literal["queue_length", "worker_utilisation", "failure_rate", "blocked_by_dependencies"]
    observed: float
    threshold: float
    detail: str
    action: str


class TaskMetrics(BaseModel):
    window_hours: int
    queue_length: int
    waiting_backoff: int
    blocked: int
    running: int
    completed_total: int
    failed_total: int
    workers_active: int
    workers_stale: int
    capacity: int
    worker_utilisation: float | None
    failure_rate: float | None
    blocked_share: float | None
    wait_seconds: Percentiles
    run_seconds: Percentiles
    throughput_per_hour: float
    attempts_finished: int
    attempts_failed: int
    bottlenecks: list[BottleneckOut]
    max_workers: int
