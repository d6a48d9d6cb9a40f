"""Routes of the executive dashboard (seed section 3). POST because they take a period and
filters; every figure is computed from the tenant's stored data."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from aethercrown.analytics import service
from aethercrown.analytics.schemas import DashboardSection, PeriodRequest, RevenueResponse
from aethercrown.core.auth import TenantReader
from aethercrown.core.responses import json_response
from aethercrown.db.session import DbSession

router = APIRouter(prefix="/api/v1/dashboard", tags=["dashboard"])


# The routes return their JSON directly (core.responses.json_response).


@router.post("/executive/summary", response_model=DashboardSection)
def executive_summary(body: PeriodRequest, principal: TenantReader, session: DbSession) -> Response:
    return json_response(service.executive_summary(session, principal.tenant_id, body))


@router.post("/metrics/revenue", response_model=RevenueResponse)
def revenue_metrics(body: PeriodRequest, principal: TenantReader, session: DbSession) -> Response:
    return json_response(service.revenue(session, principal.tenant_id, body))


@router.post("/metrics/ai-performance", response_model=DashboardSection)
def ai_performance(body: PeriodRequest, principal: TenantReader, session: DbSession) -> Response:
    return json_response(service.ai_performance(session, principal.tenant_id, body))


@router.post("/metrics/system-health", response_model=DashboardSection)
def system_health(body: PeriodRequest, principal: TenantReader, session: DbSession) -> Response:
    return json_response(service.system_health(session, principal.tenant_id, body))


@router.post("/metrics/growth", response_model=DashboardSection)
def growth_metrics(body: PeriodRequest, principal: TenantReader, session: DbSession) -> Response:
    return json_response(service.growth(session, principal.tenant_id, body))
