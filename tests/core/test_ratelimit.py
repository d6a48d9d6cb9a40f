import asyncio
import os
import random
import types
import uuid
from pathlib import Path

import httpx
import limits.aio.storage.memory
import limits.aio.strategies
import pytest
from fastapi.testclient import TestClient
from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from aethercrown.core.ratelimit import RateLimiter, SlidingWindows
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


def test_the_memory_windows_give_the_library_verdicts_hit_for_hit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One sequence of hits (several keys and limits, bursts in one instant, gaps inside a
    window, across a window's edge and past two windows) replayed through SlidingWindows, the
    limiter asking the library's MemoryStorage, and the library's own strategy, on one clock."""
    clock = [1_764_000_000.0]
    fake_time = types.SimpleNamespace(time=lambda: clock[0])
    monkeypatch.setattr(limits.aio.storage.memory, "time", fake_time)
    monkeypatch.setattr(limits.aio.strategies, "time", fake_time)
    ours = RateLimiter()
    assert ours.backend == "memory" and ours.memory is not None
    ours.memory = SlidingWindows(lambda: clock[0])
    through_storage = RateLimiter(storage=MemoryStorage())
    strategy = SlidingWindowCounterRateLimiter(MemoryStorage())
    steps = [0.0, 0.0, 0.001, 0.05, 0.5, 2.0, 7.3, 19.99, 29.9, 60.0, 61.7, 150.0]
    rng = random.Random(14)

    async def replay() -> list[bool]:
        allowed = []
        for i in range(4000):
            clock[0] += rng.choice(steps)
            who, per_minute = rng.choice("abc"), rng.choice([1, 3, 10, 40])
            verdict = await ours.hit(who, per_minute)
            assert verdict == await through_storage.hit(who, per_minute), i
            item = RateLimitItemPerMinute(per_minute)
            assert verdict.allowed == await strategy.hit(item, who), i
            stats = await strategy.get_window_stats(item, who)
            assert verdict.remaining == stats.remaining, i
            # The library gives the reset as a time, the header its ceiling in seconds (to
            # within the float rounding of the time's addition).
            reset_in = max(0.0, stats.reset_time - clock[0])
            assert reset_in - 1e-6 <= verdict.reset_seconds < reset_in + 1 + 1e-6, i
            allowed.append(verdict.allowed)
        return allowed

    allowed = asyncio.run(replay())
    assert sum(allowed) > 1000 and allowed.count(False) > 100  # both verdicts, often


def test_the_memory_windows_forget_expired_counters() -> None:
    clock = [1_764_000_000.0]
    windows = SlidingWindows(lambda: clock[0])
    assert [windows.hit("k", 2, 60).allowed for _ in range(3)] == [True, True, False]
    clock[0] += 30
    windows.hit("other", 2, 60)
    assert windows._windows["k"]  # still counted in its window
    clock[0] += 181
    assert windows.hit("other", 2, 60).allowed
    assert "k" not in windows._windows  # swept: no counter left


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
