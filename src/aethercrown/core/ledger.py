"""Writing to the audit log and the decision ledger. Every domain goes through these functions."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import String, Table
from sqlalchemy.orm import Session

from aethercrown.clock import utcnow
from aethercrown.core import ledger_repository
from aethercrown.core.models import AuditEvent, Decision
from aethercrown.db.base import new_id

_TARGET_ID_LENGTH: int = (
    cast(String, cast(Table, AuditEvent.__table__).c.target_id.type).length or 0
)


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
        target_id=audit_target_id(target_id),
        details=_jsonable(details or {}),
    )
    session.add(event)
    return event


def audit_target_id(target_id: object) -> str:
    """The target id as stored: cut to the column's length. Some ids the API accepts are longer
    (a task id may have 200 characters, the column 100): PostgreSQL refused them with a 500 while
    SQLite stored them whole. The full id stays in the event's details where it matters; a trail
    is looked up by the same cut id."""
    return str(target_id)[:_TARGET_ID_LENGTH]


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
        id=new_id(),  # known before any flush: a read request's decision is written after it
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
    ledger_repository.insert_decision_rows(session, rows)
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


@dataclass
class OutcomeInput:
    """One outcome of a batch for ``record_outcomes``."""

    decision_id: uuid.UUID
    outcome: Mapping[str, Any]
    outcome_value: float | None = None


def record_outcomes(
    session: Session, items: Sequence[OutcomeInput], at: datetime | None = None
) -> int:
    """``record_outcome`` for many decisions by id, as one executemany UPDATE (for batch
    resolvers: a scorer's outcomes come due a few thousand at a time). Returns how many."""
    if not items:
        return 0
    at = at or utcnow()
    rows = [
        {
            "decision_id": item.decision_id,
            "outcome_json": _jsonable(item.outcome),
            "value": item.outcome_value,
            "at": at,
        }
        for item in items
    ]
    ledger_repository.update_outcome_rows(session, rows)
    return len(rows)


def audit_trail(
    session: Session, tenant_id: uuid.UUID | None, target_type: str, target_ids: list[str]
) -> Sequence[AuditEvent]:
    """The events on the targets, oldest first; every tenant's for ``tenant_id`` None."""
    stored_ids = [audit_target_id(target) for target in target_ids]
    return ledger_repository.audit_trail(session, tenant_id, target_type, stored_ids)


def _jsonable(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str))
