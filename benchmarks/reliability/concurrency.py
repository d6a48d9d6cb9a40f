"""Part 3: concurrency. Three ``aethercrown automate`` runners and two API servers (each with
its in-process runner) on one database, ticking fast: no job may run twice for a (job, scope,
period). Then 16 clients claim tasks over HTTP at once: no task may be claimed twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from benchmarks.reliability.common import (
    Database,
    Mode,
    Row,
    Server,
    create_tenant,
    expect,
    log,
    migrate,
    running_server,
    server_env,
)
from sqlalchemy import select

from aethercrown.automation.models import AutomationRun

RUNNERS = 3
SERVERS = 2
CLAIMERS = 16
TASKS = 320
TICK_SECONDS = 0.2


def automation(db: Database, mode: Mode, data_dir: Path, setup: Server) -> Row:
    """``setup``: a server without a runner, to create the tenants the jobs run for."""
    seconds = 8.0 if mode.quick else 30.0
    env = server_env(db, data_dir, mode)
    with httpx.Client(base_url=setup.base, timeout=60) as client:
        for slug, tier in (("auto-a", "starter"), ("auto-b", "enterprise")):
            create_tenant(client, slug, tier)
    run_env = {
        **env,
        "AETHERCROWN_RUN_AUTOMATION": "true",
        "AETHERCROWN_AUTOMATION_TICK_SECONDS": str(TICK_SECONDS),
    }
    servers = [Server(run_env) for _ in range(SERVERS)]
    runners: list[subprocess.Popen[bytes]] = []
    try:
        runners = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "aethercrown",
                    "automate",
                    "--tick",
                    str(TICK_SECONDS),
                    "--quiet",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            for _ in range(RUNNERS)
        ]
        # Launched together: on a busy machine a start takes tens of seconds.
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_ready()
        log(f"concurrency: {RUNNERS} runners + {SERVERS} servers ticking for {seconds:.0f} s")
        time.sleep(seconds)
    finally:
        for proc in runners:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for server in servers:
            server.stop()
        for proc in runners:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    engine = db.engine()
    try:
        with engine.connect() as conn:
            runs = conn.execute(
                select(
                    AutomationRun.job,
                    AutomationRun.scope,
                    AutomationRun.period_start,
                    AutomationRun.status,
                    AutomationRun.runner,
                    AutomationRun.error,
                )
            ).all()
    finally:
        engine.dispose()
    succeeded = Counter((r.job, r.scope, r.period_start) for r in runs if r.status == "succeeded")
    twice = [key for key, n in succeeded.items() if n > 1]
    statuses = Counter(r.status for r in runs)
    runner_ids = {r.runner for r in runs}
    failed = [f"{r.job}: {(r.error or '')[:120]}" for r in runs if r.status == "failed"]
    figure = (
        f"{len(runs)} runs for {len({(r.job, r.scope, r.period_start) for r in runs})} "
        f"(job, scope, period); ran twice {len(twice)}; by {len(runner_ids)} runner(s); "
        + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
    )
    if failed:
        figure += "; failed: " + "; ".join(sorted(set(failed))[:3])
    return Row(
        "3 concurrency: automation",
        db.backend,
        f"{RUNNERS} `automate` + {SERVERS} servers' runners, tick {TICK_SECONDS} s, "
        f"{seconds:.0f} s",
        len(twice) + len(failed),
        figure,
    )


def task_claims(db: Database, with_server: Server) -> Row:
    with httpx.Client(base_url=with_server.base, timeout=60) as client:
        tenant = create_tenant(client, "claims", "enterprise")  # 100 AI agents
        h = tenant.headers
        expect(
            client.post(
                "/api/v1/optimization/tasks/schedule",
                json={
                    "tasks": [
                        {
                            "id": f"t{i}",
                            "type": "t",
                            "priority": 1 + i % 4,
                            "estimated_duration": 1 + i % 50,
                        }
                        for i in range(TASKS)
                    ]
                },
                headers=h,
            ),
            201,
        )
        workers = [
            str(
                expect(
                    client.post(
                        "/api/v1/optimization/tasks/workers/register",
                        json={"name": f"w{i}", "capacity": 1000},
                        headers=h,
                    ),
                    201,
                )["id"]
            )
            for i in range(CLAIMERS)
        ]
    claimed: list[list[str]] = [[] for _ in workers]
    problems: Counter[str] = Counter()
    barrier = threading.Barrier(CLAIMERS)

    def claimer(index: int) -> None:
        with httpx.Client(base_url=with_server.base, headers=h, timeout=60) as c:
            barrier.wait()
            while True:
                try:
                    response = c.post(
                        "/api/v1/optimization/tasks/assign",
                        json={"worker_id": workers[index], "max_tasks": 3},
                    )
                except httpx.HTTPError as exc:
                    problems[type(exc).__name__] += 1
                    return
                if response.status_code in (429, 503):
                    problems[str(response.status_code)] += 1
                    time.sleep(0.05)
                    continue
                if response.status_code != 200:
                    problems[str(response.status_code)] += 1
                    return
                got = [a["task"]["id"] for a in response.json()["assigned"]]
                if not got:
                    return
                claimed[index].extend(got)

    started = time.monotonic()
    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(CLAIMERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    counts = Counter(key for keys in claimed for key in keys)
    twice = sum(1 for n in counts.values() if n > 1)
    unclaimed = TASKS - len(counts)
    busy = problems["503"] + problems["429"]
    errors = sum(problems.values()) - busy
    figure = (
        f"{len(counts)}/{TASKS} tasks claimed in {elapsed:.1f} s by "
        f"{sum(1 for keys in claimed if keys)} workers; claimed twice {twice}; "
        f"unclaimed {unclaimed}; errors {errors}; busy answers (retried) {busy}"
    )
    return Row(
        "3 concurrency: task claims",
        db.backend,
        f"{CLAIMERS} HTTP claimers, {TASKS} tasks, one server",
        twice + unclaimed + errors,
        figure,
    )


def run(db: Database, mode: Mode) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="aethercrown-concurrency-") as tmp:
        migrate(db, Path(tmp), mode)
        # One server without a runner for the setup and the claimers (a start is slow).
        with running_server(server_env(db, Path(tmp), mode)) as server:
            return [automation(db, mode, Path(tmp), server), task_claims(db, server)]
