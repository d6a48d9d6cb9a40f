"""``aethercrown connectors …``: connect Stripe and backfill from its API."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import typer
from rich.console import Console

from aethercrown.connectors import stripe_service
from aethercrown.core.commandline import fail, looked_up, open_database, unit_of_work
from aethercrown.core.crypto import secret_box
from aethercrown.core.errors import ProblemError
from aethercrown.db.engine import make_session_factory
from aethercrown.db.session import read_transaction
from aethercrown.settings import get_settings
from aethercrown.tenants.service import resolve_tenant_ref

app = typer.Typer(no_args_is_help=True)
stripe_app = typer.Typer(
    no_args_is_help=True, help="Stripe: connect, backfill, map; retry or discard dead events."
)
app.add_typer(stripe_app, name="stripe")


def _tenant_id(ref: str) -> uuid.UUID:
    return looked_up(lambda session: resolve_tenant_ref(session, ref).id)


@stripe_app.command("connect")
def connect(
    tenant: str = typer.Option(..., help="Tenant slug or id"),
    webhook_secret: str = typer.Option(
        ..., envvar="STRIPE_WEBHOOK_SECRET", help="The endpoint's signing secret (whsec_…)"
    ),
    api_key: str | None = typer.Option(
        None, envvar="STRIPE_API_KEY", help="A read key for backfills (rk_… or sk_…)"
    ),
    api_base: str | None = typer.Option(None, help="A Stripe-compatible API base URL"),
) -> None:
    """Store the tenant's Stripe secrets; prints the webhook path to give Stripe."""
    tenant_id = _tenant_id(tenant)
    box = secret_box(get_settings())
    with unit_of_work() as session:
        stripe_service.connect(
            session,
            tenant_id,
            box,
            webhook_secret=webhook_secret,
            api_key=api_key,
            api_base=api_base,
        )
    typer.echo(f"webhook endpoint: {stripe_service.webhook_path(tenant_id)}")


@stripe_app.command("backfill")
def backfill(
    tenant: str = typer.Option(..., help="Tenant slug or id"),
    restart: bool = typer.Option(False, help="Forget the stored cursors; read everything again"),
) -> None:
    """Read customers, subscriptions and invoices from the Stripe API into the tenant's data.
    Resumes after the last page stored when a run was stopped; prints progress."""
    tenant_id = _tenant_id(tenant)
    settings = get_settings()
    engine = open_database(settings)
    console = Console(stderr=True)
    try:
        report = stripe_service.run_backfill(
            make_session_factory(engine),
            tenant_id,
            secret_box(settings),
            restart=restart,
            progress=lambda resource, n: console.print(f"{resource}: {n} read"),
        )
    except ProblemError as exc:
        fail(f"backfill stopped: {exc.detail or exc.title}")
    finally:
        engine.dispose()
    parts = ", ".join(
        f"{name} {state.get('fetched', 0)}" for name, state in report.resources.items()
    )
    typer.echo(f"backfill {report.status}: {parts} (rate limited {report.rate_limited} times)")


@stripe_app.command("map")
def map_events(
    tenant: str = typer.Option(..., help="Tenant slug or id"),
    batch_size: int = typer.Option(
        stripe_service.MAPPING_BATCH, min=1, max=5000, help="Events a transaction"
    ),
) -> None:
    """Map the tenant's stored Stripe events that are not mapped yet (the mapping job does it
    every minute, the API process a moment after each webhook); prints the counts."""
    tenant_id = _tenant_id(tenant)
    settings = get_settings()
    engine = open_database(settings)
    try:
        factory = make_session_factory(engine)
        report = stripe_service.map_pending(factory, tenant_id, batch_size=batch_size)
        with read_transaction(factory) as session:
            status = stripe_service.mapping_status(session, tenant_id)
    finally:
        engine.dispose()
    typer.echo(
        f"mapped {report.mapped} events in {report.batches} batches ({report.failed} failed); "
        f"received {status['received']}, mapped {status['mapped']}, "
        f"pending {status['pending']}, failed {status['failed']}"
    )
    if status["dead"]:
        typer.echo(
            f"dead {status['dead']} (set aside: `aethercrown connectors stripe retry|discard`):"
        )
    for dead in status["dead_events"]:
        typer.echo(f"  dead {dead['event_id']} ({dead['event_type']}): {dead['error']}")
    for failure in status["recent_failures"]:
        typer.echo(
            f"  {failure['event_id']} ({failure['event_type']}): attempt {failure['attempts']}, "
            f"retry at {failure['retry_at']}: {failure['error']}"
        )


def _dead_event_action(
    tenant: str,
    event_id: str | None,
    action: str,
    every: bool,
    event_type: str | None,
    object_id: str | None,
) -> None:
    """One event by its id, or the dead events chosen by --all, --type and/or --object."""
    if (event_id is not None) + every + (event_type is not None or object_id is not None) != 1:
        fail("Name one dead event, or choose them with --all, or --type and/or --object")
    tenant_id = _tenant_id(tenant)
    try:
        with unit_of_work() as session:
            if event_id is not None:
                one = (
                    stripe_service.retry_dead_event
                    if action == "retry"
                    else (stripe_service.discard_dead_event)
                )
                result = one(session, tenant_id, event_id)
            else:
                bulk = (
                    stripe_service.retry_dead_events
                    if action == "retry"
                    else (stripe_service.discard_dead_events)
                )
                result = bulk(session, tenant_id, event_type=event_type, object_id=object_id)
    except ProblemError as exc:
        fail(exc.detail or exc.title)
    if event_id is not None:
        typer.echo(f"{result['event_id']}: {result['status']}")
    else:
        typer.echo(f"{result['affected']} dead events: {result['status']}")


_EVENT_ID = typer.Argument(None, help="The dead event's Stripe id (evt_…)")
_ALL = typer.Option(False, "--all", help="Every dead event of the tenant")
_TYPE = typer.Option(None, "--type", help="The dead events of this type (invoice.paid, …)")
_OBJECT = typer.Option(None, "--object", help="The dead events of this Stripe object (sub_…)")
_TENANT = typer.Option(..., help="Tenant slug or id")


def _dead_event_command(action: str, doc: str) -> Callable[..., None]:
    """The command that applies ``action`` to dead events: retry and discard take the same
    event id, tenant and choice of --all, --type and --object."""

    def command(
        event_id: str | None = _EVENT_ID,
        tenant: str = _TENANT,
        every: bool = _ALL,
        event_type: str | None = _TYPE,
        object_id: str | None = _OBJECT,
    ) -> None:
        _dead_event_action(tenant, event_id, action, every, event_type, object_id)

    command.__doc__ = doc
    return command


stripe_app.command("retry")(
    _dead_event_command(
        "retry",
        """Put dead Stripe events back in the mapping queue with a fresh count of attempts (the
    mapping job, or `aethercrown connectors stripe map`, maps them): one by its id, or those
    chosen by --all, --type and/or --object.""",
    )
)
stripe_app.command("discard")(
    _dead_event_command(
        "discard",
        """Give up on dead Stripe events (they stay stored and are never mapped): one by its id,
    or those chosen by --all, --type and/or --object.""",
    )
)
