"""The runner in-process: claims, retries, abandoned runs, tier intervals, history API and CLI."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from aethercrown.app import create_app
from aethercrown.automation import periods
from aethercrown.automation.models import INSTALLATION, AutomationRun
from aethercrown.automation.service import Runner
from aethercrown.cli import app as cli_app
from aethercrown.clock import utcnow
from aethercrown.core.jobs import JobSpec, all_jobs
from aethercrown.db.session import write_transaction
from aethercrown.db.tenant_scope import across_tenants
from aethercrown.settings import Settings
from tests.conftest import TenantHandle, bearer

T0 = datetime(2030, 1, 1, 0, 0, tzinfo=UTC)


class Calls:
    """Counts calls per (job, tenant, period) across threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: Counter[tuple[str, uuid.UUID | None, datetime]] = Counter()

    def job(self, name: str, fail_first: int = 0) -> Any:
        def run(session: Session, tenant_id: uuid.UUID | None, period: datetime) -> dict[str, Any]:
            with self.lock:
                self.seen[(name, tenant_id, period)] += 1
                count = self.seen[(name, tenant_id, period)]
            if count <= fail_first:
                raise ValueError(f"{name} failed on call {count}")
            return {"call": count, "tenant": str(tenant_id)}

        return run


def runs(factory: sessionmaker[Session]) -> list[AutomationRun]:
    # Every tenant's runs: with the application's own factory (PostgreSQL: row-level security)
    # that is a read across tenants, said so.
    with factory() as session, across_tenants(session):
        return list(session.scalars(select(AutomationRun).order_by(AutomationRun.id)))


def test_runners_in_threads_run_each_job_once_per_period(
    session_factory: sessionmaker[Session], tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    calls = Calls()
    jobs = [
        JobSpec("hourly", 3600, calls.job("hourly")),
        JobSpec("global", 3600, calls.job("global"), per_tenant=False),
    ]
    runners = [Runner(session_factory, jobs) for _ in range(4)]
    for hour in range(3):
        now = T0 + timedelta(hours=hour, minutes=5)
        threads = [threading.Thread(target=r.tick, args=(now,)) for r in runners]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    # 3 periods × (2 tenants + the installation), each called exactly once.
    assert len(calls.seen) == 9 and set(calls.seen.values()) == {1}
    stored = runs(session_factory)
    assert len(stored) == 9 and {r.status for r in stored} == {"succeeded"}
    assert {r.scope for r in stored if r.job == "global"} == {INSTALLATION}


def test_a_runner_scoped_to_tenants_acts_for_them_only(
    session_factory: sessionmaker[Session], tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    """What a replay of one tenant's past uses: other tenants and installation-wide jobs are
    left alone (the moment is not theirs)."""
    calls = Calls()
    jobs = [
        JobSpec("hourly", 3600, calls.job("hourly")),
        JobSpec("global", 3600, calls.job("global"), per_tenant=False),
    ]
    scoped = Runner(session_factory, jobs, tenant_ids=frozenset({tenant.uid}))
    results = scoped.tick(T0)
    assert [(r.job, r.scope) for r in results] == [("hourly", tenant.id)]
    assert set(calls.seen) == {("hourly", tenant.uid, T0)}


def test_a_failed_run_is_retried_on_the_next_tick_and_kept_in_history(
    session_factory: sessionmaker[Session], tenant: TenantHandle
) -> None:
    calls = Calls()
    runner = Runner(session_factory, [JobSpec("flaky", 3600, calls.job("flaky", fail_first=1))])
    first = runner.tick(T0)
    assert [(r.status, r.attempt) for r in first] == [("failed", 1)]
    assert "flaky failed on call 1" in (first[0].error or "")
    second = runner.tick(T0 + timedelta(minutes=1))
    assert [(r.status, r.attempt) for r in second] == [("succeeded", 2)]
    assert runner.tick(T0 + timedelta(minutes=2)) == []
    history = runs(session_factory)
    assert [(r.attempt, r.status) for r in history] == [(1, "failed"), (2, "succeeded")]
    assert "ValueError" in (history[0].error or "") and history[1].summary == {
        "call": 2,
        "tenant": tenant.id,
    }


def test_retries_stop_at_the_attempt_limit(
    session_factory: sessionmaker[Session], tenant: TenantHandle
) -> None:
    calls = Calls()
    runner = Runner(
        session_factory,
        [JobSpec("broken", 3600, calls.job("broken", fail_first=99))],
        max_attempts=3,
    )
    for minute in range(5):
        runner.tick(T0 + timedelta(minutes=minute))
    assert [(r.attempt, r.status) for r in runs(session_factory)] == [
        (1, "failed"),
        (2, "failed"),
        (3, "failed"),
    ]


def test_a_run_whose_runner_died_is_abandoned_and_retried(
    session_factory: sessionmaker[Session], tenant: TenantHandle
) -> None:
    calls = Calls()
    runner = Runner(
        session_factory, [JobSpec("job", 3600, calls.job("job"))], run_timeout=timedelta(minutes=10)
    )
    started = utcnow() - timedelta(minutes=5)  # run times are wall time, whatever tick() is given
    with write_transaction(session_factory) as session:
        session.add(
            AutomationRun(
                job="job",
                scope=tenant.id,
                tenant_id=tenant.uid,
                period_start=T0,
                interval_seconds=3600,
                attempt=1,
                status="running",
                runner="dead-host:1",
                started_at=started,
            )
        )
    assert runner.tick(T0) == []  # running for 5 min: may still be working
    runner.wall = lambda: started + timedelta(minutes=11)
    result = runner.tick(T0)
    assert [(r.attempt, r.status) for r in result] == [(2, "succeeded")]
    first = runs(session_factory)[0]
    assert first.status == "abandoned" and "dead-host:1" in (first.error or "")


def test_the_tier_sets_the_shortest_interval(
    session_factory: sessionmaker[Session], client: TestClient, admin_key: str
) -> None:
    from tests.conftest import create_tenant

    starter = create_tenant(client, admin_key, "slow", tier="starter")  # hourly at most
    enterprise = create_tenant(client, admin_key, "fast", tier="enterprise")  # 5 min
    calls = Calls()
    runner = Runner(session_factory, [JobSpec("often", 60, calls.job("often"))])
    for minute in range(0, 20):
        runner.tick(T0 + timedelta(minutes=minute))
    per_tenant = Counter(t for (_, t, _) in calls.seen)
    assert per_tenant[starter.uid] == 1
    assert per_tenant[enterprise.uid] == 4  # periods starting at :00, :05, :10, :15
    assert {r.interval_seconds for r in runs(session_factory) if r.scope == enterprise.id} == {300}


def test_run_history_api_scopes_tenants_and_shows_failures(
    client: TestClient,
    admin_key: str,
    session_factory: sessionmaker[Session],
    tenant: TenantHandle,
    other_tenant: TenantHandle,
) -> None:
    calls = Calls()
    jobs = [
        JobSpec("flaky", 3600, calls.job("flaky", fail_first=1)),
        JobSpec("global", 3600, calls.job("global"), per_tenant=False),
    ]
    Runner(session_factory, jobs).tick(T0)
    mine = client.get("/api/v1/automation/runs", headers=tenant.headers).json()["items"]
    assert [(r["job"], r["status"]) for r in mine] == [("flaky", "failed")]
    assert "flaky failed" in mine[0]["error"] and mine[0]["tenant_id"] == tenant.id
    everything = client.get("/api/v1/automation/runs", headers=bearer(admin_key)).json()["items"]
    assert len(everything) == 3
    assert [r["id"] for r in everything] == sorted((r["id"] for r in everything), reverse=True)
    failed = client.get(
        "/api/v1/automation/runs", params={"status": "failed"}, headers=bearer(admin_key)
    ).json()["items"]
    assert len(failed) == 2
    page = client.get(
        "/api/v1/automation/runs", params={"limit": 2}, headers=bearer(admin_key)
    ).json()
    rest = client.get(
        "/api/v1/automation/runs",
        params={"limit": 2, "cursor": page["next_cursor"]},
        headers=bearer(admin_key),
    ).json()
    assert len(page["items"]) == 2 and len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert (
        client.get(
            "/api/v1/automation/runs", params={"status": "bogus"}, headers=tenant.headers
        ).status_code
        == 422
    )
    jobs_seen = client.get("/api/v1/automation/jobs", headers=tenant.headers).json()
    names = {j["name"] for j in jobs_seen}
    assert {"task_scheduling", "key_rotation"} <= names and "health_checks" not in names


def test_cli_once_and_runs(db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = db.url.render_as_string(hide_password=False)
    monkeypatch.setenv("AETHERCROWN_DATABASE_URL", url)
    monkeypatch.setenv("AETHERCROWN_DATA_DIR", str(tmp_path))
    from aethercrown.settings import get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    created = runner.invoke(cli_app, ["tenants", "create", "Cli", "--slug", "cli-t"])
    assert created.exit_code == 0, created.output
    once = runner.invoke(cli_app, ["automate", "--once", "--json", "--now", "2030-01-01T00:30:00Z"])
    assert once.exit_code == 0, once.output
    ran = [json.loads(line) for line in once.stdout.splitlines()]
    assert len(ran) == len(all_jobs())  # one tenant: every job once
    assert all(isinstance(run["summary"], dict) for run in ran)
    again = runner.invoke(
        cli_app, ["automate", "--once", "--json", "--now", "2030-01-01T00:40:00Z"]
    )
    assert again.exit_code == 0
    # Ten minutes later only jobs with a new period run again (a starter tenant: hourly at most).
    first, second = T0 + timedelta(minutes=30), T0 + timedelta(minutes=40)
    due_again = set()
    for job in all_jobs():
        interval = periods.effective_interval(job.interval_seconds, 3600 if job.per_tenant else 0)
        if periods.period_start(first, interval) != periods.period_start(second, interval):
            due_again.add(job.name)
    assert {json.loads(line)["job"] for line in again.stdout.splitlines()} == due_again
    history = runner.invoke(cli_app, ["automate", "runs", "--tenant", "cli-t"])
    assert history.exit_code == 0
    lines = history.stdout.strip().splitlines()
    assert len(lines) == sum(1 for j in all_jobs() if j.per_tenant)
    assert all('"status":"succeeded"' in line for line in lines)
    bad = runner.invoke(cli_app, ["automate", "--once", "--now", "yesterday"])
    assert bad.exit_code == 2
    get_settings.cache_clear()


def test_cli_once_says_what_each_job_did_in_one_line(
    db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AETHERCROWN_DATABASE_URL", db.url.render_as_string(hide_password=False))
    monkeypatch.setenv("AETHERCROWN_DATA_DIR", str(tmp_path))
    from aethercrown.settings import get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    assert runner.invoke(cli_app, ["tenants", "create", "Lines", "--slug", "lines"]).exit_code == 0
    once = runner.invoke(cli_app, ["automate", "--once", "--now", "2030-01-01T00:30:00Z"])
    assert once.exit_code == 0, once.output
    lines = once.stdout.splitlines()
    jobs = {job.name: job for job in all_jobs()}
    assert len(lines) == len(jobs)
    for line in lines:
        parsed = re.fullmatch(r"(\S+) (\S+) (\d{4}-\d\d-\d\d)( \d\d:\d\d)? succeeded: (.+)", line)
        assert parsed, line
        job, scope, day, clock, _ = parsed.groups()
        assert scope == ("lines" if jobs[job].per_tenant else INSTALLATION), line
        # Periods of whole days show the date alone; shorter ones their start time too.
        interval = periods.effective_interval(
            jobs[job].interval_seconds, 3600 if jobs[job].per_tenant else 0
        )
        expected = periods.period_start(T0 + timedelta(minutes=30), interval)
        assert day == f"{expected:%Y-%m-%d}", line
        assert clock == (None if interval % 86_400 == 0 else f" {expected:%H:%M}"), line
    by_job = {line.split(" ", 1)[0]: line for line in lines}
    assert by_job["key_rotation"].endswith("succeeded: no key due")
    assert "no allocation: " in by_job["budget.daily_allocation"]
    assert "not trained: " in by_job["churn.retrain"]
    # Nothing new is due ten seconds later: nothing to say, and --quiet says nothing at all.
    later = ["automate", "--once", "--now", "2030-01-01T00:30:10Z"]
    assert runner.invoke(cli_app, later).stdout == "no job was due\n"
    quiet = runner.invoke(cli_app, [*later, "--quiet"])
    assert quiet.exit_code == 0 and quiet.output == ""
    get_settings.cache_clear()


def test_cli_once_quiet_still_shows_failed_runs(
    db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(session: Session, tenant_id: uuid.UUID | None, start: datetime) -> dict[str, Any]:
        raise RuntimeError("the channel data is gone\nsecond line")

    jobs = [
        JobSpec("broken", 3600, broken, per_tenant=False),
        JobSpec("plain", 3600, lambda *_: {"moved": 3, "rows": [1, 2]}, per_tenant=False),
        JobSpec("told", 3600, lambda *_: {"n": 2}, per_tenant=False, headline=lambda s: "two"),
    ]
    monkeypatch.setattr("aethercrown.core.jobs.all_jobs", lambda: jobs)
    monkeypatch.setenv("AETHERCROWN_DATABASE_URL", db.url.render_as_string(hide_password=False))
    monkeypatch.setenv("AETHERCROWN_DATA_DIR", str(tmp_path))
    from aethercrown.settings import get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    first = runner.invoke(cli_app, ["automate", "--once", "--now", "2030-01-01T00:30:00Z"])
    assert first.exit_code == 1  # a scheduler running one tick sees the failure
    assert first.stdout.splitlines() == [
        "broken installation 2030-01-01 00:00 failed: RuntimeError: the channel data is gone",
        "plain installation 2030-01-01 00:00 succeeded: moved 3",
        "told installation 2030-01-01 00:00 succeeded: two",
    ]
    retry = runner.invoke(
        cli_app, ["automate", "--once", "--quiet", "--now", "2030-01-01T00:31:00Z"]
    )
    assert retry.exit_code == 1
    assert retry.stdout == (
        "broken installation 2030-01-01 00:00 failed (attempt 2): "
        "RuntimeError: the channel data is gone\n"
    )
    get_settings.cache_clear()


def test_every_job_says_what_it_decided() -> None:
    from aethercrown.budget.jobs import allocation_headline

    assert all(job.headline is not None for job in all_jobs())
    summary = {
        "closed": 2,
        "allocations": {"seo": 50171.0, "referral": 60433.0, "events": 47821.0},
        "expected_return": 278917.59,
        "currency": "USD",
    }
    assert allocation_headline(summary) == (
        "allocated USD 1,584.25 over 3 channels (most to referral, USD 604.33), expected return "
        "USD 2,789.18; closed out 2 earlier allocations"
    )


def test_serve_runs_the_runner_in_process(settings: Settings, tenant: TenantHandle) -> None:
    live = settings.model_copy(update={"run_automation": True, "automation_tick_seconds": 0.05})
    app = create_app(live)
    with TestClient(app):
        factory = app.state.session_factory
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done = [r for r in runs(factory) if r.status != "running"]
            if len(done) >= len(all_jobs()):
                break
            time.sleep(0.05)
    names = {r.job for r in runs(factory)}
    assert names == {j.name for j in all_jobs()}


def test_a_run_that_finishes_while_another_runner_gives_up_on_it_is_not_rerun(
    session_factory: sessionmaker[Session], tenant: TenantHandle
) -> None:
    """The race: runner B read the run as running for too long; before B marks it abandoned,
    its own runner commits success. B must not start attempt 2."""
    runner = Runner(session_factory, [], run_timeout=timedelta(minutes=10))
    with write_transaction(session_factory) as session:
        run = AutomationRun(
            job="job",
            scope=tenant.id,
            tenant_id=tenant.uid,
            period_start=T0,
            interval_seconds=3600,
            attempt=1,
            status="running",
            runner="slow-host:1",
            started_at=utcnow() - timedelta(hours=2),
        )
        session.add(run)
    seen_running = runs(session_factory)[0]
    with write_transaction(session_factory) as session:
        stored = session.get(AutomationRun, seen_running.id)
        assert stored is not None
        stored.status = "succeeded"
    assert runner._next_attempt(seen_running) is None
    assert [r.status for r in runs(session_factory)] == ["succeeded"]
