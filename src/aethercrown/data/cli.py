"""``aethercrown import`` and ``aethercrown export``: business data to and from CSV / NDJSON files.

Imports stream the file in batches; each batch is one transaction through ``ingest_rows``, so a
batch with any bad row writes nothing (earlier batches stay committed, and re-running the import
after a fix changes nothing for them).
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.orm import Session, sessionmaker

from aethercrown.connectors.adspend_service import import_export
from aethercrown.core.commandline import open_database, unit_of_work
from aethercrown.core.errors import InvalidInput, ProblemError
from aethercrown.data import formats
from aethercrown.data.kinds import KINDS, KindSpec
from aethercrown.data.service import ingest_rows, iter_export_rows
from aethercrown.db.engine import make_session_factory
from aethercrown.db.session import write_transaction
from aethercrown.settings import get_settings
from aethercrown.tenants.service import resolve_tenant_ref

FORMATS = ("csv", "ndjson")
# Ad platforms' campaign reports (read by the connectors domain into marketing spend).
AD_FORMATS = ("google-ads", "meta", "linkedin")
EXTENSIONS = {".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson"}
# Errors printed per failed batch (the count of the rest is printed too).
MAX_PRINTED_ERRORS = 200


def _spec(kind: str) -> KindSpec:
    spec = KINDS.get(kind)
    if spec is None:
        raise typer.BadParameter(f"must be one of: {', '.join(KINDS)}", param_hint="--kind")
    return spec


def _format_of(path: Path, given: str | None) -> str:
    if given is not None:
        if given not in FORMATS:
            raise typer.BadParameter(f"must be one of: {', '.join(FORMATS)}", param_hint="--format")
        return given
    found = EXTENSIONS.get(path.suffix.lower())
    if found is None:
        raise typer.BadParameter(
            f"cannot tell the format of {path.name}; name it .csv/.ndjson or pass --format",
            param_hint="--format",
        )
    return found


def _count_lines(path: Path) -> int:
    count = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            count += chunk.count(b"\n")
    return count


def _records(path: Path, fmt: str, spec: KindSpec) -> Iterator[tuple[int, Any]]:
    if fmt == "csv":
        with path.open("r", encoding="utf-8-sig", newline="") as text:
            yield from formats.iter_csv(text, spec.fields)
    else:
        with path.open("rb") as raw:
            yield from formats.iter_ndjson(raw)


def _batches(records: Iterator[tuple[int, Any]], size: int) -> Iterator[list[tuple[int, Any]]]:
    batch: list[tuple[int, Any]] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _error_lines(
    batch: list[tuple[int, Any]], rows_at: list[int], exc: InvalidInput | None
) -> list[str]:
    """Every problem of a batch as 'line N: field: message', in line order."""
    found: list[tuple[int, str]] = []
    for line, record in batch:
        if isinstance(record, formats.RowSyntaxError):
            found.append((line, f"line {line}: {record.field}: {record.message}"))
    if exc is not None:
        for error in exc.extra.get("errors", []):
            loc = error["loc"]
            index = loc[0] if loc and isinstance(loc[0], int) else None
            line = rows_at[index] if index is not None and index < len(rows_at) else 0
            field = ".".join(str(p) for p in loc[1:]) or "row"
            found.append((line, f"line {line}: {field}: {error['msg']}"))
    return [text for _, text in sorted(found, key=lambda item: item[0])]


def _ingest_batch(
    factory: sessionmaker[Session],
    tenant_id: uuid.UUID,
    kind: str,
    batch: list[tuple[int, Any]],
    max_rows: int,
) -> tuple[dict[str, int] | None, list[str]]:
    """Counts of a committed batch, or None and every error of a batch that wrote nothing."""
    rows_at = [line for line, r in batch if not isinstance(r, formats.RowSyntaxError)]
    rows = [r for _, r in batch if not isinstance(r, formats.RowSyntaxError)]
    syntax_bad = len(rows_at) != len(batch)
    session = factory()
    try:
        result = ingest_rows(session, tenant_id, kind, rows, max_rows=max_rows)
        if syntax_bad:
            # The parsable rows were still checked, so that one run lists every problem.
            session.rollback()
            return None, _error_lines(batch, rows_at, None)
        session.commit()
        return result.model_dump(include={"inserted", "updated", "unchanged"}), []
    except InvalidInput as exc:
        session.rollback()
        return None, _error_lines(batch, rows_at, exc)
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def import_rows(
    paths: list[str] = typer.Argument(..., metavar="[KIND] FILE", help="CSV/NDJSON file"),
    tenant: str = typer.Option(..., "--tenant", help="Tenant slug or id"),
    kind_option: str | None = typer.Option(None, "--kind", help=", ".join(KINDS)),
    fmt: str | None = typer.Option(
        None,
        "--format",
        help="csv | ndjson (default: by extension); for marketing also an ad platform's "
        f"campaign report: {' | '.join(AD_FORMATS)}",
    ),
    currency: str = typer.Option("USD", help="Ad reports: currency when the file names none"),
    batch_size: int = typer.Option(5_000, "--batch-size", min=1, help="Rows per transaction"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar"),
) -> None:
    """Import business data (idempotent upsert; a batch with any bad row writes nothing):
    `aethercrown import KIND FILE` or `aethercrown import FILE --kind KIND`;
    `aethercrown import marketing --format google-ads|meta|linkedin FILE.csv` reads an ad
    platform's campaign report (see docs/modules/connectors.md)."""
    kind, file = _kind_and_file(paths, kind_option)
    if fmt in AD_FORMATS:
        if kind != "marketing":
            raise typer.BadParameter(f"{fmt} reports are marketing spend", param_hint="--format")
        _import_ad_report(file, tenant, fmt, currency)
        return
    spec = _spec(kind)
    fmt = _format_of(file, fmt)
    settings = get_settings()
    if batch_size > settings.max_batch_rows:
        raise typer.BadParameter(
            f"at most max_batch_rows = {settings.max_batch_rows}", param_hint="--batch-size"
        )
    err = Console(stderr=True)
    engine = open_database(settings)
    factory = make_session_factory(engine)
    totals = {"received": 0, "inserted": 0, "updated": 0, "unchanged": 0, "batches": 0}
    try:
        tenant_id = _tenant_id(factory, tenant, err)
        total = _expected_rows(file, fmt)
        bar = _progress_bar(kind, err, shown=progress)
        with bar:
            task = bar.add_task(kind, total=total)
            for batch in _batches(_records(file, fmt, spec), batch_size):
                try:
                    counts, errors = _ingest_batch(
                        factory, tenant_id, kind, batch, settings.max_batch_rows
                    )
                except ProblemError as exc:
                    bar.stop()
                    err.print(f"[red]error:[/red] {exc.detail}")
                    _print_totals(totals)
                    raise typer.Exit(1) from exc
                if counts is None:
                    bar.stop()
                    _print_batch_errors(err, batch, errors, committed=totals["batches"])
                    _print_totals(totals)
                    raise typer.Exit(1)
                totals["batches"] += 1
                totals["received"] += len(batch)
                for name, value in counts.items():
                    totals[name] += value
                bar.advance(task, len(batch))
    except UnicodeDecodeError as exc:
        err.print(f"[red]error:[/red] {file.name} is not UTF-8 text ({exc.reason})")
        _print_totals(totals)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
    _print_totals(totals)


def _kind_and_file(paths: list[str], kind_option: str | None) -> tuple[str, Path]:
    """The kind and the file of `import KIND FILE` or `import FILE --kind KIND`."""
    if len(paths) > 2:
        raise typer.BadParameter("give [KIND] FILE", param_hint="[KIND] FILE")
    kind = kind_option or (paths[0] if len(paths) == 2 else None)
    if kind is None:
        raise typer.BadParameter("name the kind: `import KIND FILE` or --kind", param_hint="--kind")
    file = Path(paths[-1])
    if not file.is_file():
        raise typer.BadParameter(f"{file} is not a readable file", param_hint="FILE")
    return kind, file


def _tenant_id(factory: sessionmaker[Session], tenant: str, err: Console) -> uuid.UUID:
    with write_transaction(factory) as session:
        try:
            return resolve_tenant_ref(session, tenant).id
        except ProblemError as exc:
            err.print(f"[red]error:[/red] {exc.detail}")
            raise typer.Exit(1) from exc


def _expected_rows(file: Path, fmt: str) -> int:
    """The progress bar's total: a line a row, less a CSV's header."""
    lines = _count_lines(file)
    return max(lines - 1, 0) if fmt == "csv" else lines


def _progress_bar(kind: str, err: Console, *, shown: bool) -> Progress:
    return Progress(
        TextColumn(f"importing {kind}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not shown,
    )


def _print_batch_errors(
    err: Console, batch: list[tuple[int, Any]], errors: list[str], *, committed: int
) -> None:
    first, last = batch[0][0], batch[-1][0]
    err.print(
        f"[red]error:[/red] {len(errors)} problem(s) in the batch of lines "
        f"{first}–{last}; nothing of it was written "
        f"({committed} earlier batch(es) were committed):"
    )
    for text in errors[:MAX_PRINTED_ERRORS]:
        err.print(f"  {text}", highlight=False, markup=False)
    if len(errors) > MAX_PRINTED_ERRORS:
        err.print(f"  … and {len(errors) - MAX_PRINTED_ERRORS} more")


def _import_ad_report(file: Path, tenant: str, fmt: str, currency: str) -> None:
    raw = file.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = (
            raw.decode("utf-16") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else raw.decode("latin-1")
        )
    try:
        with unit_of_work() as session:
            tenant_id = resolve_tenant_ref(session, tenant).id
            report = import_export(session, tenant_id, text, fmt, currency.upper())
    except ProblemError as exc:
        typer.echo(f"error: {exc.detail or exc.title}; nothing was imported", err=True)
        raise typer.Exit(1) from exc
    for skipped in report["skipped"]:
        typer.echo(f"skipped line {skipped['line']}: {skipped['reason']}", err=True)
    typer.echo(json.dumps(report))


def _print_totals(totals: dict[str, int]) -> None:
    typer.echo(json.dumps(totals))


def export_rows(
    tenant: str = typer.Option(..., "--tenant", help="Tenant slug or id"),
    kind: str = typer.Option(..., "--kind", help=", ".join(KINDS)),
    out: Path | None = typer.Option(None, "--out", help="File to write (default: stdout)"),
    customer: str | None = typer.Option(None, help="Only this customer's rows (external_id)"),
    since: str | None = typer.Option(None, help="From this time/day (inclusive)"),
    until: str | None = typer.Option(None, help="Before this time/day (exclusive)"),
    where: list[str] = typer.Option(
        [], "--where", help="Exact filter NAME=VALUE (kind, plan, status, channel, feature, …)"
    ),
) -> None:
    """Export business data as CSV (the columns an import takes back)."""
    spec = _spec(kind)
    raw: dict[str, Any] = {"customer": customer, "since": since, "until": until}
    for item in where:
        name, sep, value = item.partition("=")
        if not sep or name not in spec.exact_filters:
            raise typer.BadParameter(
                f"'{item}': use NAME=VALUE with NAME one of {', '.join(spec.exact_filters)}",
                param_hint="--where",
            )
        raw[name] = value
    raw = {k: v for k, v in raw.items() if v is not None}
    if "customer" in raw and not spec.has_customer:
        raise typer.BadParameter(f"{kind} rows have no customer", param_hint="--customer")
    try:
        filters = spec.filters.model_validate(raw).model_dump()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise typer.BadParameter(problems) from exc

    engine = open_database()
    factory = make_session_factory(engine)
    target: IO[str] = out.open("w", encoding="utf-8", newline="") if out is not None else sys.stdout
    written = 0
    try:
        with factory() as session:
            try:
                tenant_id = resolve_tenant_ref(session, tenant).id
            except ProblemError as exc:
                typer.echo(f"error: {exc.detail}", err=True)
                raise typer.Exit(1) from exc

            def counted() -> Iterator[dict[str, Any]]:
                nonlocal written
                for row in iter_export_rows(session, tenant_id, kind, filters):
                    written += 1
                    yield row

            for chunk in formats.csv_chunks(spec.fields, counted()):
                target.write(chunk)
    finally:
        target.flush()
        if out is not None:
            target.close()
        engine.dispose()
    typer.echo(f"exported {written} {kind} rows" + (f" to {out}" if out else ""), err=True)
