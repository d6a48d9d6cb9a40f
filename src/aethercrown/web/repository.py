"""Every query of the console's sessions. A session is found by the hash of its id before its
tenant is known (as a key is found by its hash), so these queries are not tenant-scoped."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from aethercrown.core.models import ApiKey
from aethercrown.web.models import WebSession


@dataclass(frozen=True, slots=True)
class SessionRow:
    key_id: uuid.UUID
    tenant_id: uuid.UUID
    expires_at: datetime
    key_scopes: list[str]
    key_kind: str
    key_expires_at: datetime | None
    key_revoked_at: datetime | None


def find(session: Session, id_hash: str) -> SessionRow | None:
    row = session.execute(
        select(
            WebSession.key_id,
            WebSession.tenant_id,
            WebSession.expires_at,
            ApiKey.scopes,
            ApiKey.kind,
            ApiKey.expires_at,
            ApiKey.revoked_at,
        )
        .join(ApiKey, ApiKey.id == WebSession.key_id)
        .where(WebSession.id_hash == id_hash)
    ).first()
    return None if row is None else SessionRow(*row)


def add(
    session: Session,
    id_hash: str,
    key_id: uuid.UUID,
    tenant_id: uuid.UUID,
    created_at: datetime,
    expires_at: datetime,
) -> None:
    session.add(
        WebSession(
            id_hash=id_hash,
            key_id=key_id,
            tenant_id=tenant_id,
            created_at=created_at,
            expires_at=expires_at,
        )
    )


def remove(session: Session, id_hash: str) -> None:
    session.execute(delete(WebSession).where(WebSession.id_hash == id_hash))


def remove_expired(session: Session, now: datetime) -> int:
    result = session.execute(delete(WebSession).where(WebSession.expires_at <= now))
    return int(getattr(result, "rowcount", 0) or 0)
