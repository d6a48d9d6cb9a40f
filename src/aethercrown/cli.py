"""The ``aethercrown`` command. Sub-commands live in their domains and are registered here."""

from __future__ import annotations

import sys

import typer
import uvicorn

from aethercrown import serving
from aethercrown.alerts.cli import app as alerts_app
from aethercrown.analytics.cli import app as analytics_app
from aethercrown.automation.cli import app as automate_app
from aethercrown.budget.cli import app as budget_app
from aethercrown.churn.cli import app as churn_app
from aethercrown.connectors.cli import app as connectors_app
from aethercrown.content.cli import app as content_app
from aethercrown.core.commandline import (
    NO_MIGRATE,
    CommandGroup,
    fail,
    open_database,
    unit_of_work,
)
from aethercrown.data.cli import export_rows, import_rows
from aethercrown.experiments.cli import app as experiments_app
from aethercrown.metering.cli import app as usage_app
from aethercrown.onboarding.cli import app as onboarding_app
from aethercrown.security.cli import app as keys_app
from aethercrown.security.service import ensure_bootstrap_admin
from aethercrown.settings import get_settings
from aethercrown.simulate.cli import demo as demo_command
from aethercrown.simulate.cli import load_demo_once
from aethercrown.tenants.cli import app as tenants_app

app = typer.Typer(
    cls=CommandGroup,
    help="AetherCrown: growth and revenue operations on autopilot.",
    no_args_is_help=True,
)


@app.callback()
def main(
    ctx: typer.Context,
    no_migrate: bool = typer.Option(
        False,
        "--no-migrate",
        help="Never migrate the database; a command that finds it behind says what to run.",
    ),
) -> None:
    token = NO_MIGRATE.set(no_migrate)
    ctx.call_on_close(lambda: NO_MIGRATE.reset(token))


@app.command()
def migrate() -> None:
    """Apply pending database migrations; prints each one applied."""
    open_database(migrate=True, verbose=True).dispose()


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
    """Start the API (and the dashboard), applying migrations first. Once it answers, prints
    where to go and the keys this start created (on stdout)."""
    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    # Before the minute a first start spends loading the demo, not after it.
    busy = serving.cannot_listen(host, port)
    if busy:
        fail(f"cannot listen on {host}:{port} ({busy}): choose another with --port")
    open_database(settings, migrate=not (no_migrate or NO_MIGRATE.get())).dispose()
    with unit_of_work(settings) as session:
        admin_key = ensure_bootstrap_admin(session, settings.bootstrap_admin_key)
    demo_key: str | None = None
    if demo:
        loaded = load_demo_once(settings)
        demo_key = loaded.api_key if loaded else None
    base = serving.base_url(host, port)
    banner = startup_banner(
        base,
        admin_key=admin_key,
        admin_key_given=settings.bootstrap_admin_key is not None,
        demo_key=demo_key,
    )
    # Printed by this (the parent) process once the server answers, so it comes last and once,
    # whatever the number of workers.
    serving.when_ready(base, lambda: print(banner, file=sys.stdout, flush=True))
    # Shorter GIL switch interval: the event loop waits less behind worker threads (fewer
    # latency spikes when quick requests share the process with threadpool work).
    sys.setswitchinterval(0.001)
    uvicorn.run(
        "aethercrown.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # See aethercrown.serving: the asyncio loop (fairer than uvloop when saturated) and
        # TCP_NODELAY on every connection (uvicorn's --workers socket would not get it).
        loop=serving.LOOP,
        http=serving.HTTP_PROTOCOL,
        log_level="warning",
        access_log=False,
        # Longer than clients keep an idle connection (httpx 5 s, like uvicorn's default): with
        # equal timeouts a client reuses a connection the server is closing that instant and
        # reads nothing (the load test's client ReadErrors).
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )


KEEP_ALIVE_SECONDS = 65


def startup_banner(
    base: str, *, admin_key: str | None, admin_key_given: bool, demo_key: str | None
) -> str:
    """What `serve` prints last: where to go, and each key this start created, once, labelled
    (``  label: value``; a key is the first word of its value)."""
    lines = [
        ("console", f"{base}/console"),
        ("API docs", f"{base}/docs  (also {base}/redoc)"),
    ]
    if admin_key:
        lines.append(("operator admin key", f"{admin_key}  (all tenants; shown once)"))
    elif admin_key_given:
        lines.append(("operator admin key", "the one in AETHERCROWN_BOOTSTRAP_ADMIN_KEY"))
    if demo_key:
        lines.append(
            (
                "demo tenant key",
                f"{demo_key}  (tenant 'demo', tenant:write; signs in to the console; shown once)",
            )
        )
    if not admin_key and not demo_key:
        lines.append(
            ("keys", "shown once, on the first start; `aethercrown keys create --help` makes more")
        )
    width = max(len(label) for label, _ in lines) + 2
    return "\n".join(
        ["", "AetherCrown is running (Ctrl+C stops it)."]
        + [f"  {label + ':':<{width}}{value}" for label, value in lines]
        + [""]
    )


def _register_subcommands() -> None:
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
    app.add_typer(content_app, name="content", help="Generate blog posts and analyse their SEO.")
    app.add_typer(onboarding_app, name="onboarding", help="Onboard enterprise customers.")
    app.add_typer(connectors_app, name="connectors", help="Stripe, Segment tracking, ad spend.")
    app.add_typer(alerts_app, name="alerts", help="Alert channels: Slack webhooks and email.")


_register_subcommands()
