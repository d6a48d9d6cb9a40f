"""The automation runner: every registered job, once per period per scope, across any number of
runner processes on any number of machines.

Each tick, for every (job, scope) — a scope is a tenant for per-tenant jobs, the installation
otherwise — the runner computes the current period (aligned to the epoch, the tenant's tier may
lengthen the interval) and tries to INSERT the run row for (job, scope, period, attempt). The
UNIQUE constraint lets exactly one process win; the winner runs the job and marks the run
succeeded in the same transaction as the job's own writes, guarded by ``status = 'running'``, so
a run that another runner declared abandoned can never be committed twice. A job that opens its
own short units of work (``JobSpec.run_in_units``: network calls, training) commits as it goes
and is marked in a unit of its own; the run record's bookkeeping (claim, finish) is always in
short write units, never around the job's sending or computing. A failed (or
abandoned) run is retried on a later tick as attempt + 1, up to ``max_attempts`` per period;
every attempt stays in the history with its error.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.orm import Session, sessionmaker

from aethercrown.automation import periods
from aethercrown.automation.models import INSTALLATION, AutomationRun
from aethercrown.automation.repository import RunnerRepository, RunRepository
from aethercrown.clock import utcnow
from aethercrown.core.jobs import JobSpec, job_settings_scope
from aethercrown.core.tenant_repository import find_tenant
from aethercrown.db.session import read_transaction, write_transaction
from aethercrown.db.tenant_scope import scope_to_all_tenants, scope_to_tenant
from aethercrown.settings import Settings
from aethercrown.webhooks.service import enqueue_webhook

log = logging.getLogger("aethercrown.automation")

JOB_FAILED_EVENT = "automation.job.failed"

DEFAULT_MAX_ATTEMPTS = 3
# A run still "running" after this long is taken to have lost its runner (a crash or a kill):
# it is marked abandoned and retried. Longer than any job should take.
DEFAULT_RUN_TIMEOUT = timedelta(hours=1)


@dataclass(frozen=True)
class Target:
    job: JobSpec
    tenant_id: uuid.UUID | None
    interval: int
    period_start: datetime

    @property
    def scope(self) -> str:
        return str(self.tenant_id) if self.tenant_id else INSTALLATION


@dataclass(frozen=True)
class RunResult:
    run_id: int
    job: str
    scope: str
    period_start: datetime
    attempt: int
    status: str
    error: str | None = None
    summary: dict[str, Any] | None = None  # what the job returned, as stored in the history
    interval_seconds: int = 0  # the period's length


def default_runner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class Runner:
    session_factory: sessionmaker[Session]
    jobs: Sequence[JobSpec]
    settings: Settings | None = None
    runner_id: str = field(default_factory=default_runner_id)
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    run_timeout: timedelta = DEFAULT_RUN_TIMEOUT
    # What time it is for choosing periods (tests and replays pass their own moments to tick).
    clock: Callable[[], datetime] = utcnow
    # Wall time for the history and for judging how long a run has been running: always real,
    # even when tick() is given another moment.
    wall: Callable[[], datetime] = utcnow
    # Only these tenants' jobs, and no installation-wide ones: a replay of one tenant's past
    # (simulate.replay) must not act for other tenants at a moment that is not theirs.
    tenant_ids: frozenset[uuid.UUID] | None = None

    def targets(self, now: datetime) -> list[Target]:
        with read_transaction(self.session_factory) as session:
            tenants = RunnerRepository(session).active_tenants()
        if self.tenant_ids is not None:
            tenants = [t for t in tenants if t[0] in self.tenant_ids]
        out: list[Target] = []
        for job in self.jobs:
            if job.per_tenant:
                for tenant_id, tier_min in tenants:
                    interval = periods.effective_interval(job.interval_seconds, tier_min)
                    out.append(
                        Target(job, tenant_id, interval, periods.period_start(now, interval))
                    )
            elif self.tenant_ids is None:
                interval = job.interval_seconds
                out.append(Target(job, None, interval, periods.period_start(now, interval)))
        return out

    def tick(self, now: datetime | None = None) -> list[RunResult]:
        """Claim and run everything due at ``now``; returns what this process ran."""
        now = now or self.clock()
        targets = self.targets(now)
        if not targets:
            return []
        starts = sorted({t.period_start for t in targets})
        with read_transaction(self.session_factory) as session:
            latest = RunnerRepository(session).latest_attempts(starts)
        results = []
        for target in targets:
            attempt = self._next_attempt(
                latest.get((target.job.name, target.scope, target.period_start))
            )
            if attempt is None:
                continue
            result = self._claim_and_run(target, attempt)
            if result is not None:
                results.append(result)
        return results

    def _next_attempt(self, previous: AutomationRun | None) -> int | None:
        if previous is None:
            return 1
        if previous.status == "succeeded":
            return None
        if previous.status == "running":
            wall = self.wall()
            if previous.started_at > wall - self.run_timeout:
                return None  # another runner is on it
            with write_transaction(self.session_factory) as session:
                given_up = RunnerRepository(session).finish(
                    previous.id,
                    status="abandoned",
                    ended_at=wall,
                    error=f"no result after {self.run_timeout}; runner {previous.runner} "
                    "presumed dead",
                )
            if not given_up:
                return None  # it finished meanwhile (or another runner gave up on it first)
        if previous.attempt >= self.max_attempts:
            return None
        return previous.attempt + 1

    def _claim_and_run(self, target: Target, attempt: int) -> RunResult | None:
        with write_transaction(self.session_factory) as session:
            run_id = RunnerRepository(session).claim(
                {
                    "job": target.job.name,
                    "scope": target.scope,
                    "tenant_id": target.tenant_id,
                    "period_start": target.period_start,
                    "interval_seconds": target.interval,
                    "attempt": attempt,
                    "status": "running",
                    "runner": self.runner_id[:200],
                    "started_at": self.wall(),
                }
            )
        if run_id is None:
            return None  # another runner won this claim
        error: str | None = None
        summary: dict[str, Any] | None = None
        try:
            with job_settings_scope(self.settings):
                summary = self._run_job(target, run_id)
            status = "succeeded"
        except Exception as exc:  # a job's failure is recorded and retried, never raised
            status = "failed"
            summary = None
            error = f"{type(exc).__name__}: {exc}"[:2000]
            log.warning(
                "automation job failed",
                extra={"job": target.job.name, "scope": target.scope, "attempt": attempt},
            )
            trace = traceback.format_exc()[-8000:]
            with write_transaction(self.session_factory) as session:
                failed = RunnerRepository(session).finish(
                    run_id, status="failed", ended_at=self.wall(), error=f"{error}\n{trace}"
                )
                if failed and target.tenant_id is not None:
                    # The tenant hears of it (webhook, alert channels) with its run's record.
                    enqueue_webhook(
                        session,
                        target.tenant_id,
                        JOB_FAILED_EVENT,
                        {
                            "job": target.job.name,
                            "run_id": run_id,
                            "period_start": target.period_start.isoformat(),
                            "attempt": attempt,
                            "final": attempt >= self.max_attempts,
                            "error": error[:500],
                        },
                    )
        return RunResult(
            run_id=run_id,
            job=target.job.name,
            scope=target.scope,
            period_start=target.period_start,
            attempt=attempt,
            status=status,
            error=error,
            summary=summary,
            interval_seconds=target.interval,
        )

    def _run_job(self, target: Target, run_id: int) -> dict[str, Any]:
        """Run the job and mark its run succeeded. A plain job runs in one write unit with
        that mark, so its writes and the mark commit together; a job that opens its own units
        runs with none open, and the mark follows in a short write unit of its own."""
        job = target.job
        if job.run_in_units is not None:
            summary = _jsonable(
                job.run_in_units(self.session_factory, target.tenant_id, target.period_start)
            )
            with write_transaction(self.session_factory) as session:
                done = RunnerRepository(session).finish(
                    run_id, status="succeeded", ended_at=self.wall(), summary=summary
                )
            if not done:
                log.warning(
                    "run finished after it was declared abandoned",
                    extra={"job": job.name, "scope": target.scope},
                )
            return summary
        assert job.run is not None
        with write_transaction(self.session_factory) as session:
            # Row-level security (PostgreSQL): a tenant's job sees its tenant; an
            # installation-wide job (the usage fold) is about every tenant by design.
            if target.tenant_id is None:
                scope_to_all_tenants(session)
            else:
                scope_to_tenant(session, target.tenant_id)
            summary = _jsonable(job.run(session, target.tenant_id, target.period_start))
            done = RunnerRepository(session).finish(
                run_id, status="succeeded", ended_at=self.wall(), summary=summary
            )
            if not done:
                raise RuntimeError("run was declared abandoned while it ran; rolled back")
        return summary

    def run_forever(self, stop: threading.Event, tick_seconds: float) -> None:
        """Continuous mode: tick, then sleep; a tick that fails (database down) is logged and
        the next one tries again."""
        while not stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("automation tick failed")
            stop.wait(tick_seconds)


class RunnerThread:
    """The in-process runner of ``aethercrown serve`` (one-machine set-up)."""

    def __init__(self, runner: Runner, tick_seconds: float) -> None:
        self.runner = runner
        self.tick_seconds = tick_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=runner.run_forever,
            args=(self._stop, tick_seconds),
            name="aethercrown-automation",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)


def _jsonable(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str))


def recent_runs(session: Session, tenant_id: uuid.UUID, limit: int) -> list[AutomationRun]:
    """The tenant's latest automation runs, newest first (the console's list)."""
    return list(RunRepository(session, tenant_id).latest(limit))


def tier_min_interval(session: Session, tenant_id: uuid.UUID) -> int | None:
    """The shortest job interval the tenant's tier allows (None for a tenant not found)."""
    tenant = find_tenant(session, tenant_id)
    return tenant.tier.automation_min_interval_seconds if tenant else None
