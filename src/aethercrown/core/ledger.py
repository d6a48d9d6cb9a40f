"""Writing to the audit log and the decision ledger. Every domain goes through these functions."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from aethercrown.core.models import AuditEvent, Decision
from aethercrown.db.base import utcnow


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
