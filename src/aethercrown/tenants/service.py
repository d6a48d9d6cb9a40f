"""Provisioning, scaling and measuring tenants. Never commits: the caller's unit of work does."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aethercrown.clock import utcnow
from aethercrown.core.auth import Principal
from aethercrown.core.errors import Conflict, InvalidInput, NotFound, ProblemError, field_error
from aethercrown.core.ledger import audit
from aethercrown.core.models import Tenant, Tier
from aethercrown.core.money import money
from aethercrown.db.prepared import ReadUnit
from aethercrown.security.service import IssuedKey, issue_key, seats_used
from aethercrown.tasks.service import live_worker_count
from aethercrown.tenants import schemas
from aethercrown.tenants.repository import (
    TenantRepository,
    TenantUsageRepository,
    TierRepository,
    read_one_snapshot,
    tenant_view,
)

# Usage at or above this share of a quota triggers an upgrade recommendation.
UPGRADE_AT = 0.8
# Usage below this share of the next smaller tier's quotas suggests a downgrade.
DOWNGRADE_BELOW = 0.5


def resolve_tenant_ref(session: Session, ref: str) -> Tenant:
    """A tenant by id or slug (CLI arguments and the X-Tenant header take either)."""
    repo = TenantRepository(session)
    tenant: Tenant | None
    try:
        tenant = repo.get(uuid.UUID(ref))
    except ValueError:
        tenant = repo.by_slug(ref)
    if tenant is None:
        raise NotFound("Tenant", ref)
    return tenant


def get_tenant(session: Session, tenant_id: uuid.UUID) -> Tenant | None:
    return TenantRepository(session).get(tenant_id)


def tenant_by_slug(session: Session, slug: str) -> Tenant | None:
    return TenantRepository(session).by_slug(slug)


def any_tenant(session: Session) -> bool:
    """Whether the installation holds a tenant at all (a fresh database holds none)."""
    return TenantRepository(session).any()


def stored_rows(session: Session, tenant_id: uuid.UUID) -> dict[str, int]:
    """The tenant's stored rows per domain (what its row quota counts)."""
    return TenantUsageRepository(session, tenant_id).stored_rows()


def stored_rows_total(session: Session, tenant_id: uuid.UUID) -> int:
    """The tenant's stored rows in all, for a unit of work about to write more (the quota
    check): one indexed read of the counts the database keeps."""
    return TenantUsageRepository(session, tenant_id).stored_rows_total(fold=True)


def recount_rows(session: Session, tenant_id: uuid.UUID) -> dict[str, tuple[int, int]]:
    """Rebuild the tenant's stored-row counts from its tables (repair after a ``TRUNCATE`` or
    a restore that bypassed the triggers); returns the tables whose count was wrong, with the
    count kept and the actual one. Call at the start of its own unit of work: on PostgreSQL it
    makes the transaction read one snapshot (a concurrent fold can then fail it with a
    serialization error: run it again)."""
    read_one_snapshot(session)
    return TenantUsageRepository(session, tenant_id).recount()


def requests_by_day(session: Session, tenant_id: uuid.UUID, since: date) -> list[Any]:
    """The tenant's API requests per day and status since ``since``."""
    return list(TenantUsageRepository(session, tenant_id).requests_by_day(since))


def slugs_by_id(session: Session, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Tenants' slugs, for showing people a tenant by name (ids not found are left out)."""
    wanted = list(set(ids))
    return TenantRepository(session).slugs(wanted) if wanted else {}


def get_tier(session: Session, slug: str, field: str = "tier") -> Tier:
    tier = TierRepository(session).get(slug)
    if tier is None:
        known = ", ".join(t.slug for t in TierRepository(session).all())
        raise InvalidInput(
            f"Unknown tier '{slug}'", [field_error([field], f"must be one of: {known}")]
        )
    return tier


def create_tenant(
    session: Session, body: schemas.TenantCreate, actor: str
) -> tuple[Tenant, IssuedKey]:
    tier = get_tier(session, body.tier)
    repo = TenantRepository(session)
    if repo.by_slug(body.slug) is not None:
        raise Conflict(f"A tenant with slug '{body.slug}' already exists", slug="duplicate-slug")
    tenant = Tenant(name=body.name, slug=body.slug, tier_slug=tier.slug, tier=tier)
    session.add(tenant)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent create of the same slug
        raise Conflict(
            f"A tenant with slug '{body.slug}' already exists", slug="duplicate-slug"
        ) from exc
    issued = issue_key(
        session,
        tenant_id=tenant.id,
        name="tenant admin",
        scopes=["tenant:write"],
        actor=actor,
    )
    audit(
        session,
        tenant_id=tenant.id,
        actor=actor,
        action="tenant.created",
        target_type="tenant",
        target_id=tenant.id,
        details={"slug": tenant.slug, "tier": tier.slug},
    )
    return tenant, issued


def visible_tenant(session: Session, principal: Principal, tenant_id: uuid.UUID) -> Tenant:
    """The tenant if the caller may see it; another tenant's answers 404, not 403."""
    if not principal.is_operator and principal.tenant_id != tenant_id:
        raise NotFound("Tenant", tenant_id)
    tenant = TenantRepository(session).get(tenant_id)
    if tenant is None:
        raise NotFound("Tenant", tenant_id)
    return tenant


def view_tenant(unit: ReadUnit, principal: Principal, tenant_id: uuid.UUID) -> dict[str, Any]:
    """What ``visible_tenant`` returns, as plain values for ``TenantOut`` (the read route)."""
    if not principal.is_operator and principal.tenant_id != tenant_id:
        raise NotFound("Tenant", tenant_id)
    values = tenant_view(unit, tenant_id)
    if values is None:
        raise NotFound("Tenant", tenant_id)
    return values


def update_tenant(
    session: Session, principal: Principal, tenant_id: uuid.UUID, body: schemas.TenantUpdate
) -> Tenant:
    tenant = visible_tenant(session, principal, tenant_id)
    if not principal.is_operator and not principal.has("tenant:write"):
        raise ProblemError(403, "forbidden", "Forbidden", "Updating a tenant needs 'tenant:write'")
    changes = body.model_dump(exclude_unset=True, mode="json")
    if "status" in changes and not principal.is_operator:
        raise ProblemError(
            403, "forbidden", "Forbidden", "Only the operator changes a tenant's status"
        )
    for field, value in changes.items():
        setattr(tenant, field, value)
    if changes:
        session.flush()  # so the answer carries the updated_at the save sets
        audit(
            session,
            tenant_id=tenant.id,
            actor=principal.actor,
            action="tenant.updated",
            target_type="tenant",
            target_id=tenant.id,
            details=changes,
        )
    return tenant


def scale_tenant(session: Session, tenant_id: uuid.UUID, tier_slug: str, actor: str) -> Tenant:
    tenant = TenantRepository(session).get(tenant_id)
    if tenant is None:
        raise NotFound("Tenant", tenant_id)
    tier = get_tier(session, tier_slug)
    previous = tenant.tier_slug
    if previous != tier.slug:
        tenant.tier_slug = tier.slug
        tenant.tier = tier
        audit(
            session,
            tenant_id=tenant.id,
            actor=actor,
            action="tenant.scaled",
            target_type="tenant",
            target_id=tenant.id,
            details={"from": previous, "to": tier.slug},
        )
    return tenant


def update_tier(session: Session, slug: str, body: schemas.TierUpdate, actor: str) -> Tier:
    tier = TierRepository(session).get(slug)
    if tier is None:
        raise NotFound("Tier", slug)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    for field, value in changes.items():
        setattr(tier, field, value)
    if changes:
        audit(
            session,
            tenant_id=None,
            actor=actor,
            action="tier.updated",
            target_type="tier",
            target_id=slug,
            details=changes,
        )
    return tier


def tenant_metrics(session: Session, tenant: Tenant, window_days: int) -> schemas.TenantMetrics:
    usage = TenantUsageRepository(session, tenant.id)
    since = utcnow().date() - timedelta(days=window_days - 1)
    counts = usage.requests_by_day(since)
    by_day = [schemas.DayStatusCount(day=c.day, status=c.status, count=c.count) for c in counts]
    daily: dict[object, int] = {}
    for c in counts:
        daily[c.day] = daily.get(c.day, 0) + c.count
    rejected = sum(c.count for c in counts if c.status == 429)
    stored = usage.stored_rows()
    stored_total = sum(stored.values())
    seats = seats_used(session, tenant.id)
    tier = tenant.tier
    quotas = [
        _quota("stored_rows", stored_total, tier.max_stored_rows),
        _quota("seats", seats, tier.max_seats),
        # Live task-scheduler workers against the tier's AI agent quota.
        _quota("ai_agents", live_worker_count(session, tenant.id), tier.max_ai_agents),
        # Requests against the per-minute quota: the busiest day's average rate, and the share
        # of requests the limiter turned away says how often the burst quota was hit.
        _quota(
            "requests_per_minute",
            round(max(daily.values(), default=0) / 1440, 3),
            tier.requests_per_minute,
        ),
    ]
    recommendation = recommend_tier(
        session, tier, stored_total, seats, rejected, sum(daily.values())
    )
    return schemas.TenantMetrics(
        tenant_id=tenant.id,
        tier=tier.slug,
        window_days=window_days,
        requests_by_day=by_day,
        requests_total=sum(daily.values()),
        rate_limited_total=rejected,
        peak_daily_requests=max(daily.values(), default=0),
        stored_rows=stored,
        stored_rows_total=stored_total,
        seats=seats,
        quotas=quotas,
        recommendation=recommendation,
    )


def _quota(name: str, used: float, limit: float) -> schemas.QuotaUse:
    percent = round(100.0 * used / limit, 2) if limit else 100.0
    return schemas.QuotaUse(quota=name, used=used, limit=limit, percent=percent)


def recommend_tier(
    session: Session, tier: Tier, stored: int, seats: int, rejected: int, requests: int
) -> schemas.TierRecommendation:
    tiers = list(TierRepository(session).all())
    pressure = []
    if stored >= UPGRADE_AT * tier.max_stored_rows:
        pressure.append(f"stored rows at {stored / max(tier.max_stored_rows, 1):.0%} of quota")
    if seats >= UPGRADE_AT * tier.max_seats:
        pressure.append(f"seats at {seats}/{tier.max_seats}")
    if requests and rejected / requests >= 0.01:
        pressure.append(
            f"{rejected} of {requests} requests ({rejected / requests:.1%}) rate-limited"
        )
    if pressure:
        for candidate in tiers:
            if candidate.rank <= tier.rank:
                continue
            if (
                stored < UPGRADE_AT * candidate.max_stored_rows
                and seats < UPGRADE_AT * candidate.max_seats
            ):
                return schemas.TierRecommendation(
                    action="upgrade", tier=candidate.slug, reason="; ".join(pressure)
                )
        return schemas.TierRecommendation(
            action="keep",
            tier=tier.slug,
            reason="; ".join(pressure) + " — already on the largest tier; ask the operator",
        )
    smaller = [t for t in tiers if t.rank < tier.rank]
    if smaller:
        below = smaller[-1]
        if (
            stored < DOWNGRADE_BELOW * below.max_stored_rows
            and seats <= below.max_seats // 2
            and rejected == 0
        ):
            return schemas.TierRecommendation(
                action="downgrade",
                tier=below.slug,
                reason=(
                    f"usage fits the {below.name} tier with room to spare "
                    f"({stored} rows, {seats} seats); it costs "
                    f"{money(tier.monthly_price - below.monthly_price, tier.currency)} "
                    "less a month"
                ),
            )
    return schemas.TierRecommendation(
        action="keep", tier=tier.slug, reason="usage is within the tier's quotas"
    )
