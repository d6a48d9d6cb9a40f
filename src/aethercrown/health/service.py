"""Health checks: each component measured, every sample stored; trends over stored samples.

What each caller sees:

- the **operator** (and the hourly job) checks the installation: every component with its full
  detail (disk path and bytes, every job's lag over all tenants, every tenant's workers);
- a **tenant key** sees the shared components (database, migrations, disk, Redis, LLM provider)
  by status and latency only — no paths, sizes or URLs of the installation — and the components
  that are its own: the lag of its per-tenant jobs and its workers' heartbeats. Its samples are
  stored under its tenant; its trends combine them with the installation's samples of the
  shared components.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from aethercrown.automation import periods
from aethercrown.automation.models import INSTALLATION
from aethercrown.clock import utcnow
from aethercrown.core.jobs import JobSpec, all_jobs
from aethercrown.db import migrate
from aethercrown.db.engine import ping
from aethercrown.health import schemas, trends
from aethercrown.health.models import HealthSample
from aethercrown.health.repository import (
    LeaseHealthRepository,
    RunHealthRepository,
    SampleRepository,
    WebhookHealthRepository,
    WorkerHealthRepository,
    tenants_with_tiers,
)
from aethercrown.settings import Settings
from aethercrown.tasks.service import WORKER_STALE_SECONDS

SHARED = ("database", "migrations", "disk", "redis", "llm")
# Thresholds (documented in docs/modules/automation.md).
DATABASE_SLOW_MS = 250.0
DISK_DEGRADED_FREE = 0.10
DISK_DOWN_FREE = 0.02
PROBE_TIMEOUT_SECONDS = 2.0


def _timed(probe: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = probe()
    return value, (time.perf_counter() - start) * 1000.0


def check_database(session: Session) -> schemas.ComponentCheck:
    try:
        _, ms = _timed(lambda: ping(session))
    except Exception as exc:
        return schemas.ComponentCheck(
            component="database", status="down", detail={"error": type(exc).__name__}
        )
    status = "ok" if ms < DATABASE_SLOW_MS else "degraded"
    return schemas.ComponentCheck(
        component="database",
        status=status,
        latency_ms=round(ms, 3),
        detail={"backend": session.get_bind().dialect.name, "slow_above_ms": DATABASE_SLOW_MS},
    )


def check_migrations(session: Session) -> schemas.ComponentCheck:
    try:
        applied, ms = _timed(lambda: migrate.applied_heads(session.connection()))
    except Exception as exc:
        return schemas.ComponentCheck(
            component="migrations", status="down", detail={"error": type(exc).__name__}
        )
    expected = migrate.expected_heads()
    pending = sorted(expected - applied)
    return schemas.ComponentCheck(
        component="migrations",
        status="ok" if not pending and applied == expected else "down",
        latency_ms=round(ms, 3),
        detail={"applied": sorted(applied), "pending": pending},
    )


def disk_path(session: Session, settings: Settings) -> Path:
    """The SQLite file's directory when the database is local, else the data directory."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).resolve().parent
    return settings.data_dir.resolve()


def check_disk(session: Session, settings: Settings) -> schemas.ComponentCheck:
    path = disk_path(session, settings)
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        usage, ms = _timed(lambda: shutil.disk_usage(probe))
    except OSError as exc:
        return schemas.ComponentCheck(
            component="disk", status="down", detail={"error": type(exc).__name__}
        )
    free = usage.free / usage.total if usage.total else 0.0
    status = (
        "ok" if free >= DISK_DEGRADED_FREE else "degraded" if free >= DISK_DOWN_FREE else "down"
    )
    return schemas.ComponentCheck(
        component="disk",
        status=status,
        latency_ms=round(ms, 3),
        detail={
            "path": str(probe),
            "free_bytes": usage.free,
            "total_bytes": usage.total,
            "free_percent": round(100 * free, 2),
        },
    )


def check_redis(url: str) -> schemas.ComponentCheck:
    client = redis.Redis.from_url(
        url, socket_timeout=PROBE_TIMEOUT_SECONDS, socket_connect_timeout=PROBE_TIMEOUT_SECONDS
    )
    try:
        _, ms = _timed(client.ping)
    except Exception as exc:
        return schemas.ComponentCheck(
            component="redis", status="down", detail={"error": type(exc).__name__}
        )
    finally:
        client.close()
    return schemas.ComponentCheck(component="redis", status="ok", latency_ms=round(ms, 3))


def check_llm(base_url: str) -> schemas.ComponentCheck:
    """An OpenAI-compatible provider answers GET {base}/models; any answer below 500 means it
    is reachable (401 without a key still proves the service is up)."""
    url = base_url.rstrip("/") + "/models"
    try:
        response, ms = _timed(lambda: httpx.get(url, timeout=PROBE_TIMEOUT_SECONDS))
    except httpx.HTTPError as exc:
        return schemas.ComponentCheck(
            component="llm", status="down", detail={"error": type(exc).__name__}
        )
    status = "ok" if response.status_code < 500 else "down"
    return schemas.ComponentCheck(
        component="llm",
        status=status,
        latency_ms=round(ms, 3),
        detail={"http_status": response.status_code},
    )


def check_jobs(
    session: Session, tenant_id: uuid.UUID | None, jobs: list[JobSpec], now: datetime
) -> list[schemas.ComponentCheck]:
    """Each job's lag: how far past due its latest successful period is, worst over scopes.

    A scope is late when its last successful run is older than two intervals (the current
    period may not have been reached by a tick yet). A scope that never ran is judged from
    when it came to exist (the tenant's creation; for installation jobs, the first run of any
    job), so a new tenant is not reported late at once.
    """
    runs = RunHealthRepository(session, tenant_id)
    last = runs.last_succeeded()
    failures = runs.failures_since(now - timedelta(hours=24))
    tenants = tenants_with_tiers(session, tenant_id)
    first_run = runs.first_run()
    out = []
    for job in jobs:
        if tenant_id is not None and not job.per_tenant:
            continue  # installation jobs are the operator's concern
        scopes: list[tuple[str, int, datetime | None]] = []
        if job.per_tenant:
            for tenant, tier in tenants:
                interval = periods.effective_interval(
                    job.interval_seconds, tier.automation_min_interval_seconds
                )
                scopes.append((str(tenant.id), interval, tenant.created_at))
        else:
            scopes.append((INSTALLATION, job.interval_seconds, first_run))
        lags: list[float] = []
        never = 0
        for scope, interval, born in scopes:
            reference = last.get((job.name, scope))
            if reference is None:
                never += 1
                reference = born
            lag = periods.lag_seconds(now, reference, interval)
            if lag is not None:
                lags.append(lag)
        worst_lag = max(lags, default=0.0)
        interval = max((s[1] for s in scopes), default=job.interval_seconds)
        failed = failures.get(job.name, 0)
        if worst_lag >= interval:
            status = "down"
        elif worst_lag > 0 or failed or (never and not lags):
            status = "degraded"
        else:
            status = "ok"
        out.append(
            schemas.ComponentCheck(
                component=f"job:{job.name}",
                status=status,
                detail={
                    "interval_seconds": job.interval_seconds,
                    "scopes": len(scopes),
                    "never_ran": never,
                    "lag_seconds": round(worst_lag, 3),
                    "failed_runs_24h": failed,
                },
            )
        )
    return out


def check_workers(
    session: Session, tenant_id: uuid.UUID | None, now: datetime
) -> schemas.ComponentCheck:
    fresh_since = now - timedelta(seconds=WORKER_STALE_SECONDS)
    workers = WorkerHealthRepository(session, tenant_id)
    silent = workers.silent_workers(fresh_since)
    live = workers.live_workers(fresh_since)
    overdue = LeaseHealthRepository(session, tenant_id).overdue_leases(now)
    return schemas.ComponentCheck(
        component="workers",
        status="ok" if silent == 0 and overdue == 0 else "degraded",
        detail={
            "live": live,
            "missed_heartbeats": silent,
            "expired_leases_not_yet_requeued": overdue,
            "stale_after_seconds": WORKER_STALE_SECONDS,
        },
    )


def check_webhooks(
    session: Session, tenant_id: uuid.UUID | None, now: datetime
) -> schemas.ComponentCheck:
    """Outbound webhook deliveries of the last 24 h: any that gave up make the component
    "down" for the receivers concerned, any still retrying after a failure "degraded"."""
    counts = WebhookHealthRepository(session, tenant_id).outcomes_since(now - timedelta(hours=24))
    status = "ok"
    if counts["failed"]:
        status = "down"
    elif counts["retrying"]:
        status = "degraded"
    return schemas.ComponentCheck(component="webhooks", status=status, detail=counts)


def run_checks(
    session: Session,
    settings: Settings,
    tenant_id: uuid.UUID | None,
    source: str,
    now: datetime | None = None,
    *,
    probe_network: bool = True,
) -> schemas.HealthReport:
    """Every component checked and its sample added to the session. ``probe_network=False``
    leaves out Redis and the LLM provider (the start-up warm-up, which only wants the
    database statements compiled)."""
    now = now or utcnow()
    start = time.perf_counter()
    components = [
        check_database(session),
        check_migrations(session),
        check_disk(session, settings),
    ]
    if settings.redis_url and probe_network:
        components.append(check_redis(settings.redis_url))
    llm_base_url = getattr(settings, "llm_base_url", None)
    if llm_base_url and probe_network:
        components.append(check_llm(str(llm_base_url)))
    components.extend(check_jobs(session, tenant_id, all_jobs(), now))
    components.append(check_workers(session, tenant_id, now))
    components.append(check_webhooks(session, tenant_id, now))
    SampleRepository(session, tenant_id).add_all(
        [
            HealthSample(
                component=c.component,
                status=c.status,
                latency_ms=c.latency_ms,
                detail=c.detail,
                source=source,
                checked_at=now,
            )
            for c in components
        ]
    )
    if tenant_id is not None:
        # Installation details stay with the operator.
        components = [
            c.model_copy(update={"detail": {}}) if c.component in SHARED else c for c in components
        ]
    return schemas.HealthReport(
        status=trends.worst([c.status for c in components]),
        scope="installation" if tenant_id is None else "tenant",
        checked_at=now,
        duration_ms=round((time.perf_counter() - start) * 1000.0, 3),
        components=components,
    )


def compile_statements(session: Session, settings: Settings) -> None:
    """Run the checks once for the installation and once for a tenant scope without probing
    the network, so SQLAlchemy's statement cache holds their compiled SQL before the first real
    check (compiling them was most of a first check's time). The caller rolls back: the
    installation's samples are flushed (to compile their INSERT) but never committed, and the
    tenant run's samples (a tenant that does not exist) are never flushed."""
    run_checks(session, settings, None, "warm-start", probe_network=False)
    session.flush()
    run_checks(session, settings, uuid.UUID(int=0), "warm-start", probe_network=False)


def health_trends(
    session: Session,
    tenant_id: uuid.UUID | None,
    window_hours: int,
    component: str | None = None,
    now: datetime | None = None,
) -> schemas.HealthTrends:
    now = now or utcnow()
    since = now - timedelta(hours=window_hours)
    rows = SampleRepository(session, tenant_id).window(since, now, SHARED)
    by_component: dict[str, list[trends.Sample]] = {}
    for row in rows:
        if component and row.component != component:
            continue
        by_component.setdefault(row.component, []).append(
            trends.Sample(row.checked_at, row.status, row.latency_ms)
        )
    out = []
    for name in sorted(by_component):
        trend = trends.component_trend(name, by_component[name])
        out.append(
            schemas.ComponentTrendOut(
                component=trend.component,
                samples=trend.samples,
                uptime_percent=trend.uptime_percent,
                ok_percent=trend.ok_percent,
                latency_p50_ms=trend.latency_p50_ms,
                latency_p95_ms=trend.latency_p95_ms,
                last_status=trend.last_status,
                incidents=[schemas.IncidentOut(**i.__dict__) for i in trend.incidents],
            )
        )
    return schemas.HealthTrends(
        scope="installation" if tenant_id is None else "tenant",
        window_hours=window_hours,
        since=since,
        until=now,
        components=out,
    )
