"""``aethercrown budget …``"""

from __future__ import annotations

import typer
from pydantic import ValidationError

from aethercrown.budget import schemas, service
from aethercrown.core.commandline import fail, unit_of_work
from aethercrown.core.errors import ProblemError
from aethercrown.tenants.service import resolve_tenant_ref

app = typer.Typer(no_args_is_help=True)


@app.command("optimize")
def optimize(
    tenant: str = typer.Option(..., help="Tenant slug or id"),
    budget: float = typer.Option(
        ..., help="Budget for one day (or --horizon-days) in minor units of the stored data"
    ),
    window_days: int = typer.Option(90, help="Days of stored marketing data to fit on"),
    min_share: float = typer.Option(0.05, help="Minimum share per channel (0 allowed)"),
    horizon_days: int | None = typer.Option(None, help="Days the budget covers"),
) -> None:
    """Optimise the split of a budget from the tenant's stored data; prints the result JSON."""

    try:
        body = schemas.OptimizeRequest(
            total_budget=budget,
            window_days=window_days,
            min_share=min_share,
            horizon_days=horizon_days,
        )
    except ValidationError as exc:
        fail(f"invalid input: {exc}", 2)
        return
    with unit_of_work() as session:
        try:
            found = resolve_tenant_ref(session, tenant)
            result = service.optimize(session, found.id, body)
        except ProblemError as exc:
            fail(f"{exc.title}: {exc.detail}", 2)
            return
    typer.echo(result.model_dump_json(indent=2))
