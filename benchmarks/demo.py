"""Time the default demo company (2,000 customers × 18 months): generation alone, then generation
and load through the ingestion service into a fresh database, on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/demo.py [--customers N] [--months M]
        [--postgres postgresql://postgres@127.0.0.1:5432/test_sim]

PostgreSQL runs in a fresh database named after the given one plus ``_demo_bench`` (dropped and
created). Prints seconds and rows/s; run by hand, never in the test suite.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from aethercrown.db import migrate
from aethercrown.db.engine import make_engine, make_session_factory
from aethercrown.settings import Settings
from aethercrown.simulate import SimConfig, generate
from aethercrown.simulate.service import load_demo


def fresh_postgres(url: str) -> str:
    base = make_url(Settings(database_url=url).database_url)
    name = f"{base.database}_demo_bench"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def bench_load(label: str, url: str, config: SimConfig) -> None:
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        began, cpu = time.perf_counter(), time.process_time()
        result = load_demo(make_session_factory(engine), "demo", config)
        total, cpu = time.perf_counter() - began, time.process_time() - cpu
        rows = sum(c["inserted"] for c in result.counts.values())
        # CPU seconds of this process (SQLite runs in it; PostgreSQL's server work is not
        # counted): on a shared machine they say what an idle core would take.
        print(
            f"{label:<10} generate {result.generate_seconds:6.1f} s"
            f"  load {result.load_seconds:6.1f} s  total {total:6.1f} s  (cpu {cpu:.1f} s)"
            f"  {rows:,} rows, {rows / result.load_seconds:,.0f} rows/s"
        )
        began = time.perf_counter()
        again = load_demo(make_session_factory(engine), "demo", config)
        assert again.skipped
        print(
            f"{label:<10} rerun with the same seed: skipped in {time.perf_counter() - began:.2f} s"
        )
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--months", type=int, default=18)
    parser.add_argument("--postgres", default=None, help="a PostgreSQL URL (a sibling db is used)")
    args = parser.parse_args()
    config = SimConfig(customers=args.customers, months=args.months)

    began, cpu = time.perf_counter(), time.process_time()
    company = generate(config)
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    counts = company.counts()
    total_rows = sum(counts.values())
    print(
        f"demo company: {config.customers:,} customers × {config.months} months, seed {config.seed}"
    )
    print(f"rows: {', '.join(f'{k} {v:,}' for k, v in counts.items())}")
    print(
        f"generate   {seconds:6.1f} s  (cpu {cpu:.1f} s)"
        f"  {total_rows / seconds:,.0f} rows/s generated"
    )
    del company

    with tempfile.TemporaryDirectory() as tmp:
        bench_load("sqlite", f"sqlite:///{Path(tmp) / 'demo.db'}", config)
    if args.postgres:
        bench_load("postgresql", fresh_postgres(args.postgres), config)


if __name__ == "__main__":
    main()
