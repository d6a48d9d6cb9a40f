"""The statements over an outbox table (any model with the outbox's columns: ``core.outbox``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session


def due_rows(session: Session, model: Any, status: str, now: datetime, limit: int) -> list[Any]:
    """At most ``limit`` rows in ``status`` whose attempt is due and whose lease (if any) has
    expired, oldest due first; locked for this transaction, skipping rows another runner
    holds, on PostgreSQL."""
    stmt = (
        select(model)
        .where(
            model.status == status,
            model.next_attempt_at <= now,
            or_(model.claimed_until.is_(None), model.claimed_until <= now),
        )
        .order_by(model.next_attempt_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Several runners may claim at once; each row goes to one of them.
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.scalars(stmt).all())


def held_rows(session: Session, model: Any, ids: Sequence[Any], token: str) -> dict[Any, Any]:
    """{id: row} of the rows among ``ids`` whose lease ``token`` still holds."""
    stmt = select(model).where(model.id.in_(ids), model.claim_token == token)
    return {row.id: row for row in session.scalars(stmt)}
