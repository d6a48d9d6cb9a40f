"""Routes of the automation runner: its jobs and run history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from aethercrown.automation import periods, schemas, service
from aethercrown.automation.models import AutomationRun
from aethercrown.automation.repository import RunRepository
from aethercrown.core.auth import Authenticated
from aethercrown.core.errors import ProblemError
from aethercrown.core.jobs import all_jobs
from aethercrown.core.pagination import Pagination, paginate
from aethercrown.db.session import DbSession

router = APIRouter(prefix="/api/v1/automation", tags=["automation"])


def _tenant_reader(principal: Authenticated) -> None:
    if not principal.is_operator and not principal.has("tenant:read"):
        raise ProblemError(403, "forbidden", "Forbidden", "Run history needs 'tenant:read'")


@router.get("/runs")
def list_runs(
    principal: Authenticated,
    session: DbSession,
    page: Pagination,
    job: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[schemas.RunStatus | None, Query()] = None,
) -> schemas.RunPage:
    """Newest first. A tenant key sees its own tenant's runs; the operator every run."""
    _tenant_reader(principal)
    repo = RunRepository(session, None if principal.is_operator else principal.tenant_id)
    stmt = repo.list_statement(job=job, status=status)
    rows, cursor = paginate(session, stmt, AutomationRun.id, page, parse=int, descending=True)
    return schemas.RunPage(
        items=[schemas.RunOut.model_validate(r) for r in rows], next_cursor=cursor
    )


@router.get("/jobs")
def list_jobs(principal: Authenticated, session: DbSession) -> list[schemas.JobOut]:
    """Registered jobs; for a tenant key, the interval its tier allows."""
    _tenant_reader(principal)
    tier_min = None
    if not principal.is_operator and principal.tenant_id is not None:
        tier_min = service.tier_min_interval(session, principal.tenant_id)
    out = []
    for job in all_jobs():
        if not principal.is_operator and not job.per_tenant:
            continue
        effective = (
            periods.effective_interval(job.interval_seconds, tier_min) if job.per_tenant else None
        )
        out.append(
            schemas.JobOut(
                name=job.name,
                interval_seconds=job.interval_seconds,
                effective_interval_seconds=effective or job.interval_seconds,
                per_tenant=job.per_tenant,
                description=job.description,
            )
        )
    return out
