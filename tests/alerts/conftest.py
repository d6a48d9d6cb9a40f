"""Alert channel fixtures: a Slack-compatible receiver and an SMTP server (aiosmtpd), both
real servers on loopback started by the test, and settings that point at them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from aethercrown.settings import Settings
from tests.servers import free_port

BASE = "/api/v1/alert-channels"


class SlackReceiver:
    """An incoming-webhook endpoint: records each JSON body; answers 200 "ok" unless answers
    were queued (status, headers, body)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.answers: list[tuple[int, dict[str, str], str]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.bodies.append(orjson.loads(body))
                    status, headers, text = (
                        receiver.answers.pop(0) if receiver.answers else (200, {}, "ok")
                    )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(text.encode())))
                self.end_headers()
                self.wfile.write(text.encode())

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T000/B000/XXXXsecretXXXX"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    """aiosmtpd's handler: keeps each message; refuses the recipients in ``refuse`` (5xx) and
    ``busy`` (4xx) at RCPT time."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.refuse: set[str] = set()
        self.busy: set[str] = set()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        if address in self.busy:
            return "451 4.3.0 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.messages.append(
            (
                list(envelope.rcpt_tos),
                message_from_bytes(content, _class=EmailMessage, policy=policy.default),
            )
        )
        return "250 Message accepted for delivery"


@pytest.fixture
def slack() -> Iterator[SlackReceiver]:
    receiver = SlackReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="session")
def _smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


@pytest.fixture
def mailbox(_smtp: tuple[Mailbox, int]) -> Mailbox:
    mailbox, _ = _smtp
    mailbox.messages.clear()
    mailbox.refuse.clear()
    mailbox.busy.clear()
    return mailbox


@pytest.fixture
def settings(settings: Settings, _smtp: tuple[Mailbox, int]) -> Settings:
    return settings.model_copy(
        update={
            "alerts_allow_loopback_webhooks": True,
            "smtp_host": "127.0.0.1",
            "smtp_port": _smtp[1],
            "smtp_from": "AetherCrown <alerts@aethercrown.example>",
            "public_url": "https://console.example",
        }
    )
