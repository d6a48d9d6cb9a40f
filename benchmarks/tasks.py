"""Task claims per second with 16 concurrent workers, on SQLite and PostgreSQL, counting double
claims (must be 0).

    .venv/bin/python benchmarks/tasks.py --postgres postgresql://postgres@127.0.0.1:5432/test_ops_bench

Each worker is its own OS process with its own connection pool, claiming through the same
service function as POST /tasks/assign (score order, lease, attempt row, ledger entry) until the
queue is empty. The PostgreSQL database given is wiped first: never point it at real data.
Figures are printed; compare ratios measured in one run (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import OperationalError

from aethercrown.db import migrate
from aethercrown.db.engine import make_engine, make_session_factory
from aethercrown.db.session import write_transaction
from aethercrown.settings import Settings
from aethercrown.tasks import schemas, service
from aethercrown.tasks.models import TaskAttempt
from aethercrown.tenants.schemas import TenantCreate
from aethercrown.tenants.service import create_tenant

WORKERS = 16


def prepare(url: str, tasks: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    if url.startswith("postgresql"):
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        admin.dispose()
    migrate.upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with write_transaction(factory) as session:
        tenant, _ = create_tenant(
            session,
            TenantCreate(name="Bench", slug=f"bench-{uuid.uuid4().hex[:6]}", tier="enterprise"),
            "bench",
        )
        tenant_id = tenant.id
    workers = []
    for i in range(WORKERS):
        with write_transaction(factory) as session:
            worker, _ = service.register_worker(
                session, tenant_id, schemas.WorkerRegister(name=f"w{i}", capacity=1000), "bench"
            )
            workers.append(worker.id)
    for start in range(0, tasks, 1000):
        batch = [
            {
                "id": f"t{i}",
                "type": "bench",
                "priority": 1 + i % 4,
                "estimated_duration": 1 + i % 600,
            }
            for i in range(start, min(tasks, start + 1000))
        ]
        with write_transaction(factory) as session:
            service.schedule(
                session,
                tenant_id,
                schemas.ScheduleRequest.model_validate({"tasks": batch}),
                "bench",
            )
    engine.dispose()
    return tenant_id, workers


def claimer(args: tuple[str, uuid.UUID, uuid.UUID, int, Any]) -> tuple[list[str], int]:
    url, tenant_id, worker_id, batch, start = args
    engine = make_engine(url, pool_size=1, max_overflow=0)
    factory = make_session_factory(engine)
    body = schemas.AssignRequest(worker_id=worker_id, max_tasks=batch, lease_seconds=3600)
    claimed: list[str] = []
    busy = 0
    start.wait()
    while True:
        try:
            with write_transaction(factory) as session:
                result = service.assign(session, tenant_id, body, "bench")
        except OperationalError as exc:
            # SQLite: waited past busy_timeout for the single writer (the API answers 503).
            if "database is locked" not in str(exc.orig):
                raise
            busy += 1
            continue
        if not result.assigned:
            break
        claimed.extend(a.task.id for a in result.assigned)
    engine.dispose()
    return claimed, busy


def measure(url: str, tasks: int, batch: int) -> dict[str, Any]:
    tenant_id, workers = prepare(url, tasks)
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        start = manager.Barrier(WORKERS + 1)
        with ctx.Pool(WORKERS) as pool:
            pending = pool.map_async(claimer, [(url, tenant_id, w, batch, start) for w in workers])
            start.wait()
            began = time.perf_counter()
            outcomes = pending.get()
            elapsed = time.perf_counter() - began
    results = [keys for keys, _ in outcomes]
    counts = Counter(key for keys in results for key in keys)
    engine = make_engine(url)
    with engine.connect() as conn:
        attempts = conn.scalar(select(func.count()).select_from(TaskAttempt)) or 0
        distinct = conn.scalar(select(func.count(func.distinct(TaskAttempt.task_id)))) or 0
    engine.dispose()
    total = sum(counts.values())
    return {
        "claims": total,
        "distinct_tasks": len(counts),
        "double_claims": sum(n - 1 for n in counts.values() if n > 1) + (attempts - distinct),
        "seconds": elapsed,
        "claims_per_second": total / elapsed if elapsed else 0.0,
        "workers_that_claimed": sum(1 for keys in results if keys),
        "busy_retries": sum(busy for _, busy in outcomes),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="PostgreSQL URL to wipe and use (omit to skip)")
    parser.add_argument("--tasks", type=int, default=4000)
    parser.add_argument("--batches", default="1,10", help="tasks per claim, comma-separated")
    args = parser.parse_args()
    backends: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        backends.append(("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}"))
        if args.postgres:
            backends.append(("postgresql", Settings(database_url=args.postgres).database_url))
        print(f"{WORKERS} worker processes, {args.tasks} tasks per run")
        print(
            f"{'backend':<11} {'batch':>5} {'claims':>7} {'seconds':>8} "
            f"{'claims/s':>9} {'double':>7} {'busy':>5}"
        )
        for name, url in backends:
            for batch in (int(b) for b in args.batches.split(",")):
                r = measure(url, args.tasks, batch)
                assert r["distinct_tasks"] == args.tasks, r
                print(
                    f"{name:<11} {batch:>5} {r['claims']:>7} {r['seconds']:>8.2f} "
                    f"{r['claims_per_second']:>9.0f} {r['double_claims']:>7} {r['busy_retries']:>5}"
                )


if __name__ == "__main__":
    main()
