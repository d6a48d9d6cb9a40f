"""Fingerprint a demo company loaded into a SQLite file, and compare two fingerprints: does a
change to the loader store the same company?

    .venv/bin/python benchmarks/demo_fingerprint.py dump DB OUT.json [--exclude NOISY.json]
    .venv/bin/python benchmarks/demo_fingerprint.py noisy A.json A2.json NOISY.json
    .venv/bin/python benchmarks/demo_fingerprint.py compare A.json B.json [--noisy NOISY.json]

``dump`` writes, per table, its row count, a digest of each column (the sorted values) and a
digest of the sorted rows over the columns not excluded. UUIDs are replaced by the natural key
of the row they name (a customer's external id, a tenant's slug, an experiment's name, ...), or
``<uuid>``, since each load draws new ones; integer ids are kept (same insert order, same ids).
Some columns differ between two loads by the *same* code (wall-clock times, keys' secrets, the
runs' runner; ``same_results.INHERENT_NOISE`` lists them): ``noisy`` lists the columns that
differ between two loads of one commit, for ``dump --exclude`` and ``compare --noisy``. Run by
hand, or through ``same_results.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sqlite3
from typing import Any

UUID = re.compile(r"^[0-9a-f]{32}$|^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
UUID_INSIDE = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}")
NATURAL_KEYS = ("external_id", "slug", "event_id", "key", "name", "email")


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')]


def _natural_names(conn: sqlite3.Connection, tables: list[str]) -> dict[str, str]:
    """UUID (hex) -> "table:natural key" for every table with an id and a natural key."""
    names: dict[str, str] = {}
    for table in tables:
        columns = _columns(conn, table)
        natural = [c for c in NATURAL_KEYS if c in columns]
        if "id" not in columns or not natural:
            continue
        for ident, key in conn.execute(f'SELECT id, "{natural[0]}" FROM "{table}"'):
            if isinstance(ident, str) and UUID.match(ident):
                names[ident.replace("-", "")] = f"{table}:{key}"
    return names


def dump(path: str, out: str, exclude: dict[str, list[str]]) -> None:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    tables = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY name"
        )
    ]
    names = _natural_names(conn, tables)

    def named(match: re.Match[str]) -> str:
        return names.get(match.group(0).replace("-", ""), "<uuid>")

    def normal(value: Any) -> Any:
        if isinstance(value, str) and UUID.match(value):
            return names.get(value.replace("-", ""), "<uuid>")
        if isinstance(value, str) and len(value) > 30:  # JSON or text naming UUIDs
            return UUID_INSIDE.sub(named, value)
        return value

    result: dict[str, Any] = {}
    for table in tables:
        columns = _columns(conn, table)
        rows = [tuple(normal(v) for v in row) for row in conn.execute(f'SELECT * FROM "{table}"')]
        kept = [i for i, c in enumerate(columns) if c not in exclude.get(table, [])]
        by_row = sorted(repr(tuple(row[i] for i in kept)) for row in rows)
        result[table] = {
            "count": len(rows),
            "columns": {
                c: _digest(repr(sorted(repr(row[i]) for row in rows)))
                for i, c in enumerate(columns)
            },
            "rows": _digest("\n".join(by_row)),
            "row_columns": [columns[i] for i in kept],
        }
    with open(out, "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
    print(f"{len(tables)} tables, {sum(t['count'] for t in result.values()):,} rows")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _load(path: str) -> dict[str, Any]:
    with open(path) as f:
        loaded: dict[str, Any] = json.load(f)
    return loaded


def noisy(first: str, second: str, out: str) -> None:
    a, b = _load(first), _load(second)
    found: dict[str, list[str]] = {}
    for table, fp in a.items():
        for column, digest in fp["columns"].items():
            if b[table]["columns"].get(column) != digest:
                found.setdefault(table, []).append(column)
    with open(out, "w") as f:
        json.dump(found, f, indent=1, sort_keys=True)
    print(f"{sum(map(len, found.values()))} noisy columns in {len(found)} tables")


def compare(first: str, second: str, noisy_path: str | None) -> int:
    a, b = _load(first), _load(second)
    skip = _load(noisy_path) if noisy_path else {}
    differences = 0
    for table in sorted(set(a) | set(b)):
        if table not in a or table not in b:
            print(f"only in one: {table}")
            differences += 1
            continue
        if a[table]["count"] != b[table]["count"]:
            print(f"count {table}: {a[table]['count']} != {b[table]['count']}")
            differences += 1
        for column, digest in a[table]["columns"].items():
            if column not in skip.get(table, []) and b[table]["columns"].get(column) != digest:
                print(f"column {table}.{column} differs")
                differences += 1
        if a[table]["rows"] != b[table]["rows"]:
            print(f"rows of {table} differ over {a[table]['row_columns']}")
            differences += 1
    rows = sum(t["count"] for t in a.values())
    print(f"{len(a)} tables, {rows:,} rows: {differences} difference(s)")
    return differences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump")
    d.add_argument("db")
    d.add_argument("out")
    d.add_argument("--exclude", default=None)
    n = sub.add_parser("noisy")
    n.add_argument("first")
    n.add_argument("second")
    n.add_argument("out")
    c = sub.add_parser("compare")
    c.add_argument("first")
    c.add_argument("second")
    c.add_argument("--noisy", default=None)
    args = parser.parse_args()
    if args.command == "dump":
        dump(args.db, args.out, _load(args.exclude) if args.exclude else {})
    elif args.command == "noisy":
        noisy(args.first, args.second, args.out)
    else:
        raise SystemExit(1 if compare(args.first, args.second, args.noisy) else 0)


if __name__ == "__main__":
    main()
