"""The seed's response-time promises, on the default demo company, cold and warm.

Loads the demo company as a user does (``aethercrown demo --tenant demo`` into a fresh SQLite
file, or ``--database-url``), then for each endpoint starts the real server
(``aethercrown serve`` — uvicorn — on a free loopback port), times the first request after the
start (cold), then ``--requests`` more (warm p50/p99), and stops the server. Each endpoint gets
its own start, so every cold figure is a first call in a new process; what an earlier endpoint
stored in the database (an analytics snapshot) stays, as it would in production. Dashboards
come first, so their cold figure is the first read after the demo load.

Goals (the seed's, ``shared/SEED_API.md``): health < 50 ms, budget < 500 ms, churn < 200 ms per
user, pricing < 100 ms; dashboard pages cold ≤ 1 s. An endpoint passes when both its cold time
and its warm p99 are within the goal (churn: per scored user).

    .venv/bin/python benchmarks/latency.py [--customers 2000] [--months 18] [--requests 30]
                                           [--database-url URL] [--churn-users 100]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    body: dict[str, Any] | None
    goal_ms: float
    per: int = 1  # the figure is divided by this (churn: per scored user)
    page: bool = False  # a dashboard page: signed in with the cookie, not the header


def load_demo(env: dict[str, str], customers: int, months: int) -> str:
    started = time.perf_counter()
    out = subprocess.run(
        [
            *(sys.executable, "-m", "aethercrown", "demo", "--tenant", "demo"),
            *("--customers", str(customers), "--months", str(months)),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    print(f"demo loaded in {time.perf_counter() - started:.1f} s", flush=True)
    return out.stdout.strip().splitlines()[-1]


def start_server(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aethercrown", "serve", "--port", str(port), "--no-migrate"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    # Generous: on a loaded machine a start (imports, app, first connection) takes a while.
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/livez", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.terminate()
    sys.exit("the server did not come up")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def timed_call(client: httpx.Client, endpoint: Endpoint) -> float:
    started = time.perf_counter()
    response = client.request(endpoint.method, endpoint.path, json=endpoint.body)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        sys.exit(f"{endpoint.name}: HTTP {response.status_code}: {response.text[:300]}")
    return elapsed


def measure(
    env: dict[str, str], key: str, endpoint: Endpoint, requests: int
) -> tuple[float, float, float]:
    proc, base = start_server(env)
    try:
        with httpx.Client(base_url=base, timeout=300, follow_redirects=False) as client:
            if endpoint.page:
                # Sign in as a browser does; the cookie carries the key from then on.
                target = endpoint.path
                signed = client.post(
                    "/console/login",
                    data={"key": key, "next": target},
                    headers={"Origin": base},  # a form POST from the console itself
                )
                if signed.status_code != 303 or "error" in signed.headers.get("location", ""):
                    sys.exit(f"sign-in for {target} failed: {signed.status_code}")
            else:
                client.headers["Authorization"] = f"Bearer {key}"
            cold = timed_call(client, endpoint)
            warm = sorted(timed_call(client, endpoint) for _ in range(requests))
    finally:
        stop_server(proc)
    p50 = statistics.median(warm)
    p99 = warm[min(len(warm) - 1, round(0.99 * (len(warm) - 1)))]
    return cold / endpoint.per, p50 / endpoint.per, p99 / endpoint.per


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--months", type=int, default=18)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--churn-users", type=int, default=100)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--only", default=None, help="measure the endpoints whose name has this")
    parser.add_argument(
        "--loaded",
        action="store_true",
        help="the database already holds the demo (tenant 'demo'): only mint a key for it",
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="aethercrown-latency-"))
    url = args.database_url or f"sqlite:///{workdir / 'demo.db'}"
    env = {**os.environ, "AETHERCROWN_DATABASE_URL": url}
    # The in-process automation runner would compete with the requests being timed (and
    # compute snapshots ahead of them): off, so a cold figure is the request path itself.
    env.setdefault("AETHERCROWN_RUN_AUTOMATION", "false")
    if args.loaded:
        mint = ("keys", "create", "--tenant", "demo", "--scope", "tenant:write")
        key = subprocess.run(
            [sys.executable, "-m", "aethercrown", *mint],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    else:
        subprocess.run(
            [sys.executable, "-m", "aethercrown", "migrate"],
            env=env,
            check=True,
            capture_output=True,
        )
        key = load_demo(env, args.customers, args.months)
    newest = range(args.customers - args.churn_users + 1, args.customers + 1)
    churn_ids = [f"cus_{i:05d}" for i in newest]
    endpoints = [
        Endpoint("GET /console (overview page)", "GET", "/console", None, 1000, page=True),
        Endpoint(
            "GET /console/investor (investor page)",
            "GET",
            "/console/investor",
            None,
            1000,
            page=True,
        ),
        Endpoint(
            "POST /api/v1/dashboard/executive/summary",
            "POST",
            "/api/v1/dashboard/executive/summary",
            {},
            1000,
        ),
        Endpoint(
            "GET /api/v1/investor/dashboard/live",
            "GET",
            "/api/v1/investor/dashboard/live",
            None,
            1000,
        ),
        Endpoint(
            "GET /api/v1/operational/health/check",
            "GET",
            "/api/v1/operational/health/check",
            None,
            50,
        ),
        Endpoint(
            "POST /api/v1/optimization/budget/optimize",
            "POST",
            "/api/v1/optimization/budget/optimize",
            {"total_budget": 100_000},
            500,
        ),
        Endpoint(
            f"POST /api/v1/optimization/churn/predict ({len(churn_ids)} customers, per user)",
            "POST",
            "/api/v1/optimization/churn/predict",
            {"customer_ids": churn_ids},
            200,
            per=len(churn_ids),
        ),
        Endpoint(
            "POST /api/v1/optimization/churn/predict (1 customer)",
            "POST",
            "/api/v1/optimization/churn/predict",
            {"customer_ids": churn_ids[-1:]},
            200,
        ),
        Endpoint(
            "POST /api/v1/revenue/pricing/calculate",
            "POST",
            "/api/v1/revenue/pricing/calculate",
            {"customer": churn_ids[-1]},
            100,
        ),
    ]
    rows = []
    for endpoint in endpoints:
        if args.only and args.only not in endpoint.name:
            continue
        cold, p50, p99 = measure(env, key, endpoint, args.requests)
        ok = cold <= endpoint.goal_ms and p99 <= endpoint.goal_ms
        rows.append((endpoint.name, cold, p50, p99, endpoint.goal_ms, ok))
        print(f"  {endpoint.name}: cold {cold:.1f} ms, p50 {p50:.1f}, p99 {p99:.1f}", flush=True)

    load = os.getloadavg()
    print(
        f"\ndemo company: {args.customers} customers, {args.months} months, {url.split(':')[0]};"
        f" {args.requests} warm requests each; load average {load[0]:.1f}"
    )
    print("| endpoint | cold ms | warm p50 ms | warm p99 ms | goal ms | pass |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for name, cold, p50, p99, goal, ok in rows:
        print(
            f"| `{name}` | {cold:,.1f} | {p50:,.1f} | {p99:,.1f} | < {goal:,.0f} | "
            f"{'yes' if ok else 'NO'} |"
        )


if __name__ == "__main__":
    main()
