"""Routes of the AI task scheduler (seed section 1: /api/v1/optimization/tasks/*)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from aethercrown.clock import utcnow
from aethercrown.core.auth import TenantReader, TenantWriter
from aethercrown.core.pagination import Pagination, paginate
from aethercrown.db.session import DbSession, WriteSession
from aethercrown.tasks import schemas, service
from aethercrown.tasks.models import TASK_STATES, Task
from aethercrown.tasks.repository import TaskRepository

router = APIRouter(prefix="/api/v1/optimization/tasks", tags=["tasks"])

TaskKeyPath = Annotated[str, Path(min_length=1, max_length=200)]


@router.post("/schedule", status_code=status.HTTP_201_CREATED)
def schedule_tasks(
    body: schemas.ScheduleRequest, principal: TenantWriter, session: WriteSession
) -> schemas.ScheduleResponse:
    now = utcnow()
    tasks = service.schedule(session, principal.tenant_id, body, principal.actor, now)
    return schemas.ScheduleResponse(
        scheduled=len(tasks), tasks=[service.task_out(t, now) for t in tasks]
    )


@router.post("/assign")
def assign_tasks(
    body: schemas.AssignRequest, principal: TenantWriter, session: WriteSession
) -> schemas.AssignResponse:
    return service.assign(session, principal.tenant_id, body, principal.actor)


@router.get("/metrics")
def task_metrics(
    principal: TenantReader,
    session: DbSession,
    window_hours: Annotated[int, Query(ge=1, le=24 * 90)] = 24,
) -> schemas.TaskMetrics:
    return service.metrics(session, principal.tenant_id, window_hours)


@router.post(
    "/workers/register",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": schemas.WorkerOut, "description": "Already registered"}},
)
def register_worker(
    body: schemas.WorkerRegister,
    principal: TenantWriter,
    session: WriteSession,
    response: Response,
) -> schemas.WorkerOut:
    worker, created = service.register_worker(session, principal.tenant_id, body, principal.actor)
    if not created:
        response.status_code = status.HTTP_200_OK
    return schemas.WorkerOut.model_validate(worker)


@router.get("/workers")
def list_workers(principal: TenantReader, session: DbSession) -> list[schemas.WorkerOut]:
    return service.list_workers(session, principal.tenant_id)


@router.post("/workers/{worker_id}/heartbeat")
def worker_heartbeat(
    worker_id: uuid.UUID, principal: TenantWriter, session: WriteSession
) -> schemas.WorkerOut:
    worker = service.heartbeat(session, principal.tenant_id, worker_id)
    return schemas.WorkerOut.model_validate(worker)


@router.get("")
def list_tasks(
    principal: TenantReader,
    session: DbSession,
    page: Pagination,
    status_: Annotated[str | None, Query(alias="status", pattern="|".join(TASK_STATES))] = None,
    type_: Annotated[str | None, Query(alias="type", max_length=100)] = None,
) -> schemas.TaskPage:
    stmt = TaskRepository(session, principal.tenant_id).list_statement(status=status_, type_=type_)
    rows, cursor = paginate(session, stmt, Task.id, page, parse=uuid.UUID)
    now = utcnow()
    return schemas.TaskPage(items=[service.task_out(t, now) for t in rows], next_cursor=cursor)


@router.get("/{task_id}")
def get_task(task_id: TaskKeyPath, principal: TenantReader, session: DbSession) -> schemas.TaskOut:
    return service.task_out(service.get_task(session, principal.tenant_id, task_id), utcnow())


@router.post("/{task_id}/complete")
def complete_task(
    task_id: TaskKeyPath,
    body: schemas.CompleteRequest,
    principal: TenantWriter,
    session: WriteSession,
) -> schemas.TaskOut:
    task = service.complete(session, principal.tenant_id, task_id, body)
    return service.task_out(task, utcnow())


@router.post("/{task_id}/fail")
def fail_task(
    task_id: TaskKeyPath,
    body: schemas.FailRequest,
    principal: TenantWriter,
    session: WriteSession,
) -> schemas.TaskOut:
    task = service.fail(session, principal.tenant_id, task_id, body)
    return service.task_out(task, utcnow())
