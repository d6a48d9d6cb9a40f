"""Concurrent clients mixing read and write routes against a real server: how many answers are
2xx, 4xx, 503 and other 5xx, and the latency percentiles.

    .venv/bin/python benchmarks/concurrency.py --clients 16 --requests 20
    .venv/bin/python benchmarks/concurrency.py --postgres postgresql://postgres@127.0.0.1:5432/test_a
    .venv/bin/python benchmarks/concurrency.py --src /other/checkout/src   # another version

``aethercrown serve`` runs in a subprocess on a free port (one uvicorn worker, automation off)
over a fresh SQLite file, or over the PostgreSQL database given, which is wiped first: never
point it at real data. ``--src`` serves another checkout's code with this same workload, to
compare versions like with like. Each client is a thread with its own httpx client and its own
tenant (so per-key rate limits do not interfere), and sends ``--requests`` requests cycling
through the mix below, starting at a different place per client. Figures are printed; the
machine is shared and noisy, so compare runs made one after the other.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

API = "/api/v1"


@dataclass
class Client:
    """One tenant's view of the server: its key, its experiment, its customers."""

    http: httpx.Client
    tenant_id: str
    experiment_id: str
    customers: list[str]
    serial: int = 0

    def next(self) -> int:
        self.serial += 1
        return self.serial


def _settings(c: Client, n: int) -> httpx.Response:
    body = {"enabled": n % 2 == 0, "figures": {}}
    return c.http.put(f"{API}/investor/metrics/public/settings", json=body)


def _assign(c: Client, n: int) -> httpx.Response:
    return c.http.post(f"{API}/content/ab-test/{c.experiment_id}/assign", json={"user_id": f"u{n}"})


def _track(c: Client, n: int) -> httpx.Response:
    event = {"event_id": uuid.uuid4().hex, "user_id": f"u{n % 7}", "kind": "conversion"}
    return c.http.post(f"{API}/content/ab-test/{c.experiment_id}/track", json=event)


def _results(c: Client, n: int) -> httpx.Response:
    return c.http.get(f"{API}/content/ab-test/{c.experiment_id}/results")


def _predict(c: Client, n: int) -> httpx.Response:
    ids = [c.customers[(n + k) % len(c.customers)] for k in range(3)]
    return c.http.post(f"{API}/optimization/churn/predict", json={"customer_ids": ids})


def _rename(c: Client, n: int) -> httpx.Response:
    return c.http.patch(f"{API}/tenants/{c.tenant_id}", json={"name": f"Bench {n}"})


def _tenant(c: Client, n: int) -> httpx.Response:
    return c.http.get(f"{API}/tenants/{c.tenant_id}")


def _public_settings(c: Client, n: int) -> httpx.Response:
    return c.http.get(f"{API}/investor/metrics/public/settings")


def _list_customers(c: Client, n: int) -> httpx.Response:
    return c.http.get(f"{API}/data/customers", params={"limit": 20})


def _upsert_customer(c: Client, n: int) -> httpx.Response:
    ident = c.customers[n % len(c.customers)]
    row = {"external_id": ident, "name": f"Customer {n}", "signup_date": "2025-01-15"}
    return c.http.post(f"{API}/data/customers", json=[row])


def _health(c: Client, n: int) -> httpx.Response:
    return c.http.get(f"{API}/operational/health/check")


def _kpis(c: Client, n: int) -> httpx.Response:
    return c.http.get(f"{API}/investor/kpis")


MIX: dict[str, Callable[[Client, int], httpx.Response]] = {
    "PUT investor/metrics/public/settings": _settings,
    "POST ab-test/{id}/assign": _assign,
    "POST ab-test/{id}/track": _track,
    "GET ab-test/{id}/results": _results,
    "POST churn/predict": _predict,
    "PATCH tenants/{id}": _rename,
    "GET tenants/{id}": _tenant,
    "GET investor/metrics/public/settings": _public_settings,
    "GET data/customers": _list_customers,
    "POST data/customers": _upsert_customer,
    "GET operational/health/check": _health,
    "GET investor/kpis": _kpis,
}


@dataclass
class Tally:
    """Outcomes by status class and by route, and every latency in seconds."""

    classes: Counter[str] = field(default_factory=Counter)
    by_route: dict[str, Counter[str]] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, route: str, status: int | None, seconds: float, detail: str = "") -> None:
        kind = status_class(status)
        with self.lock:
            self.classes[kind] += 1
            self.by_route.setdefault(route, Counter())[kind] += 1
            self.latencies.append(seconds)
            if kind in ("503", "5xx", "error") and len(self.failures) < 10:
                self.failures.append(f"{route}: {status} {detail[:200]}")

    @property
    def errors(self) -> int:
        return self.classes["503"] + self.classes["5xx"] + self.classes["error"]


def status_class(status: int | None) -> str:
    if status is None:
        return "error"  # no answer at all (connection refused, timed out)
    if status == 503:
        return "503"
    return f"{status // 100}xx"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def prepare(base: str, admin_key: str, clients: int, customers: int = 30) -> list[Client]:
    """One enterprise tenant per client, with customers and a running A/B test."""
    admin = httpx.Client(base_url=base, headers=_bearer(admin_key), timeout=60)
    # Rate limits are not what is measured: lift the tier's so that no request is refused.
    admin.patch(f"{API}/platform/tiers/enterprise", json={"requests_per_minute": 10**6})
    out = []
    for i in range(clients):
        slug = f"bench-{i}-{uuid.uuid4().hex[:6]}"
        created = admin.post(
            f"{API}/tenants/create", json={"name": slug, "slug": slug, "tier": "enterprise"}
        )
        created.raise_for_status()
        body = created.json()
        http = httpx.Client(base_url=base, headers=_bearer(body["api_key"]), timeout=60)
        ids = [f"cus_{i}_{k:03d}" for k in range(customers)]
        rows = [
            {"external_id": ident, "name": f"Customer {k}", "signup_date": "2025-01-15"}
            for k, ident in enumerate(ids)
        ]
        http.post(f"{API}/data/customers", json=rows).raise_for_status()
        experiment = http.post(
            f"{API}/content/ab-test/create",
            json={"name": f"Headline {i}", "variants": [{"key": "control"}, {"key": "bold"}]},
        )
        experiment.raise_for_status()
        out.append(Client(http, body["id"], experiment.json()["id"], ids))
    admin.close()
    return out


def run_mix(clients: list[Client], requests_per_client: int) -> tuple[Tally, float]:
    """Every client sends its requests at once (a barrier starts them together); returns the
    tally and the wall time."""
    tally = Tally()
    routes = list(MIX.items())
    start = threading.Barrier(len(clients) + 1)

    def work(index: int, client: Client) -> None:
        start.wait()
        for k in range(requests_per_client):
            route, call = routes[(index + k) % len(routes)]
            began = time.perf_counter()
            try:
                response = call(client, client.next())
                status: int | None = response.status_code
                detail = response.text if response.status_code >= 500 else ""
            except httpx.HTTPError as exc:
                status, detail = None, f"{type(exc).__name__}: {exc}"
            tally.add(route, status, time.perf_counter() - began, detail)

    threads = [
        threading.Thread(target=work, args=(i, c), name=f"client-{i}")
        for i, c in enumerate(clients)
    ]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return tally, time.perf_counter() - began


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


ADMIN_LABEL = "operator admin key"


@contextmanager
def serving(
    database_url: str, data_dir: Path, src: Path | None = None
) -> Iterator[tuple[str, str]]:
    """``aethercrown serve`` on a free port; yields its base URL and the admin key it printed."""
    port = free_port()
    env = {
        **os.environ,
        "AETHERCROWN_DATABASE_URL": database_url,
        "AETHERCROWN_DATA_DIR": str(data_dir),
        "AETHERCROWN_RUN_AUTOMATION": "false",
        "AETHERCROWN_LOG_LEVEL": "ERROR",
    }
    env.pop("AETHERCROWN_REDIS_URL", None)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen(
        [sys.executable, "-m", "aethercrown", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        admin_key = _admin_key_from_banner(proc)
        yield f"http://127.0.0.1:{port}", admin_key
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _admin_key_from_banner(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        label, _, value = line.strip().partition(":")
        if label == ADMIN_LABEL and value.strip():
            return value.split()[0]
    raise RuntimeError(f"serve ended (exit {proc.poll()}) without printing an admin key")


def wipe_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def report(label: str, tally: Tally, wall: float, clients: int, requests: int) -> None:
    total = sum(tally.classes.values())
    print(f"\n{label}: {clients} clients x {requests} mixed requests = {total} in {wall:.1f} s")
    print(
        f"  2xx {tally.classes['2xx']}  4xx {tally.classes['4xx']}  503 {tally.classes['503']}  "
        f"other 5xx {tally.classes['5xx']}  no answer {tally.classes['error']}"
    )
    print(
        f"  latency p50 {percentile(tally.latencies, 0.50) * 1000:.0f} ms  "
        f"p99 {percentile(tally.latencies, 0.99) * 1000:.0f} ms  "
        f"max {max(tally.latencies, default=0) * 1000:.0f} ms"
    )
    width = max(len(r) for r in tally.by_route)
    for route, counts in sorted(tally.by_route.items()):
        shown = "  ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        print(f"    {route:<{width}}  {shown}")
    for failure in tally.failures:
        print(f"  ! {failure}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=20, help="per client")
    parser.add_argument("--postgres", help="also run on this PostgreSQL database (wiped)")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--src", type=Path, help="serve this checkout's src/ instead")
    args = parser.parse_args(argv)
    print(f"server code: {args.src or 'this checkout'}; load average {os.getloadavg()[0]:.1f}")
    targets: list[tuple[str, Callable[[Path], str]]] = []
    if not args.no_sqlite:
        targets.append(("SQLite", lambda tmp: f"sqlite:///{tmp / 'bench.db'}"))
    if args.postgres:
        pg_url: str = args.postgres
        targets.append(("PostgreSQL", lambda tmp: pg_url))
    for label, url_for in targets:
        with tempfile.TemporaryDirectory() as tmp_dir:
            tmp = Path(tmp_dir)
            url = url_for(tmp)
            if label == "PostgreSQL":
                wipe_postgres(url)
            with serving(url, tmp / "data", args.src) as (base, admin_key):
                clients = prepare(base, admin_key, args.clients)
                tally, wall = run_mix(clients, args.requests)
                for client in clients:
                    client.http.close()
            report(label, tally, wall, args.clients, args.requests)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
