"""``aethercrown demo``: load a simulated SaaS company with known ground truth into a tenant."""

from __future__ import annotations

from datetime import datetime

import typer
from pydantic import ValidationError
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

from aethercrown.core.commandline import open_database
from aethercrown.core.errors import ProblemError
from aethercrown.db.engine import make_session_factory
from aethercrown.settings import Settings, get_settings
from aethercrown.simulate.config import SimConfig, as_end, default_end
from aethercrown.simulate.service import LoadResult, load_demo
from aethercrown.tenants.schemas import TenantCreate
from aethercrown.tenants.service import tenant_by_slug

LOAD_CACHE_MIB = 256
END_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"]


def demo(
    tenant: str = typer.Option(..., "--tenant", help="Tenant slug (created if missing)"),
    customers: int = typer.Option(2000, min=1, max=200_000, help="Customers to simulate"),
    months: int = typer.Option(18, min=2, max=120, help="Months in the simulated window"),
    seed: int = typer.Option(42, min=0, help="Random seed: same seed and end, same company"),
    end: datetime | None = typer.Option(
        None,
        formats=END_FORMATS,
        help="When the window ends, UTC (default: now, to the minute). A date means its "
        "midnight: --end 2026-12-02 holds data up to the end of December 1",
    ),
    force: bool = typer.Option(False, help="Rewrite the rows even if this company is loaded"),
    replay: bool = typer.Option(
        True, "--replay/--no-replay", help="Replay the automation over the company's past"
    ),
) -> None:
    """Generate the demo company, write it through the ingestion service and replay the
    platform's automation over its past; prints a summary."""
    try:
        TenantCreate(name="Demo company", slug=tenant, tier="enterprise")
    except ValidationError as exc:
        reason = exc.errors(include_url=False)[0]["msg"]
        raise typer.BadParameter(f"not a tenant slug: {reason}", param_hint="--tenant") from exc
    try:
        config = SimConfig(
            customers=customers,
            months=months,
            seed=seed,
            end=default_end() if end is None else as_end(end),
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    try:
        result = run_demo_load(get_settings(), tenant, config, force=force, replay=replay)
    except ProblemError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    print_summary(result, Console(stderr=True))
    if result.api_key:
        typer.echo("its admin key (tenant:write; shown once):", err=True)
        # Alone on stdout, like `tenants create`, so scripts can capture it.
        typer.echo(result.api_key)


def run_demo_load(
    settings: Settings, tenant: str, config: SimConfig, force: bool = False, replay: bool = True
) -> LoadResult:
    # A large SQLite page cache for the load's million index inserts (this engine only).
    engine = open_database(settings, sqlite_cache_mib=LOAD_CACHE_MIB)
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
                make_session_factory(engine),
                tenant,
                config,
                force=force,
                progress=progress,
                replay=replay,
                settings=settings,
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
    if result.replay is not None:
        print_replay(result.replay, console)
    if not result.skipped or result.replay_seconds:
        total = result.generate_seconds + result.load_seconds + result.replay_seconds
        console.print(
            f"generated in {result.generate_seconds:.1f} s, loaded in {result.load_seconds:.1f} s, "
            f"replayed in {result.replay_seconds:.1f} s ({total:.1f} s in all)"
        )
    if result.created_tenant:
        console.print(f"created tenant {result.tenant_slug} (enterprise)")


def print_replay(replay: dict[str, object], console: Console) -> None:
    """What the automation did over the company's past, and the ledger it left."""
    jobs = replay.get("jobs")
    decisions = replay.get("decisions")
    if not isinstance(jobs, dict) or not isinstance(decisions, dict):
        return
    ran = ", ".join(
        f"{name} {counts['runs']}× (every {counts['every_days']} d)"
        for name, counts in jobs.items()
    )
    console.print(f"replayed {replay.get('from')} → {replay.get('to')}: {ran}")
    total = sum(d["decisions"] for d in decisions.values())
    known = sum(d["with_outcome"] for d in decisions.values())
    kinds = ", ".join(
        f"{kind} {d['decisions']:,} ({d['with_outcome']:,})"
        for kind, d in sorted(decisions.items())
    )
    console.print(f"decision ledger: {total:,} decisions, {known:,} with outcome — {kinds}")
    errors = replay.get("errors")
    if isinstance(errors, list) and errors:
        console.print(f"[red]{len(errors)} replayed run(s) failed[/]; first: {errors[0]}")


DEMO_TENANT = "demo"


def load_demo_once(
    settings: Settings, config: SimConfig | None = None, *, replay: bool = True
) -> LoadResult | None:
    """`serve --demo`: on the first start load the default demo company — its window ending
    now — into tenant 'demo', with its replayed past; any later start finds the tenant and
    skips (a tenant someone made by hand is left alone). Returns what it loaded (with the new
    tenant's key, which the caller shows), or None."""
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
    result = run_demo_load(settings, DEMO_TENANT, config or SimConfig(), replay=replay)
    print_summary(result, console)
    return result
