"""The per-process key cache: changes through this process apply at once, changes from other
processes within the TTL (or at once over Redis), and expiry stays exact."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, update

from aethercrown import clock
from aethercrown.clock import utcnow
from aethercrown.core import auth
from aethercrown.core.keycache import (
    CHANNEL,
    TTL_SECONDS,
    CachedKey,
    KeyCache,
    listen_for_invalidations,
)
from aethercrown.core.models import ApiKey
from aethercrown.db.engine import make_session_factory
from aethercrown.db.session import write_transaction
from aethercrown.security.repository import KeyRepository
from aethercrown.security.service import revoke
from tests.conftest import REDIS_URL, TenantHandle, bearer

KEYS = "/api/v1/operational/security/keys"


def _me(client: TestClient, tenant: TenantHandle, key: str | None = None) -> int:
    headers = bearer(key or tenant.key)
    return client.get(f"/api/v1/tenants/{tenant.id}", headers=headers).status_code


def _cache(client: TestClient) -> KeyCache:
    return client.app.state.key_cache  # type: ignore[attr-defined,no-any-return]


def _entry(**changes: object) -> CachedKey:
    values: dict[str, object] = {
        "key_id": uuid.uuid4(),
        "tenant_id": None,
        "kind": "api_key",
        "scopes": frozenset({"admin"}),
        "expires_at": None,
        "revoked_at": None,
        "per_minute": None,
        "last_used_at": None,
        "loaded_at": time.monotonic(),
    }
    values.update(changes)
    return CachedKey(**values)  # type: ignore[arg-type]


def test_entries_expire_after_the_ttl_and_stale_lookups_are_not_stored() -> None:
    cache = KeyCache(ttl=0.05)
    cache.put("h", _entry(), cache.generation)
    assert cache.get("h") is not None
    time.sleep(0.06)
    assert cache.get("h") is None

    # A lookup that began before an invalidation must not store what it read.
    generation = cache.generation
    cache.clear()
    cache.put("h", _entry(), generation)
    assert cache.get("h") is None and len(cache) == 0


def test_the_cache_is_bounded() -> None:
    cache = KeyCache(max_entries=3)
    for i in range(10):
        cache.put(str(i), _entry(), cache.generation)
    assert len(cache) <= 3


def test_a_key_is_looked_up_once_then_served_from_the_cache(
    client: TestClient, tenant: TenantHandle
) -> None:
    assert _me(client, tenant) == 200
    assert _cache(client).get(auth.hash_secret(tenant.key)) is not None
    assert _me(client, tenant) == 200


def test_revoke_through_the_api_applies_at_once(client: TestClient, tenant: TenantHandle) -> None:
    created = client.post(
        f"{KEYS}/register",
        json={"name": "ci", "kind": "api_key", "security_level": "high"},
        headers=tenant.headers,
    ).json()
    assert _me(client, tenant, created["secret"]) == 200  # now cached
    response = client.post(f"{KEYS}/{created['id']}/revoke", headers=tenant.headers)
    assert response.status_code == 200
    assert _me(client, tenant, created["secret"]) == 401


def test_rotation_without_grace_kills_the_cached_old_key_at_once(
    client: TestClient, tenant: TenantHandle
) -> None:
    created = client.post(
        f"{KEYS}/register",
        json={"name": "ci", "kind": "api_key", "security_level": "high"},
        headers=tenant.headers,
    ).json()
    assert _me(client, tenant, created["secret"]) == 200
    rotated = client.post(
        f"{KEYS}/{created['id']}/rotate", json={"grace_seconds": 0}, headers=tenant.headers
    )
    assert rotated.status_code == 200, rotated.text
    assert _me(client, tenant, created["secret"]) == 401
    assert _me(client, tenant, rotated.json()["key"]["secret"]) == 200


def test_grace_end_is_exact_for_a_cached_key(client: TestClient, tenant: TenantHandle) -> None:
    created = client.post(
        f"{KEYS}/register",
        json={"name": "ci", "kind": "api_key", "security_level": "high"},
        headers=tenant.headers,
    ).json()
    rotated = client.post(
        f"{KEYS}/{created['id']}/rotate", json={"grace_seconds": 600}, headers=tenant.headers
    )
    assert rotated.status_code == 200
    assert _me(client, tenant, created["secret"]) == 200  # cached, with its grace end
    grace_end = rotated.json()["previous_expires_at"]
    assert grace_end is not None
    # The clock passes the grace end while the entry is still fresh in the cache.
    with clock.travel(utcnow() + timedelta(seconds=601)):
        assert _cache(client).get(auth.hash_secret(created["secret"])) is not None
        assert _me(client, tenant, created["secret"]) == 401


def test_scaling_and_tier_changes_apply_to_the_rate_limit_at_once(
    client: TestClient, tenant: TenantHandle, admin_key: str
) -> None:
    url = f"/api/v1/tenants/{tenant.id}"
    assert client.get(url, headers=tenant.headers).headers["RateLimit-Limit"] == "3000"
    scaled = client.post(f"{url}/scale", json={"tier": "enterprise"}, headers=bearer(admin_key))
    assert scaled.status_code == 200
    assert client.get(url, headers=tenant.headers).headers["RateLimit-Limit"] == "20000"
    patched = client.patch(
        "/api/v1/platform/tiers/enterprise",
        json={"requests_per_minute": 12345},
        headers=bearer(admin_key),
    )
    assert patched.status_code == 200
    assert client.get(url, headers=tenant.headers).headers["RateLimit-Limit"] == "12345"


def test_scope_changes_apply_at_once(
    client: TestClient, tenant: TenantHandle, session_factory
) -> None:  # type: ignore[no-untyped-def]
    keys = client.get(KEYS, headers=tenant.headers)
    assert keys.status_code == 200
    with write_transaction(session_factory) as s:
        s.execute(update(ApiKey).where(ApiKey.tenant_id == tenant.uid).values(scopes=["investor"]))
    assert client.get(KEYS, headers=tenant.headers).status_code == 403


def test_a_change_from_another_process_is_seen_within_the_ttl(
    client: TestClient, tenant: TenantHandle, db: Engine
) -> None:
    assert _me(client, tenant) == 200
    # Another process: its own engine, no session events of ours, no Redis.
    other = create_engine(db.url)
    with other.begin() as conn:
        conn.execute(
            update(ApiKey).where(ApiKey.tenant_id == tenant.uid).values(revoked_at=utcnow())
        )
    other.dispose()
    time.sleep(TTL_SECONDS)
    assert _me(client, tenant) == 401


@pytest.mark.skipif(not REDIS_URL, reason="AETHERCROWN_REDIS_URL not set")
def test_listener_empties_the_cache_on_a_published_invalidation() -> None:
    assert REDIS_URL is not None
    cache = KeyCache(ttl=60)

    async def scenario() -> None:
        task = asyncio.create_task(listen_for_invalidations(REDIS_URL, cache))
        publisher = redis.Redis.from_url(REDIS_URL)
        try:
            # Generous deadlines: a loaded machine (CI's stages, parallel workers) is slow to
            # schedule the listener; the test is about arriving, not about speed.
            deadline = time.monotonic() + 15
            while not publisher.pubsub_numsub(CHANNEL)[0][1]:
                assert time.monotonic() < deadline, "listener never subscribed"
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)  # let the listener clear once after subscribing
            cache.put("h", _entry(), cache.generation)
            publisher.publish(CHANNEL, b"1")
            deadline = time.monotonic() + 15
            while cache.get("h") is not None:
                assert time.monotonic() < deadline, "the invalidation never arrived"
                await asyncio.sleep(0.01)
        finally:
            task.cancel()
            publisher.close()

    asyncio.run(scenario())


@pytest.mark.skipif(not REDIS_URL, reason="AETHERCROWN_REDIS_URL not set")
def test_revoke_in_another_process_reaches_a_server_before_the_ttl(
    database_url: str, db: Engine, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """A real `aethercrown serve` with Redis; the key is revoked from this process (as the CLI
    would), through a session factory that publishes."""
    from aethercrown.core.keycache import publish_invalidations
    from aethercrown.db.engine import make_engine
    from aethercrown.security.service import ensure_bootstrap_admin
    from tests.servers import running_server

    assert REDIS_URL is not None
    engine = make_engine(db.url.render_as_string(hide_password=False))
    publish_invalidations(engine, REDIS_URL)
    factory = make_session_factory(engine)
    with write_transaction(factory) as s:
        admin = ensure_bootstrap_admin(s, None)
    assert admin
    env = {
        "AETHERCROWN_DATABASE_URL": database_url,
        "AETHERCROWN_REDIS_URL": REDIS_URL,
        "AETHERCROWN_DATA_DIR": str(tmp_path),
    }
    probe = redis.Redis.from_url(REDIS_URL)
    before = probe.pubsub_numsub(CHANNEL)[0][1]  # other test workers' servers may listen too
    try:
        with running_server(env, "--no-migrate") as (base, _proc):
            import httpx

            deadline = time.monotonic() + 10
            while probe.pubsub_numsub(CHANNEL)[0][1] <= before:
                assert time.monotonic() < deadline, "server never subscribed"
                time.sleep(0.05)
            assert httpx.get(f"{base}/api/v1/platform/tiers", headers=bearer(admin)).is_success
            with write_transaction(factory) as s:
                key_id = s.query(ApiKey.id).filter(ApiKey.tenant_id.is_(None)).scalar()
                revoke(s, KeyRepository(s, None), key_id, actor="test")
            started = time.monotonic()
            status = httpx.get(f"{base}/api/v1/platform/tiers", headers=bearer(admin)).status_code
            # Well inside the TTL: only the published invalidation can explain the 401.
            assert status == 401 and time.monotonic() - started < TTL_SECONDS / 2
    finally:
        probe.close()
        engine.dispose()
