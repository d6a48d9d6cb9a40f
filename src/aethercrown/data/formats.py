"""Reading and writing rows as JSON arrays, NDJSON and CSV. Pure: no database, no HTTP.

Readers yield ``(line, row)`` so a bad row can be reported by the line it came from; a line that
cannot be parsed yields ``(line, RowSyntaxError)`` instead, so every bad line is reported, not
only the first.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Any

import orjson

# Columns holding JSON objects inside a CSV cell.
JSON_COLUMNS = frozenset({"attributes"})
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl"})


@dataclass(frozen=True)
class RowSyntaxError:
    """A line that is not a row at all (malformed JSON, wrong number of CSV fields, …)."""

    field: str
    message: str


def parse_json_array(body: bytes) -> list[Any]:
    """A JSON array of rows; raises ValueError with the reason."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc}") from exc
    if not isinstance(data, list):
        raise ValueError("must be a JSON array of row objects (or NDJSON, one object a line)")
    return data


def iter_ndjson(lines: Iterable[bytes | str]) -> Iterator[tuple[int, Any]]:
    """(1-based line number, row or RowSyntaxError); blank lines are skipped."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield number, orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield number, RowSyntaxError("line", f"line {number} is not valid JSON: {exc}")


def _csv_row(
    header: Sequence[str], cells: Sequence[str], line: int
) -> dict[str, Any] | RowSyntaxError:
    if len(cells) != len(header):
        return RowSyntaxError(
            "line", f"line {line} has {len(cells)} fields; the header has {len(header)}"
        )
    row: dict[str, Any] = {}
    for name, cell in zip(header, cells, strict=True):
        if cell == "":
            continue  # an empty cell is an absent optional field
        if name in JSON_COLUMNS:
            try:
                row[name] = orjson.loads(cell)
            except orjson.JSONDecodeError:
                return RowSyntaxError(name, f"line {line}: {name} is not valid JSON")
        else:
            row[name] = cell
    return row


def iter_csv(stream: IO[str], known_fields: Sequence[str]) -> Iterator[tuple[int, Any]]:
    """(line number where the record starts, row or RowSyntaxError). The header row is required;
    an unknown column is an error naming it (line 1)."""
    reader = csv.reader(stream)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return
    except csv.Error as exc:
        yield 1, RowSyntaxError("header", f"line 1: {exc}")
        return
    unknown = [h for h in header if h not in known_fields]
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if unknown or duplicated:
        problems = []
        if unknown:
            problems.append(f"unknown column(s) {', '.join(unknown)}")
        if duplicated:
            problems.append(f"repeated column(s) {', '.join(duplicated)}")
        yield (
            1,
            RowSyntaxError(
                (unknown or duplicated)[0],
                f"line 1: {'; '.join(problems)} (known: {', '.join(known_fields)})",
            ),
        )
        return
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, RowSyntaxError("line", f"line {start}: {exc}")
            return
        if not cells:
            continue
        yield start, _csv_row(header, cells, start)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


def csv_chunks(
    fields: Sequence[str], rows: Iterable[Mapping[str, Any]], rows_per_chunk: int = 1_000
) -> Iterator[str]:
    """CSV text in chunks: the header row first, then ``rows_per_chunk`` rows at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(fields)
    pending = 0
    for row in rows:
        writer.writerow([_cell(row.get(f)) for f in fields])
        pending += 1
        if pending >= rows_per_chunk:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue()
