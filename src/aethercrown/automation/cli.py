"""``aethercrown automate …``: run the automation runner once or continuously, read its history."""

from __future__ import annotations

import json
import signal
import threading
from datetime import UTC, datetime
from typing import Any

import typer
from sqlalchemy import select

from aethercrown.settings import get_settings

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
) -> None:
    """Run every registered job that is due, once per period, alongside any other runners."""
    if ctx.invoked_subcommand is not None:
        return
    from aethercrown.automation.service import Runner
    from aethercrown.cli import open_database
    from aethercrown.core.jobs import all_jobs
    from aethercrown.core.keycache import publish_invalidations
    from aethercrown.db.engine import make_session_factory

    settings = get_settings()
    engine = open_database(settings)
    # Automated key rotations reach the API processes' key caches at once.
    publish_invalidations(engine, settings.redis_url)
    runner = Runner(make_session_factory(engine), all_jobs(), settings=settings)
    try:
        if once:
            moments = [_parse_now(value) for value in now] if now else [None]
            results = [r for moment in moments for r in runner.tick(moment)]
            for result in results:
                typer.echo(
                    json.dumps(
                        {
                            "run_id": result.run_id,
                            "job": result.job,
                            "scope": result.scope,
                            "period_start": result.period_start.isoformat(),
                            "attempt": result.attempt,
                            "status": result.status,
                            "error": result.error,
                        }
                    )
                )
            return
        stop = threading.Event()

        def _stop(*_: Any) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        typer.echo(f"automation runner {runner.runner_id} started (tick {tick} s)", err=True)
        runner.run_forever(stop, tick)
    finally:
        engine.dispose()


@app.command("runs")
def runs(
    job: str | None = typer.Option(None, help="Only this job"),
    tenant: str | None = typer.Option(None, help="Only this tenant (id or slug)"),
    status: str | None = typer.Option(None, help="running | succeeded | failed | abandoned"),
    limit: int = typer.Option(50, min=1, max=10_000),
) -> None:
    """Run history, newest first, as JSON lines."""
    from aethercrown.automation import schemas
    from aethercrown.automation.models import AutomationRun
    from aethercrown.cli import unit_of_work
    from aethercrown.tenants.service import resolve_tenant_ref

    with unit_of_work() as session:
        stmt = select(AutomationRun).order_by(AutomationRun.id.desc()).limit(limit)
        if job:
            stmt = stmt.where(AutomationRun.job == job)
        if status:
            stmt = stmt.where(AutomationRun.status == status)
        if tenant:
            stmt = stmt.where(AutomationRun.scope == str(resolve_tenant_ref(session, tenant).id))
        for run in session.scalars(stmt):
            typer.echo(schemas.RunOut.model_validate(run).model_dump_json())
