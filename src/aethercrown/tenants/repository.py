"""Queries over tiers, tenants and what a tenant has stored."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.orm import Session

from aethercrown.core.models import Tenant, TenantRequestCount, Tier
from aethercrown.core.tenancy import TenantScoped
from aethercrown.db.base import Base
from aethercrown.db.tenant_scope import scope_to_tenant


class TierRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, slug: str) -> Tier | None:
        return self.session.get(Tier, slug)

    def all(self) -> Sequence[Tier]:
        return self.session.scalars(select(Tier).order_by(Tier.rank)).all()


_TIER_COLUMNS = (
    Tier.slug,
    Tier.name,
    Tier.rank,
    Tier.monthly_price,
    Tier.currency,
    Tier.requests_per_minute,
    Tier.max_stored_rows,
    Tier.max_seats,
    Tier.max_ai_agents,
    Tier.automation_min_interval_seconds,
)
# Built once: reading a tenant for display is a plain Core query (no ORM identity map or
# instance state), several times cheaper per call than session.get on the hot read path.
_TENANT_VIEW = (
    select(
        Tenant.id,
        Tenant.name,
        Tenant.slug,
        Tenant.tier_slug,
        Tenant.status,
        Tenant.webhook_url,
        Tenant.created_at,
        Tenant.updated_at,
        *(c.label(f"quota_{c.key}") for c in _TIER_COLUMNS),
    )
    .join(Tier, Tier.slug == Tenant.tier_slug)
    .where(Tenant.id == bindparam("tenant_id"))
)


class TenantRepository:
    """Tenants themselves (operator scope): the one repository that is not tenant-scoped."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, tenant_id: uuid.UUID) -> Tenant | None:
        return self.session.get(Tenant, tenant_id)

    def view(self, tenant_id: uuid.UUID) -> dict[str, Any] | None:
        """The tenant with its tier's quotas as plain values, shaped like ``TenantOut``, read
        without loading ORM objects. Flushes first, so it sees the session's pending changes."""
        self.session.flush()
        row = self.session.connection().execute(_TENANT_VIEW, {"tenant_id": tenant_id}).first()
        if row is None:
            return None
        values = row._asdict()
        quotas = {c.key: values.pop(f"quota_{c.key}") for c in _TIER_COLUMNS}
        values["tier"] = values.pop("tier_slug")
        values["quotas"] = quotas
        return values

    def slugs(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        rows = self.session.execute(select(Tenant.id, Tenant.slug).where(Tenant.id.in_(ids)))
        return {row.id: row.slug for row in rows}

    def by_slug(self, slug: str) -> Tenant | None:
        return self.session.scalar(select(Tenant).where(Tenant.slug == slug))

    def list_statement(self, *, tier: str | None, status: str | None, q: str | None) -> Select[Any]:
        stmt = select(Tenant)
        if tier:
            stmt = stmt.where(Tenant.tier_slug == tier)
        if status:
            stmt = stmt.where(Tenant.status == status)
        if q:
            pattern = f"%{q.lower()}%"
            stmt = stmt.where(func.lower(Tenant.name).like(pattern) | Tenant.slug.like(pattern))
        return stmt


class TenantUsageRepository:
    def __init__(self, session: Session, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id
        scope_to_tenant(session, tenant_id)

    def requests_by_day(self, since: date) -> Sequence[TenantRequestCount]:
        return self.session.scalars(
            select(TenantRequestCount)
            .where(TenantRequestCount.tenant_id == self.tenant_id, TenantRequestCount.day >= since)
            .order_by(TenantRequestCount.day, TenantRequestCount.status)
        ).all()

    def stored_rows(self) -> dict[str, int]:
        """Rows per domain over every tenant-scoped table."""
        per_domain: dict[str, int] = {}
        for mapper in Base.registry.mappers:
            cls = mapper.class_
            if not issubclass(cls, TenantScoped):
                continue
            domain = cls.__module__.split(".")[1]
            n = self.session.scalar(
                select(func.count()).select_from(cls).where(cls.tenant_id == self.tenant_id)
            )
            per_domain[domain] = per_domain.get(domain, 0) + int(n or 0)
        return dict(sorted(per_domain.items()))
