"""Same results before and after: run every benchmark that has results on two revisions and
compare what they decided and measured, not how fast (issue 16).

    .venv/bin/python benchmarks/same_results.py --base cc8a970            # vs the working tree
    .venv/bin/python benchmarks/same_results.py --base HEAD --head HEAD   # determinism check
    .venv/bin/python benchmarks/same_results.py --base main --only budget,forecast

Each revision is exported (``git archive``) into a throw-away directory; ``--head`` defaults to
the working tree as it is. Every benchmark in ``BENCHMARKS`` runs on each side in a quick but
meaningful configuration, in its own process with that side's ``src`` on PYTHONPATH, in its own
scratch directory (a fresh SQLite file each; no PostgreSQL: the PostgreSQL-only paths are left
out, see each entry's note). From its output the results are kept: the lines that carry results,
with the timing figures on them (seconds, rates, percentiles, load averages) replaced by ``…``;
each kept line is one compared value. The demo company is loaded once per side at a fixed end and
fingerprinted (``demo_fingerprint.py``) without the columns that differ between two loads of any
code (wall-clock times, secrets, random ids: ``INHERENT_NOISE``).

Prints one table (benchmark, values compared, same / different with the first differing
values, seconds per side) and exits 1 on any difference, or when a benchmark fails on one side
only. Benchmarks that measure only speed are listed as "timing only, not compared".
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# gbstats' virtualenv (the exported trees have none): this checkout's, or beside this Python's.
GBSTATS_VENV = os.environ.get(
    "AETHERCROWN_GBSTATS_VENV",
    str(
        next(
            (p for p in (ROOT / ".venv" / "gbstats", Path(sys.prefix) / "gbstats") if p.exists()),
            ROOT / ".venv" / "gbstats",
        )
    ),
)

Extract = Callable[[str], dict[str, str]]

# Timing figures inside a kept line: a number with a time or rate unit, a load average, "in N s".
TIMING = [
    r"load average:? ?\([^)]*\)",
    r"load average[^;,)|]*",
    r"\(load [\d.]+\)",
    r"\(\d+ s;[^)]*\)",
    r"[\d.,]+\s*(?:ms|µs|s)\b",
    r"[\d.,]+\s*(?:/s|per second)",
    r"[\d.,]+\s*(?:events|rows|claims|requests)/s",
]


def lines(keep: str, drop: tuple[str, ...] = (), mask: tuple[str, ...] = ()) -> Extract:
    """The output lines matching ``keep`` (and none of ``drop``), timing figures masked; keyed
    by their order among the kept lines, so a missing line shows as a difference."""
    keep_re = re.compile(keep)
    drop_re = [re.compile(d) for d in drop]
    mask_re = [re.compile(m) for m in (*mask, *TIMING)]

    def extract(output: str) -> dict[str, str]:
        kept: dict[str, str] = {}
        for line in output.splitlines():
            if not keep_re.search(line) or any(d.search(line) for d in drop_re):
                continue
            for m in mask_re:
                line = m.sub("…", line)
            kept[f"line {len(kept) + 1}"] = " ".join(line.split())
        return kept

    return extract


def json_lines(drop: str) -> Extract:
    """Every JSON object printed on its own line, flattened to dotted keys; keys matching
    ``drop`` (timing figures) left out."""
    drop_re = re.compile(drop)

    def flatten(prefix: str, value: object, out: dict[str, str]) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                flatten(f"{prefix}[{i}]", v, out)
        elif not drop_re.search(prefix):
            out[prefix] = json.dumps(value)

    def extract(output: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for line in output.splitlines():
            if line.startswith("{"):
                flatten("", json.loads(line), out)
        return out

    return extract


# Columns that differ between two loads of the same code, whatever the code: wall-clock stamps,
# secrets and random ids drawn on every load (the fingerprint names most ids by natural keys;
# these are the ones without), the runner's host:pid id, and values derived from them.
INHERENT_NOISE: dict[str, list[str]] = {
    "analytics_snapshots": ["computed_at", "payload"],  # payload's "as_of" is the wall clock
    "api_keys": ["created_at", "display_prefix", "encrypted_secret"],
    "audit_events": ["created_at", "details"],  # details name the new keys' random ids
    "automation_runs": ["runner"],
    "onboarding_steps": ["finished_at", "next_attempt_at", "result", "started_at"],
    "onboardings": ["completed_at", "created_at", "started_at", "updated_at"],
    # row_counts holds the load's seconds beside its counts
    "simulated_truths": ["created_at", "generated_at", "row_counts", "updated_at"],
    "experiment_assignments": ["assigned_at"],
    "experiments": ["created_at"],
    "usage_events": ["received_at"],
    "usage_fold_cursor": ["folded_at"],
    **{
        table: ["created_at", "updated_at"]
        for table in (
            "customers",
            "payments",
            "price_plans",
            "pricing_factors",
            "sla_tiers",
            "subscriptions",
            "support_tickets",
            "tenants",
            "tiers",
        )
    },
}


def _after(output: str, marker: str) -> str:
    start = output.index(marker) + len(marker)
    return output[start:].splitlines()[0]


def fingerprint(output: str) -> dict[str, str]:
    """The demo fingerprint's JSON (printed by the runner below), noise columns left out."""
    tables: dict[str, dict[str, object]] = json.loads(_after(output, "FINGERPRINT "))
    out: dict[str, str] = {}
    if "FIGURES " in output:
        for name, rows in json.loads(_after(output, "FIGURES ")).items():
            for i, row in enumerate(rows):
                # Named by kind (ledger) and by risk level and holdout (campaigns), so --ignore
                # can leave one out; the churn models by their order.
                label = " ".join(map(str, row[:2])) if name == "campaigns" else row[0]
                out[f"{name} {label}" if name != "churn_models" else f"{name}[{i}]"] = json.dumps(
                    row
                )
    for table, fp in tables.items():
        out[f"{table} rows"] = str(fp["count"])
        # The digest of the table's sorted rows over the columns not excluded: catches values
        # that moved between rows, which the columns' own digests cannot.
        out[f"{table} row digest"] = str(fp["rows"])
        columns = fp["columns"]
        assert isinstance(columns, dict)
        for column, digest in columns.items():
            if column not in INHERENT_NOISE.get(table, []):
                out[f"{table}.{column}"] = str(digest)
    return out


DEMO_END = "2026-11-01"
# Run in the side's scratch directory: load the demo (the CLI, as a user would), fingerprint it
# with the side's own demo_fingerprint.py, and print the figures read off the ledger and the
# churn models (their digests are in the fingerprint; these show which figure moved).
DEMO = f"""
import json, os, sqlite3, subprocess, sys
db = os.path.join(os.getcwd(), "demo.db")
env = {{**os.environ, "AETHERCROWN_DATABASE_URL": "sqlite:///" + db}}
subprocess.run([sys.executable, "-m", "aethercrown", "demo", "--tenant", "demo", "--customers",
    "2000", "--months", "18", "--seed", "42", "--end", "{DEMO_END}"],
    env=env, check=True, stdout=subprocess.DEVNULL)
subprocess.run([sys.executable, sys.argv[1], "dump", db, "fp.json", "--exclude", sys.argv[2]],
    check=True)
print("FINGERPRINT", json.dumps(json.load(open("fp.json"))))
conn = sqlite3.connect(db)
figures = {{
    "ledger": [list(r) for r in conn.execute(
        "SELECT kind, count(*), count(outcome), sum(predicted_value), sum(outcome_value)"
        " FROM decisions GROUP BY kind ORDER BY kind")],
    "campaigns": [list(r) for r in conn.execute(
        "SELECT risk_level, holdout, count(*), count(outcome) FROM churn_campaigns"
        " GROUP BY risk_level, holdout ORDER BY risk_level, holdout")],
    "churn_models": [list(r) for r in conn.execute(
        "SELECT feature_set, roc_auc, pr_auc, brier, ece, top_decile_lift, promoted"
        " FROM churn_models ORDER BY id")],
}}
print("FIGURES", json.dumps(figures))
"""


@dataclass(frozen=True)
class Benchmark:
    name: str
    args: list[str]  # after the script (``benchmarks/NAME.py``), or a whole command
    extract: Extract | None  # None: timing only
    note: str = ""
    script: str = ""  # default: benchmarks/NAME.py
    # Run this checkout's copy of the script on both sides (each still with its own src): for
    # output added here that older revisions' copies lack.
    own_script: bool = False
    # With --postgres: the arguments of its PostgreSQL run ("{pg}": the database's URL, wiped
    # before each side's run), or why it has none ("": it uses no database).
    pg_args: list[str] | str = ""
    wipe: str = ""  # the database to wipe before the run
    env: dict[str, str] = field(default_factory=dict)


BENCHMARKS: list[Benchmark] = [
    Benchmark(
        "demo_fingerprint",
        [],
        fingerprint,
        f"the default demo (2,000 customers × 18 months, seed 42, end {DEMO_END}) loaded and "
        "replayed: every table's count and column digests; the ledger, campaigns and churn "
        "models' AUC / calibration figures",
    ),
    Benchmark(
        "budget",
        ["--seeds", "10", "--no-latency"],
        lines(r"^\s*(\d+ |all |[\d.]+× )", drop=(r"^\s*\(",)),
        "10 demo companies: the plan's true return / true optimum per budget",
    ),
    Benchmark(
        "budget optimiser",
        ["--sizes", "5,500", "--peer-python", "/nonexistent"],
        lines(r"^(S-mixed|concave) ", mask=(r"\S+ / \S+", r"(?<=\| )\s*\d+(?= +\S+ \|)")),
        "5 and 500 channels: nodes and certified gap; SLSQP's gap vs ours at 5 "
        "(at 50 it takes minutes)",
        script="budget",
    ),
    Benchmark(
        "churn",
        ["--customers", "5000", "--in-memory-rows", "100000"],
        json_lines(r"second|seconds"),
        "100,000 rows in memory and 5,000 customers end to end (SQLite): risk shares, "
        "scored, stored scores / campaigns / decisions",
        pg_args=["--customers", "5000", "--skip-in-memory", "--skip-sqlite", "--pg", "{pg}"],
    ),
    Benchmark(
        "forecast",
        ["--seeds", "10"],
        lines(r"^\| (\d|all) "),
        "10 demo companies: MAPE and interval coverage per horizon",
    ),
    Benchmark(
        "experiments",
        ["--experiments", "100", "--repeats", "1"],
        lines(r"largest \|difference\||not found"),
        "100 experiments: the largest difference from gbstats' pipeline",
    ),
    Benchmark(
        "content",
        ["--runs", "100", "--json"],
        json_lines(r"^$"),
        "100 posts of 1,000 and of 2,000 words: each one's word count and Yoast checks passed "
        "(this checkout's script: --json is new)",
        own_script=True,
    ),
    Benchmark(
        "onboarding",
        ["--onboardings", "5"],
        lines(r"onboarding create"),
        "5 onboardings: every one reaches its waiting step (asserted); the count",
        pg_args=["--onboardings", "5", "--database-url", "{pg+psycopg}"],
    ),
    Benchmark(
        "alerts",
        ["--events", "200"],
        lines(r"^(routed|sent|backend)"),
        "200 events (SQLite): deliveries routed and sent, emails received",
        pg_args="it makes its own scratch database beside the one given",
    ),
    Benchmark(
        "tasks",
        ["--tasks", "400"],
        # Columns: backend, batch, claims, seconds, claims/s, double, busy; the middle two and
        # the last (retries on a locked database: how the workers met) are timing.
        lines(
            r"^(sqlite|postgresql) ",
            mask=(r"(?<=\d) +[\d.]+ +\d+(?= +\d+ +\d+$)", r"(?<= )\d+$"),
        ),
        "400 tasks, 16 workers (SQLite): claims and double claims (busy retries vary: masked)",
        pg_args=["--tasks", "400", "--postgres", "{pg}"],
    ),
    Benchmark(
        "ingest",
        ["--rows", "50000", "--backends", "sqlite", "--rounds", "1"],
        lines(r"activity rows|^\| sqlite", mask=(r"\| [\d.,]+ \| [\d.,]+ \| \d+% \|",)),
        "50,000 rows (SQLite) by every path: each path stores every row (asserted)",
        pg_args="it makes its own scratch database beside the one given",
    ),
    Benchmark(
        "metering",
        [
            "--events",
            "2000",
            "--report-events",
            "20000",
            "--report-rounds",
            "5",
            "--repeat",
            "1",
            "--backends",
            "sqlite",
        ],
        lines(r"^\[|report for"),
        "2,000 events and a 20,000-event report (SQLite): runs through (counts asserted)",
        pg_args="it makes its own scratch database beside the one given",
    ),
    Benchmark(
        "connectors",
        [
            "--sqlite",
            "--subscriptions",
            "200",
            "--segment-events",
            "2000",
            "--mapping-events",
            "1000",
            "--customers",
            "200",
            "--workers",
            "2",
        ],
        lines(r"stored|mapped|backfill|acknowledged|track events"),
        "Stripe mapping, webhooks, backfill and Segment batches on SQLite: rows stored",
        pg_args="it makes its own scratch database beside the one given",
    ),
    Benchmark(
        "concurrency",
        ["--clients", "8", "--requests", "20"],
        lines(r"^\s+(2xx|GET|POST|PUT|PATCH|DELETE|!)|^(SQLite|PostgreSQL):"),
        "8 clients × 20 requests (SQLite): answers by status, per route",
        pg_args=["--clients", "8", "--requests", "20", "--no-sqlite", "--postgres", "{pg}"],
    ),
    Benchmark(
        "analytics",
        ["--customers", "2000", "--months", "24", "--requests", "2", "--cold", "1"],
        lines(r"^database:|MRR|forecast|last complete"),
        "2,000 customers × 24 months: MRR against the independent count, forecast errors, "
        "the last month's figures",
        pg_args=[
            *("--customers", "2000", "--months", "24", "--requests", "2", "--cold", "1"),
            *("--database-url", "{pg+psycopg}"),
        ],
    ),
    Benchmark("api_overhead", [], None, "requests per second of the bare API stack"),
    Benchmark("latency", [], None, "endpoint latencies"),
    Benchmark("web", [], None, "page latencies"),
    Benchmark("bare_app", [], None, "an ASGI floor for the others"),
    Benchmark("floor_app", [], None, "an ASGI floor for the others"),
    Benchmark("auth_read_cpu", [], None, "CPU per authenticated read"),
    Benchmark("input_limits", [], None, "body checks' cost against json.loads"),
    Benchmark("demo", [], None, "load and replay seconds (its rows: demo_fingerprint)"),
    Benchmark("reliability", [], None, "load, durability and fuzz runs: pass/fail by design"),
    Benchmark("reliability_fuzz", [], None, "schemathesis findings, not a result figure"),
]


def on_postgres(bench: Benchmark, url: str) -> Benchmark | str:
    """The PostgreSQL run of ``bench`` on ``url``, or why it has none."""
    if isinstance(bench.pg_args, str):
        return bench.pg_args
    driven = url.replace("postgresql://", "postgresql+psycopg://", 1)
    return replace(
        bench,
        name=f"{bench.name} (PostgreSQL)",
        args=[a.replace("{pg}", url).replace("{pg+psycopg}", driven) for a in bench.pg_args],
        script=bench.script or bench.name,
        wipe=driven,
    )


def wipe(url: str) -> None:
    """An empty public schema: the database is scratch, whatever it held is dropped."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@dataclass
class Run:
    values: dict[str, str]
    seconds: float
    failed: str = ""
    note: str = ""


def export(rev: str, into: Path) -> Path:
    """``git archive`` of ``rev`` unpacked under ``into``; its root."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def run(bench: Benchmark, tree: Path, scratch: Path, timeout: int) -> Run:
    assert bench.extract is not None
    scratch.mkdir(parents=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(tree / "src"),
        "AETHERCROWN_DATA_DIR": str(scratch / "data"),
        "AETHERCROWN_DATABASE_URL": f"sqlite:///{scratch / 'app.db'}",
        "AETHERCROWN_GBSTATS_VENV": GBSTATS_VENV,
        **bench.env,
    }
    if bench.name == "demo_fingerprint":
        noise = scratch / "noise.json"
        noise.write_text(json.dumps(INHERENT_NOISE))
        fingerprinter = tree / "benchmarks" / "demo_fingerprint.py"
        command = [sys.executable, "-c", DEMO, str(fingerprinter), str(noise)]
    else:
        script = (
            (ROOT if bench.own_script else tree) / "benchmarks" / f"{bench.script or bench.name}.py"
        )
        command = [sys.executable, str(script), *bench.args]
    if bench.wipe:
        wipe(bench.wipe)
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            command,
            cwd=scratch,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return Run({}, time.perf_counter() - started, f"timed out after {timeout} s")
    seconds = time.perf_counter() - started
    (scratch / "stdout.txt").write_text(proc.stdout)
    (scratch / "stderr.txt").write_text(proc.stderr)
    if proc.returncode:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        return Run({}, seconds, f"exit {proc.returncode}: {tail[0][:120]}")
    try:
        return Run(bench.extract(proc.stdout), seconds)
    except Exception as exc:  # a changed output format is a difference to look at
        return Run({}, seconds, f"unreadable output: {exc!r}"[:120])


def run_once_more(bench: Benchmark, tree: Path, scratch: Path, args: argparse.Namespace) -> Run:
    """``run``, and once more if it failed: on a busy machine a benchmark can fail on timing
    alone (SQLite's "database is locked" past its busy timeout, with a server and an importer
    writing at once). The table says so; a second failure stands."""
    first = run(bench, tree, scratch, args.timeout)
    if not first.failed or not args.retry:
        return first
    again = run(bench, tree, scratch.with_name(scratch.name + "-again"), args.timeout)
    if not again.failed:
        again.note = f"ran again after {first.failed}"
    return again


def differences(a: dict[str, str], b: dict[str, str], limit: int = 2) -> list[str]:
    """The first ``limit`` keys whose values differ, as "key: A -> B"."""
    out = []
    for key in list(a) + [k for k in b if k not in a]:
        if a.get(key) != b.get(key):
            out.append(f"{key}: {a.get(key, '(missing)')} -> {b.get(key, '(missing)')}")
            if len(out) == limit:
                break
    return out


def drop_ignored(base: Run, head: Run, prefixes: tuple[str, ...]) -> int:
    """Leave out both runs' values whose key starts with one of ``prefixes``; how many keys."""
    if not prefixes:
        return 0
    keys = {k for k in (*base.values, *head.values) if k.startswith(prefixes)}
    for run_ in (base, head):
        run_.values = {k: v for k, v in run_.values.items() if k not in keys}
    return len(keys)


def verdict(base: Run, head: Run) -> tuple[str, bool]:
    """(what to print, same?)."""
    if base.failed or head.failed:
        if base.failed and head.failed:
            return f"FAILED on both sides: {head.failed}", False
        return f"DIFFERENT: base {base.failed or 'ran'}; head {head.failed or 'ran'}", False
    if not base.values:
        return "DIFFERENT: no result values found", False
    found = differences(base.values, head.values)
    if not found:
        return "same", True
    count = sum(1 for k in {*base.values, *head.values} if base.values.get(k) != head.values.get(k))
    return f"DIFFERENT ({count}): " + "; ".join(found), False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="a git revision")
    parser.add_argument("--head", default=None, help="a git revision (default: the work tree)")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per benchmark run")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument(
        "--no-retry",
        dest="retry",
        action="store_false",
        help="do not run a benchmark that failed once more",
    )
    parser.add_argument(
        "--ignore",
        default="",
        help="comma-separated prefixes of result keys not to compare (counted in the table), "
        "for a base known to differ from itself there",
    )
    parser.add_argument(
        "--postgres",
        default=None,
        help="also run the benchmarks that can on this PostgreSQL database, WIPED before each run",
    )
    args = parser.parse_args(argv)
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    ignore = tuple(p.strip() for p in args.ignore.split(",") if p.strip())
    chosen = [b for b in BENCHMARKS if not only or b.name in only]
    rows: list[tuple[str, str, str, str, str]] = []
    not_run: list[tuple[str, str, str, str, str]] = []
    if args.postgres:
        for bench in [b for b in chosen if b.extract is not None]:
            pg = on_postgres(bench, args.postgres)
            if isinstance(pg, Benchmark):
                chosen.append(pg)
            elif pg:
                not_run.append((f"{bench.name} (PostgreSQL)", "–", f"not run: {pg}", "", ""))
    scratch = Path(tempfile.mkdtemp(prefix="aethercrown-same-results-"))
    started = time.perf_counter()
    all_same = True
    try:
        base_tree = export(args.base, scratch / "base")
        head_tree = export(args.head, scratch / "head") if args.head else ROOT
        print(f"base {args.base}, head {args.head or 'work tree ' + str(ROOT)}", flush=True)
        for bench in chosen:
            if bench.extract is None:
                rows.append((bench.name, "–", f"timing only, not compared: {bench.note}", "", ""))
                continue
            a = run_once_more(bench, base_tree, scratch / "runs" / bench.name / "base", args)
            b = run_once_more(bench, head_tree, scratch / "runs" / bench.name / "head", args)
            ignored = drop_ignored(a, b, ignore)
            text, same = verdict(a, b)
            all_same &= same
            for side, r in (("base", a), ("head", b)):
                if r.note:
                    text += f" ({side} {r.note[:100]})"
            compared = str(len(set(a.values) | set(b.values)))
            if ignored:
                compared += f" ({ignored} ignored)"
            rows.append((bench.name, compared, text, f"{a.seconds:.0f}", f"{b.seconds:.0f}"))
            print(f"  {bench.name}: {text} ({a.seconds:.0f} s / {b.seconds:.0f} s)", flush=True)
    finally:
        if args.keep:
            print(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    print()
    print("| benchmark | values | result | base s | head s |")
    print("| --- | ---: | --- | ---: | ---: |")
    for row in rows + not_run:
        print("| " + " | ".join(row) + " |")
    verdict_line = "same results" if all_same else "DIFFERENT results"
    print(f"\n{verdict_line}; {time.perf_counter() - started:.0f} s in all")
    return 0 if all_same else 1


if __name__ == "__main__":
    sys.exit(main())
