"""Stripe-shaped objects, events signed as Stripe signs them, and a local Stripe-compatible list
server (pages, 429 and 500 answers) for the backfill."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

WEBHOOK_SECRET = "whsec_test_0123456789abcdef"


def stripe_signature(secret: str, payload: bytes, timestamp: int) -> str:
    """Exactly Stripe's scheme: t=<unix>,v1=hex(HMAC-SHA256(secret, f"{t}.{payload}"))."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload.decode()}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def price(
    ident: str,
    amount: int,
    interval: str = "month",
    count: int = 1,
    nickname: str | None = None,
    currency: str = "usd",
    usage: str = "licensed",
) -> dict[str, Any]:
    return {
        "id": ident,
        "object": "price",
        "currency": currency,
        "nickname": nickname,
        "unit_amount": amount,
        "recurring": {"interval": interval, "interval_count": count, "usage_type": usage},
        "product": f"prod_{ident}",
    }


def item(ident: str, price_obj: dict[str, Any], quantity: int = 1, created: int = 0) -> dict:
    return {
        "id": ident,
        "object": "subscription_item",
        "price": price_obj,
        "quantity": quantity,
        "created": created,
    }


def customer(ident: str, created: int, name: str = "Acme", email: str | None = None) -> dict:
    return {
        "id": ident,
        "object": "customer",
        "created": created,
        "name": name,
        "email": email,
        "currency": "usd",
        "address": {"country": "DE"},
        "metadata": {},
    }


def subscription(
    ident: str,
    customer_id: str,
    items: list[dict[str, Any]],
    *,
    start: int,
    status: str = "active",
    **extra: Any,
) -> dict[str, Any]:
    obj = {
        "id": ident,
        "object": "subscription",
        "customer": customer_id,
        "status": status,
        "start_date": start,
        "created": start,
        "currency": "usd",
        "items": {"object": "list", "data": items},
        "cancel_at_period_end": False,
        "cancel_at": None,
        "canceled_at": None,
        "ended_at": None,
        "trial_end": None,
        "discount": None,
        "pause_collection": None,
        "current_period_end": start + 30 * 86400,
    }
    obj.update(extra)
    return obj


def invoice(
    ident: str,
    customer_id: str,
    sub: str | None,
    *,
    created: int,
    status: str,
    amount: int,
    attempt: int = 1,
    lines: list[dict[str, Any]] | None = None,
    paid: bool = False,
) -> dict[str, Any]:
    return {
        "id": ident,
        "object": "invoice",
        "customer": customer_id,
        "subscription": sub,
        "status": status,
        "currency": "usd",
        "amount_due": amount,
        "amount_paid": amount if paid else 0,
        "attempt_count": attempt,
        "created": created,
        "status_transitions": {"paid_at": created + 60 if paid else None},
        "lines": {
            "object": "list",
            "data": lines
            or [
                {
                    "amount": amount,
                    "proration": False,
                    "period": {"start": created, "end": created + 30 * 86400},
                }
            ],
        },
    }


def event(ident: str, kind: str, created: int, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": ident,
        "object": "event",
        "api_version": "2024-06-20",
        "type": kind,
        "created": created,
        "livemode": False,
        "data": {"object": obj},
    }


class StripeListServer:
    """GET /v1/{customers,subscriptions,invoices}?limit=&starting_after= as Stripe pages them.
    ``failures`` is a list of (status, headers) answered, one per request, before the pages."""

    def __init__(self, objects: dict[str, list[dict[str, Any]]]) -> None:
        self.objects = objects
        self.failures: list[tuple[int, dict[str, str]]] = []
        self.requests: list[str] = []
        self.fail_after: dict[str, int] = {}  # resource -> answer 500 after this many pages
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.handle(self)

            def log_message(self, *args: Any) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        parsed = urlparse(request.path)
        query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        resource = parsed.path.removeprefix("/v1/")
        with self.lock:
            self.requests.append(request.path)
            failure = self.failures.pop(0) if self.failures else None
            pages_served = sum(1 for r in self.requests if f"/v1/{resource}?" in r)
        if (
            failure is None
            and resource in self.fail_after
            and pages_served > self.fail_after[resource]
        ):
            failure = (500, {})
        if failure is not None:
            status, headers = failure
            body = {
                "error": {
                    "type": "api_error" if status >= 500 else "invalid_request_error",
                    "message": f"injected {status}",
                }
            }
            if status == 429:
                body["error"]["type"] = "rate_limit_error"
            self._send(request, status, body, headers)
            return
        if resource not in self.objects:
            self._send(request, 404, {"error": {"type": "invalid_request_error", "message": "no"}})
            return
        rows = self.objects[resource]
        if resource == "subscriptions" and query.get("status") != "all":
            rows = [r for r in rows if r["status"] != "canceled"]
        start = 0
        if "starting_after" in query:
            ids = [r["id"] for r in rows]
            start = ids.index(query["starting_after"]) + 1
        limit = int(query.get("limit", 10))
        page = rows[start : start + limit]
        self._send(
            request,
            200,
            {
                "object": "list",
                "url": f"/v1/{resource}",
                "has_more": start + limit < len(rows),
                "data": page,
            },
        )

    @staticmethod
    def _send(
        request: BaseHTTPRequestHandler,
        status: int,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> None:
        raw = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(raw)))
        request.send_header("Request-Id", "req_test")
        for key, value in (headers or {}).items():
            request.send_header(key, value)
        request.end_headers()
        request.wfile.write(raw)


@contextmanager
def stripe_server(objects: dict[str, list[dict[str, Any]]]) -> Iterator[StripeListServer]:
    server = StripeListServer(objects)
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
