"""The statements over the idempotency records (``core.idempotency`` is the middleware)."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from aethercrown.core.models import IdempotencyRecord


def find_record(session: Session, owner: str, key: str) -> IdempotencyRecord | None:
    """The record of ``key`` sent by ``owner`` (a tenant's id, or "operator")."""
    return session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.scope == owner, IdempotencyRecord.key == key
        )
    )


def record_by_id(session: Session, record_id: int) -> IdempotencyRecord | None:
    return session.get(IdempotencyRecord, record_id)


def delete_record(session: Session, record_id: int) -> None:
    session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))
