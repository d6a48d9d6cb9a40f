"""Segment-format tracking, sent by Segment's official Python SDK over real HTTP to the platform
served by uvicorn on a free port: batches, retries after 503s, deduplication by messageId."""

from __future__ import annotations

import base64
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from segment.analytics import Client
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session, sessionmaker

from aethercrown import clock
from aethercrown.connectors import segment_service
from aethercrown.connectors.jobs import (
    SEGMENT_MESSAGE_RETENTION,
    prune_headline,
    prune_segment_messages,
)
from aethercrown.connectors.models import SegmentMessage
from aethercrown.core.models import Tier
from aethercrown.db.session import write_transaction
from aethercrown.db.tenant_scope import across_tenants, scope_to_tenant
from tests.conftest import TenantHandle, bearer, create_tenant


class FailFirstBatches:
    """Answers 503 to the first ``n`` POST /v1/batch calls (the SDK must retry them)."""

    def __init__(self, app: Any, n: int) -> None:
        self.app = app
        self.left = n
        self.refused = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/batch" and self.left > 0:
            self.left -= 1
            self.refused += 1
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(app: Any) -> Iterator[tuple[str, FailFirstBatches]]:
    wrapper = FailFirstBatches(app, 0)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(wrapper, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", wrapper
    finally:
        server.should_exit = True
        thread.join(30)


def _write_key(http: httpx.Client, tenant: TenantHandle) -> str:
    response = http.post(
        "/api/v1/connectors/segment/sources", json={"name": "web app"}, headers=tenant.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["write_key"])


def _activity(http: httpx.Client, tenant: TenantHandle) -> list[dict[str, Any]]:
    page = http.get("/api/v1/data/activity", params={"limit": 500}, headers=tenant.headers)
    return list(page.json()["items"])


def test_the_official_sdk_sends_batches_with_retries(
    served: tuple[str, FailFirstBatches], admin_key: str
) -> None:
    base, wrapper = served
    with httpx.Client(base_url=base, timeout=30) as http:
        tenant = create_tenant(http, admin_key, "acme", tier="professional")  # type: ignore[arg-type]
        other = create_tenant(http, admin_key, "globex")  # type: ignore[arg-type]
        key = _write_key(http, tenant)
        wrapper.left = 2  # the first two uploads fail: the SDK retries them
        errors: list[Any] = []
        sdk = Client(
            key, host=base, upload_size=50, max_retries=5, on_error=lambda e, b: errors.append(e)
        )
        at = datetime(2025, 3, 1, 12, tzinfo=UTC)
        sdk.group(
            "u1", "acct_1", {"name": "Alpha GmbH", "employees": 40, "country": "de"}, timestamp=at
        )
        sdk.identify("u1", {"email": "u1@alpha.example"}, timestamp=at)
        sdk.identify("u2", {"company": {"id": "acct_2", "name": "Beta"}}, timestamp=at)
        sdk.track("u1", "Signed In", timestamp=at)
        sdk.track("u1", "Session Ended", {"duration": 620}, timestamp=at)
        for i in range(120):
            sdk.track("u2" if i % 2 else "u1", "Exported report", {"n": i}, timestamp=at)
        sdk.track("u9", "Orphan event", timestamp=at)  # no customer known: skipped
        sdk.track("u9", "Grouped event", context={"groupId": "acct_3"}, timestamp=at)
        sdk.flush()
        sdk.join()
        assert errors == []
        assert wrapper.refused == 2
        rows = _activity(http, tenant)
        kinds = sorted({(r["kind"], r["feature"]) for r in rows})
        assert kinds == [
            ("feature", "Exported report"),
            ("feature", "Grouped event"),
            ("login", None),
            ("session", None),
        ]
        assert len(rows) == 123
        session = next(r for r in rows if r["kind"] == "session")
        assert session["duration_seconds"] == 620 and session["customer"] == "acct_1"
        customers = http.get("/api/v1/data/customers", headers=tenant.headers).json()["items"]
        by_id = {c["external_id"]: c for c in customers}
        assert by_id["acct_1"]["name"] == "Alpha GmbH"
        assert by_id["acct_1"]["company_size"] == 40
        assert by_id["acct_1"]["country"] == "DE"
        assert by_id["acct_2"]["name"] == "Beta"
        assert set(by_id) == {"acct_1", "acct_2", "acct_3"}
        # The other tenant saw nothing of it.
        assert _activity(http, other) == []


def test_message_ids_deduplicate_and_bad_input_stores_nothing(
    served: tuple[str, FailFirstBatches], admin_key: str
) -> None:
    base, _ = served
    with httpx.Client(base_url=base, timeout=30) as http:
        tenant = create_tenant(http, admin_key, "acme", tier="professional")  # type: ignore[arg-type]
        other = create_tenant(http, admin_key, "globex")  # type: ignore[arg-type]
        key = _write_key(http, tenant)
        auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
        group = {"type": "group", "userId": "u1", "groupId": "acct_1", "messageId": "m0"}
        track = {
            "type": "track",
            "userId": "u1",
            "event": "Clicked",
            "messageId": "m1",
            "timestamp": "2025-03-01T10:00:00Z",
        }
        first = http.post("/v1/batch", json={"batch": [group, track, track]}, headers=auth)
        assert first.status_code == 200, first.text
        assert first.json()["activity"] == 1
        again = http.post("/v1/track", json=track, headers=auth)
        assert again.status_code == 200
        assert again.json()["activity"] == 0 and again.json()["duplicates"] == 1
        assert len(_activity(http, tenant)) == 1
        bad_bodies: list[Any] = [
            {"batch": [track, {"type": "track", "userId": "u1", "messageId": "m2"}]},  # no event
            {"batch": [{**track, "messageId": "m3", "timestamp": "yesterday"}]},
            {"batch": "nope"},
            {"batch": [{**track, "messageId": "m4", "type": "explode"}]},
        ]
        for body in bad_bodies:
            response = http.post("/v1/batch", json=body, headers=auth)
            assert response.status_code in (400, 422), body
            assert response.headers["content-type"] == "application/problem+json"
        not_json = http.post("/v1/batch", content=b"{", headers=auth)
        assert not_json.status_code == 422
        assert len(_activity(http, tenant)) == 1
        for headers in (
            {},
            {"Authorization": "Basic !!!"},
            bearer(tenant.key),
            {"Authorization": "Basic " + base64.b64encode(b"seg_unknown:").decode()},
        ):
            assert http.post("/v1/track", json=track, headers=headers).status_code == 401
        # Another tenant's key never writes into this tenant, and its own key into its own only.
        other_key = _write_key(http, other)
        other_auth = {
            "Authorization": "Basic " + base64.b64encode(f"{other_key}:".encode()).decode()
        }
        assert (
            http.post("/v1/batch", json={"batch": [group, track]}, headers=other_auth).status_code
            == 200
        )
        assert len(_activity(http, other)) == 1
        assert len(_activity(http, tenant)) == 1
        source_id = http.get("/api/v1/connectors/segment/sources", headers=tenant.headers).json()[
            0
        ]["id"]
        assert (
            http.delete(
                f"/api/v1/connectors/segment/sources/{source_id}", headers=other.headers
            ).status_code
            == 404
        )
        assert (
            http.delete(
                f"/api/v1/connectors/segment/sources/{source_id}", headers=tenant.headers
            ).status_code
            == 204
        )
        assert (
            http.post(
                "/v1/track", json={**track, "messageId": str(uuid.uuid4())}, headers=auth
            ).status_code
            == 401
        )


def _customers(http: httpx.Client, tenant: TenantHandle) -> dict[str, dict[str, Any]]:
    items = http.get("/api/v1/data/customers", headers=tenant.headers).json()["items"]
    return {c["external_id"]: c for c in items}


def _send(sdk: Client) -> None:
    # flush waits until the queue is sent; join would also stop the client's sender threads.
    sdk.flush()


def test_replayed_identify_and_group_calls_change_nothing(
    served: tuple[str, FailFirstBatches], admin_key: str
) -> None:
    """An identify or group whose messageId the source sent before is acknowledged and applies
    nothing, even when what it says is older than what was applied since; another source's
    message with the same id is its own."""
    base, _ = served
    with httpx.Client(base_url=base, timeout=30) as http:
        tenant = create_tenant(http, admin_key, "acme", tier="professional")  # type: ignore[arg-type]
        key = _write_key(http, tenant)
        at = datetime(2025, 3, 1, 12, tzinfo=UTC)
        errors: list[Any] = []

        def sdk_for(write_key: str) -> Client:
            return Client(write_key, host=base, on_error=lambda e, b: errors.append(e))

        sdk = sdk_for(key)
        sdk.group("u1", "acct_1", {"name": "Alpha Old"}, timestamp=at, message_id="g1")
        sdk.identify("u2", {"company": {"id": "acct_2", "name": "Beta"}}, message_id="i1")
        _send(sdk)
        sdk.group("u1", "acct_1", {"name": "Alpha New"}, timestamp=at, message_id="g2")
        sdk.identify("u2", {"company": {"id": "acct_3", "name": "Gamma"}}, message_id="i2")
        _send(sdk)
        # The SDK replays the first two calls (a retry whose answer was lost), then tracks.
        sdk.group("u1", "acct_1", {"name": "Alpha Old"}, timestamp=at, message_id="g1")
        sdk.identify("u2", {"company": {"id": "acct_2", "name": "Beta again"}}, message_id="i1")
        sdk.track("u2", "Exported report", timestamp=at, message_id="t1")
        _send(sdk)
        assert errors == []
        by_id = _customers(http, tenant)
        assert by_id["acct_1"]["name"] == "Alpha New"
        assert by_id["acct_2"]["name"] == "Beta"
        # u2 stayed linked to the customer its latest identify named.
        [row] = _activity(http, tenant)
        assert row["customer"] == "acct_3"

        auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
        replay = {"userId": "u1", "groupId": "acct_1", "messageId": "g1", "traits": {"name": "X"}}
        for path in ("/v1/group", "/v1/identify"):
            answer = http.post(path, json=replay, headers=auth)
            assert answer.status_code == 200, answer.text
            assert answer.json()["duplicates"] == 1 and answer.json()["customers"] == 0
        fresh = http.post("/v1/identify", json={**replay, "messageId": "i9"}, headers=auth)
        assert fresh.json()["duplicates"] == 0 and fresh.json()["users"] == 1
        assert _customers(http, tenant)["acct_1"]["name"] == "Alpha New"

        # A second source of the tenant: its own message ids, "g1" included.
        other = sdk_for(_write_key(http, tenant))
        other.group("u1", "acct_1", {"name": "Alpha Renamed"}, timestamp=at, message_id="g1")
        _send(other)
        sdk.join()
        other.join()
        assert errors == []
        assert _customers(http, tenant)["acct_1"]["name"] == "Alpha Renamed"


def test_old_message_ids_are_pruned_by_the_daily_job(
    session_factory: sessionmaker[Session], tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    """Message ids older than the retention go (every tenant's), newer ones stay: a replay
    within the window is still a duplicate."""
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    sources = {}
    with write_transaction(session_factory) as session:
        for handle in (tenant, other_tenant):
            source, _ = segment_service.create_source(session, handle.uid, "web")
            sources[handle.uid] = (handle.uid, source.id)
    ages = {"old": SEGMENT_MESSAGE_RETENTION + timedelta(hours=1), "recent": timedelta(days=1)}
    for label, age in ages.items():
        for ref in sources.values():
            with clock.travel(now - age), write_transaction(session_factory) as session:
                scope_to_tenant(session, ref[0])
                batch = [
                    {"type": "identify", "userId": "u1", "messageId": f"{label}-{i}"}
                    for i in range(3)
                ]
                segment_service.ingest_messages(session, ref, batch)
    summary = prune_segment_messages(session_factory, None, now)
    assert summary["deleted"] == 6
    with session_factory() as session, across_tenants(session):
        kept = sorted(session.scalars(select(SegmentMessage.message_id)))
    assert kept == sorted(f"recent-{i}" for i in range(3) for _ in sources)
    assert prune_headline(summary) == "forgot 6 Segment message ids received before 2026-03-03"
    with write_transaction(session_factory) as session:
        scope_to_tenant(session, tenant.uid)
        replay = [{"type": "identify", "userId": "u1", "messageId": "recent-0"}]
        assert (
            segment_service.ingest_messages(session, sources[tenant.uid], replay)["duplicates"] == 1
        )


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def _tracks(prefix: str, n: int, user: str = "u1") -> dict[str, Any]:
    return {
        "batch": [
            {
                "type": "track",
                "userId": user,
                "event": "Used reports",
                "messageId": f"{prefix}-{i}",
                "timestamp": "2025-03-01T12:00:00Z",
            }
            for i in range(n)
        ]
    }


def test_a_cached_write_key_ends_with_its_revocation_and_a_batch_is_few_statements(
    client: TestClient, app: Any, tenant: TenantHandle
) -> None:
    """The write key and the tenant's tier are cached per process: a batch of tracks then
    reads neither. A revocation committed in this process ends the key at once; one committed
    elsewhere (here: a plain SQL update, which no invalidation hears) once the entry expires."""
    key = _write_key(client, tenant)  # type: ignore[arg-type]
    group = {"type": "group", "userId": "u1", "groupId": "acct_1", "messageId": "g1"}
    assert (
        client.post("/v1/batch", json={"batch": [group]}, headers=_basic(key)).json()["customers"]
        == 1
    )
    engine = app.state.engine
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", record)
    try:
        answer = client.post("/v1/batch", json=_tracks("a", 50), headers=_basic(key))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert answer.status_code == 200 and answer.json()["activity"] == 50, answer.text
    assert not [s for s in statements if "key_hash" in s or "tenants.tier_slug" in s]
    if engine.dialect.name == "postgresql":
        # The tenant scope, the users' links with their customers' ids, the stored-row count,
        # the insert with its rollups.
        assert len(statements) == 4, statements

    cache = app.state.segment_key_cache
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT set_config('aethercrown.all_tenants', 'on', true)"))
        conn.execute(text("UPDATE segment_sources SET revoked_at = CURRENT_TIMESTAMP"))
    # Still in this process's cache: accepted for at most keycache.TTL_SECONDS.
    assert client.post("/v1/batch", json=_tracks("b", 1), headers=_basic(key)).status_code == 200
    cache.ttl = 0  # the entry's time is up
    assert client.post("/v1/batch", json=_tracks("c", 1), headers=_basic(key)).status_code == 401

    # A revocation through the API empties the cache as it commits.
    cache.ttl = 60
    fresh = _write_key(client, tenant)  # type: ignore[arg-type]
    assert client.post("/v1/batch", json=_tracks("d", 1), headers=_basic(fresh)).status_code == 200
    sources = client.get("/api/v1/connectors/segment/sources", headers=tenant.headers).json()
    live = next(s["id"] for s in sources if s["revoked_at"] is None)
    deleted = client.delete(f"/api/v1/connectors/segment/sources/{live}", headers=tenant.headers)
    assert deleted.status_code == 204
    assert client.post("/v1/batch", json=_tracks("e", 1), headers=_basic(fresh)).status_code == 401
    assert len(_activity(client, tenant)) == 52  # type: ignore[arg-type]


def test_a_cached_tier_follows_a_quota_change(
    client: TestClient, app: Any, tenant: TenantHandle, session_factory: sessionmaker[Session]
) -> None:
    """The tier's stored-row limit travels with the cached write key; a change to the tier
    empties the cache as it commits, so the next batch is held to the new limit (403, nothing
    stored)."""
    key = _write_key(client, tenant)  # type: ignore[arg-type]
    group = {"type": "group", "userId": "u1", "groupId": "acct_1", "messageId": "g1"}
    assert client.post("/v1/batch", json={"batch": [group]}, headers=_basic(key)).status_code == 200
    assert client.post("/v1/batch", json=_tracks("a", 3), headers=_basic(key)).status_code == 200
    with write_transaction(session_factory) as session:
        tier = session.get(Tier, "professional")
        assert tier is not None
        tier.max_stored_rows = 5  # less than what is stored plus the next batch
    refused = client.post("/v1/batch", json=_tracks("b", 3), headers=_basic(key))
    assert refused.status_code == 403, refused.text
    assert refused.json()["max_stored_rows"] == 5
    assert len(_activity(client, tenant)) == 3  # type: ignore[arg-type]
