"""Part 4: load. A fixed authenticated mixed workload (GET tenant, POST revenue metrics, POST
usage track, POST experiment assign, in turn) against one server: first its saturation
throughput with many connections (closed loop), then an open loop at 70 % of that rate, each
request sent at its scheduled moment whether or not earlier ones have answered, its latency
counted from that moment (so a stall is not hidden by the generator waiting). The load
generator is this Python process (httpx.AsyncClient): it shares the machine's cores with the
server, so its figures are the pair's, and the load average is printed with them."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from benchmarks.reliability.common import (
    Database,
    Mode,
    Row,
    Tenant,
    admin_headers,
    create_tenant,
    expect,
    log,
    migrate,
    running_server,
    server_env,
)

CUSTOMERS = 50
CONNECTIONS = 32
# Longer than SQLite's busy_timeout (30 s): a writer queued that long answers (503), and that
# answer is what the table shows, not a client-side timeout.
REQUEST_TIMEOUT = 45.0


@dataclass
class Workload:
    tenant: Tenant
    experiment_id: str
    counter: int = 0

    def next(self) -> tuple[str, str, str, Any]:
        """(route label, method, path, body) of the next request, in a fixed rotation."""
        n = self.counter
        self.counter += 1
        turn = n % 4
        if turn == 0:
            return "GET tenant", "GET", f"/api/v1/tenants/{self.tenant.id}", None
        if turn == 1:
            return "POST revenue", "POST", "/api/v1/dashboard/metrics/revenue", {}
        if turn == 2:
            return (
                "POST usage track",
                "POST",
                "/api/v1/enterprise/usage/track",
                {"id": f"load-{n}", "customer": f"lc-{n % CUSTOMERS}", "metric": "api_calls"},
            )
        return (
            "POST experiment assign",
            "POST",
            f"/api/v1/content/ab-test/{self.experiment_id}/assign",
            {"user_id": f"u{n}"},
        )


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    errors: Counter[str] = field(default_factory=Counter)
    error_kinds: Counter[str] = field(default_factory=Counter)

    def record(self, route: str, status: int | None, seconds: float) -> None:
        if status is None:
            self.errors[route] += 1
            return
        self.statuses[route][status] += 1
        self.latencies[route].append(seconds)


async def send(
    client: httpx.AsyncClient, tally: Tally, request: tuple[str, str, str, Any], since: float
) -> None:
    route, method, path, body = request
    try:
        response = await client.request(method, path, json=body)
        status: int | None = response.status_code
    except httpx.HTTPError as exc:
        tally.error_kinds[f"{type(exc).__name__}: {exc}"[:120]] += 1
        status = None
    tally.record(route, status, time.perf_counter() - since)


async def saturate(base: str, workload: Workload, seconds: float) -> tuple[float, Tally]:
    tally = Tally()
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(
        base_url=base, headers=workload.tenant.headers, limits=limits, timeout=REQUEST_TIMEOUT
    ) as client:
        end = time.perf_counter() + seconds

        async def loop() -> None:
            while time.perf_counter() < end:
                await send(client, tally, workload.next(), time.perf_counter())

        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(CONNECTIONS)))
        elapsed = time.perf_counter() - started
    done = sum(sum(c.values()) for c in tally.statuses.values())
    return done / elapsed, tally


async def open_loop(
    base: str, workload: Workload, rate: float, seconds: float
) -> tuple[Tally, float, float]:
    """Returns the tally, the rate actually sent and the worst lag of a send behind its
    scheduled moment (the generator's own delay)."""
    tally = Tally()
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    async with httpx.AsyncClient(
        base_url=base, headers=workload.tenant.headers, limits=limits, timeout=REQUEST_TIMEOUT
    ) as client:
        start = time.perf_counter()
        total = int(rate * seconds)
        tasks = []
        worst_lag = 0.0
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            worst_lag = max(worst_lag, time.perf_counter() - due)
            tasks.append(asyncio.create_task(send(client, tally, workload.next(), due)))
        sent_in = time.perf_counter() - start
        await asyncio.gather(*tasks)
    return tally, total / sent_in, worst_lag


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def error_kinds(tally: Tally) -> str:
    """The client-side errors (timeouts, refused connections), most frequent first."""
    if not tally.error_kinds:
        return ""
    return "; client errors: " + ", ".join(
        f"{kind} x{n}" for kind, n in tally.error_kinds.most_common(3)
    )


def run(db: Database, mode: Mode) -> list[Row]:
    saturation_seconds = 10.0
    open_seconds = 15.0 if mode.quick else 60.0
    with tempfile.TemporaryDirectory(prefix="aethercrown-load-") as tmp:
        migrate(db, Path(tmp), mode)
        with (
            running_server(server_env(db, Path(tmp), mode)) as server,
            httpx.Client(base_url=server.base, timeout=60) as client,
        ):
            # The tier's request budget must not be what limits the run.
            expect(
                client.patch(
                    "/api/v1/platform/tiers/enterprise",
                    json={"requests_per_minute": 10_000_000},
                    headers=admin_headers(),
                ),
                200,
            )
            tenant = create_tenant(client, "load")
            h = tenant.headers
            expect(
                client.post(
                    "/api/v1/data/customers",
                    json=[
                        {"external_id": f"lc-{i}", "name": f"load {i}", "signup_date": "2026-01-01"}
                        for i in range(CUSTOMERS)
                    ],
                    headers=h,
                ),
                200,
            )
            expect(
                client.post(
                    "/api/v1/data/subscriptions",
                    json=[
                        {
                            "external_id": f"ls-{i}",
                            "customer": f"lc-{i}",
                            "plan": "starter",
                            "amount": 2900,
                            "currency": "USD",
                            "interval": "month",
                            "started_at": "2026-01-01T00:00:00Z",
                        }
                        for i in range(CUSTOMERS)
                    ],
                    headers=h,
                ),
                200,
            )
            experiment = expect(
                client.post(
                    "/api/v1/content/ab-test/create",
                    json={"name": "load", "variants": [{"key": "a"}, {"key": "b"}]},
                    headers=h,
                ),
                201,
            )
            workload = Workload(tenant, str(experiment["id"]))
            # Warm-up: first requests pay for imports and caches.
            asyncio.run(saturate(server.base, workload, 2.0))
            throughput, sat_tally = asyncio.run(saturate(server.base, workload, saturation_seconds))
            load_after_saturation = os.getloadavg()[0]
            # At least one request a second, so a server that saturated at ~0 is still probed.
            rate = max(1.0, 0.7 * throughput)
            log(
                f"load: saturation {throughput:.0f} req/s; open loop at {rate:.0f} req/s "
                f"for {open_seconds:.0f} s"
            )
            tally, sent_rate, lag = asyncio.run(
                open_loop(server.base, workload, rate, open_seconds)
            )
            load_after = os.getloadavg()
    sat_5xx = sum(n for c in sat_tally.statuses.values() for s, n in c.items() if s >= 500)
    sat_other = sum(
        n for c in sat_tally.statuses.values() for s, n in c.items() if 300 <= s < 500
    ) + sum(sat_tally.errors.values())
    rows = [
        Row(
            "4 load: saturation",
            db.backend,
            f"closed loop, {CONNECTIONS} connections, {saturation_seconds:.0f} s, mixed 4 routes; "
            "generator shares the 2 cores with the server",
            sat_5xx + sat_other,
            f"{throughput:.0f} req/s; 5xx {sat_5xx}; other errors {sat_other}; "
            f"load avg (1 min) {load_after_saturation:.2f}" + error_kinds(sat_tally),
        )
    ]
    for route in sorted(set(tally.statuses) | set(tally.errors)):
        statuses = tally.statuses[route]
        five = sum(n for s, n in statuses.items() if s >= 500)
        busy = statuses[503]
        other = sum(n for s, n in statuses.items() if 300 <= s < 500) + tally.errors[route]
        latencies = tally.latencies[route]
        rows.append(
            Row(
                f"4 load: 70 % open loop, {route}",
                db.backend,
                f"{rate:.0f} req/s scheduled (sent {sent_rate:.0f}/s, worst send lag "
                f"{lag * 1000:.0f} ms) for {open_seconds:.0f} s",
                five + other,
                f"{len(latencies)} answers; p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
                f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms; 5xx {five} (503 {busy}); "
                f"other errors {other}; load avg {load_after[0]:.2f}/{load_after[1]:.2f}/"
                f"{load_after[2]:.2f}" + error_kinds(tally),
            )
        )
    return rows
