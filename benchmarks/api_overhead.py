"""Authenticated GET /api/v1/tenants/{id} against a bare FastAPI endpoint and two floors
(benchmarks/floor_app.py: its auth dependency as a plain ``def``, and as ``async def``, the fair
floor), served the same way.

All run under uvicorn (one process, same flags) on loopback and are loaded by wrk with 50
connections in the same run; prints req/s and p99 for each and the ratios, then the p99 of the
fair floor and of the platform at half of their saturation rate (16 connections, wrk's delay
between requests). wrk shares the machine's cores with the servers: the load average is
printed with the figures. With ``--workers 2``
both are then served again by two worker processes each (``aethercrown serve --workers 2``,
``uvicorn --workers 2``) and measured the same way: extra rows, the one-process rows stay.

    apt-get install wrk   # once
    .venv/bin/python benchmarks/api_overhead.py [--seconds 10] [--database-url URL] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from aethercrown.serving import HTTP_PROTOCOL, LOOP

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    # A start takes minutes on a busy shared machine.
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    sys.exit(f"{url} did not come up")


def wrk(
    url: str, seconds: int, headers: dict[str, str], connections: int = 50, rate: float = 0
) -> tuple[float, float]:
    """(req/s, p99 ms). With ``rate``, each connection waits between its requests so that all
    together send about ``rate`` requests a second (wrk's per-request delay: a closed loop with
    think time, wrk has no open loop); otherwise as fast as the server answers."""
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    for k, v in headers.items():
        args[1:1] = ["-H", f"{k}: {v}"]
    script = None
    if rate:
        delay_ms = max(1, round(connections * 1000 / rate))
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)  # noqa: SIM115
        script.write(f"function delay()\n  return {delay_ms}\nend\n")
        script.close()
        args[1:1] = ["-s", script.name]
    try:
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    finally:
        if script is not None:
            os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99 is not None, out
    value, unit = float(p99.group(1)), p99.group(2)
    p99_ms = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        sys.exit(f"{non2xx.group(1)} non-2xx responses from {url}; the figures would be wrong")
    return rps, p99_ms


def start_servers(
    env: dict[str, str], workers: int
) -> tuple[subprocess.Popen[bytes], int, dict[str, tuple[subprocess.Popen[bytes], int]]]:
    """`aethercrown serve` as a user runs it, and the bare and floor apps under the same
    uvicorn flags (the floor app is started once the tenant exists: see measure)."""
    app_proc, app_port = start_platform(env, workers)
    return app_proc, app_port, {"bare": start_plain("bare_app", env, workers)}


def start_platform(env: dict[str, str], workers: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    args = ["serve", "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "aethercrown", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, port


def start_plain(
    module: str, env: dict[str, str], workers: int
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            f"{module}:app",
            "--port",
            str(port),
            "--workers",
            str(workers),
            # The same loop and HTTP protocol as `aethercrown serve` (aethercrown.serving).
            "--loop",
            LOOP,
            "--http",
            HTTP_PROTOCOL,
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT / "benchmarks",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, port


def stop(*procs: subprocess.Popen[bytes]) -> None:
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _median(values: list[tuple[float, float]]) -> tuple[float, float]:
    """The median req/s and the median p99 of several runs."""
    return statistics.median(v[0] for v in values), statistics.median(v[1] for v in values)


def measure(
    env: dict[str, str],
    admin: str,
    workers: int,
    seconds: int,
    tenant: dict[str, str] | None,
    rounds: int,
    baseline_src: str | None = None,
) -> tuple[dict[str, str], dict[str, tuple[float, float]]]:
    """Serve the apps with ``workers`` processes; the tenant is created on the first call.
    Returns the tenant and (req/s, p99 ms) of the bare, floor and authenticated endpoints."""
    app_proc, app_port, plain = start_servers(env, workers)
    try:
        base = f"http://127.0.0.1:{app_port}"
        wait_ready(f"{base}/livez", app_proc)
        bare_proc, bare_port = plain["bare"]
        wait_ready(f"http://127.0.0.1:{bare_port}/bare/x", bare_proc)
        h = {"Authorization": f"Bearer {admin}"}
        if tenant is None:
            # Lift the tier's rate limit so the benchmark measures work, not 429s.
            httpx.patch(
                f"{base}/api/v1/platform/tiers/enterprise",
                json={"requests_per_minute": 10_000_000},
                headers=h,
            ).raise_for_status()
            tenant = httpx.post(
                f"{base}/api/v1/tenants/create",
                json={"name": "Bench", "slug": "bench", "tier": "enterprise"},
                headers=h,
            ).json()
        auth = {"Authorization": f"Bearer {tenant['api_key']}"}
        floor_env = {**env, "FLOOR_TENANT_ID": tenant["id"], "FLOOR_KEY": tenant["api_key"]}
        plain["floor"] = start_plain("floor_app", floor_env, workers)
        floor_proc, floor_port = plain["floor"]
        floor = f"http://127.0.0.1:{floor_port}/floor/{tenant['id']}"
        floor_async = f"http://127.0.0.1:{floor_port}/floor-async/{tenant['id']}"
        wait_ready(floor, floor_proc)
        baseline = None
        if baseline_src:
            # Another version of the platform (e.g. main's src) on the same database, measured
            # in the same rounds: what a change gained, under the same load.
            base_env = {**env, "PYTHONPATH": baseline_src}
            base_proc, base_port = start_platform(base_env, workers)
            plain["baseline"] = (base_proc, base_port)
            baseline = f"http://127.0.0.1:{base_port}/api/v1/tenants/{tenant['id']}"
            wait_ready(f"http://127.0.0.1:{base_port}/livez", base_proc)
            assert httpx.get(baseline, headers=auth).status_code == 200
            wrk(baseline, 2, auth)
        target = f"{base}/api/v1/tenants/{tenant['id']}"
        assert httpx.get(target, headers=auth).status_code == 200
        assert httpx.get(floor, headers=auth).status_code == 200
        assert httpx.get(floor_async, headers=auth).status_code == 200
        wrk(target, 2, auth)  # warm-up
        wrk(floor, 2, auth)
        wrk(floor_async, 2, auth)
        wrk(f"http://127.0.0.1:{bare_port}/bare/x", 2, {})
        # Alternated, round after round, on the same connections count: the machine is shared
        # and its load drifts, so each round compares the endpoints under the same conditions;
        # the medians of the rounds are reported.
        urls = {
            "bare": (f"http://127.0.0.1:{bare_port}/bare/{tenant['id']}", {}),
            "floor": (floor, auth),
            "floor_async": (floor_async, auth),
            "app": (target, auth),
        }
        if baseline is not None:
            urls["baseline"] = (baseline, auth)
        runs: dict[str, list[tuple[float, float]]] = {kind: [] for kind in urls}
        print(f"load average before the rounds: {_load()}", flush=True)
        for _ in range(rounds):
            for kind, (url, headers) in urls.items():
                runs[kind].append(wrk(url, seconds, headers))
        figures = {kind: _median(values) for kind, values in runs.items()}
        # p99 at half of each one's own saturation rate, 16 connections, alternated too.
        for _ in range(rounds):
            for kind, url in (("floor_async", floor_async), ("app", target)):
                runs.setdefault(f"{kind}_half", []).append(
                    wrk(url, seconds, auth, connections=16, rate=figures[kind][0] / 2)
                )
        for kind in ("floor_async_half", "app_half"):
            figures[kind] = _median(runs[kind])
        pairs = zip(runs["app"], runs["floor_async"], strict=True)
        shares = ", ".join(f"{app[0] / fair[0]:.1%}" for app, fair in pairs)
        print(f"per round, authenticated read / fair floor: {shares}", flush=True)
        if "baseline" in runs:
            pairs = zip(runs["baseline"], runs["floor_async"], strict=True)
            shares = ", ".join(f"{base[0] / fair[0]:.1%}" for base, fair in pairs)
            print(f"per round, --baseline-src / fair floor: {shares}", flush=True)
    finally:
        stop(app_proc, *(proc for proc, _ in plain.values()))
    return tenant, figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument(
        "--baseline-src",
        default=None,
        help="also serve the platform from this src directory (e.g. main's) in the same rounds",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternated rounds; medians are reported"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="also measure both apps with this many processes"
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")

    tmp = Path(tempfile.mkdtemp(prefix="aethercrown-bench-"))
    url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    admin = "aca_bench_" + os.urandom(24).hex()
    env = {
        **os.environ,
        "AETHERCROWN_DATABASE_URL": url,
        "AETHERCROWN_BOOTSTRAP_ADMIN_KEY": admin,
        "AETHERCROWN_DATA_DIR": str(tmp),
        "AETHERCROWN_RUN_AUTOMATION": "false",
    }
    rows = []
    tenant, figures = measure(env, admin, 1, args.seconds, None, args.rounds, args.baseline_src)
    rows.append((1, figures))
    if args.workers > 1:
        _, figures = measure(
            env, admin, args.workers, args.seconds, tenant, args.rounds, args.baseline_src
        )
        rows.append((args.workers, figures))

    backend = url.split(":", 1)[0]
    load = _load()
    print(
        f"database: {backend}; wrk -t2 -c50 -d{args.seconds}s, {args.rounds} alternated rounds "
        "(medians); uvicorn, same flags for all; "
        f"wrk shares the machine's {os.cpu_count()} cores with the server; load average {load}"
    )
    print(f"{'endpoint':<52}{'processes':>10}{'req/s':>10}{'p99 ms':>10}")
    names = {
        "bare": "bare FastAPI GET /bare/{id}",
        "floor": "floor, def auth (thread hop) + sqlite3 read",
        "floor_async": "fair floor, async def auth + sqlite3 read",
        "app": "authenticated GET /api/v1/tenants/{id}",
        "baseline": "the same, from --baseline-src",
        "floor_async_half": "fair floor at half its saturation, 16 conns",
        "app_half": "authenticated read at half its saturation, 16 conns",
    }
    for workers, figures in rows:
        for kind, name in names.items():
            if kind not in figures:
                continue
            rps, p99 = figures[kind]
            print(f"{name:<52}{workers:>10}{rps:>10.0f}{p99:>10.2f}")
    for workers, figures in rows:
        bare_rps = figures["bare"][0]
        fair_rps = figures["floor_async"][0]
        app_rps, app_p99 = figures["app"]
        print(
            f"{workers} process(es): the authenticated read does {app_rps / fair_rps:.1%} of the "
            f"fair floor (goal >= 80%), {app_rps / bare_rps:.1%} of bare; p99 at half "
            f"saturation {figures['app_half'][1]:.2f} ms (goal <= 10), at saturation "
            f"{app_p99:.2f} ms. The fair floor: {fair_rps / bare_rps:.1%} of bare; the def "
            f"floor {figures['floor'][0] / bare_rps:.1%}"
        )
        if "baseline" in figures:
            print(
                f"{workers} process(es): --baseline-src does {figures['baseline'][0]:.0f} req/s, "
                f"{figures['baseline'][0] / fair_rps:.1%} of the fair floor; this tree "
                f"{app_rps / figures['baseline'][0]:.2f}x of it"
            )


if __name__ == "__main__":
    main()
