"""Helpers for task-scheduler tests."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import TenantHandle

BASE = "/api/v1/optimization/tasks"


def task(
    key: str,
    priority: int = 2,
    duration: float = 60.0,
    deps: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": key,
        "type": extra.pop("type", "report"),
        "priority": priority,
        "estimated_duration": duration,
        "dependencies": deps or [],
        "payload": extra.pop("payload", {}),
        **extra,
    }


def schedule(client: TestClient, who: TenantHandle, *tasks: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"{BASE}/schedule", json={"tasks": list(tasks)}, headers=who.headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def register_worker(
    client: TestClient, who: TenantHandle, name: str = "w1", capacity: int = 1
) -> str:
    response = client.post(
        f"{BASE}/workers/register", json={"name": name, "capacity": capacity}, headers=who.headers
    )
    assert response.status_code in (200, 201), response.text
    return str(response.json()["id"])


def assign(client: TestClient, who: TenantHandle, worker: str, **body: Any) -> list[dict[str, Any]]:
    response = client.post(
        f"{BASE}/assign", json={"worker_id": worker, **body}, headers=who.headers
    )
    assert response.status_code == 200, response.text
    return response.json()["assigned"]  # type: ignore[no-any-return]
