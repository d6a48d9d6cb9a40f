"""Core's queries over the tenants table, for every domain that needs a tenant's row (its tier,
name or settings): a domain's own repository may not reach into ``tenants``."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from aethercrown.core.errors import NotFound
from aethercrown.core.models import Tenant


def find_tenant(session: Session, tenant_id: uuid.UUID) -> Tenant | None:
    """The tenant by id: from the session's identity map when it is there, else one query."""
    return session.get(Tenant, tenant_id)


def tenant_or_404(session: Session, tenant_id: uuid.UUID) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("Tenant", tenant_id)
    return tenant


def tenant_id_by_slug(session: Session, slug: str) -> uuid.UUID | None:
    return session.scalar(select(Tenant.id).where(Tenant.slug == slug))
