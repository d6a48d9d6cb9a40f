"""Routes of the budget optimizer (seed section 1: POST /optimization/budget/optimize)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from aethercrown.budget import schemas, service
from aethercrown.budget.repository import DecisionRepository
from aethercrown.core.auth import TenantReader
from aethercrown.core.models import Decision
from aethercrown.core.pagination import Pagination, paginate
from aethercrown.db.session import DbSession

router = APIRouter(prefix="/api/v1/optimization/budget", tags=["budget"])


@router.post("/optimize", response_model=schemas.OptimizeResult)
def optimize_budget(
    body: schemas.OptimizeRequest, principal: TenantReader, session: DbSession
) -> schemas.OptimizeResult:
    """Split a marketing budget across channels for the highest expected return.

    Curves are fitted per channel from `historical_data` (or the stored marketing data); the
    split is the global optimum under the constraints (also for S-shaped curves); channels whose
    history supports no curve keep the ROI-proportional rule, labelled as fallbacks."""
    return service.optimize(session, principal.tenant_id, body)


@router.get("/allocations", response_model=schemas.AllocationPage)
def list_allocations(
    principal: TenantReader, session: DbSession, page: Pagination
) -> schemas.AllocationPage:
    """The daily automated allocations, newest first, with predicted and realised return."""
    repo = DecisionRepository(session, principal.tenant_id)
    rows, cursor = paginate(
        session, repo.allocations(), Decision.id, page, parse=uuid.UUID, descending=True
    )
    return schemas.AllocationPage(
        items=[service.allocation_record(d) for d in rows], next_cursor=cursor
    )
