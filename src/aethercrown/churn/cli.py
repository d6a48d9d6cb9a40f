"""``aethercrown churn …``"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import typer

from aethercrown.churn import service, tabular
from aethercrown.core.commandline import fail, unit_of_work
from aethercrown.tenants.service import resolve_tenant_ref

app = typer.Typer(no_args_is_help=True)


@app.command("train")
def train(
    tenant: str = typer.Option(..., help="Tenant slug or id"),
    horizon_days: int = typer.Option(30, min=1, max=365, help="Churn horizon in days"),
) -> None:
    """Train and register the tenant's churn models; prints their holdout metrics as JSON."""

    with unit_of_work() as session:
        tenant_row = resolve_tenant_ref(session, tenant)
        try:
            outcome = service.train(session, tenant_row.id, actor="cli", horizon_days=horizon_days)
        except service.InsufficientHistory as exc:
            fail(f"{exc.detail} {json.dumps(exc.extra)}")
            return
        for m in outcome.models:
            typer.echo(
                json.dumps(
                    {"feature_set": m.feature_set, "version": m.version, "roc_auc": m.roc_auc,
                     "pr_auc": m.pr_auc, "brier": m.brier, "ece": m.ece,
                     "top_decile_lift": m.top_decile_lift, "promoted": m.promoted}
                )
            )  # fmt: skip


@app.command("score")
def score(tenant: str = typer.Option(..., help="Tenant slug or id")) -> None:
    """Score every active customer now, storing scores and campaigns."""

    with unit_of_work() as session:
        tenant_row = resolve_tenant_ref(session, tenant)
        typer.echo(json.dumps(service.score_all(session, tenant_row.id, actor="cli")))


@app.command("evaluate")
def evaluate(
    csv_path: Path = typer.Option(..., "--csv", exists=True, dir_okay=False, help="CSV file"),
    target: str = typer.Option(..., help="Target column (yes/no or 1/0)"),
    id_column: str | None = typer.Option(None, "--id", help="Identifier column to ignore"),
) -> None:
    """Train on any table with a stratified 80/20 split; prints one JSON object of metrics."""

    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            fail("the file is empty")
            return
        rows = [r for r in reader if r]
    width = len(header)
    bad = [i + 2 for i, r in enumerate(rows) if len(r) != width]
    if bad:
        fail(f"rows {bad[:10]} do not have {width} cells")
    try:
        table = tabular.build_table(header, rows, target, id_column)
        result = tabular.evaluate(table)
    except (tabular.TableError, ValueError) as exc:
        fail(str(exc))
        return
    typer.echo(json.dumps(result))
