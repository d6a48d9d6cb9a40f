"""Pure ASGI middleware (cheaper than BaseHTTPMiddleware): request ids, access logs,
Prometheus metrics, per-tenant request counts, and the request body size limit."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from os import urandom

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aethercrown.clock import utcnow
from aethercrown.core.asgi import HttpMiddleware
from aethercrown.core.errors import problem_response
from aethercrown.core.logging import info_fields, request_id_var
from aethercrown.core.metrics import HttpMetrics, TenantRequestCounter

log = logging.getLogger("aethercrown.access")


class FairSemaphore:
    """A first-come, first-served semaphore.

    asyncio.Semaphore lets a newly arrived task take a permit ahead of tasks already waiting, so
    under sustained load a few requests can wait for a second while newer ones pass them. Here a
    released permit is handed to the oldest waiter directly.
    """

    def __init__(self, permits: int) -> None:
        self._permits = permits
        self._waiters: deque[asyncio.Future[None]] = deque()

    def try_acquire(self) -> bool:
        """Take a permit if one is free and nobody waits for one, without awaiting."""
        if self._permits > 0 and not self._waiters:
            self._permits -= 1
            return True
        return False

    async def __aenter__(self) -> None:
        if self.try_acquire():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # the permit was handed over just as we were cancelled
            else:
                self._waiters.remove(waiter)
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._release()

    def release(self) -> None:
        self._release()

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._permits += 1


class BodyTooLarge(HTTPException):
    """An HTTPException so FastAPI's body parsing re-raises it as is (not as a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body exceeds {limit} bytes")


class RequestContextMiddleware(HttpMiddleware):
    def __init__(
        self,
        app: ASGIApp,
        metrics: HttpMetrics,
        counter: TenantRequestCounter,
        max_body_bytes: int,
        max_in_flight: int,
    ) -> None:
        super().__init__(app)
        # Requests touch the database on the event loop (auth, session close), so more requests
        # in flight than pooled connections could block the loop on a checkout while the
        # connections' owners wait for the loop. Excess requests wait here, without blocking.
        self.in_flight = FairSemaphore(max_in_flight)
        self.metrics = metrics
        self.counter = counter
        self.max_body_bytes = max_body_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Shared with request.state, so the tenant that auth resolves is visible here afterwards
        # (without it, a routed copy of the scope would get its own state dict).
        state = scope.setdefault("state", {})
        headers = dict(scope["headers"])
        # Generated: 128 random bits in hex, as uuid4().hex gave them, without building a UUID.
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:100] or urandom(16).hex()
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status_holder = [500]

        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(scope, receive, send, request_id)
            request_id_var.reset(token)
            return

        received = 0
        limit = self.max_body_bytes

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                raw = list(message.get("headers", []))
                raw.append((b"x-request-id", request_id.encode("latin-1")))
                # The app's own time until its answer starts (the page built and rendered), so
                # a browser's devtools or a benchmark read it apart from the network.
                spent = (time.perf_counter() - started) * 1000
                raw.append((b"server-timing", f"app;dur={spent:.1f}".encode("latin-1")))
                message = {**message, "headers": raw}
            await send(message)

        in_flight = self.in_flight
        try:
            # What ``async with in_flight`` does, without its two coroutines when a permit is
            # free (nearly always).
            if not in_flight.try_acquire():
                await in_flight.__aenter__()
            try:
                await self.app(scope, limited_receive, send_wrapper)
            finally:
                in_flight.release()
        except BodyTooLarge:
            await self._too_large(scope, receive, send, request_id)
            status_holder[0] = 413
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            # path_format: the template as documented ("{tenant_id}", not "{tenant_id:uuid}").
            template = getattr(route, "path_format", None) or "unmatched"
            status = status_holder[0]
            self.metrics.observe(template, scope["method"], status, elapsed)
            tenant_id = state.get("tenant_id")
            if tenant_id is not None:
                self.counter.add(tenant_id, utcnow().date(), status)
            if log.isEnabledFor(logging.INFO):
                fields = {
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": template,
                    "status": status,
                    "ms": round(elapsed * 1000, 2),
                }
                info_fields(log, "request", fields)
            request_id_var.reset(token)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, rid: str) -> None:
        response = problem_response(
            413,
            "payload-too-large",
            "Payload too large",
            f"The request body exceeds {self.max_body_bytes} bytes",
            instance=scope["path"],
            headers={"x-request-id": rid},
        )
        await response(scope, receive, send)
