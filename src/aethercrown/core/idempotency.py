"""``Idempotency-Key`` on POSTs, with Stripe's semantics.

The first request with a key is recorded (in progress) before it runs; its response is stored
before it is sent. A retry with the same key and the same body replays that response; the same
key with another body, or while the first is still running, is a 409. Responses that did not do
the work (5xx, 401, 403, 429) are not kept, so the client may retry them.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import anyio
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aethercrown.clock import utcnow
from aethercrown.core.auth import hash_secret
from aethercrown.core.errors import database_busy, problem_response
from aethercrown.core.idempotency_repository import delete_record, find_record, record_by_id
from aethercrown.core.key_repository import key_owner
from aethercrown.core.models import IdempotencyRecord
from aethercrown.db.session import is_database_busy, write_transaction
from aethercrown.db.tenant_scope import across_tenants

RETENTION = timedelta(hours=24)
MAX_KEY_LENGTH = 255
_NOT_KEPT = {401, 403, 429}
_REPLAYED_HEADERS = {"content-type", "content-length", "location"}


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        raw_key = headers.get(b"idempotency-key")
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1").strip()
        if not key or len(key) > MAX_KEY_LENGTH:
            response = problem_response(
                400,
                "invalid-idempotency-key",
                "Invalid Idempotency-Key",
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters",
                instance=scope["path"],
            )
            await response(scope, receive, send)
            return

        body = await _read_body(receive)
        factory: sessionmaker[Session] = scope["app"].state.session_factory
        owner = await anyio.to_thread.run_sync(_owner_of, factory, headers.get(b"authorization"))
        if owner is None:  # not authenticated: let auth answer 401, keep nothing
            await self.app(scope, _replay_receive(body), send)
            return
        fingerprint = hashlib.sha256(
            b"\n".join([scope["path"].encode(), scope.get("query_string", b""), body])
        ).hexdigest()

        try:
            claim = await anyio.to_thread.run_sync(_claim, factory, owner, key, fingerprint)
        except OperationalError as exc:
            if not is_database_busy(exc):
                raise
            busy = database_busy()
            response = problem_response(
                busy.status, busy.slug, busy.title, busy.detail, headers=busy.headers
            )
            await response(scope, receive, send)
            return
        if isinstance(claim, IdempotencyRecord):
            await _answer_existing(claim, fingerprint, scope, receive, send)
            return

        captured: dict[str, Any] = {"status": 500, "headers": [], "body": []}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                captured["body"].append(message.get("body", b""))

        try:
            await self.app(scope, _replay_receive(body), capture)
        except BaseException:
            await anyio.to_thread.run_sync(_release, factory, claim)
            raise
        status = captured["status"]
        content = b"".join(captured["body"])
        if status >= 500 or status in _NOT_KEPT:
            await anyio.to_thread.run_sync(_release, factory, claim)
        else:
            kept = {
                k.decode("latin-1"): v.decode("latin-1")
                for k, v in captured["headers"]
                if k.decode("latin-1").lower() in _REPLAYED_HEADERS
            }
            await anyio.to_thread.run_sync(_complete, factory, claim, status, content, kept)
        await send(
            {"type": "http.response.start", "status": status, "headers": captured["headers"]}
        )
        await send({"type": "http.response.body", "body": content})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay_receive(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


def _owner_of(factory: sessionmaker[Session], authorization: bytes | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    with factory() as session, across_tenants(session):  # the key's owner is what this finds
        row = key_owner(session, hash_secret(token.strip()))
    if row is None:
        return None
    return str(row.tenant_id) if row.tenant_id is not None else "operator"


def _claim(
    factory: sessionmaker[Session], owner: str, key: str, fingerprint: str
) -> int | IdempotencyRecord:
    # A write unit: the look-up and the insert must not interleave with another claimer's.
    with write_transaction(factory) as session:
        existing = find_record(session, owner, key)
        if existing is not None and existing.created_at < utcnow() - RETENTION:
            session.delete(existing)
            session.flush()
            existing = None
        if existing is not None:
            return existing
        record = IdempotencyRecord(scope=owner, key=key, fingerprint=fingerprint)
        try:
            with session.begin_nested():  # PostgreSQL: another process may claim it first
                session.add(record)
        except IntegrityError:
            raced = find_record(session, owner, key)
            assert raced is not None
            return raced
        return record.id


def _release(factory: sessionmaker[Session], record_id: int) -> None:
    with write_transaction(factory) as session:
        delete_record(session, record_id)


def _complete(
    factory: sessionmaker[Session],
    record_id: int,
    status: int,
    body: bytes,
    headers: dict[str, str],
) -> None:
    with write_transaction(factory) as session:
        record = record_by_id(session, record_id)
        if record is not None:
            record.status_code = status
            record.response_body = body
            record.response_headers = headers


async def _answer_existing(
    record: IdempotencyRecord, fingerprint: str, scope: Scope, receive: Receive, send: Send
) -> None:
    if record.fingerprint != fingerprint:
        response = problem_response(
            409,
            "idempotency-key-reused",
            "Idempotency-Key reused",
            "This Idempotency-Key was already used with a different request body",
            instance=scope["path"],
        )
    elif record.status_code is None:
        response = problem_response(
            409,
            "idempotency-request-in-progress",
            "Request in progress",
            "A request with this Idempotency-Key is still being processed; retry shortly",
            instance=scope["path"],
            headers={"Retry-After": "1"},
        )
    else:
        headers = {**(record.response_headers or {}), "Idempotent-Replayed": "true"}
        start = {
            "type": "http.response.start",
            "status": record.status_code,
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        }
        await send(start)
        await send({"type": "http.response.body", "body": record.response_body or b""})
        return
    await response(scope, receive, send)
