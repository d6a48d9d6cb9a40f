"""``aethercrown experiments …``"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from pydantic import ValidationError

from aethercrown.core.commandline import fail, unit_of_work
from aethercrown.core.errors import ProblemError
from aethercrown.experiments import schemas, service
from aethercrown.experiments.repository import ExperimentRepository
from aethercrown.tenants.service import resolve_tenant_ref

app = typer.Typer(no_args_is_help=True)


@app.command("analyze")
def analyze(
    file: Path = typer.Option(..., "--file", help="JSON in the shape of POST /experiments/analyze"),
) -> None:
    """Stateless analysis of aggregated counts; prints the result as JSON."""
    try:
        body = schemas.AnalyzeIn.model_validate_json(file.read_bytes())
        result = service.analyze(body)
    except OSError as exc:
        fail(f"cannot read {file}: {exc}", 2)
        return
    except ValidationError as exc:
        fail(f"invalid input: {exc}", 2)
        return
    except ProblemError as exc:
        fail(f"invalid input: {exc.detail} {json.dumps(exc.extra.get('errors', []))}", 2)
        return
    typer.echo(result.model_dump_json(indent=2))


@app.command("list")
def list_experiments(
    tenant: str = typer.Option(..., help="Tenant slug or id"),
    status: str | None = typer.Option(None, help="running | stopped | archived"),
) -> None:
    """List a tenant's experiments as JSON lines."""
    with unit_of_work() as session:
        repo = ExperimentRepository(session, resolve_tenant_ref(session, tenant).id)
        # An empty status lists every experiment, as None does.
        for experiment in repo.in_id_order(status=status or None):
            typer.echo(service.to_out(experiment).model_dump_json())
