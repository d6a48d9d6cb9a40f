"""Enterprise onboarding: platform time from create to the last step that does not wait on the
customer (goal ≤ 200 ms).

Each onboarding runs, in-process, ``onboarding.service.create``: validation and the stored
onboarding, then steps 1–6 each in its own write unit (customer record, SLA tier, subscription
and meters in metering, portal key, signed docs link, iCalendar training), the support ping's
claim and record units (the ping itself answered at once by an in-memory transport, so no
network time is counted), and the first health-check attempt, which finds no usage yet and
schedules its retry (the first step that waits on the customer). The figure is the whole call,
sequential onboardings of new customers in one tenant; the process's CPU time is printed too,
with the load average, since a shared machine's wall clock counts the wait for a CPU.

    .venv/bin/python benchmarks/onboarding.py [--onboardings 50] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from aethercrown.db import migrate
from aethercrown.db.engine import make_engine, make_session_factory
from aethercrown.db.session import write_transaction
from aethercrown.onboarding import schemas, service
from aethercrown.tenants.schemas import TenantCreate
from aethercrown.tenants.service import create_tenant


def _body(n: int) -> schemas.OnboardingCreate:
    return schemas.OnboardingCreate.model_validate(
        {
            "customer": {"external_id": f"bench-{n}", "name": f"Bench customer {n}"},
            "sla_tier": "enterprise",
            "contacts": [
                {"name": "Ada", "email": f"ada{n}@bench.example", "time_zone": "Europe/Berlin"}
            ],
            "plan": "enterprise",
            "meters": [{"name": "api_calls", "capacity": 1_000_000}],
            "support_webhook_url": f"https://support.bench-{n}.example/hook",
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onboardings", type=int, default=50)
    parser.add_argument("--database-url", default=None, help="a scratch database (default: SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        migrate.upgrade(url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        with write_transaction(factory) as session:
            tenant, _ = create_tenant(
                session,
                TenantCreate(name="Bench", slug=f"bench-{uuid.uuid4().hex[:8]}", tier="enterprise"),
                actor="bench",
            )
            tenant_id = tenant.id

        def answer(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, text="ok")

        client = httpx.Client(transport=httpx.MockTransport(answer))

        # The support hosts resolve at once to a public address (no DNS time is counted).
        def resolver(host: str, port: int) -> list[str]:
            return ["93.184.215.14"]

        # One warm-up onboarding (imports, first-use defaults: SLA tiers, plans, the secret).
        service.create(
            factory,
            tenant_id,
            _body(-1),
            "bench",
            allow_loopback=False,
            client=client,
            resolver=resolver,
        )
        timings, cpu = [], []
        for n in range(args.onboardings):
            began, began_cpu = time.perf_counter(), time.process_time()
            out = service.create(
                factory,
                tenant_id,
                _body(n),
                "bench",
                allow_loopback=False,
                client=client,
                resolver=resolver,
            )
            timings.append((time.perf_counter() - began) * 1000)
            cpu.append((time.process_time() - began_cpu) * 1000)
            assert out.steps[6].status == "done" and out.steps[7].status == "waiting", out
        client.close()
        engine.dispose()
    timings.sort()
    p95 = timings[min(len(timings) - 1, int(0.95 * len(timings)))]
    backend = url.split(":", 1)[0]
    print(
        f"onboarding create → last step not waiting on the customer ({backend}, "
        f"{len(timings)} onboardings, ping answered in memory)"
    )
    print(f"  median {statistics.median(timings):7.1f} ms")
    print(f"  p95    {p95:7.1f} ms")
    print(f"  max    {timings[-1]:7.1f} ms")
    print(f"  goal   {200:7.1f} ms: {'met' if p95 <= 200 else 'MISSED'} at p95 (wall clock)")
    # On a busy machine the wall clock counts the time spent waiting for a CPU; the process's
    # own CPU time is what the work costs (it leaves out disk waits: commits' fsyncs).
    print(
        f"  CPU time of the process: median {statistics.median(cpu):.1f} ms, "
        f"max {max(cpu):.1f} ms; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()
