"""The statements over the audit log and the decision ledger (``core.ledger`` writes through
these and through the unit of work)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, Update, bindparam, func, select
from sqlalchemy.orm import Session

from aethercrown.core.models import AuditEvent, Decision
from aethercrown.core.tenancy import TenantRepository, where_given

DECISION_INSERT_CHUNK = 5000
_DECISIONS = cast(Table, Decision.__table__)
# One UPDATE per outcome, all sent as one executemany: ``decision_id``, ``outcome_json``,
# ``value`` and ``at`` are the parameters of each row.
_RECORD_OUTCOME: Update = (
    _DECISIONS.update()
    .where(_DECISIONS.c.id == bindparam("decision_id"))
    .values(
        outcome=bindparam("outcome_json", type_=_DECISIONS.c.outcome.type),
        outcome_value=bindparam("value"),
        outcome_at=bindparam("at", type_=_DECISIONS.c.outcome_at.type),
    )
)


def insert_decision_rows(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    for start in range(0, len(rows), DECISION_INSERT_CHUNK):
        # Core executemany on the table: the ORM's bulk path builds per-row state first.
        session.execute(_DECISIONS.insert(), rows[start : start + DECISION_INSERT_CHUNK])


def update_outcome_rows(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    for start in range(0, len(rows), DECISION_INSERT_CHUNK):
        session.execute(_RECORD_OUTCOME, rows[start : start + DECISION_INSERT_CHUNK])


class _LedgerRepository(TenantRepository[Decision]):
    model = Decision


def decision_counts(session: Session, tenant_id: uuid.UUID) -> dict[str, tuple[int, int]]:
    """{kind: (decisions, decisions with an outcome)} of a tenant's whole ledger."""
    stmt = (
        _LedgerRepository(session, tenant_id)
        .select(Decision.kind, func.count(), func.count(Decision.outcome_at))
        .group_by(Decision.kind)
    )
    return {str(kind): (int(n), int(done)) for kind, n, done in session.execute(stmt)}


def audit_trail(
    session: Session, tenant_id: uuid.UUID | None, target_type: str, stored_ids: list[str]
) -> Sequence[AuditEvent]:
    """The events on the targets (ids as stored: ``core.ledger.audit_target_id``), oldest
    first; every tenant's for ``tenant_id`` None."""
    stmt = select(AuditEvent).where(
        AuditEvent.target_type == target_type, AuditEvent.target_id.in_(stored_ids)
    )
    stmt = where_given(stmt, (AuditEvent.tenant_id, tenant_id))
    return session.scalars(stmt.order_by(AuditEvent.created_at, AuditEvent.id)).all()
