"""``aethercrown automate …``: run the automation runner once or continuously, read its history."""

from __future__ import annotations

import json
import signal
import threading
import uuid
from datetime import UTC, datetime, time
from typing import Any

import typer

from aethercrown.automation import schemas
from aethercrown.automation.models import INSTALLATION
from aethercrown.automation.repository import RunRepository
from aethercrown.automation.service import Runner, RunResult
from aethercrown.core import jobs as registry
from aethercrown.core.commandline import open_database, unit_of_work
from aethercrown.core.keycache import publish_invalidations
from aethercrown.db.engine import make_session_factory
from aethercrown.settings import get_settings
from aethercrown.tenants.service import resolve_tenant_ref, slugs_by_id

app = typer.Typer(no_args_is_help=False)


def _parse_now(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(f"not an ISO-8601 time: {value}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.callback(invoke_without_command=True)
def automate(
    ctx: typer.Context,
    once: bool = typer.Option(False, "--once", help="Run one tick and exit"),
    tick: float = typer.Option(30.0, min=0.05, help="Seconds between ticks (continuous mode)"),
    now: list[str] | None = typer.Option(
        None,
        help="With --once: pretend it is this UTC time (ISO-8601); repeat for a tick at each "
        "(replays and tests)",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="With --once: one JSON object per run, with the job's summary"
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Print nothing but the runs that failed"
    ),
) -> None:
    """Run every registered job that is due, once per period, alongside any other runners.
    With --once, prints one line per run: job, tenant, period (UTC), outcome, and what it
    decided."""
    if ctx.invoked_subcommand is not None:
        return
    settings = get_settings()
    engine = open_database(settings)
    # Automated key rotations reach the API processes' key caches at once.
    publish_invalidations(engine, settings.redis_url)
    runner = Runner(make_session_factory(engine), registry.all_jobs(), settings=settings)
    try:
        if once:
            moments = [_parse_now(value) for value in now] if now else [None]
            results = [r for moment in moments for r in runner.tick(moment)]
            if as_json:
                for result in results:
                    typer.echo(json.dumps(_run_json(result)))
            else:
                _print_runs(runner, results, quiet)
            # A scheduler (cron, systemd) that runs one tick learns of a failed job by the status.
            if any(r.status == "failed" for r in results):
                raise typer.Exit(1)
            return
        stop = threading.Event()

        def _stop(*_: Any) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        if not quiet:
            typer.echo(f"automation runner {runner.runner_id} started (tick {tick} s)", err=True)
        runner.run_forever(stop, tick)
    finally:
        engine.dispose()


def _run_json(result: RunResult) -> dict[str, Any]:
    return {
        "run_id": result.run_id,
        "job": result.job,
        "scope": result.scope,
        "period_start": result.period_start.isoformat(),
        "attempt": result.attempt,
        "status": result.status,
        "error": result.error,
        "summary": result.summary,
    }


def _print_runs(runner: Runner, results: list[RunResult], quiet: bool) -> None:
    """One line per run, e.g. "budget.daily_allocation demo 2026-12-02 succeeded: allocated
    USD 2,620.00 over 7 channels…"; a tenant is shown by its slug."""
    shown = [r for r in results if not quiet or r.status != "succeeded"]
    if not shown:
        if not quiet:
            typer.echo("no job was due")
        return
    tenant_ids = {uuid.UUID(r.scope) for r in shown if r.scope != INSTALLATION}
    with runner.session_factory() as session:
        slugs = {str(k): v for k, v in slugs_by_id(session, tenant_ids).items()}
    jobs = {job.name: job for job in runner.jobs}
    for result in shown:
        scope = slugs.get(result.scope, result.scope)
        start = result.period_start
        daily = result.interval_seconds % 86_400 == 0 and start.time() == time.min
        period = f"{start:%Y-%m-%d}" if daily else f"{start:%Y-%m-%d %H:%M}"
        outcome = result.status + (f" (attempt {result.attempt})" if result.attempt > 1 else "")
        if result.status == "succeeded":
            what = jobs[result.job].describe(result.summary)
        else:
            what = (result.error or "no error recorded").splitlines()[0]
        typer.echo(f"{result.job} {scope} {period} {outcome}: {what}")


@app.command("runs")
def runs(
    job: str | None = typer.Option(None, help="Only this job"),
    tenant: str | None = typer.Option(None, help="Only this tenant (id or slug)"),
    status: str | None = typer.Option(None, help="running | succeeded | failed | abandoned"),
    limit: int = typer.Option(50, min=1, max=10_000),
) -> None:
    """Run history, newest first, as JSON lines."""
    with unit_of_work() as session:
        tenant_id = resolve_tenant_ref(session, tenant).id if tenant else None
        for run in RunRepository(session, tenant_id).latest(limit, job=job, status=status):
            typer.echo(schemas.RunOut.model_validate(run).model_dump_json())
