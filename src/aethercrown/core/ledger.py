"""Writing to the audit log and the decision ledger. Every domain goes through these functions."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import Select, Table, select
from sqlalchemy.orm import Session

from aethercrown.clock import utcnow
from aethercrown.core.models import AuditEvent, Decision
from aethercrown.db.base import new_id


def digest(value: Any) -> str:
    """A stable SHA-256 of any JSON-able value (keys sorted), for inputs that are not kept whole."""
    return hashlib.sha256(
        orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
    ).hexdigest()


def audit(
    session: Session,
    *,
    tenant_id: uuid.UUID | None,
    actor: str,
    action: str,
    target_type: str,
    target_id: object,
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        tenant_id=tenant_id,
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        details=_jsonable(details or {}),
    )
    session.add(event)
    return event


def record_decision(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    kind: str,
    subject_type: str,
    subject_id: object,
    inputs: Any,
    output: Mapping[str, Any],
    model: str,
    model_version: str,
    predicted_value: float | None = None,
    actor: str = "automation",
) -> Decision:
    decision = Decision(
        tenant_id=tenant_id,
        kind=kind,
        subject_type=subject_type,
        subject_id=str(subject_id),
        inputs_digest=digest(inputs),
        output=_jsonable(output),
        model=model,
        model_version=model_version,
        predicted_value=predicted_value,
        actor=actor,
    )
    session.add(decision)
    return decision


@dataclass
class DecisionInput:
    """One decision of a batch for ``record_decisions`` (the fields ``record_decision`` takes
    per call that vary from decision to decision)."""

    subject_id: object
    inputs: Any
    output: Mapping[str, Any]
    predicted_value: float | None = None


DECISION_INSERT_CHUNK = 5000
_DECISIONS = cast(Table, Decision.__table__)


def record_decisions(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    kind: str,
    subject_type: str,
    model: str,
    model_version: str,
    items: Sequence[DecisionInput],
    actor: str = "automation",
) -> list[uuid.UUID]:
    """Record many decisions with bulk Core inserts (one row per item, the same row
    ``record_decision`` writes) and return their ids in order. For batch scorers: building
    ORM objects costs more than the decision itself at 100,000 rows."""
    now = utcnow()
    ids = [new_id() for _ in items]
    rows = [
        {
            "id": ident,
            "tenant_id": tenant_id,
            "kind": kind,
            "subject_type": subject_type,
            "subject_id": str(item.subject_id),
            "inputs_digest": digest(item.inputs),
            "output": _jsonable(item.output),
            "predicted_value": item.predicted_value,
            "model": model,
            "model_version": model_version,
            "actor": actor,
            "created_at": now,
        }
        for ident, item in zip(ids, items, strict=True)
    ]
    for start in range(0, len(rows), DECISION_INSERT_CHUNK):
        # Core executemany on the table: the ORM's bulk path builds per-row state first.
        session.execute(_DECISIONS.insert(), rows[start : start + DECISION_INSERT_CHUNK])
    return ids


def record_outcome(
    decision: Decision,
    outcome: Mapping[str, Any],
    outcome_value: float | None = None,
    at: datetime | None = None,
) -> Decision:
    decision.outcome = _jsonable(outcome)
    decision.outcome_value = outcome_value
    decision.outcome_at = at or utcnow()
    return decision


def audit_trail(
    tenant_id: uuid.UUID | None, target_type: str, target_ids: list[str]
) -> Select[Any]:
    stmt = select(AuditEvent).where(
        AuditEvent.target_type == target_type, AuditEvent.target_id.in_(target_ids)
    )
    if tenant_id is not None:
        stmt = stmt.where(AuditEvent.tenant_id == tenant_id)
    return stmt.order_by(AuditEvent.created_at, AuditEvent.id)


def _jsonable(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str))
