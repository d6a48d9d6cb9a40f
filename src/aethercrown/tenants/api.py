"""Routes for tenants (seed section 7) and the operator's platform tiers."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status

from aethercrown.core.auth import AdminPrincipal, Authenticated, AuthenticatedReader
from aethercrown.core.models import Tenant
from aethercrown.core.pagination import Pagination, paginate
from aethercrown.core.readroute import read_route
from aethercrown.db.session import DbSession
from aethercrown.tenants import schemas, service
from aethercrown.tenants.repository import TenantRepository, TierRepository

router = APIRouter(prefix="/api/v1/tenants", tags=["tenants"])
tiers_router = APIRouter(prefix="/api/v1/platform/tiers", tags=["platform"])


# Declared first: the router tries its routes in order (twice per request), and this is the
# hot read. ":uuid": "/create" (POST) must not match this path, so GET or PATCH on it answers
# 405.
@read_route(router, "/{tenant_id:uuid}", response_model=schemas.TenantOut)
async def get_tenant(tenant_id: uuid.UUID, read: AuthenticatedReader) -> dict[str, Any]:
    # A hot read (core.readroute): a primary-key read on the event loop, in a read unit
    # without an ORM session. The plain values are validated once, by the response model.
    return service.view_tenant(read.unit, read.principal, tenant_id)


@router.post("/create", status_code=status.HTTP_201_CREATED, response_model=schemas.TenantCreated)
def create_tenant(
    body: schemas.TenantCreate, principal: AdminPrincipal, session: DbSession
) -> schemas.TenantCreated:
    tenant, issued = service.create_tenant(session, body, principal.actor)
    return schemas.TenantCreated(
        **schemas.TenantOut.model_validate(tenant).model_dump(), api_key=issued.secret or ""
    )


@router.get("/", response_model=schemas.TenantPage)
def list_tenants(
    principal: AdminPrincipal,
    session: DbSession,
    page: Pagination,
    tier: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[str | None, Query(pattern="^(active|suspended)$")] = None,
    q: Annotated[str | None, Query(max_length=100, description="Name or slug contains")] = None,
) -> schemas.TenantPage:
    stmt = TenantRepository(session).list_statement(tier=tier, status=status, q=q)
    rows, cursor = paginate(session, stmt, Tenant.id, page, parse=uuid.UUID)
    return schemas.TenantPage(
        items=[schemas.TenantOut.model_validate(t) for t in rows], next_cursor=cursor
    )


@router.patch("/{tenant_id:uuid}", response_model=schemas.TenantOut)
def update_tenant(
    tenant_id: uuid.UUID, body: schemas.TenantUpdate, principal: Authenticated, session: DbSession
) -> schemas.TenantOut:
    return schemas.TenantOut.model_validate(
        service.update_tenant(session, principal, tenant_id, body)
    )


@router.post("/{tenant_id}/scale", response_model=schemas.TenantOut)
def scale_tenant(
    tenant_id: uuid.UUID, body: schemas.TenantScale, principal: AdminPrincipal, session: DbSession
) -> schemas.TenantOut:
    return schemas.TenantOut.model_validate(
        service.scale_tenant(session, tenant_id, body.tier, principal.actor)
    )


def flush_request_counts(request: Request) -> None:
    """Write this process's pending request counts first, so the figures include them.

    Runs before the request's session opens: on SQLite a read transaction started earlier
    would not see rows committed after it began.
    """
    request.app.state.request_counter.flush(request.app.state.engine)


@router.get("/{tenant_id}/metrics", response_model=schemas.TenantMetrics)
def tenant_metrics(
    _flushed: Annotated[None, Depends(flush_request_counts)],
    tenant_id: uuid.UUID,
    principal: Authenticated,
    session: DbSession,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
) -> schemas.TenantMetrics:
    tenant = service.visible_tenant(session, principal, tenant_id)
    return service.tenant_metrics(session, tenant, days)


@tiers_router.get("", response_model=list[schemas.TierOut])
def list_tiers(principal: Authenticated, session: DbSession) -> list[schemas.TierOut]:
    return [schemas.TierOut.model_validate(t) for t in TierRepository(session).all()]


@tiers_router.patch("/{slug}", response_model=schemas.TierOut)
def update_tier(
    slug: str, body: schemas.TierUpdate, principal: AdminPrincipal, session: DbSession
) -> schemas.TierOut:
    return schemas.TierOut.model_validate(service.update_tier(session, slug, body, principal.actor))
