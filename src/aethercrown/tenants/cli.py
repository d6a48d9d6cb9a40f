"""``aethercrown tenants …``"""

from __future__ import annotations

import json

import typer
from sqlalchemy.exc import OperationalError

from aethercrown.core.commandline import unit_of_work
from aethercrown.tenants import schemas, service
from aethercrown.tenants.repository import all_tenants

app = typer.Typer(no_args_is_help=True)


@app.command("create")
def create(
    name: str = typer.Argument(..., help="Display name"),
    slug: str = typer.Option(..., help="URL-safe unique slug"),
    tier: str = typer.Option("starter", help="starter | professional | enterprise"),
) -> None:
    """Create a tenant; prints its tenant admin key alone on stdout."""
    body = schemas.TenantCreate(name=name, slug=slug, tier=tier)
    with unit_of_work() as session:
        tenant, issued = service.create_tenant(session, body, actor="cli")
        typer.echo(f"created tenant {tenant.slug} ({tenant.id}) on {tenant.tier_slug}", err=True)
    typer.echo(issued.secret)


@app.command("list")
def list_tenants() -> None:
    """List tenants as JSON lines."""
    with unit_of_work() as session:
        for tenant in all_tenants(session):
            typer.echo(schemas.TenantOut.model_validate(tenant).model_dump_json())


@app.command("scale")
def scale(slug: str, tier: str = typer.Option(..., help="The new tier")) -> None:
    """Move a tenant to another tier; quotas change at once."""
    with unit_of_work() as session:
        tenant = service.resolve_tenant_ref(session, slug)
        service.scale_tenant(session, tenant.id, tier, actor="cli")
        typer.echo(json.dumps({"tenant": tenant.slug, "tier": tier}))


@app.command("recount-rows")
def recount_rows(
    slug: str | None = typer.Argument(None, help="One tenant (id or slug); default: every tenant"),
) -> None:
    """Rebuild the stored-row counts the quota reads from the tables themselves (a repair:
    the database's triggers keep them exact, except after a TRUNCATE or a restore that
    bypassed them). Prints one JSON line per tenant with the tables whose count was wrong."""
    with unit_of_work() as session:
        if slug is None:
            tenants = [(t.id, t.slug) for t in all_tenants(session)]
        else:
            tenant = service.resolve_tenant_ref(session, slug)
            tenants = [(tenant.id, tenant.slug)]
    for tenant_id, tenant_slug in tenants:
        for attempt in range(_RECOUNT_ATTEMPTS):
            try:
                # A unit per tenant: its snapshot and fold lock are held for one tenant only.
                with unit_of_work() as session:
                    wrong = service.recount_rows(session, tenant_id)
                break
            except OperationalError as exc:  # a fold committed meanwhile: count again
                retry = getattr(exc.orig, "sqlstate", None) == "40001"
                if not retry or attempt + 1 == _RECOUNT_ATTEMPTS:
                    raise
        fixed = {t: {"kept": kept, "actual": actual} for t, (kept, actual) in wrong.items()}
        typer.echo(json.dumps({"tenant": tenant_slug, "corrected": fixed}))


_RECOUNT_ATTEMPTS = 5
