"""Concurrent claimers and a worker killed mid-task, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from aethercrown.clock import utcnow
from aethercrown.tasks import schemas, service
from aethercrown.tasks.models import Task, TaskAttempt
from tests.conftest import create_tenant
from tests.tasks.conftest import task
from tests.tasks.test_service import add_tasks, add_worker, claim, run

REPO = Path(__file__).resolve().parents[2]
CLAIMERS = 16
TASKS = 320


def test_sixteen_concurrent_claimers_never_claim_a_task_twice(
    client: TestClient, admin_key: str, session_factory: sessionmaker[Session]
) -> None:
    tenant = create_tenant(client, admin_key, "busy", tier="enterprise")  # 100 AI agents
    now = utcnow()
    add_tasks(
        session_factory,
        tenant.uid,
        now,
        *(task(f"t{i}", priority=1 + i % 4, duration=1 + i % 50) for i in range(TASKS)),
    )
    workers = [
        add_worker(session_factory, tenant.uid, f"w{i}", now, capacity=1000)
        for i in range(CLAIMERS)
    ]
    claimed: list[list[str]] = [[] for _ in workers]
    errors: list[BaseException] = []
    start = threading.Barrier(CLAIMERS)

    def claimer(index: int) -> None:
        try:
            start.wait()
            while True:
                got = claim(session_factory, tenant.uid, workers[index], utcnow(), max_tasks=3)
                if not got:
                    return
                claimed[index].extend(got)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(CLAIMERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    counts = Counter(key for keys in claimed for key in keys)
    assert [k for k, n in counts.items() if n > 1] == []
    assert len(counts) == TASKS
    assert sum(1 for keys in claimed if keys) > 1  # the work really was shared
    with session_factory() as session:
        per_task = Counter(session.scalars(select(TaskAttempt.task_id)))
        owners = {k: w for k, w in session.execute(select(Task.key, Task.worker_id))}
    assert set(per_task.values()) == {1}
    for index, keys in enumerate(claimed):
        assert all(owners[k] == workers[index] for k in keys)


def test_a_worker_killed_mid_task_gets_its_task_run_again_once(
    client: TestClient, admin_key: str, db: Engine, session_factory: sessionmaker[Session]
) -> None:
    tenant = create_tenant(client, admin_key, "crashy", tier="professional")
    now = utcnow()
    add_tasks(session_factory, tenant.uid, now, task("fragile", max_attempts=3))
    doomed = add_worker(session_factory, tenant.uid, "doomed", now)
    survivor = add_worker(session_factory, tenant.uid, "survivor", now)
    url = db.url.render_as_string(hide_password=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.tasks.worker_process", url, tenant.id, str(doomed), "30"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "fragile"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    with session_factory() as session:
        lease_end = session.scalars(select(Task.lease_expires_at)).one()
    assert lease_end is not None
    # Before the lease ends the task stays with the dead worker.
    assert claim(session_factory, tenant.uid, survivor, lease_end - timedelta(seconds=1)) == []
    # After it (and the first retry's 30 s backoff) the task runs again, once.
    again = lease_end + timedelta(seconds=31)
    assert claim(session_factory, tenant.uid, survivor, again) == ["fragile"]
    run(
        session_factory,
        service.complete,
        tenant.uid,
        "fragile",
        schemas.CompleteRequest(worker_id=survivor, result={"ok": True}),
        now=again + timedelta(seconds=5),
    )
    assert claim(session_factory, tenant.uid, survivor, again + timedelta(days=1)) == []
    with session_factory() as session:
        attempts = session.execute(
            select(TaskAttempt.attempt, TaskAttempt.worker_id, TaskAttempt.outcome).order_by(
                TaskAttempt.attempt
            )
        ).all()
    assert [tuple(a) for a in attempts] == [(1, doomed, "expired"), (2, survivor, "completed")]
