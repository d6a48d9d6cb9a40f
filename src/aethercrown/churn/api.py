"""Churn routes (seed section 1): predict, train, the model registry, batch scoring,
campaigns and their measured uplift."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from aethercrown.churn import schemas, service
from aethercrown.core.auth import TenantReader, TenantWriter
from aethercrown.core.pagination import Pagination
from aethercrown.db.session import DbSession

router = APIRouter(prefix="/api/v1/optimization/churn", tags=["churn"])


@router.post("/predict", response_model=schemas.PredictResponse)
def predict(
    body: schemas.PredictRequest, principal: TenantWriter, session: DbSession
) -> dict[str, Any]:
    if body.users is not None:
        rows = [u.model_dump() for u in body.users]
        return service.predict_behaviour(session, principal.tenant_id, rows, principal.actor)
    assert body.customer_ids is not None
    return service.predict_customers(
        session, principal.tenant_id, body.customer_ids, principal.actor
    )


@router.post("/train", response_model=schemas.TrainResponse, status_code=201)
def train(
    principal: TenantWriter, session: DbSession, body: schemas.TrainRequest | None = None
) -> schemas.TrainResponse:
    body = body or schemas.TrainRequest()
    outcome = service.train(
        session,
        principal.tenant_id,
        actor=principal.actor,
        as_of=body.as_of,
        horizon_days=body.horizon_days,
    )
    return schemas.TrainResponse(
        models=[schemas.ModelOut.model_validate(m) for m in outcome.models]
    )


@router.get("/models", response_model=schemas.ModelList)
def models(principal: TenantReader, session: DbSession) -> schemas.ModelList:
    rows = service.list_models(session, principal.tenant_id)
    return schemas.ModelList(items=[schemas.ModelOut.model_validate(m) for m in rows])


@router.post("/score", response_model=schemas.ScoreRunResponse)
def score_all(principal: TenantWriter, session: DbSession) -> dict[str, Any]:
    return service.score_all(session, principal.tenant_id, actor=principal.actor)


@router.get("/campaigns", response_model=schemas.CampaignPage)
def campaigns(
    principal: TenantReader, session: DbSession, page: Pagination
) -> schemas.CampaignPage:
    items, cursor = service.campaign_page(session, principal.tenant_id, page)
    return schemas.CampaignPage(items=items, next_cursor=cursor)


@router.get("/uplift", response_model=schemas.UpliftReport)
def uplift(principal: TenantReader, session: DbSession) -> dict[str, Any]:
    return service.uplift_report(session, principal.tenant_id)
