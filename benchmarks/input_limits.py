"""What the input limits cost: the body check on typical and large bodies, and the two ASGI
layers (InputLimitsMiddleware, UnexpectedErrorMiddleware) per request, against the same
trivial application without them. Everything runs in-process (no sockets), so the figures are
the layers' own cost, not network noise.

    .venv/bin/python benchmarks/input_limits.py [--requests 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from starlette.types import Receive, Scope, Send

from aethercrown.core.errors import UnexpectedErrorMiddleware
from aethercrown.core.limits import InputLimitsMiddleware, check_body


def best_of(repeat: int, func: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - started)
    return best


async def inner(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["method"] != "GET":
        await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def scope_for(method: str, path: str, query: bytes = b"") -> Scope:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": [(b"content-type", b"application/json")],
    }


def per_request_seconds(app: Any, scope: Scope, body: bytes, requests: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Any) -> None:
        return None

    async def run() -> float:
        started = time.perf_counter()
        for _ in range(requests):
            await app(scope, receive, send)
        return time.perf_counter() - started

    return min(asyncio.run(run()) for _ in range(3)) / requests


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=50_000)
    args = parser.parse_args()

    bodies = {
        "tenant create (60 B)": json.dumps({"name": "Acme", "slug": "acme", "tier": "starter"}),
        "usage event with properties (0.2 kB)": json.dumps(
            {"id": "e1", "customer": "c1", "metric": "api_calls", "properties": {"a": {"b": 1}}}
        ),
        "10,000-event batch (1.3 MB)": json.dumps(
            {
                "events": [
                    {
                        "id": f"evt-{i}",
                        "customer": f"cust-{i % 50}",
                        "metric": "api_calls",
                        "value": 1.0,
                        "timestamp": "2026-12-01T00:00:00Z",
                        "properties": {"region": "eu", "tags": ["a", "b"]},
                    }
                    for i in range(10_000)
                ]
            }
        ),
    }
    print("body check (best of 20)")
    print(f"{'body':<42}{'check':>12}{'json.loads':>14}")
    for name, text in bodies.items():
        raw = text.encode()
        check = best_of(20, lambda raw=raw: check_body(raw))  # type: ignore[misc]
        parse = best_of(20, lambda raw=raw: json.loads(raw))  # type: ignore[misc]
        print(f"{name:<42}{check * 1e6:>10.1f}µs{parse * 1e6:>12.1f}µs")

    layered = InputLimitsMiddleware(UnexpectedErrorMiddleware(inner))
    print(f"\nper request, in-process ASGI, best of 3 × {args.requests:,} requests")
    print(f"{'request':<42}{'bare':>10}{'layers':>10}{'added':>10}")
    cases = [
        ("GET /api/v1/tenants/{id}", scope_for("GET", "/api/v1/tenants/x"), b""),
        ("GET with a query string", scope_for("GET", "/api/v1/tenants/", b"limit=50&q=acme"), b""),
        (
            "POST tenant create",
            scope_for("POST", "/api/v1/tenants/create"),
            bodies["tenant create (60 B)"].encode(),
        ),
    ]
    for name, scope, body in cases:
        bare = per_request_seconds(inner, scope, body, args.requests)
        with_layers = per_request_seconds(layered, scope, body, args.requests)
        print(
            f"{name:<42}{bare * 1e6:>8.2f}µs{with_layers * 1e6:>8.2f}µs"
            f"{(with_layers - bare) * 1e6:>8.2f}µs"
        )


if __name__ == "__main__":
    main()
