"""``aethercrown analytics …``: the dashboard figures, forecasts and the monthly report from the
command line."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from pydantic import ValidationError

from aethercrown.analytics import service
from aethercrown.analytics.schemas import PeriodRequest
from aethercrown.clock import utcnow
from aethercrown.core.commandline import fail, unit_of_work
from aethercrown.core.errors import ProblemError
from aethercrown.investor import report as rendering
from aethercrown.investor import service as investor
from aethercrown.tenants.service import resolve_tenant_ref

app = typer.Typer(no_args_is_help=True)


def _period(start: str | None, end: str | None) -> PeriodRequest:
    try:
        return PeriodRequest(start=start, end=end)
    except ValidationError as exc:
        fail(f"invalid period: {exc.errors()[0]['msg']}", 2)
        raise  # unreachable: fail exits


@app.command("revenue")
def revenue(
    tenant: str = typer.Option(..., help="Tenant id or slug"),
    start: str | None = typer.Option(None, help="First month YYYY-MM (default: 11 months ago)"),
    end: str | None = typer.Option(None, help="Last month YYYY-MM (default: this month)"),
) -> None:
    """Print the monthly MRR, movements and customers as JSON lines."""
    body = _period(start, end)
    try:
        with unit_of_work() as session:
            t = resolve_tenant_ref(session, tenant)
            result = service.revenue(session, t.id, body)
    except ProblemError as exc:
        fail(exc.detail or exc.title, 2)
    for row in result["months"]:
        keys = (
            "month",
            "mrr",
            "new",
            "expansion",
            "contraction",
            "churn",
            "reactivation",
            "customers",
        )
        typer.echo(json.dumps({k: row[k] for k in keys}))


@app.command("forecast")
def forecast(tenant: str = typer.Option(..., help="Tenant id or slug")) -> None:
    """Print the MRR, customer and churn forecasts with their backtests as JSON."""
    try:
        with unit_of_work() as session:
            t = resolve_tenant_ref(session, tenant)
            payload = service.load_view(session, t.id)
    except ProblemError as exc:
        fail(exc.detail or exc.title, 2)
    typer.echo(json.dumps(payload["forecasts"], indent=2))


@app.command("refresh")
def refresh(tenant: str = typer.Option(..., help="Tenant id or slug")) -> None:
    """Recompute the tenant's stored monthly series now."""
    with unit_of_work() as session:
        t = resolve_tenant_ref(session, tenant)
        views = service.refresh_snapshots(session, t.id, utcnow())
    typer.echo(f"refreshed {views} view(s)", err=True)


@app.command("report")
def report(
    tenant: str = typer.Option(..., help="Tenant id or slug"),
    month: str | None = typer.Option(None, help="YYYY-MM (default: last month)"),
    format: str = typer.Option("json", help="json | html | pdf"),
    out: Path | None = typer.Option(None, help="Write here instead of stdout (pdf needs it)"),
) -> None:
    """The monthly investor report."""

    if format not in ("json", "html", "pdf"):
        fail("format must be json, html or pdf", 2)
    if format == "pdf" and out is None:
        fail("--out is required for a PDF", 2)
    try:
        with unit_of_work() as session:
            t = resolve_tenant_ref(session, tenant)
            if month is not None:
                investor.validate_month(month)
            body = investor.monthly_report(session, t.id, month)
    except ProblemError as exc:
        fail(exc.detail or exc.title, 2)
    data: bytes
    if format == "pdf":
        data = rendering.render_pdf(body)
    elif format == "html":
        data = rendering.render_html(body).encode()
    else:
        data = json.dumps(body, indent=2).encode()
    if out is None:
        typer.echo(data.decode())
    else:
        out.write_bytes(data)
        typer.echo(f"wrote {out}", err=True)
