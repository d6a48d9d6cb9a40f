"""Ingestion throughput: activity rows/s through the API and the CLI importer, against a raw
SQLAlchemy Core executemany into the same table, measured in one run on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/ingest.py                      # 1,000,000 rows, both backends
    .venv/bin/python benchmarks/ingest.py --rows 200000 --backends sqlite
    AETHERCROWN_BENCH_PG_URL=postgresql://postgres@127.0.0.1:5432/postgres ...

PostgreSQL runs in a scratch database (``aethercrown_bench_data`` next to the given URL's),
dropped and created for each run. Every path writes the same rows into a fresh tenant of the
same database, in batches of ``--batch`` rows, one transaction per batch:

- raw: ``conn.execute(insert(activity_events), batch)`` with rows already in database form
  (customer ids resolved, datetimes parsed), committed per batch: the floor of the work.
- api: ``POST /api/v1/data/activity`` to a real ``aethercrown serve`` (uvicorn) on loopback, via
  httpx with keep-alive; bodies are serialised before the clock starts.
- cli: ``aethercrown import --kind activity FILE.csv`` as a subprocess (process start included).

The machine is shared, so the paths take turns over ``--rounds`` parts of the rows (see
``measure``); each path's figure is the sum of its turns.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.engine import make_url

from aethercrown.data import formats
from aethercrown.data.kinds import KINDS
from aethercrown.data.models import ActivityEvent, Customer
from aethercrown.data.service import ingest_rows
from aethercrown.db import migrate
from aethercrown.db.engine import make_engine, make_session_factory
from aethercrown.db.session import write_transaction
from aethercrown.settings import Settings
from aethercrown.tenants.schemas import TenantCreate
from aethercrown.tenants.service import create_tenant

CUSTOMERS = 1_000
START = datetime(2025, 1, 1, tzinfo=UTC)
KIND_CYCLE = ("session", "login", "feature")
FEATURES = ("reports", "exports", "dashboards", "alerts", "api")


def activity_rows(n: int) -> list[dict[str, Any]]:
    """The benchmark's rows in contract form (what a client sends)."""
    rows = []
    for i in range(n):
        kind = KIND_CYCLE[i % 3]
        row: dict[str, Any] = {
            "external_id": f"a{i:08d}",
            "customer": f"c{i % CUSTOMERS:05d}",
            "user_id": f"u{i % 7919}",
            "kind": kind,
            "occurred_at": (START + timedelta(seconds=17 * i)).isoformat().replace("+00:00", "Z"),
        }
        if kind == "session":
            row["duration_seconds"] = 30 + (i * 37) % 3600
        elif kind == "feature":
            row["feature"] = FEATURES[i % len(FEATURES)]
        rows.append(row)
    return rows


def customer_rows() -> list[dict[str, Any]]:
    return [
        {"external_id": f"c{i:05d}", "name": f"Customer {i}", "signup_date": "2024-06-01"}
        for i in range(CUSTOMERS)
    ]


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(url: str, data_dir: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "AETHERCROWN_DATABASE_URL": url,
        "AETHERCROWN_DATA_DIR": str(data_dir),
        "AETHERCROWN_RUN_AUTOMATION": "false",
        "AETHERCROWN_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "aethercrown", "serve", "--no-migrate", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=None if os.environ.get("BENCH_SERVER_LOGS") else subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            try:
                if httpx.get(f"{base}/livez", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("server did not start")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def scratch_postgres(url: str) -> str:
    base = make_url(Settings(database_url=url).database_url)
    name = "aethercrown_bench_data"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def new_tenant(factory: Any, slug: str) -> tuple[uuid.UUID, str]:
    """An enterprise tenant (its quota holds the run) with the benchmark's customers."""
    with write_transaction(factory) as session:
        tenant, issued = create_tenant(
            session, TenantCreate(name=slug, slug=slug, tier="enterprise"), actor="bench"
        )
        tenant_id = tenant.id
    with write_transaction(factory) as session:
        ingest_rows(session, tenant_id, "customers", customer_rows())
    return tenant_id, issued.secret or ""


def stored(factory: Any, tenant_id: uuid.UUID) -> int:
    from sqlalchemy import func

    with factory() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(ActivityEvent)
                .where(ActivityEvent.tenant_id == tenant_id)
            )
            or 0
        )


class RawPath:
    """Core executemany of rows already in database form, one transaction per batch."""

    def __init__(self, factory: Any) -> None:
        self.factory = factory
        self.tenant_id, _ = new_tenant(factory, "bench-raw")
        with factory() as session:
            self.ids = dict(
                session.execute(
                    select(Customer.external_id, Customer.id).where(
                        Customer.tenant_id == self.tenant_id
                    )
                ).all()
            )

    def prepare(self, rows: list[dict[str, Any]], batch: int) -> list[list[dict[str, Any]]]:
        prepared = [
            {
                "tenant_id": self.tenant_id,
                "external_id": r["external_id"],
                "customer_id": self.ids[r["customer"]],
                "user_id": r["user_id"],
                "kind": r["kind"],
                "occurred_at": datetime.fromisoformat(r["occurred_at"]),
                "duration_seconds": r.get("duration_seconds"),
                "feature": r.get("feature"),
            }
            for r in rows
        ]
        return list(chunks(prepared, batch))

    def run(self, batches: list[list[dict[str, Any]]]) -> float:
        table = ActivityEvent.__table__
        engine = self.factory.kw["bind"]
        started = time.perf_counter()
        for part in batches:
            with engine.begin() as conn:
                conn.execute(insert(table), part)
        return time.perf_counter() - started


class ApiPath:
    """POST /api/v1/data/activity to a running server, bodies serialised beforehand."""

    def __init__(self, factory: Any, base: str) -> None:
        self.tenant_id, key = new_tenant(factory, "bench-api")
        self.client = httpx.Client(base_url=base, timeout=600)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def prepare(self, rows: list[dict[str, Any]], batch: int) -> list[bytes]:
        return [orjson.dumps(part) for part in chunks(rows, batch)]

    def run(self, bodies: list[bytes]) -> float:
        started = time.perf_counter()
        for body in bodies:
            response = self.client.post("/api/v1/data/activity", content=body, headers=self.headers)
            if response.status_code != 200:
                raise RuntimeError(f"API answered {response.status_code}: {response.text[:500]}")
        return time.perf_counter() - started


class CliPath:
    """``aethercrown import`` of a CSV file in a subprocess (process start included)."""

    def __init__(self, factory: Any, url: str, workdir: Path, batch: int) -> None:
        self.tenant_id, _ = new_tenant(factory, "bench-cli")
        self.workdir = workdir
        self.batch = batch
        self.env = {
            **os.environ,
            "AETHERCROWN_DATABASE_URL": url,
            "AETHERCROWN_DATA_DIR": str(workdir / "data"),
        }
        self.files = 0

    def prepare(self, rows: list[dict[str, Any]], batch: int) -> Path:
        self.files += 1
        path = self.workdir / f"activity-{self.files}.csv"
        with path.open("w", encoding="utf-8") as handle:
            for chunk in formats.csv_chunks(KINDS["activity"].fields, rows, 10_000):
                handle.write(chunk)
        return path

    def run(self, path: Path) -> float:
        command = [
            sys.executable, "-m", "aethercrown", "import", "--tenant", "bench-cli", "--kind",
            "activity", str(path), "--batch-size", str(self.batch), "--no-progress",
        ]  # fmt: skip
        started = time.perf_counter()
        subprocess.run(command, env=self.env, check=True, stdout=subprocess.DEVNULL)
        elapsed = time.perf_counter() - started
        path.unlink()
        return elapsed


def measure(
    url: str, rows: list[dict[str, Any]], batch: int, rounds: int, workdir: Path
) -> dict[str, float]:
    """Seconds per path. The rows are split into ``rounds`` parts and the paths take turns on
    each part (raw, api, cli, raw, …), so a change in the shared machine's load during the run
    falls on every path alike instead of on whichever ran last."""
    migrate.upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    seconds = {"raw executemany": 0.0, "api": 0.0, "cli import": 0.0}
    part_size = -(-len(rows) // rounds)
    try:
        with server(url, workdir / "data") as base:
            paths: dict[str, Any] = {
                "raw executemany": RawPath(factory),
                "api": ApiPath(factory, base),
                "cli import": CliPath(factory, url, workdir, batch),
            }
            for start in range(0, len(rows), part_size):
                part = rows[start : start + part_size]
                for name, path in paths.items():
                    prepared = path.prepare(part, batch)
                    seconds[name] += path.run(prepared)
                print(
                    f"  {start + len(part):>10,} rows: "
                    + "  ".join(f"{n} {s:.1f} s" for n, s in seconds.items()),
                    flush=True,
                )
            paths["api"].client.close()
            for name, path in paths.items():
                count = stored(factory, path.tenant_id)
                assert count == len(rows), f"{name} stored {count} of {len(rows)} rows"
    finally:
        engine.dispose()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "AETHERCROWN_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--rounds", type=int, default=4, help="Turns the paths take")
    args = parser.parse_args()
    rows = activity_rows(args.rows)
    results: list[tuple[str, str, float]] = []
    with tempfile.TemporaryDirectory(prefix="aethercrown-bench-") as tmp:
        workdir = Path(tmp)
        for backend in args.backends.split(","):
            if backend == "sqlite":
                url = f"sqlite:///{workdir / 'bench.db'}"
            elif backend == "postgresql":
                url = scratch_postgres(args.pg_url)
            else:
                raise SystemExit(f"unknown backend {backend}")
            print(f"{backend}: {args.rows:,} activity rows, batches of {args.batch:,}", flush=True)
            for path, seconds in measure(url, rows, args.batch, args.rounds, workdir).items():
                results.append((backend, path, seconds))

    print()
    print(f"| backend | path | seconds | rows/s | vs raw |  ({args.rows:,} rows)")
    print("| --- | --- | ---: | ---: | ---: |")
    for backend, path, seconds in results:
        raw = next(s for b, p, s in results if b == backend and p == "raw executemany")
        print(
            f"| {backend} | {path} | {seconds:.1f} | {args.rows / seconds:,.0f} "
            f"| {raw / seconds:.0%} |"
        )


if __name__ == "__main__":
    main()
