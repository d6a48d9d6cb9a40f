"""CPU time per authenticated tenant read, in-process: the ASGI apps called directly, no socket.

api_overhead.py measures throughput over HTTP with wrk sharing the machine's cores; on a loaded
machine that throughput is the inverse of the CPU each request costs, and this measures that cost
alone: the platform's ``GET /api/v1/tenants/{id}`` (``create_app`` on a fresh SQLite file, as
``aethercrown serve`` builds it) against the fair floor (``benchmarks/floor_app.py``'s
``/floor-async/{id}``), the same number of requests one after another, alternated over rounds;
the medians of the rounds and the ratio are printed with the load average.

    PYTHONPATH=src .venv/bin/python benchmarks/auth_read_cpu.py [--requests 2000] [--rounds 7]
        [--profile]   # cProfile over the platform's requests instead, by cumulative time

Run it with another source tree on PYTHONPATH (e.g. main's src) to compare builds; alternate
the two runs, since the machine's load drifts.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import importlib
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
Asgi = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def _scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def _call(app: Asgi, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    status = 0
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope(path, headers), receive, send)
    return status


async def _run(app: Asgi, path: str, headers: list[tuple[bytes, bytes]], n: int) -> float:
    """CPU seconds per request over ``n`` sequential requests."""
    started = time.process_time()
    for _ in range(n):
        status = await _call(app, path, headers)
        if status != 200:
            raise SystemExit(f"{path} answered {status}")
    return (time.process_time() - started) / n


def _platform(tmp: Path) -> tuple[Asgi, str, str]:
    """The platform's app on a fresh migrated SQLite file, with one tenant: (app, id, key)."""
    from fastapi.testclient import TestClient

    from aethercrown.app import create_app
    from aethercrown.core.commandline import open_database
    from aethercrown.db.engine import make_session_factory
    from aethercrown.db.session import write_transaction
    from aethercrown.security.service import ensure_bootstrap_admin
    from aethercrown.settings import Settings

    settings = Settings(
        database_url=f"sqlite:///{tmp / 'bench.db'}",
        data_dir=tmp,
        run_automation=False,
    )
    engine = open_database(settings, migrate=True)
    with write_transaction(make_session_factory(engine)) as session:
        admin = ensure_bootstrap_admin(session, None)
    engine.dispose()
    assert admin
    app = create_app(settings)
    with TestClient(app) as client:
        auth = {"Authorization": f"Bearer {admin}"}
        client.patch(
            "/api/v1/platform/tiers/enterprise",
            json={"requests_per_minute": 10_000_000},
            headers=auth,
        ).raise_for_status()
        created = client.post(
            "/api/v1/tenants/create",
            json={"name": "Bench", "slug": "bench", "tier": "enterprise"},
            headers=auth,
        )
        created.raise_for_status()
    body = created.json()
    return app, body["id"], body["api_key"]


def _floor(tenant_id: str, key: str) -> Asgi:
    os.environ["FLOOR_TENANT_ID"] = tenant_id
    os.environ["FLOOR_KEY"] = key
    sys.path.insert(0, str(ROOT / "benchmarks"))
    module = importlib.import_module("floor_app")
    return module.app  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="aethercrown-cpu-"))
    app, tenant_id, key = _platform(tmp)
    floor = _floor(tenant_id, key)
    headers = [(b"authorization", f"Bearer {key}".encode())]
    platform_path = f"/api/v1/tenants/{tenant_id}"
    floor_path = f"/floor-async/{tenant_id}"
    gc.collect()
    gc.freeze()  # as the platform's lifespan does after its start

    async def measure() -> None:
        await _run(app, platform_path, headers, 200)  # warm-up
        await _run(floor, floor_path, headers, 200)
        if args.profile:
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            await _run(app, platform_path, headers, args.requests)
            profiler.disable()
            profiler.dump_stats(os.environ.get("PROFILE_OUT", "/tmp/auth_read.prof"))
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(60)
            return
        runs: dict[str, list[float]] = {"platform": [], "floor": []}
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        for _ in range(args.rounds):
            runs["platform"].append(await _run(app, platform_path, headers, args.requests))
            runs["floor"].append(await _run(floor, floor_path, headers, args.requests))
        platform_us = statistics.median(runs["platform"]) * 1e6
        floor_us = statistics.median(runs["floor"]) * 1e6
        shares = ", ".join(
            f"{f / p:.1%}" for p, f in zip(runs["platform"], runs["floor"], strict=True)
        )
        print(
            f"CPU per request, median of {args.rounds} alternated rounds of {args.requests}: "
            f"platform {platform_us:.0f} us, fair floor {floor_us:.0f} us; the platform does "
            f"{floor_us / platform_us:.1%} of the floor's work rate (per round: {shares}); "
            f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )

    asyncio.run(measure())


if __name__ == "__main__":
    main()
