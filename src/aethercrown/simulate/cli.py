"""``aethercrown demo``: load a simulated SaaS company with known ground truth into a tenant."""

from __future__ import annotations

from datetime import datetime

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from aethercrown.core.errors import ProblemError
from aethercrown.settings import Settings, get_settings
from aethercrown.simulate.config import DEFAULT_START, SimConfig
from aethercrown.simulate.service import LoadResult


def demo(
    tenant: str = typer.Option(..., "--tenant", help="Tenant slug (created if missing)"),
    customers: int = typer.Option(2000, min=1, max=200_000, help="Customers to simulate"),
    months: int = typer.Option(18, min=2, max=120, help="Months in the simulated window"),
    seed: int = typer.Option(42, min=0, help="Random seed: same seed, same company"),
    start: datetime = typer.Option(
        datetime.combine(DEFAULT_START, datetime.min.time()),
        formats=["%Y-%m-%d"],
        help="First day of the window",
    ),
    force: bool = typer.Option(False, help="Rewrite the rows even if this company is loaded"),
) -> None:
    """Generate the demo company and write it through the ingestion service; prints a summary."""
    try:
        config = SimConfig(customers=customers, months=months, seed=seed, start=start.date())
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    try:
        result = run_demo_load(get_settings(), tenant, config, force=force)
    except ProblemError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    print_summary(result, Console(stderr=True))
    if result.api_key:
        typer.echo("its admin key (tenant:write; shown once):", err=True)
        # Alone on stdout, like `tenants create`, so scripts can capture it.
        typer.echo(result.api_key)


def run_demo_load(
    settings: Settings, tenant: str, config: SimConfig, force: bool = False
) -> LoadResult:
    from aethercrown.cli import open_database
    from aethercrown.db.engine import make_session_factory
    from aethercrown.simulate.service import load_demo

    engine = open_database(settings)
    console = Console(stderr=True)
    try:
        with Progress(
            TextColumn("[bold]{task.description:<14}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as bar:
            generating = bar.add_task("generating", total=None)
            tasks: dict[str, TaskID] = {}

            def progress(kind: str, done: int, total: int) -> None:
                if kind not in tasks:
                    bar.update(generating, total=1, completed=1)
                    tasks[kind] = bar.add_task(kind, total=total)
                bar.update(tasks[kind], completed=done)

            return load_demo(
                make_session_factory(engine), tenant, config, force=force, progress=progress
            )
    finally:
        engine.dispose()


def print_summary(result: LoadResult, console: Console) -> None:
    summary = result.summary
    if result.skipped:
        console.print(
            f"tenant [bold]{result.tenant_slug}[/] already holds this demo company "
            "(same seed and config): nothing written"
        )
    table = Table(title=f"Demo company in tenant '{result.tenant_slug}'")
    table.add_column("kind")
    table.add_column("generated", justify="right")
    table.add_column("inserted", justify="right")
    table.add_column("updated", justify="right")
    table.add_column("unchanged", justify="right")
    generated = summary.get("rows", {})
    for kind, count in generated.items():
        written = result.counts.get(kind)
        if result.skipped:
            table.add_row(kind, f"{count:,}", "0", "0", "already loaded")
        elif kind == "experiment_assignments" and result.experiments:
            created = sum(1 for e in result.experiments.values() if e["created"])
            table.add_row(kind, f"{count:,}", "—", "—", f"{created} experiments created")
        elif written is None:
            table.add_row(kind, f"{count:,}", "—", "—", "not ingested")
        else:
            table.add_row(
                kind,
                f"{count:,}",
                f"{written['inserted']:,}",
                f"{written['updated']:,}",
                f"{written['unchanged']:,}",
            )
    console.print(table)
    window = summary.get("window", ["", ""])
    console.print(
        f"customers {summary.get('customers', 0):,} · churned {summary.get('churned', 0):,} · "
        f"MRR now {summary.get('mrr_now', 0) / 100:,.2f} USD · window {window[0]} → {window[1]}"
    )
    if not result.skipped:
        total = result.generate_seconds + result.load_seconds
        console.print(
            f"generated in {result.generate_seconds:.1f} s, loaded in {result.load_seconds:.1f} s "
            f"({total:.1f} s in all)"
        )
    if result.created_tenant:
        console.print(f"created tenant {result.tenant_slug} (enterprise)")


DEMO_TENANT = "demo"


def load_demo_once(settings: Settings, config: SimConfig | None = None) -> LoadResult | None:
    """`serve --demo`: on the first start load the default demo company into tenant 'demo';
    any later start finds the tenant and skips (a tenant someone made by hand is left alone).
    Returns what it loaded (with the new tenant's key, which the caller shows), or None."""
    from aethercrown.cli import open_database
    from aethercrown.db.engine import make_session_factory
    from aethercrown.simulate.service import tenant_by_slug

    engine = open_database(settings)
    try:
        with make_session_factory(engine)() as session:
            present = tenant_by_slug(session, DEMO_TENANT) is not None
    finally:
        engine.dispose()
    console = Console(stderr=True)
    if present:
        console.print(f"tenant '{DEMO_TENANT}' present: demo company not reloaded")
        return None
    console.print("first start: loading the demo company into tenant 'demo' (about a minute)")
    result = run_demo_load(settings, DEMO_TENANT, config or SimConfig())
    print_summary(result, console)
    return result
