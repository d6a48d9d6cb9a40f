"""Routes of the investor view (seed section 8). Everything needs at least the ``investor`` scope
except the public metrics a tenant opted into."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from aethercrown.analytics.schemas import MONTH_PATTERN
from aethercrown.core.auth import InvestorReader, TenantWriter
from aethercrown.core.pagination import Pagination
from aethercrown.core.responses import json_response
from aethercrown.db.session import DbSession
from aethercrown.investor import report, service
from aethercrown.investor.schemas import FeedPage, InvestorView, PublicMetricsSettings, ReportFormat

router = APIRouter(prefix="/api/v1/investor", tags=["investor"])


@router.get("/dashboard/live", response_model=InvestorView)
def live_dashboard(principal: InvestorReader, session: DbSession) -> Response:
    return json_response(service.live(session, principal.tenant_id))


@router.get("/activity-feed", response_model=FeedPage)
def activity_feed(
    principal: InvestorReader,
    session: DbSession,
    page: Pagination,
    kind: Annotated[
        str | None, Query(min_length=1, max_length=50, description="Kind prefix")
    ] = None,
) -> FeedPage:
    return service.activity_feed(session, principal.tenant_id, page, kind)


@router.get("/kpis", response_model=InvestorView)
def kpis(
    principal: InvestorReader,
    session: DbSession,
    months: Annotated[int, Query(ge=1, le=120, description="Trailing months")] = 12,
) -> Response:
    return json_response(service.kpis(session, principal.tenant_id, months))


@router.get(
    "/reports/monthly",
    responses={200: {"content": {"application/pdf": {}, "text/html": {}}}},
    response_model=None,
)
def monthly_report(
    principal: InvestorReader,
    session: DbSession,
    month: Annotated[
        str | None, Query(pattern=MONTH_PATTERN, description="YYYY-MM; default last month")
    ] = None,
    format: Annotated[ReportFormat, Query(description="json, html or pdf")] = "json",
) -> Response:
    if month is not None:
        service.validate_month(month)
    body = service.monthly_report(session, principal.tenant_id, month)
    if format == "html":
        return HTMLResponse(report.render_html(body))
    if format == "pdf":
        filename = f"report-{body['month']}.pdf"
        return Response(
            report.render_pdf(body),
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{filename}"'},
        )
    return json_response(body)


@router.get("/metrics/public", response_model=InvestorView)
def public_metrics(
    session: DbSession,
    tenant: Annotated[str, Query(min_length=1, max_length=63, description="The tenant's slug")],
) -> Response:
    return json_response(service.public_metrics(session, tenant))


@router.get("/metrics/public/settings", response_model=PublicMetricsSettings)
def get_public_settings(principal: InvestorReader, session: DbSession) -> PublicMetricsSettings:
    return service.public_settings(session, principal.tenant_id)


@router.put("/metrics/public/settings", response_model=PublicMetricsSettings)
def set_public_settings(
    body: PublicMetricsSettings, principal: TenantWriter, session: DbSession
) -> PublicMetricsSettings:
    return service.set_public_settings(session, principal.tenant_id, body, principal.actor)
