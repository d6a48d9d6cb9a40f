"""Schemathesis over the whole OpenAPI document against a live server, with every check.

Serves AetherCrown as a user runs it (`aethercrown serve`, automation off) on a fresh database,
creates a tenant, and runs schemathesis twice with a fixed seed: once with an operator key (and
``X-Tenant`` naming the tenant), once with the tenant's own key. Prints, per run, the requests
sent, the operations tested and the failures by check; exits 1 if any check failed. Run by hand
(or by CI later), never by `make test`: a run takes minutes.

    .venv/bin/python benchmarks/reliability_fuzz.py [--database-url URL] [--max-examples 20]
        [--seed 20261202] [--keep-reports DIR] [--strict]

Every check runs at schemathesis' defaults except positive_data_acceptance, which also expects
the 400/422 answers the API gives schema-valid input on meaning (reliability_fuzz.toml says why);
``--strict`` drops that file.

``--database-url`` takes a PostgreSQL URL of a scratch database: its tables are dropped and
rebuilt first (``public`` schema), so never point it at data you keep.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

CHECKS = "all"
CONFIG = Path(__file__).with_name("reliability_fuzz.toml")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 600  # a loaded machine starts slowly
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    sys.exit(f"{url} did not come up")


def reset_postgres(url: str) -> None:
    """A scratch PostgreSQL database, created when missing and emptied."""
    base = make_url(url)
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        found = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": base.database}
        ).first()
        if found is None:
            conn.execute(text(f'CREATE DATABASE "{base.database}"'))
    admin.dispose()
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def prepare(base: str, admin: str) -> dict[str, Any]:
    """Rate limits lifted (the fuzz measures answers, not 429s) and one tenant to act for."""
    headers = {"Authorization": f"Bearer {admin}"}
    for tier in ("starter", "professional", "enterprise"):
        httpx.patch(
            f"{base}/api/v1/platform/tiers/{tier}",
            json={"requests_per_minute": 10_000_000},
            headers=headers,
        ).raise_for_status()
    response = httpx.post(
        f"{base}/api/v1/tenants/create",
        json={"name": "Fuzz", "slug": "fuzz", "tier": "enterprise"},
        headers=headers,
    )
    response.raise_for_status()
    return dict(response.json())


def summarise(ndjson: Path) -> dict[str, Any]:
    """Requests sent, operations tested and failures by check, from schemathesis' event log."""
    requests = 0
    operations: set[str] = set()
    failures: collections.Counter[str] = collections.Counter()
    examples: dict[str, list[str]] = collections.defaultdict(list)
    errors = 0
    for line in ndjson.read_text().splitlines():
        event = json.loads(line)
        (kind, body), *_ = event.items()
        if kind == "ScenarioFinished":
            recorder = body.get("recorder", {})
            requests += len(recorder.get("interactions", {}))
            label = recorder.get("label")
            if label:
                operations.add(label)
            for check_list in recorder.get("checks", {}).values():
                for check in check_list:
                    if str(check.get("status")).lower() == "failure":
                        name = check.get("name", "?")
                        failures[name] += 1
                        failure = check.get("failure_info", {}).get("failure", {})
                        if len(examples[name]) < 5:
                            message = str(failure.get("message", "")).replace("\n", " | ")
                            examples[name].append(f"{label}: {message}"[:300])
        elif kind == "NonFatalError":
            errors += 1
    return {
        "requests": requests,
        "operations": len(operations),
        "failures": dict(failures),
        "examples": dict(examples),
        "errors": errors,
    }


def run_schemathesis(
    base: str, headers: dict[str, str], args: argparse.Namespace, report: Path
) -> tuple[int, dict[str, Any]]:
    command = [str(Path(sys.executable).with_name("schemathesis"))]
    if not args.strict:
        command += ["--config-file", str(CONFIG)]
    command += [
        "run",
        f"{base}/openapi.json",
        "--checks",
        CHECKS,
        "--seed",
        str(args.seed),
        "--max-examples",
        str(args.max_examples),
        "--phases",
        args.phases,
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
        "--request-timeout",
        "30",
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    started = time.monotonic()
    log = report.with_suffix(".log")
    with log.open("w") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode
    summary = summarise(report)
    summary["seconds"] = round(time.monotonic() - started, 1)
    summary["log"] = str(log)
    return code, summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--max-examples", type=int, default=20)
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--keep-reports", default=None, help="directory for the event logs")
    parser.add_argument(
        "--phases",
        default="examples,coverage,fuzzing,stateful",
        help="schemathesis phases (the quick mode of `make reliability` runs examples,fuzzing)",
    )
    parser.add_argument(
        "--keys",
        default="tenant,operator",
        choices=["tenant,operator", "tenant", "operator"],
        help="which keys to run schemathesis with, in this order",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help=f"every check at schemathesis' defaults (without {CONFIG.name})",
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="aethercrown-fuzz-"))
    reports = Path(args.keep_reports) if args.keep_reports else tmp
    reports.mkdir(parents=True, exist_ok=True)
    url = args.database_url or f"sqlite:///{tmp / 'fuzz.db'}"
    if url.startswith("postgres"):
        reset_postgres(url)
    admin = "aca_fuzz_" + os.urandom(24).hex()
    port = free_port()
    env = {
        **os.environ,
        "AETHERCROWN_DATABASE_URL": url,
        "AETHERCROWN_BOOTSTRAP_ADMIN_KEY": admin,
        "AETHERCROWN_DATA_DIR": str(tmp),
        "AETHERCROWN_RUN_AUTOMATION": "false",
        "AETHERCROWN_LOG_LEVEL": "WARNING",
    }
    server_log = (reports / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "aethercrown", "serve", "--port", str(port)],
        env=env,
        stdout=server_log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    results = {}
    codes = []
    try:
        wait_ready(f"{base}/readyz", server)
        # The first /openapi.json builds the document (134 operations): 17 s on a busy machine,
        # past schemathesis' 10 s loading timeout, which then ran nothing. Built once here.
        httpx.get(f"{base}/openapi.json", timeout=300).raise_for_status()
        tenant = prepare(base, admin)
        # The tenant's own key first: the operator pass may rotate or revoke the tenant's keys
        # (auto-rotate, revoke), which would leave a later tenant pass answering only 401.
        passes = {
            "tenant": {"Authorization": f"Bearer {tenant['api_key']}"},
            "operator": {"Authorization": f"Bearer {admin}", "X-Tenant": tenant["slug"]},
        }
        for name in args.keys.split(","):
            headers = passes[name]
            code, results[name] = run_schemathesis(base, headers, args, reports / f"{name}.ndjson")
            codes.append(code)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        server_log.close()

    backend = url.split(":", 1)[0].split("+")[0]
    print(
        f"schemathesis, checks={CHECKS}, seed={args.seed}, max-examples={args.max_examples}, "
        f"config: {'defaults' if args.strict else CONFIG.name}; database: {backend}"
    )
    print(f"{'key':<10}{'operations':>12}{'requests':>10}{'failures':>10}{'errors':>8}{'s':>8}")
    for name, summary in results.items():
        print(
            f"{name:<10}{summary['operations']:>12}{summary['requests']:>10}"
            f"{sum(summary['failures'].values()):>10}{summary['errors']:>8}{summary['seconds']:>8}"
        )
    for name, summary in results.items():
        for check, count in sorted(summary["failures"].items()):
            print(f"  {name}: {check}: {count}")
            for example in summary["examples"][check]:
                print(f"      {example}")
    print(f"event logs and schemathesis output: {reports}")
    failed = any(sum(s["failures"].values()) or s["errors"] for s in results.values())
    sys.exit(1 if failed or any(codes) else 0)


if __name__ == "__main__":
    main()
