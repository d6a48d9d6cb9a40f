"""Time the default demo company (2,000 customers × 18 months, its window ending now):
generation alone, then — as ``aethercrown demo`` does it — generation, the load through the
ingestion service and the replay of the automation over its past, into a fresh database, on
SQLite and PostgreSQL.

    .venv/bin/python benchmarks/demo.py [--customers N] [--months M] [--end YYYY-MM-DD]
        [--no-replay] [--postgres postgresql://postgres@127.0.0.1:5432/test_sim]
        [--compare-src OTHER/src --pairs N]

``--compare-src`` times the SQLite load of another checkout's ``src`` (A: say main's) against
this one's (B) in alternated rounds, each in a fresh process (A B, then B A, ...), so both meet
the same load on a shared machine; it prints each round and the median B/A ratio of wall and
CPU seconds.

PostgreSQL runs in a fresh database named after the given one plus ``_demo_bench`` (dropped and
created). Prints wall-clock and CPU seconds per step, rows, the replay's runs per job and the
ledger it left (decisions, with outcome), and the load average (the machine may be shared).
Run by hand, never in the test suite.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from aethercrown.db import migrate
from aethercrown.db.engine import make_engine, make_session_factory
from aethercrown.settings import Settings
from aethercrown.simulate import SimConfig, generate
from aethercrown.simulate.config import as_end, default_end
from aethercrown.simulate.service import load_demo

# As the demo command opens its engine (simulate/cli.py).
LOAD_CACHE_MIB = 256


def fresh_postgres(url: str) -> str:
    base = make_url(Settings(database_url=url).database_url)
    name = f"{base.database}_demo_bench"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def bench_load(label: str, url: str, config: SimConfig, replay: bool) -> None:
    migrate.upgrade(url)
    engine = make_engine(url, sqlite_cache_mib=LOAD_CACHE_MIB)
    try:
        began, cpu = time.perf_counter(), time.process_time()
        result = load_demo(make_session_factory(engine), "demo", config, replay=replay)
        total, cpu = time.perf_counter() - began, time.process_time() - cpu
        rows = sum(c["inserted"] for c in result.counts.values())
        # CPU seconds of this process (SQLite runs in it; PostgreSQL's server work is not
        # counted): on a shared machine they say what an idle core would take.
        print(
            f"{label:<10} generate {result.generate_seconds:6.1f} s"
            f"  load {result.load_seconds:6.1f} s  replay {result.replay_seconds:6.1f} s"
            f"  total {total:6.1f} s  (cpu {cpu:.1f} s)"
            f"  {rows:,} rows, {rows / result.load_seconds:,.0f} rows/s;"
            f" load average {load_average()}"
        )
        if result.replay is not None:
            for job, ran in result.replay["jobs"].items():
                print(
                    f"{'':<10} {job:<24} {ran['runs']:3d} runs (every {ran['every_days']} d)"
                    f"  {ran['seconds']:6.1f} s"
                )
            decisions = result.replay["decisions"]
            total_decisions = sum(d["decisions"] for d in decisions.values())
            known = sum(d["with_outcome"] for d in decisions.values())
            kinds = ", ".join(
                f"{k} {d['decisions']:,} ({d['with_outcome']:,})"
                for k, d in sorted(decisions.items())
            )
            folded = result.replay["usage_folded"]
            print(
                f"{'':<10} ledger {total_decisions:,} decisions, {known:,} with outcome: {kinds};"
                f" usage folded {folded['events']:,} events, {folded['alerts']:,} alerts"
            )
        began = time.perf_counter()
        again = load_demo(make_session_factory(engine), "demo", config, replay=replay)
        assert again.skipped
        print(
            f"{label:<10} rerun with the same seed and end: skipped in "
            f"{time.perf_counter() - began:.2f} s"
        )
    finally:
        engine.dispose()


ROUND_LINE = re.compile(r"^sqlite .* total +([\d.]+) s +\(cpu ([\d.]+) s\)", re.M)
OWN_SRC = Path(__file__).resolve().parents[1] / "src"


def compare(other_src: str, pairs: int, forwarded: list[str]) -> None:
    """Alternated rounds of the SQLite load: A (``other_src``) and B (this checkout)."""
    times: dict[str, list[tuple[float, float]]] = {"A": [], "B": []}
    for pair in range(pairs):
        order = ["A", "B"] if pair % 2 == 0 else ["B", "A"]
        for side in order:
            src = other_src if side == "A" else str(OWN_SRC)
            env = {**os.environ, "PYTHONPATH": src}
            command = [sys.executable, __file__, "--sqlite-only", *forwarded]
            out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            found = ROUND_LINE.search(out.stdout)
            if found is None:
                raise RuntimeError(f"no timing in the output of {side}:\n{out.stdout}")
            wall, cpu = float(found.group(1)), float(found.group(2))
            times[side].append((wall, cpu))
            print(
                f"pair {pair + 1} {side} ({src}): total {wall:6.1f} s (cpu {cpu:.1f} s);"
                f" load average {load_average()}",
                flush=True,
            )
    for i, name in enumerate(("wall", "cpu")):
        ratios = [b[i] / a[i] for a, b in zip(times["A"], times["B"], strict=True)]
        print(
            f"B/A {name}: median {statistics.median(ratios):.2f}"
            f" ({', '.join(f'{r:.2f}' for r in ratios)});"
            f" A median {statistics.median(a[i] for a in times['A']):.1f} s,"
            f" B median {statistics.median(b[i] for b in times['B']):.1f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--months", type=int, default=18)
    parser.add_argument("--end", default=None, help="the window's end (default: now)")
    parser.add_argument("--no-replay", action="store_true", help="load only")
    parser.add_argument("--postgres", default=None, help="a PostgreSQL URL (a sibling db is used)")
    parser.add_argument("--compare-src", default=None, help="A's src dir (B: this checkout)")
    parser.add_argument("--pairs", type=int, default=2, help="A/B rounds with --compare-src")
    parser.add_argument("--sqlite-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    end = default_end() if args.end is None else as_end(args.end)
    config = SimConfig(customers=args.customers, months=args.months, end=end)

    print(f"load average before: {load_average()}")
    if args.compare_src:
        forwarded = [f"--customers={args.customers}", f"--months={args.months}"]
        forwarded += [f"--end={end.isoformat()}"] + (["--no-replay"] if args.no_replay else [])
        compare(args.compare_src, args.pairs, forwarded)
        print(f"load average after: {load_average()}")
        return
    if args.sqlite_only:
        # A round of --compare-src: only the load (it generates the company itself).
        with tempfile.TemporaryDirectory() as tmp:
            bench_load("sqlite", f"sqlite:///{Path(tmp) / 'demo.db'}", config, not args.no_replay)
        return
    began, cpu = time.perf_counter(), time.process_time()
    company = generate(config)
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    counts = company.counts()
    total_rows = sum(counts.values())
    print(
        f"demo company: {config.customers:,} customers × {config.months} months, seed "
        f"{config.seed}, window {config.start} → {config.end.isoformat()}"
    )
    print(f"rows: {', '.join(f'{k} {v:,}' for k, v in counts.items())}")
    print(
        f"generate   {seconds:6.1f} s  (cpu {cpu:.1f} s)"
        f"  {total_rows / seconds:,.0f} rows/s generated"
    )
    del company

    with tempfile.TemporaryDirectory() as tmp:
        bench_load("sqlite", f"sqlite:///{Path(tmp) / 'demo.db'}", config, not args.no_replay)
    if args.postgres:
        bench_load("postgresql", fresh_postgres(args.postgres), config, not args.no_replay)
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
