"""``/api/v1/enterprise/onboarding``: start an onboarding, follow its steps, read its report and
SLA; the tenant's SLA tiers; and ``/api/v1/enterprise/portal``, what a customer's own portal
key may read (its usage, alerts, SLA status and invoice preview, nothing else)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from aethercrown.core.auth import PORTAL_SCOPE, Authenticated, TenantReader, TenantWriter
from aethercrown.core.errors import NotFound, ProblemError
from aethercrown.core.pagination import Page
from aethercrown.db.session import DbSession, SessionFactory
from aethercrown.metering import schemas as metering_schemas
from aethercrown.metering import service as metering
from aethercrown.metering.fold import catch_up
from aethercrown.onboarding import schemas, service
from aethercrown.pricing import schemas as pricing_schemas
from aethercrown.pricing import service as pricing

router = APIRouter(prefix="/api/v1/enterprise/onboarding", tags=["onboarding"])
portal_router = APIRouter(prefix="/api/v1/enterprise/portal", tags=["customer portal"])

OnboardingRef = Annotated[str, Path(min_length=1, max_length=100)]
TierSlug = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]


def parse_id(ref: str) -> uuid.UUID:
    """An onboarding id; anything that is not one is an onboarding that does not exist."""
    try:
        return uuid.UUID(ref)
    except ValueError:
        raise NotFound("Onboarding", ref) from None


def _allow_loopback(request: Request) -> bool:
    return bool(request.app.state.settings.onboarding_allow_loopback_webhooks)


@router.post("/create", response_model=schemas.OnboardingCreated, status_code=201)
def create(
    request: Request,
    principal: TenantWriter,
    units: SessionFactory,
    body: schemas.OnboardingCreate,
) -> Any:
    """Start an enterprise customer's onboarding and run its steps as far as they go now. The
    support-channel ping is sent with no transaction open; a step that waits on the customer
    is retried by the automation runner. The customer portal key is in this answer only."""
    return service.create(
        units, principal.tenant_id, body, principal.actor, allow_loopback=_allow_loopback(request)
    )


@router.get("", response_model=list[schemas.OnboardingSummary])
def list_onboardings(
    principal: TenantReader,
    session: DbSession,
    status: Annotated[str | None, Query(pattern="^(running|blocked|completed)$")] = None,
) -> Any:
    """Every onboarding of the tenant, newest first."""
    return service.list_onboardings(session, principal.tenant_id, status)


@router.get("/sla-tiers", response_model=list[schemas.SlaTierOut])
def list_tiers(principal: TenantReader, session: DbSession) -> Any:
    """The tenant's SLA tiers (response and uptime targets, credit tables)."""
    return service.list_tiers(session, principal.tenant_id)


@router.patch("/sla-tiers/{slug}", response_model=schemas.SlaTierOut)
def update_tier(
    principal: TenantWriter, session: DbSession, slug: TierSlug, body: schemas.SlaTierIn
) -> Any:
    """Edit one SLA tier: its targets and its credit table."""
    return service.update_tier(session, principal.tenant_id, slug, body, principal.actor)


@router.post("/docs-link/verify", response_model=schemas.DocsLinkCheck)
def verify_docs_link(
    principal: TenantReader,
    session: DbSession,
    url: Annotated[str, Query(min_length=1, max_length=4000)],
) -> Any:
    """Check a documentation link as the docs site would: the tenant's signature, not expired."""
    return service.verify_docs_link(session, principal.tenant_id, url)


@router.post(
    "/tickets/{ticket_id}/first-response", response_model=schemas.FirstResponseOut, status_code=201
)
def first_response(
    principal: TenantWriter,
    session: DbSession,
    ticket_id: Annotated[str, Path(min_length=1, max_length=200)],
    body: schemas.FirstResponseIn | None = None,
) -> Any:
    """Record when a support ticket (its external id or id) was first answered: the time
    first-response SLAs are measured on. Only the first counts; a ticket that has one keeps it
    (``recorded_now`` false)."""
    return service.record_first_response(
        session, principal.tenant_id, ticket_id, body or schemas.FirstResponseIn(), principal.actor
    )


@router.get("/{onboarding_id}/status", response_model=schemas.OnboardingStatus)
def status(principal: TenantReader, session: DbSession, onboarding_id: OnboardingRef) -> Any:
    """Each step's state, start, end and duration; the blocker and its next retry."""
    return service.status(session, principal.tenant_id, parse_id(onboarding_id))


@router.get("/{onboarding_id}/report", response_model=schemas.OnboardingReport)
def report(principal: TenantReader, session: DbSession, onboarding_id: OnboardingRef) -> Any:
    """Time to complete against the SLA tier's target, step timings, blockers, who acted and
    what was provisioned."""
    return service.report(session, principal.tenant_id, parse_id(onboarding_id))


@router.get("/{onboarding_id}/sla", response_model=schemas.SlaStatus)
def sla_status(principal: TenantReader, session: DbSession, onboarding_id: OnboardingRef) -> Any:
    """First-response compliance by month with its breaches, uptime against the target with
    the credit each month earns, measured since the onboarding completed."""
    return service.sla_status_of(session, principal.tenant_id, parse_id(onboarding_id))


@router.get("/{onboarding_id}/training.ics", response_class=Response)
def training_ics(principal: TenantReader, session: DbSession, onboarding_id: OnboardingRef) -> Any:
    """The training sessions as an iCalendar (RFC 5545) file, in the contact's time zone."""
    body = service.training_ics(session, principal.tenant_id, parse_id(onboarding_id))
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="training.ics"'},
    )


@router.post("/{onboarding_id}/portal-key", response_model=schemas.PortalKeyOut, status_code=201)
def reissue_portal_key(
    principal: TenantWriter, session: DbSession, onboarding_id: OnboardingRef
) -> Any:
    """Replace the customer's portal key (the old one is revoked); the new one is shown once."""
    return service.reissue_portal_key(
        session, principal.tenant_id, parse_id(onboarding_id), principal.actor
    )


# --- the customer portal ---------------------------------------------------------------------


class PortalCustomer:
    def __init__(self, tenant_id: uuid.UUID, onboarding: Any) -> None:
        self.tenant_id = tenant_id
        self.onboarding = onboarding

    @property
    def external_id(self) -> str:
        return str(self.onboarding.customer_external_id)


def portal_customer(principal: Authenticated, session: DbSession) -> PortalCustomer:
    """The customer whose portal key this is; any other key is refused."""
    if not principal.has(PORTAL_SCOPE) or principal.tenant_id is None:
        raise ProblemError(403, "forbidden", "Forbidden", "This route needs a customer portal key")
    onboarding = service.portal_onboarding(session, principal.tenant_id, principal.key_id)
    return PortalCustomer(principal.tenant_id, onboarding)


Portal = Annotated[PortalCustomer, Depends(portal_customer)]


def _fold_for_portal(request: Request, customer: Portal, session: DbSession) -> None:
    """As metering's readers do: every event acknowledged before the request is counted."""
    if not metering.has_unfolded(session, customer.tenant_id):
        return
    session.commit()  # end the read snapshot, which predates the fold
    catch_up(request.app.state.session_factory, customer.tenant_id)


FoldedUsage = Annotated[None, Depends(_fold_for_portal)]


@portal_router.get("/usage", response_model=metering_schemas.UsageReport)
def portal_usage(customer: Portal, session: DbSession, _folded: FoldedUsage) -> Any:
    """This period's usage against the plan's capacities."""
    return metering.usage_report(session, customer.tenant_id, customer.external_id)


@portal_router.get("/alerts", response_model=Page[metering_schemas.AlertOut])
def portal_alerts(customer: Portal, session: DbSession, _folded: FoldedUsage) -> Any:
    """The usage alerts fired for this customer, newest first (the latest 100)."""
    items, _ = metering.list_alerts(
        session, customer.tenant_id, customer.external_id, None, 100, None
    )
    return Page(items=items, next_cursor=None)


@portal_router.get("/sla", response_model=schemas.SlaStatus)
def portal_sla(customer: Portal, session: DbSession) -> Any:
    """This customer's SLA: response compliance and uptime against its tier."""
    return service.sla_status(session, customer.tenant_id, customer.onboarding)


@portal_router.get("/invoice-preview", response_model=pricing_schemas.InvoicePreviewOut)
def portal_invoice(customer: Portal, session: DbSession, _folded: FoldedUsage) -> Any:
    """This period's invoice so far, and at the projection to the period's end."""
    return pricing.invoice_preview(session, customer.tenant_id, customer.external_id)
