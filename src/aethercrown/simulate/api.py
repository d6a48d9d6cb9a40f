"""Routes under /api/v1/simulate: the ground truth of a tenant loaded from the demo generator."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from aethercrown.core.auth import TenantReader
from aethercrown.db.session import DbSession
from aethercrown.simulate import service
from aethercrown.simulate.schemas import ChurnProbabilitiesOut, TruthOut

router = APIRouter(prefix="/api/v1/simulate", tags=["simulate"])


@router.get("/truth", response_model=TruthOut)
def get_truth(principal: TenantReader, session: DbSession) -> TruthOut:
    """The stored truth of the caller's simulated company (404 when its data was not simulated)."""
    return service.truth_out(session, principal.tenant_id)


@router.get("/truth/churn-probabilities", response_model=ChurnProbabilitiesOut)
def churn_probabilities(
    principal: TenantReader,
    session: DbSession,
    as_of: Annotated[date, Query(description="Start of the horizon (inside the window)")],
    horizon_days: Annotated[int, Query(ge=1, le=730)] = 30,
    mode: Annotated[Literal["path", "as_of"], Query()] = "path",
) -> ChurnProbabilitiesOut:
    """Every customer alive at ``as_of``: the true probability of churning within the horizon,
    and whether it did — the oracle a churn model is scored against (the company is regenerated
    from its stored seed, so the first call for a tenant takes seconds)."""
    return service.churn_probabilities_out(session, principal.tenant_id, as_of, horizon_days, mode)
