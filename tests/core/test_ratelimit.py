import asyncio
import os
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from aethercrown.core.ratelimit import RateLimiter
from aethercrown.db import migrate
from tests.conftest import REDIS_URL, TenantHandle, bearer, create_tenant
from tests.servers import running_server

requires_redis = pytest.mark.skipif(not REDIS_URL, reason="AETHERCROWN_REDIS_URL not set")


def test_memory_limit_answers_429_with_headers(client: TestClient, admin_key: str) -> None:
    client.patch(
        "/api/v1/platform/tiers/starter", json={"requests_per_minute": 2}, headers=bearer(admin_key)
    )
    t = create_tenant(client, admin_key, "limited")
    first = client.get(f"/api/v1/tenants/{t.id}", headers=t.headers)
    assert first.headers["ratelimit-limit"] == "2" and first.headers["ratelimit-remaining"] == "1"
    client.get(f"/api/v1/tenants/{t.id}", headers=t.headers)
    third = client.get(f"/api/v1/tenants/{t.id}", headers=t.headers)
    assert third.status_code == 429
    assert int(third.headers["retry-after"]) >= 1
    assert third.headers["ratelimit-remaining"] == "0"
    assert third.json()["type"] == "urn:aethercrown:problem:rate-limited"


def test_limits_are_per_key(client: TestClient, admin_key: str, tenant: TenantHandle) -> None:
    client.patch(
        "/api/v1/platform/tiers/starter", json={"requests_per_minute": 1}, headers=bearer(admin_key)
    )
    a = create_tenant(client, admin_key, "aaa")
    b = create_tenant(client, admin_key, "bbb")
    assert client.get(f"/api/v1/tenants/{a.id}", headers=a.headers).status_code == 200
    assert client.get(f"/api/v1/tenants/{a.id}", headers=a.headers).status_code == 429
    assert client.get(f"/api/v1/tenants/{b.id}", headers=b.headers).status_code == 200


@requires_redis
def test_redis_limiter_counts_across_instances() -> None:
    namespace = f"test-{uuid.uuid4().hex}"

    async def scenario() -> list[bool]:
        one, two = RateLimiter(REDIS_URL, namespace), RateLimiter(REDIS_URL, namespace)
        assert one.backend == "redis" and await one.check()
        return [(await (one if i % 2 else two).hit("key", 4)).allowed for i in range(6)]

    assert asyncio.run(scenario()) == [True, True, True, True, False, False]


@requires_redis
def test_two_api_processes_share_one_limit_through_redis(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    migrate.upgrade(url)
    admin = "aca_" + uuid.uuid4().hex + uuid.uuid4().hex
    env = {
        "AETHERCROWN_DATABASE_URL": url,
        "AETHERCROWN_REDIS_URL": str(REDIS_URL),
        "AETHERCROWN_BOOTSTRAP_ADMIN_KEY": admin,
        "AETHERCROWN_DATA_DIR": str(tmp_path / "data"),
    }
    with running_server(env) as (a, _), running_server(env, "--no-migrate") as (b, _):
        h = bearer(admin)
        httpx.patch(
            f"{a}/api/v1/platform/tiers/starter", json={"requests_per_minute": 6}, headers=h
        )
        slug = f"r{uuid.uuid4().hex[:8]}"
        created = httpx.post(
            f"{a}/api/v1/tenants/create", json={"name": "R", "slug": slug}, headers=h
        ).json()
        th = bearer(created["api_key"])
        statuses = [
            httpx.get(f"{(a, b)[i % 2]}/api/v1/tenants/{created['id']}", headers=th).status_code
            for i in range(10)
        ]
    assert statuses.count(200) == 6 and statuses.count(429) == 4
    assert os.path.exists(tmp_path / "shared.db")
