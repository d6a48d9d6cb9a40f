"""The support channel: host names resolved (getaddrinfo) and refused when they name a loopback
or private address (at creation and again before the ping), the ping sent to the address that
was checked, and failures stored as a short reason, never the exception's text."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from aethercrown.core.errors import InvalidInput
from aethercrown.db.session import read_transaction, write_transaction
from aethercrown.onboarding import channel, schemas, service
from aethercrown.onboarding.models import Onboarding
from aethercrown.onboarding.repository import StepRepository
from aethercrown.settings import Settings
from tests.conftest import TenantHandle
from tests.onboarding.conftest import BASE, request_body
from tests.servers import free_port
from tests.webhooks.test_service import Receiver


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The installation as deployed: no loopback receivers.
    return settings.model_copy(update={"onboarding_allow_loopback_webhooks": False})


def _count(factory: sessionmaker[Session]) -> int:
    with read_transaction(factory) as session:
        return int(session.scalar(select(func.count()).select_from(Onboarding)) or 0)


def test_localhost_resolves_to_loopback_and_is_refused() -> None:
    found = channel.resolve("https://localhost/hook", allow_loopback=False)
    assert found == channel.Refused("the host name resolves to a loopback address")
    allowed = channel.resolve("https://localhost/hook", allow_loopback=True)
    assert isinstance(allowed, channel.Target) and allowed.address == "127.0.0.1"
    unknown = channel.resolve("https://support.nowhere.invalid/hook", allow_loopback=False)
    assert unknown == channel.Refused("the host name does not resolve", unresolved=True)


@pytest.mark.parametrize(
    "url",
    [
        # Spellings of 127.0.0.1 that are not IP literals to ``ipaddress`` but that the
        # system's resolver reads as one: only the lookup sees they are loopback.
        "https://127.1/hook",
        "https://2130706433/hook",
        "https://0x7f000001/hook",
    ],
)
def test_names_resolving_to_loopback_are_refused_at_creation(
    client: TestClient, tenant: TenantHandle, session_factory: sessionmaker[Session], url: str
) -> None:
    assert schemas.webhook_url_problem(url, False) is None  # the URL alone looks public
    response = client.post(f"{BASE}/create", json=request_body(url), headers=tenant.headers)
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert error["field"] == "support_webhook_url"
    assert error["msg"] == "the host name resolves to a loopback address"
    assert _count(session_factory) == 0


def test_private_answer_is_refused_and_unresolvable_name_waits(
    tenant: TenantHandle, session_factory: sessionmaker[Session]
) -> None:
    def private(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "10.0.0.7"]  # one bad answer among good ones is enough

    body = schemas.OnboardingCreate.model_validate(request_body("https://hooks.example.com/h"))
    with pytest.raises(InvalidInput) as refused:
        service.create(
            session_factory, tenant.uid, body, "test", allow_loopback=False, resolver=private
        )
    assert refused.value.extra["errors"][0]["msg"] == (
        "the host name resolves to a private or reserved address"
    )
    assert _count(session_factory) == 0
    # A name that does not resolve yet is accepted; its ping waits until it does.
    later = schemas.OnboardingCreate.model_validate(
        request_body("https://support.not-yet.invalid/h")
    )
    out = service.create(session_factory, tenant.uid, later, "test", allow_loopback=False)
    (blocker,) = out.blockers
    assert blocker.step == "support_channel_setup"
    assert blocker.reason == "support webhook did not answer: the host name does not resolve"


def test_a_rebound_name_is_refused_at_ping_time(
    tenant: TenantHandle, session_factory: sessionmaker[Session]
) -> None:
    receiver = Receiver()
    try:
        answers = iter([["93.184.215.14"], ["127.0.0.1"]])

        def rebinding(host: str, port: int) -> list[str]:
            # Public to the check at creation, loopback a moment later, at the ping.
            return next(answers)

        port = receiver.server.server_port
        body = schemas.OnboardingCreate.model_validate(
            request_body(f"https://rebind.example.com:{port}/hook")
        )
        out = service.create(
            session_factory, tenant.uid, body, "test", allow_loopback=False, resolver=rebinding
        )
        (blocker,) = out.blockers
        assert blocker.reason == (
            "support webhook did not answer: refused: the host name resolves to a loopback address"
        )
        assert receiver.requests == []  # nothing was sent
    finally:
        receiver.close()


def test_the_ping_goes_to_the_checked_address_with_the_host_name_kept(
    tenant: TenantHandle, session_factory: sessionmaker[Session]
) -> None:
    receiver = Receiver()
    lookups: list[str] = []
    try:

        def to_loopback(host: str, port: int) -> list[str]:
            lookups.append(host)
            return ["127.0.0.1"]

        port = receiver.server.server_port
        body = schemas.OnboardingCreate.model_validate(
            request_body(f"http://support.pinned.localhost:{port}/hook")
        )
        out = service.create(
            session_factory, tenant.uid, body, "test", allow_loopback=True, resolver=to_loopback
        )
        assert out.steps[6].status == "done"
        # This name has no address of its own (nothing would answer without the pin): the
        # request arrived because it was sent to the address the check saw. Looked up at
        # creation and again before the ping.
        assert lookups == ["support.pinned.localhost", "support.pinned.localhost"]
        (request,) = receiver.requests
        assert request["headers"]["Host"] == f"support.pinned.localhost:{port}"
        with read_transaction(session_factory) as session:
            report = service.report(session, tenant.uid, out.id)
        ping = report.provisioned["support_channel_setup"]
        assert ping["endpoint"] == "http://support.pinned.localhost"
        assert ping["status_code"] == 200 and ping["reason"] == "answered 200"
    finally:
        receiver.close()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and never answers: the ping times out."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    server.close()


def _failed_ping(
    factory: sessionmaker[Session],
    tenant: TenantHandle,
    url: str,
    client: httpx.Client | None = None,
    external_id: str = "big-co",
) -> tuple[str, dict[str, object], bytes]:
    body = schemas.OnboardingCreate.model_validate(request_body(url, external_id=external_id))
    out = service.create(factory, tenant.uid, body, "test", allow_loopback=True, client=client)
    (blocker,) = out.blockers
    with read_transaction(factory) as session:
        report = service.report(session, tenant.uid, out.id)
    step = next(s for s in report.steps if s.name == "support_channel_setup")
    with read_transaction(factory) as session:
        row = StepRepository(session, tenant.uid).at(out.id, step.position)
        assert row is not None
        result = dict(row.result)
    return blocker.reason, result, orjson.dumps(report.model_dump(mode="json"))


def test_ping_failures_are_stored_as_short_reasons(
    tenant: TenantHandle, session_factory: sessionmaker[Session], silent_server: int
) -> None:
    secret_path = "/hooks/T000-token-s3cr3t"
    closed = free_port()  # nothing listens there
    reason, result, shown = _failed_ping(
        session_factory, tenant, f"http://127.0.0.1:{closed}{secret_path}"
    )
    assert reason == "support webhook did not answer: connection refused"
    assert result == {
        "endpoint": "http://127.0.0.1",
        "status_code": None,
        "reason": "connection refused",
        "at": result["at"],
    }
    assert b"s3cr3t" not in shown and b"Errno" not in shown and b"ConnectError" not in shown


def test_timeout_tls_and_status_reasons(
    tenant: TenantHandle, session_factory: sessionmaker[Session], silent_server: int
) -> None:
    receiver = Receiver()
    try:
        with httpx.Client(timeout=0.3, trust_env=False) as quick:
            reason, result, shown = _failed_ping(
                session_factory,
                tenant,
                f"http://127.0.0.1:{silent_server}/x?key=s3cr3t",
                client=quick,
            )
        assert reason == "support webhook did not answer: timed out"
        assert result["reason"] == "timed out" and b"s3cr3t" not in shown
        # TLS spoken to a plain-HTTP server: the handshake fails.
        port = receiver.server.server_port
        reason, result, shown = _failed_ping(
            session_factory, tenant, f"https://127.0.0.1:{port}/x", external_id="second"
        )
        assert reason == "support webhook did not answer: TLS error", reason
        assert b"SSL" not in shown and b"WRONG_VERSION" not in shown.upper()
        receiver.status = 503
        body = request_body(receiver.url, external_id="third")
        out = service.create(
            session_factory,
            tenant.uid,
            schemas.OnboardingCreate.model_validate(body),
            "test",
            allow_loopback=True,
        )
        assert out.blockers[0].reason == "support webhook answered 503"
    finally:
        receiver.close()


def test_rows_stored_before_the_reasons_were_fixed_show_none_of_their_text(
    client: TestClient, tenant: TenantHandle, session_factory: sessionmaker[Session]
) -> None:
    closed = free_port()
    body = schemas.OnboardingCreate.model_validate(request_body(f"http://127.0.0.1:{closed}/hook"))
    out = service.create(session_factory, tenant.uid, body, "test", allow_loopback=True)
    raw = "ConnectError: [Errno 111] Connection refused by http://u:s3cr3t@10.1.2.3/x"
    with write_transaction(session_factory) as session:
        step = StepRepository(session, tenant.uid).at(out.id, 7)
        assert step is not None
        step.blocker = f"support webhook did not answer: {raw}"  # as an older version stored it
    shown = client.get(f"{BASE}/{out.id}/status", headers=tenant.headers)
    assert b"s3cr3t" not in shown.content and b"10.1.2.3" not in shown.content
    assert shown.json()["blockers"][0]["reason"] == (
        "support webhook did not answer: request failed"
    )
    old_result = {"url": "https://hooks.example.com/T0/s3cr3t", "answer": raw, "status_code": None}
    assert channel.shown_result(old_result) == {
        "status_code": None,
        "endpoint": "https://hooks.example.com",
    }
