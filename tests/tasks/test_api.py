"""The task scheduler over HTTP: validation, score order, dependencies, completion, quotas."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TenantHandle, create_tenant
from tests.tasks.conftest import BASE, assign, register_worker, schedule, task


def test_schedule_returns_each_score_term(client: TestClient, tenant: TenantHandle) -> None:
    body = schedule(
        client,
        tenant,
        task("base", priority=2, duration=1200),
        task("child", priority=3, duration=60, deps=["base"]),
    )
    assert body["scheduled"] == 2
    base, child = body["tasks"]
    # base: 2 × 100 + (30 − 1200/60 = 10) + one dependent × 10; age ~0.
    assert base["score"]["priority"] == 200
    assert base["score"]["duration"] == 10
    assert base["score"]["dependency"] == 10
    assert base["score"]["total"] == pytest.approx(220, abs=0.1)
    assert base["blocked_by"] == 0 and base["dependents"] == 1
    assert child["blocked_by"] == 1 and child["status"] == "queued"
    assert child["score"]["total"] == pytest.approx(329, abs=0.1)
    got = client.get(f"{BASE}/child", headers=tenant.headers).json()
    assert got["dependencies"] == ["base"]


def test_unknown_dependency_and_cycles_are_422_naming_them(
    client: TestClient, tenant: TenantHandle
) -> None:
    bad = client.post(
        f"{BASE}/schedule",
        json={"tasks": [task("a", deps=["ghost"])]},
        headers=tenant.headers,
    )
    assert bad.status_code == 422
    assert "ghost" in bad.json()["detail"]
    assert bad.json()["errors"][0]["field"] == "tasks.0.dependencies.0"

    cycle = client.post(
        f"{BASE}/schedule",
        json={"tasks": [task("a", deps=["c"]), task("b", deps=["a"]), task("c", deps=["b"])]},
        headers=tenant.headers,
    )
    assert cycle.status_code == 422
    detail = cycle.json()["detail"]
    assert "cycle" in detail.lower() and all(k in detail for k in ("a", "b", "c"))

    own = client.post(
        f"{BASE}/schedule", json={"tasks": [task("self", deps=["self"])]}, headers=tenant.headers
    )
    assert own.status_code == 422 and "self → self" in own.json()["detail"]

    twice = client.post(
        f"{BASE}/schedule", json={"tasks": [task("x"), task("x")]}, headers=tenant.headers
    )
    assert twice.status_code == 422 and twice.json()["errors"][0]["field"] == "tasks.1.id"
    # Nothing of the rejected batches was stored.
    assert client.get(BASE, headers=tenant.headers).json()["items"] == []

    schedule(client, tenant, task("x"))
    again = client.post(f"{BASE}/schedule", json={"tasks": [task("x")]}, headers=tenant.headers)
    assert again.status_code == 409
    # A later batch may depend on stored tasks.
    assert schedule(client, tenant, task("y", deps=["x"]))["tasks"][0]["blocked_by"] == 1


@pytest.mark.parametrize(
    "body",
    [
        {"tasks": []},
        {"tasks": [task("a", priority=0)]},
        {"tasks": [task("a", priority=5)]},
        {"tasks": [task("a", duration=-1)]},
        {"tasks": [task("a", duration=0)]},
        {"tasks": [{**task("a"), "estimated_duration": "NaN"}]},
        {"tasks": [{**task("a"), "estimated_duration": 1e300}]},
        {"tasks": [task("")]},
        {"tasks": [task("has space")]},
        {"tasks": [{**task("a"), "priority": "high"}]},
        {"tasks": [{**task("a"), "unknown": 1}]},
        {"tasks": "nope"},
    ],
)
def test_schedule_rejects_bad_input(
    client: TestClient, tenant: TenantHandle, body: dict[str, object]
) -> None:
    response = client.post(f"{BASE}/schedule", json=body, headers=tenant.headers)
    assert response.status_code == 422, response.text


def test_assign_follows_the_score_and_waits_for_dependencies(
    client: TestClient, tenant: TenantHandle
) -> None:
    schedule(
        client,
        tenant,
        task("low-fast", priority=1, duration=60),  # 100 + 29
        task("high-slow", priority=4, duration=3600),  # 400 + 0
        task("mid", priority=2, duration=600),  # 200 + 20
        task("base", priority=2, duration=1200),  # 200 + 10 + 2 dependents × 10
        task("child1", priority=3, duration=60, deps=["base"]),  # 300 + 29
        task("child2", priority=1, duration=60, deps=["base"]),  # 100 + 29
    )
    worker = register_worker(client, tenant, capacity=10)
    first = assign(client, tenant, worker)
    assert [a["task"]["id"] for a in first] == ["high-slow", "base", "mid", "low-fast"]
    assert all(a["attempt"] == 1 and a["task"]["status"] == "running" for a in first)
    # Nothing else is eligible until base completes.
    assert assign(client, tenant, worker) == []
    done = client.post(
        f"{BASE}/base/complete",
        json={"worker_id": worker, "result": {"rows": 12}},
        headers=tenant.headers,
    )
    assert done.status_code == 200 and done.json()["result"] == {"rows": 12}
    assert [a["task"]["id"] for a in assign(client, tenant, worker)] == ["child1", "child2"]


def test_capacity_limits_claims_and_only_the_leaseholder_finishes(
    client: TestClient, tenant: TenantHandle
) -> None:
    schedule(client, tenant, *(task(f"t{i}") for i in range(5)))
    one = register_worker(client, tenant, "one", capacity=2)
    two = register_worker(client, tenant, "two", capacity=1)
    got_one = assign(client, tenant, one)
    assert len(got_one) == 2
    assert assign(client, tenant, one) == []  # full
    got_two = assign(client, tenant, two, max_tasks=5)
    assert len(got_two) == 1
    key = got_one[0]["task"]["id"]
    stolen = client.post(
        f"{BASE}/{key}/complete", json={"worker_id": two, "result": {}}, headers=tenant.headers
    )
    assert stolen.status_code == 409
    assert stolen.json()["type"].endswith("lease-lost")
    missing = client.post(
        f"{BASE}/nope/complete", json={"worker_id": two, "result": {}}, headers=tenant.headers
    )
    assert missing.status_code == 404
    unknown_worker = client.post(
        f"{BASE}/assign",
        json={"worker_id": "00000000-0000-0000-0000-000000000000"},
        headers=tenant.headers,
    )
    assert unknown_worker.status_code == 404


def test_failure_retries_then_fails_permanently(client: TestClient, tenant: TenantHandle) -> None:
    schedule(client, tenant, task("flaky", max_attempts=2))
    worker = register_worker(client, tenant)
    assign(client, tenant, worker)
    first = client.post(
        f"{BASE}/flaky/fail", json={"worker_id": worker, "error": "boom"}, headers=tenant.headers
    ).json()
    assert first["status"] == "queued" and first["attempts"] == 1 and first["error"] == "boom"
    # Backoff: not claimable for 30 s.
    assert assign(client, tenant, worker) == []
    no_retry = client.post(
        f"{BASE}/flaky/fail",
        json={"worker_id": worker, "error": "x", "retry": False},
        headers=tenant.headers,
    )
    assert no_retry.status_code == 409  # not leased now


def test_workers_are_capped_by_the_tier_and_counted_in_tenant_quotas(
    client: TestClient, admin_key: str
) -> None:
    small = create_tenant(client, admin_key, "small", tier="starter")  # 2 AI agents
    register_worker(client, small, "a")
    register_worker(client, small, "b")
    third = client.post(f"{BASE}/workers/register", json={"name": "c"}, headers=small.headers)
    assert third.status_code == 403 and third.json()["type"].endswith("quota-exceeded")
    # Re-registering an existing worker by name is not a new agent.
    again = client.post(
        f"{BASE}/workers/register", json={"name": "a", "capacity": 3}, headers=small.headers
    )
    assert again.status_code == 200 and again.json()["capacity"] == 3
    metrics = client.get(f"/api/v1/tenants/{small.id}/metrics", headers=small.headers).json()
    agents = next(q for q in metrics["quotas"] if q["quota"] == "ai_agents")
    assert agents == {"quota": "ai_agents", "used": 2, "limit": 2, "percent": 100.0}
    workers = client.get(f"{BASE}/workers", headers=small.headers).json()
    assert sorted(w["name"] for w in workers) == ["a", "b"]


def test_reader_cannot_schedule_and_tenants_are_isolated(
    client: TestClient, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    reader = client.post(
        "/api/v1/operational/security/keys/register",
        json={"name": "r", "kind": "api_key", "scopes": ["tenant:read"]},
        headers=tenant.headers,
    ).json()["secret"]
    denied = client.post(
        f"{BASE}/schedule",
        json={"tasks": [task("a")]},
        headers={"Authorization": f"Bearer {reader}"},
    )
    assert denied.status_code == 403
    schedule(client, tenant, task("mine"))
    # The same client id is free in another tenant, and invisible across tenants.
    schedule(client, other_tenant, task("mine"))
    assert client.get(f"{BASE}/mine", headers=other_tenant.headers).json()["id"] == "mine"
    worker = register_worker(client, other_tenant)
    assert len(assign(client, other_tenant, worker)) == 1
    listed = client.get(BASE, headers=tenant.headers).json()["items"]
    assert [t["status"] for t in listed] == ["queued"]


def test_the_list_filters_by_status_and_type_and_an_empty_filter_means_any(
    client: TestClient, tenant: TenantHandle
) -> None:
    schedule(client, tenant, task("a", type="report"), task("b", type="export"))

    def listed(**params: str) -> list[str]:
        response = client.get(BASE, params=params, headers=tenant.headers)
        assert response.status_code == 200, response.text
        return sorted(t["id"] for t in response.json()["items"])

    assert listed(type="export") == ["b"]
    assert listed(type="export", status="running") == []
    assert listed(type="") == ["a", "b"]
    assert listed(status="queued") == ["a", "b"]
