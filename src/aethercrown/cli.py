"""The ``aethercrown`` command. Sub-commands live in their domains and are registered here."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from sqlalchemy.orm import Session

from aethercrown.settings import Settings, get_settings

app = typer.Typer(
    help="AetherCrown: growth and revenue operations on autopilot.", no_args_is_help=True
)


@contextmanager
def unit_of_work(settings: Settings | None = None, *, write: bool = False) -> Iterator[Session]:
    """A committed-on-success session for one CLI command; ``write`` takes the write lock up
    front (BEGIN IMMEDIATE on SQLite), for commands that read then write beside a running API."""
    from aethercrown.core.keycache import publish_invalidations
    from aethercrown.db.engine import (
        make_engine,
        make_session_factory,
        transaction,
        write_transaction,
    )

    settings = settings or get_settings()
    engine = make_engine(settings.database_url)
    # Key, tenant and tier changes made here reach the API processes' key caches at once.
    publish_invalidations(engine, settings.redis_url)
    unit = write_transaction if write else transaction
    try:
        with unit(make_session_factory(engine)) as session:
            yield session
    finally:
        engine.dispose()


def fail(message: str, code: int = 1) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(code)


@app.command()
def migrate() -> None:
    """Apply pending database migrations."""
    from aethercrown.db import migrate as migrations

    migrations.upgrade(get_settings().database_url)
    typer.echo("migrations applied", err=True)


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (default AETHERCROWN_HOST)"),
    port: int | None = typer.Option(None, help="Port (default AETHERCROWN_PORT)"),
    no_migrate: bool = typer.Option(False, "--no-migrate", help="Do not apply migrations"),
    workers: int = typer.Option(1, min=1, help="uvicorn worker processes"),
    demo: bool = typer.Option(
        False, "--demo/--no-demo", help="Load the demo company into tenant 'demo' if it is missing"
    ),
) -> None:
    """Start the API (and the dashboard), applying migrations first."""
    import uvicorn

    from aethercrown import serving
    from aethercrown.db import migrate as migrations
    from aethercrown.tenants.service import ensure_bootstrap_admin

    settings = get_settings()
    if not no_migrate:
        migrations.upgrade(settings.database_url)
    with unit_of_work(settings) as session:
        secret = ensure_bootstrap_admin(session, settings.bootstrap_admin_key)
    if secret:
        typer.echo("", err=True)
        typer.echo("  Admin key (shown once; keep it safe):", err=True)
        typer.echo(f"  {secret}", err=True)
        typer.echo("", err=True)
        print(secret, file=sys.stdout, flush=True)
    if demo:
        from aethercrown.simulate.cli import load_demo_once

        load_demo_once(settings)
    # Shorter GIL switch interval: the event loop waits less behind worker threads (fewer
    # latency spikes when quick requests share the process with threadpool work).
    sys.setswitchinterval(0.001)
    uvicorn.run(
        "aethercrown.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        # See aethercrown.serving: the asyncio loop (fairer than uvloop when saturated) and
        # TCP_NODELAY on every connection (uvicorn's --workers socket would not get it).
        loop=serving.LOOP,
        http=serving.HTTP_PROTOCOL,
        log_level="warning",
        access_log=False,
    )


def _register_subcommands() -> None:
    from aethercrown.analytics.cli import app as analytics_app
    from aethercrown.automation.cli import app as automate_app
    from aethercrown.budget.cli import app as budget_app
    from aethercrown.churn.cli import app as churn_app
    from aethercrown.data.cli import export_rows, import_rows
    from aethercrown.experiments.cli import app as experiments_app
    from aethercrown.metering.cli import app as usage_app
    from aethercrown.security.cli import app as keys_app
    from aethercrown.simulate.cli import demo as demo_command
    from aethercrown.tenants.cli import app as tenants_app

    app.add_typer(tenants_app, name="tenants", help="Provision and scale tenants.")
    app.add_typer(keys_app, name="keys", help="Create, rotate and list API keys.")
    app.command("import")(import_rows)
    app.command("export")(export_rows)
    app.add_typer(experiments_app, name="experiments", help="A/B tests: analyse and list.")
    app.add_typer(budget_app, name="budget", help="Optimise the marketing budget split.")
    app.add_typer(automate_app, name="automate", help="Run scheduled jobs; show run history.")
    app.command("demo")(demo_command)
    app.add_typer(churn_app, name="churn", help="Train, score and evaluate churn models.")
    app.add_typer(analytics_app, name="analytics", help="Revenue metrics, forecasts, reports.")
    app.add_typer(usage_app, name="usage", help="Import usage events and print usage reports.")


_register_subcommands()
