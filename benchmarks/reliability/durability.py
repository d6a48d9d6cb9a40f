"""Part 2: crash durability. Client threads send idempotent writes (usage events with their own
ids, customer upserts, experiment events with their own ids) and log each acknowledged one,
while the server is SIGKILLed at random moments and restarted on the same database; every
write not acknowledged is retried until it is. Then the database must hold every acknowledged
write (lost = 0) and no write twice (doubled = 0), and the usage rollups must count each
stored event exactly once."""

from __future__ import annotations

import random
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from benchmarks.reliability.common import (
    Database,
    Mode,
    Row,
    Server,
    Tenant,
    create_tenant,
    expect,
    log,
    migrate,
    server_env,
)
from sqlalchemy import func, select

from aethercrown.data.models import Customer
from aethercrown.experiments.models import ExperimentEvent
from aethercrown.metering.models import UsageDaily, UsageEvent

USAGE_CUSTOMERS = 10


@dataclass
class Ledger:
    """What one client thread had acknowledged, and how its requests went."""

    usage: list[str] = field(default_factory=list)
    experiment: list[str] = field(default_factory=list)
    # external id -> the last acknowledged name
    customers: dict[str, str] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    rejected: list[str] = field(default_factory=list)


def client_thread(
    base: str,
    tenant: Tenant,
    experiment_id: str,
    index: int,
    seed: int,
    stop: threading.Event,
    ledger: Ledger,
) -> None:
    rng = random.Random(seed * 1000 + index)
    with httpx.Client(base_url=base, headers=tenant.headers, timeout=10) as client:
        n = 0
        while not stop.is_set():
            n += 1
            choice = rng.random()
            if choice < 0.4:
                event_id = f"du-{index}-{n}"
                body: Any = {
                    "id": event_id,
                    "customer": f"dc-{rng.randrange(USAGE_CUSTOMERS)}",
                    "metric": "api_calls",
                    "value": 1,
                }
                url = "/api/v1/enterprise/usage/track"
            elif choice < 0.7:
                event_id = f"de-{index}-{n}"
                body = {
                    "event_id": event_id,
                    "user_id": f"user-{index}-{n % 50}",
                    "kind": "impression",
                }
                url = f"/api/v1/content/ab-test/{experiment_id}/track"
            else:
                # A new customer, or a new name for one of this thread's earlier customers.
                mine = list(ledger.customers)
                external = rng.choice(mine) if mine and rng.random() < 0.3 else f"cu-{index}-{n}"
                event_id = f"{external}@{n}"
                body = [{"external_id": external, "name": f"name {n}", "signup_date": "2026-01-01"}]
                url = "/api/v1/data/customers"
            # Retried until acknowledged: through kills, restarts and busy answers.
            while True:
                try:
                    response = client.post(url, json=body)
                except httpx.HTTPError:
                    # The server is down (killed, restarting): wait without burning the CPU
                    # its restart needs.
                    ledger.outcomes["connection error"] += 1
                    time.sleep(0.25)
                    continue
                status = response.status_code
                if status == 200:
                    break
                ledger.outcomes[str(status)] += 1
                if status in (429, 503) or status >= 500:
                    time.sleep(0.05)
                    continue
                ledger.rejected.append(f"{url} {status} {response.text[:200]}")
                break
            if status != 200:
                continue
            ledger.outcomes["acknowledged"] += 1
            if url.endswith("/usage/track"):
                ledger.usage.append(event_id)
            elif url.endswith("/track"):
                ledger.experiment.append(event_id)
            else:
                external, _, version = event_id.partition("@")
                ledger.customers[external] = f"name {version}"


def check(db: Database, tenant_id: uuid.UUID, ledgers: list[Ledger]) -> dict[str, int]:
    engine = db.engine()
    try:
        with engine.connect() as conn:
            usage = Counter(
                conn.scalars(select(UsageEvent.event_id).where(UsageEvent.tenant_id == tenant_id))
            )
            experiment = Counter(
                conn.scalars(
                    select(ExperimentEvent.event_id).where(ExperimentEvent.tenant_id == tenant_id)
                )
            )
            customers: Counter[str] = Counter()
            names: dict[str, str] = {}
            for external, name in conn.execute(
                select(Customer.external_id, Customer.name).where(Customer.tenant_id == tenant_id)
            ):
                customers[external] += 1
                names[external] = name
            folded = conn.execute(
                select(func.coalesce(func.sum(UsageDaily.event_count), 0)).where(
                    UsageDaily.tenant_id == tenant_id, UsageDaily.metric == "api_calls"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    acked_usage = [e for ledger in ledgers for e in ledger.usage]
    acked_experiment = [e for ledger in ledgers for e in ledger.experiment]
    acked_customers = {k: v for ledger in ledgers for k, v in ledger.customers.items()}
    return {
        "acknowledged": len(acked_usage) + len(acked_experiment) + len(acked_customers),
        "lost": sum(1 for e in acked_usage if usage[e] == 0)
        + sum(1 for e in acked_experiment if experiment[e] == 0)
        + sum(1 for k, name in acked_customers.items() if names.get(k) != name),
        "doubled": sum(1 for n in usage.values() if n > 1)
        + sum(1 for n in experiment.values() if n > 1)
        + sum(1 for n in customers.values() if n > 1),
        "stored usage": sum(usage.values()),
        "folded usage": int(folded),
    }


def run(db: Database, mode: Mode) -> list[Row]:
    rng = random.Random(mode.seed)
    kills = 3 if mode.quick else 10
    threads_n = 8
    with tempfile.TemporaryDirectory(prefix="aethercrown-durability-") as tmp:
        migrate(db, Path(tmp), mode)
        server = Server(server_env(db, Path(tmp), mode))
        server.start()
        try:
            with httpx.Client(base_url=server.base, timeout=60) as client:
                tenant = create_tenant(client, "durable")
                h = tenant.headers
                expect(
                    client.post(
                        "/api/v1/data/customers",
                        json=[
                            {
                                "external_id": f"dc-{i}",
                                "name": f"usage {i}",
                                "signup_date": "2026-01-01",
                            }
                            for i in range(USAGE_CUSTOMERS)
                        ],
                        headers=h,
                    ),
                    200,
                )
                experiment = expect(
                    client.post(
                        "/api/v1/content/ab-test/create",
                        json={"name": "durable", "variants": [{"key": "a"}, {"key": "b"}]},
                        headers=h,
                    ),
                    201,
                )
            stop = threading.Event()
            ledgers = [Ledger() for _ in range(threads_n)]
            threads = [
                threading.Thread(
                    target=client_thread,
                    args=(
                        server.base,
                        tenant,
                        str(experiment["id"]),
                        i,
                        mode.seed,
                        stop,
                        ledgers[i],
                    ),
                )
                for i in range(threads_n)
            ]
            for t in threads:
                t.start()
            restart_seconds: list[float] = []
            for k in range(kills):
                time.sleep(rng.uniform(2.0, 5.0))
                acked = sum(ledger.outcomes["acknowledged"] for ledger in ledgers)
                server.kill()
                log(f"durability: kill {k + 1}/{kills} after {acked} acknowledged writes")
                started = time.monotonic()
                server.start()
                restart_seconds.append(time.monotonic() - started)
            time.sleep(2.0)
            stop.set()
            for t in threads:
                t.join(timeout=120)
            stuck = sum(1 for t in threads if t.is_alive())
            with httpx.Client(base_url=server.base, headers=h, timeout=60) as client:
                # A report read folds every event stored before it (the rollups catch up).
                for i in range(USAGE_CUSTOMERS):
                    expect(client.get(f"/api/v1/enterprise/usage/dc-{i}/report"), 200)
        finally:
            server.stop()
        result = check(db, uuid.UUID(tenant.id), ledgers)
    outcomes: Counter[str] = Counter()
    for ledger in ledgers:
        outcomes += ledger.outcomes
    rejected = [r for ledger in ledgers for r in ledger.rejected]
    miscounted = abs(result["stored usage"] - result["folded usage"])
    failures = result["lost"] + result["doubled"] + len(rejected) + stuck + miscounted
    retried = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()) if k != "acknowledged")
    figure = (
        f"acknowledged {result['acknowledged']}, lost {result['lost']}, "
        f"doubled {result['doubled']}; usage events stored {result['stored usage']} / "
        f"counted in rollups {result['folded usage']}; rejected {len(rejected)}; "
        f"restart {max(restart_seconds):.1f} s max; retried: {retried or 'none'}"
    )
    if rejected:
        figure += "; first rejected: " + rejected[0]
    return [
        Row(
            "2 crash durability",
            db.backend,
            f"{threads_n} client threads, {kills} SIGKILLs + restarts, retry until acked",
            failures,
            figure,
        )
    ]
