"""Audit target ids longer than their column (a 200-character task id) are stored cut to it on
both backends: PostgreSQL refused the whole request with a 500, SQLite stored them whole."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from aethercrown.core.ledger import audit_trail
from aethercrown.core.models import AuditEvent
from tests.conftest import TenantHandle


def test_a_task_id_longer_than_the_audit_column_is_scheduled(
    client: TestClient, tenant: TenantHandle, db: Engine
) -> None:
    task_id = "t" * 200
    body = {"tasks": [{"id": task_id, "type": "x", "priority": 1, "estimated_duration": 1}]}
    response = client.post("/api/v1/optimization/tasks/schedule", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    with db.connect() as conn:
        stored = conn.execute(
            select(AuditEvent.target_id, AuditEvent.details).where(
                AuditEvent.action == "tasks.scheduled"
            )
        ).all()
    with Session(db) as session:
        trail = audit_trail(session, tenant.uid, "task", [task_id])
    assert [(len(target), details["ids"]) for target, details in stored] == [(100, [task_id])]
    assert len(trail) == 1
