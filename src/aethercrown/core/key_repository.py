"""The statements over API keys that core itself runs: authentication's lookup by hash, the
idempotency owner's, and the request counters' last-use stamps. The keys' management (issue,
rotate, revoke, report) is ``security.repository``'s."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, or_, select, update
from sqlalchemy.orm import Session

from aethercrown.core.models import ApiKey, Tenant, Tier

# Built once: the lookup on every request is a plain indexed Core query by hash, with the
# tier's rate (operator keys have no tenant, hence the outer joins).
_KEY_LOOKUP = (
    select(
        ApiKey.id,
        ApiKey.tenant_id,
        ApiKey.kind,
        ApiKey.scopes,
        ApiKey.expires_at,
        ApiKey.revoked_at,
        ApiKey.last_used_at,
        Tier.requests_per_minute,
    )
    .outerjoin(Tenant, Tenant.id == ApiKey.tenant_id)
    .outerjoin(Tier, Tier.slug == Tenant.tier_slug)
    .where(ApiKey.key_hash == bindparam("key_hash"))
)
# Only ever moves forward: another process may have stamped a later use already.
_STAMP_LAST_USE = (
    update(ApiKey)
    .where(
        ApiKey.id == bindparam("key_id"),
        or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < bindparam("at")),
    )
    .values(last_used_at=bindparam("at"))
)


def key_for_authentication(session: Session, key_hash: str) -> Row[*tuple[Any, ...]] | None:
    """The key's state and its tier's rate limit, on the session's connection (no ORM)."""
    return session.connection().execute(_KEY_LOOKUP, {"key_hash": key_hash}).first()


def key_owner(session: Session, key_hash: str) -> Row[uuid.UUID, uuid.UUID | None] | None:
    """The key's id and tenant (None for an operator key)."""
    return session.execute(
        select(ApiKey.id, ApiKey.tenant_id).where(ApiKey.key_hash == key_hash)
    ).first()


def find_key(session: Session, key_id: uuid.UUID) -> ApiKey | None:
    """The key by id: from the session's identity map when it is there, else one query."""
    return session.get(ApiKey, key_id)


def stamp_last_use(conn: Connection, last_used: dict[uuid.UUID, datetime]) -> None:
    conn.execute(_STAMP_LAST_USE, [{"key_id": k, "at": t} for k, t in last_used.items()])
