"""``/api/v1/revenue``: the tenant's plans and factor tables, quotes, tier recommendations,
upsell analysis and invoice previews."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from aethercrown.core.auth import TenantReader, TenantWriter
from aethercrown.db.session import DbSession
from aethercrown.metering import schemas as metering_schemas
from aethercrown.metering.fold import FoldedUsage
from aethercrown.pricing import schemas, service

router = APIRouter(prefix="/api/v1/revenue", tags=["revenue"])
CustomerRef = Annotated[str, Path(min_length=1, max_length=200, description="External id")]


@router.get("/tiers", response_model=schemas.TiersOut)
def get_tiers(principal: TenantReader, session: DbSession) -> schemas.TiersOut:
    """The tenant's own plans (seeded Starter/Professional/Enterprise) and factor tables."""
    return service.tiers(session, principal.tenant_id)


@router.put("/tiers", response_model=schemas.TiersOut)
def put_tiers(principal: TenantWriter, session: DbSession, body: schemas.TiersPut) -> Any:
    """Replace the plan list (plans not named are removed) and optionally the factor tables."""
    return service.replace_tiers(session, principal.tenant_id, body, principal.actor)


@router.patch("/tiers", response_model=schemas.TiersOut)
def patch_tiers(principal: TenantWriter, session: DbSession, body: schemas.TiersPatch) -> Any:
    """Change or add plans by slug, and replace named factor tables."""
    return service.patch_tiers(session, principal.tenant_id, body, principal.actor)


@router.post("/pricing/calculate", response_model=schemas.QuoteOut)
def calculate(
    principal: TenantWriter, _folded: FoldedUsage, session: DbSession, body: schemas.QuoteRequest
) -> Any:
    """base × usage multiplier × enterprise multiplier × (1 − engagement discount), line by
    line in integer minor units."""
    return service.calculate(session, principal.tenant_id, body, principal.actor)


@router.post("/pricing/recommend-tier", response_model=schemas.RecommendOut)
def recommend_tier(
    principal: TenantReader,
    _folded: FoldedUsage,
    session: DbSession,
    body: schemas.RecommendRequest,
) -> Any:
    """The cheapest plan whose capacities cover the projected usage, with every plan's cost
    including overage."""
    return service.recommend_tier(session, principal.tenant_id, body)


@router.post("/upsell/analyze", response_model=metering_schemas.UpsellAnalysis)
def upsell_analyze(
    principal: TenantReader,
    _folded: FoldedUsage,
    session: DbSession,
    body: metering_schemas.UpsellRequest | None = None,
) -> Any:
    return service.upsell_analyze(
        session, principal.tenant_id, body.customers if body is not None else None
    )


@router.get("/invoices/{customer}/preview", response_model=schemas.InvoicePreviewOut)
def invoice_preview(
    principal: TenantReader, _folded: FoldedUsage, session: DbSession, customer: CustomerRef
) -> Any:
    """The current period's invoice: base plus overage to date and at the projection."""
    return service.invoice_preview(session, principal.tenant_id, customer)
