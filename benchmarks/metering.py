"""Usage-event ingestion and usage-report latency, on SQLite and PostgreSQL.

For each backend, in one run against the same freshly migrated database:
  raw        the floor: the same rows stored the fastest honest way, straight through the DBAPI
             driver (COPY on PostgreSQL; one executemany in one transaction on SQLite)
  service    metering.service.track in-process (validation, idempotent insert), then the fold
             of those events into the rollups (and the alert check) as its own figure
  http       POST /api/v1/enterprise/usage/track, batches of 1,000, to a real uvicorn on
             loopback (the ``aethercrown serve`` command), from several client threads, with
             the server's folder running alongside; then how long the folder took to catch up
then loads one customer with 1,000,000 events and times its usage report, in-process and over
HTTP (p50/p99 of sequential requests).

    .venv/bin/python benchmarks/metering.py [--events 50000] [--report-events 1000000] [--repeat 3]
        [--pg-url postgresql://postgres@127.0.0.1:5432/bench_meter] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from aethercrown.data.models import Customer, Subscription
from aethercrown.db import migrate
from aethercrown.db.engine import make_engine, make_session_factory
from aethercrown.db.session import write_transaction
from aethercrown.metering import fold, schemas, service
from aethercrown.settings import Settings
from aethercrown.tenants.schemas import TenantCreate
from aethercrown.tenants.service import create_tenant

BATCH = 1_000
CUSTOMERS = 200
METRICS = ("api_calls", "storage_gb", "compute_units", "seats")
COLUMNS = "tenant_id, event_id, customer_id, metric, value, occurred_at, properties, received_at"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh_database(backend: str, pg_url: str, tmp: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp / 'bench.db'}"
    url = make_url(Settings(database_url=pg_url).database_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()
    return url.render_as_string(hide_password=False)


def seed(url: str) -> tuple[uuid.UUID, str, list[str]]:
    engine = make_engine(url)
    with write_transaction(make_session_factory(engine)) as s:
        tenant, issued = create_tenant(
            s, TenantCreate(name="Bench", slug="bench", tier="enterprise"), actor="bench"
        )
        externals = []
        for i in range(CUSTOMERS):
            customer = Customer(
                tenant_id=tenant.id,
                external_id=f"cust-{i}",
                name=f"Customer {i}",
                signup_date=date(2025, 1, 1),
            )
            s.add(customer)
            s.flush()
            s.add(
                Subscription(
                    tenant_id=tenant.id,
                    external_id=f"sub-{i}",
                    customer_id=customer.id,
                    plan=["starter", "professional", "enterprise"][i % 3],
                    amount=2900,
                    interval="month",
                    started_at=datetime(2025, 1, 1, tzinfo=UTC),
                )
            )
            externals.append(customer.external_id)
    engine.dispose()
    return tenant.id, issued.secret, externals


def make_events(
    prefix: str, n: int, customers: list[str], rng: random.Random, now: datetime
) -> list[dict[str, Any]]:
    start = now - timedelta(days=20)
    span = (now - start).total_seconds() - 60
    return [
        {
            "id": f"{prefix}-{i}",
            "customer": rng.choice(customers),
            "metric": METRICS[i % 4],
            "value": float(rng.randint(1, 5)),
            "timestamp": (start + timedelta(seconds=rng.random() * span)).isoformat(),
            "properties": {"region": "eu"},
        }
        for i in range(n)
    ]


def bench_raw(url: str, tenant_id: uuid.UUID, events: list[dict[str, Any]]) -> float:
    """The fastest honest way to store the same rows straight through the DBAPI driver, rows
    prepared before the clock: COPY on PostgreSQL, one executemany in one transaction on
    SQLite."""
    engine = make_engine(url)
    with engine.connect() as conn:
        ids = dict(conn.execute(text("SELECT external_id, id FROM customers")).all())
    pg = url.startswith("postgresql")
    sql = f"INSERT INTO usage_events ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    now = datetime.now(UTC)
    rows = []
    for e in events:
        ts = datetime.fromisoformat(e["timestamp"])
        if pg:
            rows.append(
                (
                    tenant_id,
                    e["id"],
                    ids[e["customer"]],
                    e["metric"],
                    e["value"],
                    ts,
                    orjson.dumps(e["properties"]).decode(),
                    now,
                )
            )
        else:
            rows.append(
                (
                    tenant_id.hex,
                    e["id"],
                    ids[e["customer"]].replace("-", ""),
                    e["metric"],
                    e["value"],
                    ts.replace(tzinfo=None).isoformat(" "),
                    orjson.dumps(e["properties"]).decode(),
                    now.replace(tzinfo=None).isoformat(" "),
                )
            )
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        started = time.perf_counter()
        if pg:
            # COPY: PostgreSQL's fastest way in, in one transaction.
            with cursor.copy(f"COPY usage_events ({COLUMNS}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cursor.execute("BEGIN")
            cursor.executemany(sql, rows)
        raw.commit()
        elapsed = time.perf_counter() - started
    finally:
        raw.close()
        engine.dispose()
    return len(rows) / elapsed


def bench_service(
    url: str, tenant_id: uuid.UUID, events: list[dict[str, Any]]
) -> tuple[float, float]:
    """Ingestion through the service (validation, idempotent insert), then folding the same
    events into the rollups (and checking alerts) as the API's folder does: events/s of each."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    started = time.perf_counter()
    for i in range(0, len(events), BATCH):
        batch = schemas.UsageBatchIn.model_validate({"events": events[i : i + BATCH]})
        with write_transaction(factory) as s:
            service.track(s, tenant_id, batch.events)
    ingest = len(events) / (time.perf_counter() - started)
    started = time.perf_counter()
    folded = fold.catch_up(factory)
    folding = folded.events / (time.perf_counter() - started)
    engine.dispose()
    return ingest, folding


def fold_lag(url: str, timeout: float = 120) -> float:
    """Seconds until the server's folder has folded every stored event."""
    engine = make_engine(url)
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < timeout:
            with engine.connect() as conn:
                top = conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM usage_events")).scalar()
                done = conn.execute(text("SELECT last_event_id FROM usage_fold_cursor")).scalar()
            if done == top:
                return time.perf_counter() - started
            time.sleep(0.01)
        sys.exit("the folder did not catch up")
    finally:
        engine.dispose()


@contextmanager
def server(url: str, tmp: Path, workers: int) -> Iterator[str]:
    port = free_port()
    log_path = tmp / "server.log"
    log_file = log_path.open("wb")
    env = {
        **os.environ,
        "AETHERCROWN_DATABASE_URL": url,
        "AETHERCROWN_DATA_DIR": str(tmp / "data"),
        "AETHERCROWN_RUN_AUTOMATION": "false",
        "AETHERCROWN_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aethercrown",
            "serve",
            "--port",
            str(port),
            "--no-migrate",
            "--workers",
            str(workers),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log_file,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # a start takes minutes on a busy shared machine
        while True:
            if proc.poll() is not None:
                sys.exit(f"server exited with {proc.returncode}")
            try:
                if httpx.get(f"{base}/livez", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                sys.exit("server did not start")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log_file.close()
        log = log_path.read_text()
        if "Traceback" in log:
            print(log[-3000:], file=sys.stderr)


def bench_http(base: str, key: str, events: list[dict[str, Any]], threads: int) -> float:
    bodies = [orjson.dumps({"events": events[i : i + BATCH]}) for i in range(0, len(events), BATCH)]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    lock = threading.Lock()
    queue = list(reversed(bodies))
    failures: list[str] = []

    def worker() -> None:
        with httpx.Client(timeout=120) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                r = client.post(
                    f"{base}/api/v1/enterprise/usage/track", content=body, headers=headers
                )
                if r.status_code != 200 or r.json()["accepted"] != BATCH:
                    failures.append(f"{r.status_code} {r.text[:200]}")

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    started = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    if failures:
        sys.exit(f"{len(failures)} failed batches, e.g. {failures[0]}")
    return len(events) / elapsed


def load_big_customer(url: str, tenant_id: uuid.UUID, n: int, now: datetime) -> None:
    """n events for one customer over the current and previous month, through the service."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    rng = random.Random(1)
    start = now - timedelta(days=45)
    span = (now - start).total_seconds() - 60
    step = 10_000
    for i in range(0, n, step):
        events = [
            schemas.UsageEventIn(
                id=f"big-{j}",
                customer="cust-0",
                metric=METRICS[j % 4],
                value=float(rng.randint(1, 5)),
                timestamp=start + timedelta(seconds=rng.random() * span),
            )
            for j in range(i, min(n, i + step))
        ]
        with write_transaction(factory) as s:  # the server's folder writes alongside
            service.track(s, tenant_id, events)
    fold.catch_up(factory)
    engine.dispose()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_report(
    url: str, base: str, tenant_id: uuid.UUID, key: str, rounds: int
) -> dict[str, float]:
    engine = make_engine(url)
    factory = make_session_factory(engine)
    inproc = []
    for _ in range(rounds):
        with factory() as s:
            t = time.perf_counter()
            service.usage_report(s, tenant_id, "cust-0")
            inproc.append((time.perf_counter() - t) * 1000)
    engine.dispose()
    over_http = []
    with httpx.Client(timeout=30) as client:
        headers = {"Authorization": f"Bearer {key}"}
        for _ in range(rounds):
            t = time.perf_counter()
            r = client.get(f"{base}/api/v1/enterprise/usage/cust-0/report", headers=headers)
            over_http.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, r.text
    return {
        "inproc_p50": statistics.median(inproc),
        "inproc_p99": percentile(inproc, 0.99),
        "http_p50": statistics.median(over_http),
        "http_p99": percentile(over_http, 0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--report-events", type=int, default=1_000_000)
    parser.add_argument("--report-rounds", type=int, default=200)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "AETHERCROWN_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench_meter"
        ),
    )
    args = parser.parse_args()
    rng = random.Random(42)
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmpdir:
            tmp = Path(tmpdir)
            url = fresh_database(backend, args.pg_url, tmp)
            migrate.upgrade(url)
            tenant_id, key, customers = seed(url)
            now = datetime.now(UTC)

            # An untimed first load, so that no timed round writes into a near-empty table
            # (SQLite's indexes are cheapest to grow while tiny), then the median of the same
            # --repeat rounds for every figure, floor and platform alternating.
            bench_raw(url, tenant_id, make_events("warm", args.events, customers, rng, now))
            raws, inprocs, foldings, https, lags = [], [], [], [], []
            for r in range(args.repeat):
                raws.append(
                    bench_raw(
                        url, tenant_id, make_events(f"raw{r}", args.events, customers, rng, now)
                    )
                )
                inproc, folding = bench_service(
                    url, tenant_id, make_events(f"svc{r}", args.events, customers, rng, now)
                )
                inprocs.append(inproc)
                foldings.append(folding)
            workers = 1 if backend == "sqlite" else args.workers
            with server(url, tmp, workers) as base:
                for r in range(args.repeat):
                    https.append(
                        bench_http(
                            base,
                            key,
                            make_events(f"http{r}", args.events, customers, rng, now),
                            args.threads,
                        )
                    )
                    lags.append(fold_lag(url))
                raw, inproc, folding, http = (
                    statistics.median(values) for values in (raws, inprocs, foldings, https)
                )
                floor = "COPY" if backend == "postgresql" else "executemany, one transaction"
                print(
                    f"[{backend}] ingest, {args.events:,} events (the platform in batches of "
                    f"{BATCH:,}), median of {args.repeat} rounds after an untimed first load; "
                    f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; the client "
                    "threads share the 2 cores with the server"
                )
                print(f"  raw floor ({floor}) {raw:>10,.0f} events/s")
                print(
                    f"  service in-process  {inproc:>10,.0f} events/s  ({inproc / raw:.0%} of raw)"
                )
                print(f"  fold into rollups   {folding:>10,.0f} events/s  (after ingestion)")
                print(
                    f"  HTTP ({workers} worker(s), {args.threads} client threads) "
                    f"{http:>8,.0f} events/s  ({http / raw:.0%} of raw); the server's folder, "
                    f"running alongside, had folded everything {max(lags):.2f} s after the last "
                    "batch (worst round)",
                    flush=True,
                )
                if args.report_events:
                    t = time.perf_counter()
                    load_big_customer(url, tenant_id, args.report_events, now)
                    loaded = time.perf_counter() - t
                    figures = bench_report(url, base, tenant_id, key, args.report_rounds)
                    print(
                        f"  report for a customer with {args.report_events:,} events "
                        f"(loaded in-process at {args.report_events / loaded:,.0f} events/s):"
                    )
                    print(
                        f"    in-process p50 {figures['inproc_p50']:.1f} ms, "
                        f"p99 {figures['inproc_p99']:.1f} ms"
                    )
                    print(
                        f"    HTTP       p50 {figures['http_p50']:.1f} ms, "
                        f"p99 {figures['http_p99']:.1f} ms",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
