"""Connector throughput on PostgreSQL: Stripe events mapped per second by the mapping job (20,000
stored events by default), Stripe webhooks acknowledged per second over HTTP (one signed event a
request; the job then maps them), a Stripe backfill of 10,000 subscriptions from a local
Stripe-shaped server, and Segment batch ingestion over HTTP.

    .venv/bin/python benchmarks/connectors.py
    .venv/bin/python benchmarks/connectors.py --customers 2000 --segment-events 100000
    .venv/bin/python benchmarks/connectors.py --only segment --segment-batch 100 --sqlite
    .venv/bin/python benchmarks/connectors.py --only stripe --mapping-events 20000 --customers 1000
    AETHERCROWN_BENCH_PG_URL=postgresql://postgres@127.0.0.1:5432/postgres ...

Runs in a scratch database (``aethercrown_bench_connectors`` next to the given URL's, or
``AETHERCROWN_BENCH_SCRATCH_DB``), dropped and created each run; ``--sqlite``: a fresh SQLite
file instead. The HTTP figures are measured against a real ``aethercrown serve`` (uvicorn,
``--server-workers`` processes, one as ``make run`` starts it) on loopback with keep-alive
clients in threads; payloads are built and signed before the clock starts. The machine's load
average is printed with the figures.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.connectors.stripe_fakes import (
    customer,
    event,
    invoice,
    item,
    price,
    stripe_server,
    stripe_signature,
    subscription,
)

from aethercrown.connectors import segment_service, stripe_service
from aethercrown.core.crypto import secret_box
from aethercrown.data.models import ActivityEvent, Subscription
from aethercrown.db import migrate
from aethercrown.db.engine import make_engine, make_session_factory
from aethercrown.db.session import write_transaction
from aethercrown.settings import Settings
from aethercrown.tenants.schemas import TenantCreate
from aethercrown.tenants.service import create_tenant

SECRET = "whsec_bench_0123456789abcdef"
SECRET_KEY = "bench-secret-key-0123456789-0123456789"
JAN = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
DAY = 86_400
PLANS = [
    price("price_s", 2900, nickname="starter"),
    price("price_p", 9900, nickname="pro"),
    price("price_y", 99_000, "year", nickname="pro-yearly"),
]


def scratch_postgres(url: str) -> str:
    base = make_url(Settings(database_url=url).database_url)
    # Its own name per engineer on a shared server: the run drops the database it uses.
    name = os.environ.get("AETHERCROWN_BENCH_SCRATCH_DB", "aethercrown_bench_connectors")
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def stripe_history(prefix: str, n: int) -> list[dict[str, Any]]:
    """Four events per customer: created, subscribed, changed plan mid-month, invoice paid."""
    out = []
    for i in range(n):
        cus, sub, si = f"cus_{prefix}{i}", f"sub_{prefix}{i}", f"si_{prefix}{i}"
        t = JAN + i
        first = subscription(sub, cus, [item(si, PLANS[i % 3], 1 + i % 4, t)], start=t)
        changed = subscription(sub, cus, [item(si, PLANS[(i + 1) % 3], 1 + i % 4, t)], start=t)
        out += [
            event(f"evt_{prefix}{i}_c", "customer.created", t, customer(cus, t, f"C {i}")),
            event(f"evt_{prefix}{i}_s", "customer.subscription.created", t, first),
            event(f"evt_{prefix}{i}_u", "customer.subscription.updated", t + 14 * DAY, changed),
            event(
                f"evt_{prefix}{i}_i",
                "invoice.paid",
                t + 15 * DAY,
                invoice(
                    f"in_{prefix}{i}",
                    cus,
                    sub,
                    created=t + 15 * DAY,
                    status="paid",
                    amount=2900,
                    paid=True,
                ),
            ),
        ]
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(url: str, workers: int = 1) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "AETHERCROWN_DATABASE_URL": url,
        "AETHERCROWN_RUN_AUTOMATION": "false",
        "AETHERCROWN_SECRET_KEY": SECRET_KEY,
        "AETHERCROWN_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aethercrown",
            "--no-migrate",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            if httpx.get(f"{base}/livez", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("the server did not start")
        time.sleep(0.5)


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (uvicorn's workers), read from /proc (Linux)."""
    pids, i = [pid], 0
    while i < len(pids):
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pids[i]}/task").iterdir():
                pids += [int(c) for c in (task / "children").read_text().split()]
        i += 1
    return pids


def postgres_backends(factory: Any) -> list[int]:
    """The server processes of the other connections to the scratch database (PostgreSQL on
    this machine: its backends are local processes)."""
    with factory() as session:
        if session.get_bind().dialect.name != "postgresql":
            return []
        return list(
            session.scalars(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                )
            )
        )


def cpu_seconds(pids: list[int]) -> list[float]:
    """User + system CPU seconds of each process, from /proc/<pid>/stat (Linux; 0 for one that
    is gone or unreadable)."""
    out = []
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out.append((int(fields[11]) + int(fields[12])) / tick)
        except (OSError, IndexError, ValueError):
            out.append(0.0)
    return out


def post_all(base: str, requests: list[tuple[str, bytes, dict[str, str]]], workers: int) -> float:
    chunks = [requests[i::workers] for i in range(workers)]

    def run(chunk: list[tuple[str, bytes, dict[str, str]]]) -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            for path, body, headers in chunk:
                if "/stripe/webhook/" in path:
                    stamp = int(time.time())
                    headers = {**headers, "Stripe-Signature": stripe_signature(SECRET, body, stamp)}
                response = http.post(path, content=body, headers=headers)
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(run, chunks))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--customers", type=int, default=1000, help="Stripe customers sending webhooks (x4 events)"
    )
    parser.add_argument(
        "--mapping-events", type=int, default=20_000, help="stored events the mapping job maps"
    )
    parser.add_argument("--subscriptions", type=int, default=10_000, help="to backfill")
    parser.add_argument("--segment-events", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=8, help="HTTP client threads")
    parser.add_argument(
        "--segment-batch",
        type=int,
        default=100,
        help="track events per /v1/batch call (Segment's SDKs send ~100: 500 KB at most)",
    )
    parser.add_argument(
        "--segment-clients", type=int, default=4, help="HTTP client threads sending Segment"
    )
    parser.add_argument(
        "--server-workers", type=int, default=1, help="uvicorn worker processes (make run: 1)"
    )
    parser.add_argument("--sqlite", action="store_true", help="a scratch SQLite file instead")
    parser.add_argument(
        "--only",
        choices=("stripe", "mapping", "segment", "backfill"),
        action="append",
        help="run only these parts (repeatable; default: all; mapping: the Stripe mapping job "
        "alone, without the webhooks over HTTP)",
    )
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="skip ANALYZE after the setup (as the figures before 2026-12-03 were taken)",
    )
    args = parser.parse_args()
    parts = set(args.only or ("stripe", "segment", "backfill"))
    os.environ["AETHERCROWN_SECRET_KEY"] = SECRET_KEY
    pg = os.environ.get("AETHERCROWN_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    scratch = tempfile.TemporaryDirectory(prefix="aethercrown-bench-")
    url = f"sqlite:///{scratch.name}/bench.db" if args.sqlite else scratch_postgres(pg)
    migrate.upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    box = secret_box(Settings(database_url=url, secret_key=SECRET_KEY))
    tenants: dict[str, uuid.UUID] = {}
    with write_transaction(factory) as session:
        for slug in ("http", "batch", "backfill", "segment"):
            tenant, _ = create_tenant(
                session, TenantCreate(name=slug, slug=f"bench-{slug}", tier="enterprise"), "bench"
            )
            tenants[slug] = tenant.id
            stripe_service.connect(
                session, tenant.id, box, webhook_secret=SECRET, api_key="sk_bench_key_000"
            )
        _, write_key = segment_service.create_source(session, tenants["segment"], "bench")
    backend = "SQLite" if args.sqlite else "PostgreSQL"
    print(f"{backend} scratch database; load average before: {os.getloadavg()}")

    if parts & {"stripe", "mapping"}:
        stripe_mapping_job(factory, tenants["batch"], args.mapping_events, args)

    # Stripe over HTTP: one signed webhook a request, as Stripe sends them.
    if parts & {"stripe", "segment"}:
        proc, base = serve(url, args.server_workers)
        try:
            if "stripe" in parts:
                stripe_http(base, factory, tenants["http"], args.customers, args.workers)
            if "segment" in parts:
                segment_http(base, write_key, args.segment_events, factory, args, proc.pid)
        finally:
            proc.terminate()
            proc.wait(30)
    if "backfill" in parts:
        backfill(factory, box, tenants["backfill"], args.subscriptions)
    with factory() as session:
        activity = session.scalar(
            select(func.count())
            .select_from(ActivityEvent)
            .where(ActivityEvent.tenant_id == tenants["segment"])
        )
    print(f"segment activity rows stored: {activity}")
    print(f"load average after: {os.getloadavg()}")
    engine.dispose()
    scratch.cleanup()


def analyze(factory: Any) -> None:
    """Fresh planner statistics, as autovacuum keeps them on a live database. A scratch
    database just filled has none: PostgreSQL then plans the tenant-scoped lookups (a few
    hundred ids among thousands of rows) as scans, several times slower than the index scans it
    picks once the tables are analyzed; the figures would measure that, not the code."""
    with factory() as session:
        session.connection().exec_driver_sql("ANALYZE")
        session.commit()


def stripe_mapping_job(factory: Any, tenant_id: uuid.UUID, n_events: int, args: Any) -> None:
    """The mapping job on events already stored (as webhooks leave them): 500 a transaction."""
    events = stripe_history("b", max(1, n_events // 4))
    for i in range(0, len(events), 1000):
        with write_transaction(factory) as session:
            stripe_service.store_events(session, tenant_id, events[i : i + 1000])
    if not args.no_analyze:
        analyze(factory)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    report = stripe_service.map_pending(factory, tenant_id)
    elapsed = time.perf_counter() - started
    assert report.mapped == len(events) and report.failed == 0, report
    print(
        f"stripe events mapped by the job (stored beforehand, batches of "
        f"{stripe_service.MAPPING_BATCH}): {report.mapped} in {elapsed:.1f} s = "
        f"{report.mapped / elapsed:,.0f} events/s (load {load:.1f})"
    )


def stripe_http(
    base: str, factory: Any, tenant_id: uuid.UUID, customers: int, workers: int
) -> None:
    """Webhooks acknowledged over HTTP (stored, not mapped: the server runs no automation),
    then the mapping job over what they stored."""
    events = stripe_history("h", customers)
    path = stripe_service.webhook_path(tenant_id)
    # Signed when sent (a run longer than Stripe's 300 s tolerance would go stale).
    requests = [(path, orjson.dumps(e), {"Content-Type": "application/json"}) for e in events]
    # Events of one customer in order within one client; customers spread over clients.
    requests = [r for k in range(4) for r in requests[k::4]]
    load = os.getloadavg()[0]
    elapsed = post_all(base, requests, workers)
    print(
        f"stripe webhooks acknowledged over HTTP ({workers} clients): {len(requests)} in "
        f"{elapsed:.1f} s = {len(requests) / elapsed:,.0f} events/s (load {load:.1f})"
    )
    started = time.perf_counter()
    report = stripe_service.map_pending(factory, tenant_id)
    elapsed = time.perf_counter() - started
    print(
        f"  ... then mapped by the job: {report.mapped} in {elapsed:.1f} s = "
        f"{report.mapped / elapsed:,.0f} events/s (load {os.getloadavg()[0]:.1f})"
    )


def segment_http(
    base: str, write_key: str, n_events: int, factory: Any, args: Any, server_pid: int
) -> None:
    """Segment batches over HTTP: ``--segment-batch`` track events a /v1/batch call, after
    5,000 groups. Also prints the CPU time the server's processes and the PostgreSQL backends
    serving them spent a batch: on a shared machine the events a second swing with the load,
    the CPU a batch costs much less."""
    auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    with httpx.Client(base_url=base, timeout=60) as http:
        groups = [
            {
                "type": "group",
                "userId": f"u{i}",
                "groupId": f"acct_{i % 1000}",
                "messageId": f"g{i}",
                "traits": {"name": f"Account {i % 1000}"},
            }
            for i in range(5000)
        ]
        for i in range(0, len(groups), 500):
            http.post(
                "/v1/batch",
                json={"batch": groups[i : i + 500]},
                headers={"Authorization": auth},
            ).raise_for_status()
    if not args.no_analyze:
        analyze(factory)
    calls = []
    stamp = "2025-03-01T12:00:00Z"
    size = args.segment_batch
    for start in range(0, n_events, size):
        batch = [
            {
                "type": "track",
                "userId": f"u{i % 5000}",
                "event": "Used reports",
                "messageId": f"m{i}",
                "timestamp": stamp,
                "properties": {"i": i},
            }
            for i in range(start, min(start + size, n_events))
        ]
        calls.append(
            (
                "/v1/batch",
                orjson.dumps({"batch": batch}),
                {"Authorization": auth, "Content-Type": "application/json"},
            )
        )
    # Backends that connect during the run count from 0 (their start-up, a few ms, included).
    connected = postgres_backends(factory)
    before = dict(zip(connected, cpu_seconds(connected), strict=True))
    server_pids = process_tree(server_pid)
    server_before = sum(cpu_seconds(server_pids))
    elapsed = post_all(base, calls, args.segment_clients)
    server_cpu = sum(cpu_seconds(server_pids)) - server_before
    backends = postgres_backends(factory)
    database_cpu = sum(
        after - before.get(pid, 0.0)
        for pid, after in zip(backends, cpu_seconds(backends), strict=True)
    )
    print(
        f"segment track events over HTTP (/v1/batch of {size}, {args.segment_clients} clients, "
        f"{args.server_workers} server worker(s)): {n_events} in {elapsed:.1f} s = "
        f"{n_events / elapsed:,.0f} events/s; load average {os.getloadavg()}"
    )
    if server_cpu > 0:
        print(
            f"  CPU a batch: server {1000 * server_cpu / len(calls):.1f} ms, PostgreSQL backends "
            f"{1000 * database_cpu / len(calls):.1f} ms ({len(backends)} backends)"
        )


def backfill(factory: Any, box: Any, tenant_id: uuid.UUID, n: int) -> None:
    """Backfill from a local Stripe-shaped server."""
    account = {
        "customers": [customer(f"cus_{i:06d}", JAN + i, f"C {i}") for i in range(n)],
        "subscriptions": [
            subscription(
                f"sub_{i:06d}",
                f"cus_{i:06d}",
                [item(f"si_{i:06d}", PLANS[i % 3], 1, JAN + i)],
                start=JAN + i,
            )
            for i in range(n)
        ],
        "invoices": [],
    }
    with stripe_server(account) as server:
        with write_transaction(factory) as session:
            stripe_service.connect(
                session,
                tenant_id,
                box,
                webhook_secret=SECRET,
                api_key="sk_bench_key_000",
                api_base=server.url,
            )
        started = time.perf_counter()
        report = stripe_service.run_backfill(factory, tenant_id, box)
        elapsed = time.perf_counter() - started
    with factory() as session:
        subs = session.scalar(
            select(func.count())
            .select_from(Subscription)
            .where(Subscription.tenant_id == tenant_id)
        )
    print(
        f"stripe backfill: {report.fetched} objects ({n} customers + {n} subscriptions) in "
        f"{elapsed:.1f} s; {subs} subscriptions stored"
    )


if __name__ == "__main__":
    main()
