"""``aethercrown usage …``: import usage events from NDJSON, print a customer's report."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import orjson
import typer
from pydantic import ValidationError

from aethercrown.core.commandline import fail, open_database, unit_of_work
from aethercrown.core.errors import ProblemError
from aethercrown.db.engine import make_session_factory
from aethercrown.metering import fold, schemas, service
from aethercrown.tenants.service import resolve_tenant_ref

app = typer.Typer(no_args_is_help=True)


def _tenant_id(slug: str):  # type: ignore[no-untyped-def]

    with unit_of_work() as session:
        return resolve_tenant_ref(session, slug).id


@app.command("import")
def import_events(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="NDJSON: one event a line"),
    tenant: str = typer.Option(..., help="Tenant slug or id"),
    batch_size: int = typer.Option(schemas.MAX_BATCH, min=1, max=schemas.MAX_BATCH),
) -> None:
    """Import usage events. The whole file is checked first; then each batch is committed on
    its own. Event ids are idempotency keys, so re-running after a failure is safe."""
    try:
        tenant_id = _tenant_id(tenant)
    except ProblemError as exc:
        fail(exc.detail or exc.title)
    events: list[schemas.UsageEventIn] = []
    problems: list[str] = []
    with file.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                events.append(schemas.UsageEventIn.model_validate(orjson.loads(line)))
            except orjson.JSONDecodeError as exc:
                problems.append(f"line {number}: not JSON ({exc})")
            except ValidationError as exc:
                for err in exc.errors():
                    field = ".".join(str(p) for p in err["loc"])
                    problems.append(f"line {number}: {field}: {err['msg']}")
            if len(problems) >= 50:
                break
    if problems:
        fail("nothing imported:\n" + "\n".join(problems))
    totals = {"received": 0, "accepted": 0, "duplicates": 0}
    for start in range(0, len(events), batch_size):
        batch = events[start : start + batch_size]
        try:
            with unit_of_work() as session:
                out = service.track(session, tenant_id, batch, batch=True)
        except ProblemError as exc:
            lines = [
                f"  event {start + int(e['loc'][1]) + 1}: {e['loc'][-1]}: {e['msg']}"
                for e in exc.extra.get("errors", [])[:50]
            ]
            fail(
                f"batch from event {start + 1} rejected ({exc.detail}); "
                f"{totals['accepted']} events imported before it:\n" + "\n".join(lines)
            )
        totals["received"] += out.received
        totals["accepted"] += out.accepted
        totals["duplicates"] += len(out.duplicates)
        typer.echo(f"{start + len(batch)}/{len(events)} events", err=True)
    folded = _catch_up(tenant_id)
    typer.echo(json.dumps({**totals, "alerts": folded.alerts}))


def _catch_up(tenant_id: uuid.UUID | None) -> schemas.FoldOut:

    engine = open_database()
    try:
        return fold.catch_up(make_session_factory(engine), tenant_id)
    finally:
        engine.dispose()


@app.command("fold")
def fold_events() -> None:
    """Fold every stored event into the rollups now and fire the alerts they cross (the API
    does this continuously; useful after loading events with no API running)."""
    typer.echo(_catch_up(None).model_dump_json())


@app.command("report")
def report(
    tenant: str = typer.Option(..., help="Tenant slug or id"),
    customer: str = typer.Option(..., help="The customer's external id"),
    period: str | None = typer.Option(None, help="YYYY-MM (default: this month)"),
) -> None:
    """Print a customer's usage report as JSON."""
    try:
        tenant_id = _tenant_id(tenant)
        _catch_up(tenant_id)
        with unit_of_work() as session:
            out = service.usage_report(session, tenant_id, customer, service.parse_period(period))
    except ProblemError as exc:
        fail(exc.detail or exc.title)
    typer.echo(out.model_dump_json(indent=2))
