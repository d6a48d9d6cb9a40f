"""Alert channels: events routed into the outbox per second (one unit of work emitting many
events through ``enqueue_webhook``), and deliveries sent per second by ``deliver_due`` to a
local Slack-compatible HTTP server and a local SMTP server (aiosmtpd).

    .venv/bin/python benchmarks/alerts.py --events 1000
    .venv/bin/python benchmarks/alerts.py --events 1000 \
        --database-url postgresql://postgres@127.0.0.1:5432/postgres

On PostgreSQL it runs in a scratch database (``aethercrown_bench_alerts`` next to the given
URL's), dropped and created each run; on SQLite in a temporary file. A Slack channel takes every
event and an email channel every second one (``sla.*``). The load average is printed too.
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from aethercrown.alerts import service
from aethercrown.alerts.schemas import AlertChannelCreate
from aethercrown.core.models import Tenant
from aethercrown.db import migrate
from aethercrown.db.engine import make_engine, make_session_factory
from aethercrown.db.session import write_transaction
from aethercrown.settings import Settings
from aethercrown.webhooks.service import enqueue_webhook


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scratch(url: str | None, tmp: str) -> str:
    if url is None:
        return f"sqlite:///{tmp}/alerts.db"
    base = make_url(Settings(database_url=url).database_url)
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text('DROP DATABASE IF EXISTS "aethercrown_bench_alerts" WITH (FORCE)'))
        conn.execute(text('CREATE DATABASE "aethercrown_bench_alerts"'))
    admin.dispose()
    return base.set(database="aethercrown_bench_alerts").render_as_string(hide_password=False)


class _Slack(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        return None


class _Mailbox:
    received = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        _Mailbox.received += 1
        return "250 OK"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--database-url", default=None, help="PostgreSQL; default SQLite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aethercrown-alerts-") as tmp:
        settings = Settings(
            database_url=_scratch(args.database_url, tmp),
            data_dir=tmp,
            secret_key="benchmark-only-secret-key-0123456789",
            alerts_allow_loopback_webhooks=True,
            smtp_host="127.0.0.1",
            smtp_port=_free_port(),
        )
        migrate.upgrade(settings.database_url)
        slack = ThreadingHTTPServer(("127.0.0.1", 0), _Slack)
        threading.Thread(target=slack.serve_forever, daemon=True).start()
        smtp = Controller(_Mailbox(), hostname="127.0.0.1", port=settings.smtp_port)
        smtp.start()
        engine = make_engine(settings.database_url)
        factory = make_session_factory(engine)
        try:
            tenant_id = uuid.uuid4()
            with write_transaction(factory) as s:
                s.add(Tenant(id=tenant_id, name="Bench", slug="bench", tier_slug="starter"))
                s.flush()
                hook = f"http://127.0.0.1:{slack.server_port}/services/T0/B0/x"
                for body in (
                    AlertChannelCreate(name="room", kind="slack", webhook_url=hook),
                    AlertChannelCreate(
                        name="mail",
                        kind="email",
                        recipients=["ops@bench.example"],
                        event_types=["sla.*"],
                    ),
                ):
                    service.create_channel(
                        s,
                        tenant_id,
                        body,
                        settings,
                        service.webhook_url_problem(body.webhook_url, settings),
                    )
            n = args.events
            start = time.perf_counter()
            with write_transaction(factory) as s:
                for i in range(n):
                    event = "sla.breach" if i % 2 else "usage.alert.warning"
                    enqueue_webhook(s, tenant_id, event, {"customer": f"c{i}"})
            routed_s = time.perf_counter() - start
            start = time.perf_counter()
            delivered = 0
            while True:
                counts = service.deliver_due(factory, settings, limit=100)
                if not counts["delivered"] and not counts["retrying"]:
                    break
                delivered += counts["delivered"]
            sent_s = time.perf_counter() - start
        finally:
            smtp.stop()
            slack.shutdown()
            engine.dispose()
    rows = n + n // 2
    print(f"backend {engine.dialect.name}, load average {os.getloadavg()[0]:.1f}")
    print(
        f"routed: {n:,} events -> {rows:,} deliveries in {routed_s:.2f} s "
        f"({rows / routed_s:,.0f}/s)"
    )
    print(
        f"sent: {delivered:,} deliveries ({_Mailbox.received:,} emails) in {sent_s:.1f} s "
        f"({delivered / sent_s:,.0f}/s)"
    )


if __name__ == "__main__":
    main()
