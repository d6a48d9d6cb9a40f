"""``aethercrown onboarding create|status|report|first-response``: start an enterprise
onboarding from a JSON request file, follow it, and record support tickets' first responses
(what first-response SLAs are measured on)."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
import typer
from pydantic import ValidationError

from aethercrown.core.commandline import fail, open_database, unit_of_work
from aethercrown.core.errors import ProblemError
from aethercrown.db.engine import make_session_factory
from aethercrown.onboarding import schemas, service
from aethercrown.settings import get_settings
from aethercrown.tenants.service import resolve_tenant_ref

app = typer.Typer(no_args_is_help=True)


def _tenant_id(ref: str) -> uuid.UUID:
    with unit_of_work() as session:
        return resolve_tenant_ref(session, ref).id


def _echo(value: object) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _problem(exc: ProblemError) -> None:
    errors = exc.extra.get("errors", [])
    lines = [f"  {e['field']}: {e['msg']}" for e in errors[:20]]
    fail("\n".join([exc.detail or exc.title, *lines]), 2 if exc.status == 422 else 1)


@app.command("create")
def create(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="The request, as JSON"),
    tenant: str = typer.Option(..., help="Tenant slug or id"),
) -> None:
    """Start an onboarding (the same body as POST /api/v1/enterprise/onboarding/create) and
    run its steps as far as they go now. Prints its status and the portal key, shown once."""
    try:
        body = schemas.OnboardingCreate.model_validate(orjson.loads(file.read_bytes()))
    except orjson.JSONDecodeError as exc:
        fail(f"{file}: not JSON ({exc})", 2)
    except ValidationError as exc:
        fail(
            "\n".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:20]
            ),
            2,
        )
    settings = get_settings()
    tenant_id = _tenant_id(tenant)
    engine = open_database(settings)
    try:
        out = service.create(
            make_session_factory(engine),
            tenant_id,
            body,
            "cli",
            allow_loopback=settings.onboarding_allow_loopback_webhooks,
        )
    except ProblemError as exc:
        _problem(exc)
    finally:
        engine.dispose()
    _echo(out.model_dump(mode="json"))


def _read(kind: str, tenant: str, onboarding_id: str) -> None:
    tenant_id = _tenant_id(tenant)
    try:
        ident = uuid.UUID(onboarding_id)
    except ValueError:
        fail(f"Onboarding {onboarding_id} was not found")
    try:
        with unit_of_work() as session:
            if kind == "status":
                out = service.status(session, tenant_id, ident).model_dump(mode="json")
            else:
                out = service.report(session, tenant_id, ident).model_dump(mode="json")
    except ProblemError as exc:
        _problem(exc)
    _echo(out)


@app.command("status")
def status(
    onboarding_id: str = typer.Argument(..., help="The onboarding's id"),
    tenant: str = typer.Option(..., help="Tenant slug or id"),
) -> None:
    """Each step's state and timing, and what blocks it."""
    _read("status", tenant, onboarding_id)


@app.command("report")
def report(
    onboarding_id: str = typer.Argument(..., help="The onboarding's id"),
    tenant: str = typer.Option(..., help="Tenant slug or id"),
) -> None:
    """Time to complete against the SLA target, step timings, who acted, what was made."""
    _read("report", tenant, onboarding_id)


@app.command("first-response")
def first_response(
    ticket: str = typer.Argument(..., help="The ticket's external id (or id)"),
    tenant: str = typer.Option(..., help="Tenant slug or id"),
    at: str | None = typer.Option(
        None, "--at", help="When it was first answered, ISO 8601 (default: now; naive is UTC)"
    ),
) -> None:
    """Record when a support ticket was first answered; a ticket that has one keeps it."""
    try:
        body = schemas.FirstResponseIn.model_validate({"responded_at": at})
    except ValidationError:
        fail(f"--at {at}: not an ISO 8601 time", 2)
    tenant_id = _tenant_id(tenant)
    try:
        with unit_of_work() as session:
            out = service.record_first_response(session, tenant_id, ticket, body, "cli")
    except ProblemError as exc:
        _problem(exc)
    _echo(out.model_dump(mode="json"))
