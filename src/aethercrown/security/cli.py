"""``aethercrown keys …``"""

from __future__ import annotations

import uuid

import typer

from aethercrown.core.auth import SCOPES
from aethercrown.core.commandline import fail, unit_of_work
from aethercrown.core.crypto import secret_box
from aethercrown.security import service
from aethercrown.security.repository import KeyRepository
from aethercrown.settings import get_settings
from aethercrown.tenants.service import resolve_tenant_ref

app = typer.Typer(no_args_is_help=True)


@app.command("create")
def create(
    tenant: str | None = typer.Option(None, help="Tenant slug or id (omit with --scope admin)"),
    scope: str = typer.Option("tenant:read", help=" | ".join(SCOPES)),
    name: str = typer.Option("cli key", help="A name to recognise the key by"),
) -> None:
    """Create an API key and print it alone on stdout."""
    if scope not in SCOPES:
        fail(f"unknown scope {scope!r}; choose one of {', '.join(SCOPES)}", 2)
    if (scope == "admin") != (tenant is None):
        fail("use --scope admin without --tenant, and a tenant scope with --tenant", 2)
    with unit_of_work() as session:
        tenant_id = resolve_tenant_ref(session, tenant).id if tenant else None
        issued = service.issue_key(
            session, tenant_id=tenant_id, name=name, scopes=[scope], actor="cli"
        )
    typer.echo(issued.secret)


@app.command("list")
def list_keys(tenant: str | None = typer.Option(None, help="Tenant slug or id")) -> None:
    """List keys (never their secrets) as JSON lines."""
    with unit_of_work() as session:
        tenant_id = resolve_tenant_ref(session, tenant).id if tenant else None
        repo = KeyRepository(session, tenant_id)
        for key in repo.all_by(repo.model.id):
            typer.echo(service.key_out(key).model_dump_json())


@app.command("rotate")
def rotate(
    key_id: str,
    grace_seconds: int = typer.Option(0, min=0, max=30 * 86400),
) -> None:
    """Rotate a key; prints the new secret alone on stdout."""

    with unit_of_work() as session:
        repo = KeyRepository(session, None)
        _, issued = service.rotate(
            session,
            repo,
            uuid.UUID(key_id),
            grace_seconds=grace_seconds,
            actor="cli",
            box=secret_box(get_settings()),
        )
    typer.echo(issued.secret or "")
