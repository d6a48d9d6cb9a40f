"""Three runner processes on one database over several periods: every job ran exactly once per
period (and scope), on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from aethercrown.automation import periods
from aethercrown.automation.models import INSTALLATION, AutomationRun
from aethercrown.core.jobs import all_jobs
from aethercrown.core.models import Tier
from aethercrown.health.models import HealthSample
from tests.conftest import create_tenant

RUNNERS = 3
# Six-hour steps from 00:30: five ticks cover five hourly periods and two daily ones.
TICKS = [datetime(2030, 1, 1, 0, 30, tzinfo=UTC) + timedelta(hours=6 * k) for k in range(5)]


def test_three_runner_processes_run_each_job_exactly_once_per_period(
    client: TestClient,
    admin_key: str,
    db: Engine,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    tenants = [
        (create_tenant(client, admin_key, "proc-a", tier="starter"), "starter"),
        (create_tenant(client, admin_key, "proc-b", tier="enterprise"), "enterprise"),
    ]
    env = {
        **os.environ,
        "AETHERCROWN_DATABASE_URL": db.url.render_as_string(hide_password=False),
        "AETHERCROWN_DATA_DIR": str(tmp_path),
        "AETHERCROWN_SECRET_KEY": "process-test-secret",
        "AETHERCROWN_LOG_LEVEL": "WARNING",
    }
    env.pop("AETHERCROWN_REDIS_URL", None)
    # Each process ticks through every moment in order, all three at once: they race for
    # every claim, possibly on different periods at the same time.
    moments = [arg for now in TICKS for arg in ("--now", now.isoformat())]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "aethercrown", "automate", "--once", *moments],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(RUNNERS)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err

    with session_factory() as session:
        tier_min = dict(
            session.execute(select(Tier.slug, Tier.automation_min_interval_seconds)).all()
        )
    expected: set[tuple[str, str, datetime]] = set()
    for job in all_jobs():
        scopes = (
            [
                (t.id, periods.effective_interval(job.interval_seconds, tier_min[tier]))
                for t, tier in tenants
            ]
            if job.per_tenant
            else [(INSTALLATION, job.interval_seconds)]
        )
        for scope, interval in scopes:
            for now in TICKS:
                expected.add((job.name, scope, periods.period_start(now, interval)))

    with session_factory() as session:
        stored = list(session.scalars(select(AutomationRun)))
        samples_per_period = dict(
            session.execute(
                select(HealthSample.checked_at, func.count())
                .where(HealthSample.source == "job")
                .group_by(HealthSample.checked_at)
            ).all()
        )
    failed = [(r.job, r.attempt, (r.error or "")[:300]) for r in stored if r.status != "succeeded"]
    assert failed == []
    keys = Counter((r.job, r.scope, r.period_start) for r in stored)
    assert set(keys) == expected
    assert set(keys.values()) == {1}, [k for k, n in keys.items() if n > 1]
    assert {r.attempt for r in stored} == {1}
    # Hourly jobs ran in 5 periods, daily ones in 2.
    per_job = Counter(r.job for r in stored)
    assert per_job["health_checks"] == 5
    assert per_job["task_scheduling"] == 5 * len(tenants)
    assert per_job["key_rotation"] == 2 * len(tenants)
    # The work itself happened once per period: one set of health samples per hourly period.
    assert len(samples_per_period) == 5
    assert len(set(samples_per_period.values())) == 1
    # Which process won each claim is a race (on an idle machine one may win them all);
    # the property under test is that, whoever won, each period ran exactly once.
