"""``aethercrown alerts …``: a tenant's alert channels (Slack-compatible webhooks, email)."""

from __future__ import annotations

import uuid

import orjson
import typer

from aethercrown.alerts import service
from aethercrown.alerts.schemas import AlertChannelCreate
from aethercrown.core.commandline import looked_up, open_database, unit_of_work
from aethercrown.db.engine import make_session_factory
from aethercrown.settings import get_settings
from aethercrown.tenants.service import resolve_tenant_ref

app = typer.Typer(no_args_is_help=True)


def _tenant_id(ref: str) -> uuid.UUID:
    return looked_up(lambda session: resolve_tenant_ref(session, ref).id)


def _echo(value: object) -> None:
    typer.echo(orjson.dumps(value, default=str).decode())


@app.command("add")
def add(
    name: str = typer.Argument(..., help="The channel's name"),
    tenant: str = typer.Option(..., help="Tenant slug or id"),
    slack_url: str | None = typer.Option(
        None, envvar="AETHERCROWN_ALERT_SLACK_URL", help="A Slack-compatible incoming webhook"
    ),
    email: list[str] = typer.Option([], help="A recipient (repeat for more)"),
    event: list[str] = typer.Option(
        [], help="An event type or prefix ending in '*' (repeat; none: every event)"
    ),
    min_severity: str = typer.Option("info", help="info, warning or critical"),
    disabled: bool = typer.Option(False, help="Create it switched off"),
) -> None:
    """Add a Slack (--slack-url) or email (--email …) alert channel; prints it (URL masked)."""
    body = AlertChannelCreate.model_validate(
        {
            "name": name,
            "kind": "slack" if slack_url is not None else "email",
            "enabled": not disabled,
            "webhook_url": slack_url,
            "recipients": email or None,
            "event_types": event or None,
            "min_severity": min_severity,
        }
    )
    tenant_id = _tenant_id(tenant)
    settings = get_settings()
    problem = service.webhook_url_problem(body.webhook_url, settings)
    with unit_of_work() as session:
        channel = service.create_channel(session, tenant_id, body, settings, problem)
        out = service.channel_out(channel)
    _echo(out.model_dump(mode="json"))


@app.command("list")
def list_channels(tenant: str = typer.Option(..., help="Tenant slug or id")) -> None:
    """The tenant's alert channels, one JSON object a line."""
    tenant_id = _tenant_id(tenant)
    with unit_of_work() as session:
        channels = [service.channel_out(c) for c in service.list_channels(session, tenant_id)]
    for channel in channels:
        _echo(channel.model_dump(mode="json"))


@app.command("test")
def test(
    channel_id: uuid.UUID = typer.Argument(..., help="The channel's id"),
    tenant: str = typer.Option(..., help="Tenant slug or id"),
) -> None:
    """Send a test message now; prints the result, and exits 1 if it was not delivered."""
    tenant_id = _tenant_id(tenant)
    settings = get_settings()
    engine = open_database(settings)
    try:
        result = service.send_test(
            make_session_factory(engine), tenant_id, channel_id, settings, "cli"
        )
    finally:
        engine.dispose()
    _echo(result.model_dump(mode="json"))
    if not result.delivered:
        raise typer.Exit(1)


@app.command("remove")
def remove(
    channel_id: uuid.UUID = typer.Argument(..., help="The channel's id"),
    tenant: str = typer.Option(..., help="Tenant slug or id"),
) -> None:
    """Delete the channel and its delivery log."""
    tenant_id = _tenant_id(tenant)
    with unit_of_work() as session:
        service.delete_channel(session, tenant_id, channel_id)
    typer.echo(f"removed {channel_id}")
