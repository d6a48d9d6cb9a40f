"""The web console on the default demo company (2,000 customers × 18 months with its replayed
past, as ``aethercrown serve --demo`` loads it): every page's server time, warm, and the first
paint of the overview in headless Chromium on loopback.

Server time: the app runs in its own process (uvicorn on a free loopback port, the way
``aethercrown serve`` runs it); this process signs in and requests each page and drill-down over
real HTTP on one kept-alive connection, sequentially: one warm-up request, then ``--requests``
timed ones. Each page's time is the app's own, read from the ``Server-Timing: app;dur=…``
header (from the request reaching the app to its response), beside the round trip seen by the
client; p50 and p99 in ms (a version without the header is timed by the round trip).
First paint: Debian's Chromium through playwright opens the overview
``--paints`` times after a warm-up; the browser's own first-contentful-paint and the time until
every chart has drawn, median and worst. Goals (issue 19): p99 ≤ 100 ms per page, first paint
≤ 1 s. Prints the load average (the machine may be shared). Run by hand.

    .venv/bin/python benchmarks/web.py [--requests 50] [--paints 5] [--database-url URL]
        [--customers N] [--months M] [--key KEY] [--no-browser] [--only SUBSTRING]

With ``--key`` (the tenant key printed when that database's demo was loaded) the database named
by ``--database-url`` is timed as it is, without loading a demo: the same data can then be
timed by two versions of the code (``PYTHONPATH=<tree>/src``). A page a version does not have is
reported as absent.
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
from pathlib import Path

import httpx

from aethercrown.core.numbers import percentiles
from aethercrown.db import migrate
from aethercrown.db.engine import make_engine, make_session_factory
from aethercrown.simulate import SimConfig
from aethercrown.simulate.service import load_demo

PAGES = (
    "/console",
    "/console?range=24m",
    "/console?range=6m&plan={plan}",
    "/console/customers?month={month}&movement=paying",
    "/console/customers?month={month}&movement=new",
    "/console/customers?month={month}&movement=churn",
    "/console/customers?month={month}&movement=expansion",
    "/console/churn",
    "/console/churn/scores?month={scored}",
    "/console/churn/campaigns",
    "/console/budget",
    "/console/experiments",
    "/console/usage",
    "/console/usage/renewals",
    "/console/content",
    "/console/onboarding",
    "/console/operations",
    "/console/alerts",
    "/console/investor",
    "/console/public",
    "/console/login",
)
CHROMIUM = "/usr/bin/chromium"


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The app in its own process, as ``aethercrown serve`` runs it (no background work)."""
    port = free_port()
    env = {
        **os.environ,
        "AETHERCROWN_DATABASE_URL": url,
        "AETHERCROWN_DATA_DIR": str(data_dir),
        "AETHERCROWN_LOG_LEVEL": "WARNING",
        "AETHERCROWN_RUN_AUTOMATION": "false",
    }
    env.pop("AETHERCROWN_REDIS_URL", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "aethercrown.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/livez", timeout=1).status_code == 200:
                return server, base
        except httpx.TransportError:
            time.sleep(0.2)
    server.terminate()
    raise TimeoutError("the app did not start")


def sign_in(client: httpx.Client, key: str) -> None:
    response = client.post(
        "/console/login",
        data={"key": key, "next": "/console"},
        headers={"origin": str(client.base_url).rstrip("/")},
        follow_redirects=False,
    )
    assert response.status_code == 303 and "reason=" not in response.headers["location"]


def app_ms(response: httpx.Response, trip_ms: float) -> float:
    """The app's own time from its ``Server-Timing: app;dur=…`` header; a version without the
    header is timed by the round trip (a little more: the loopback and the client)."""
    for part in response.headers.get("server-timing", "").split(","):
        name, _, dur = part.strip().partition(";dur=")
        if name == "app":
            return float(dur)
    return trip_ms


def server_times(client: httpx.Client, values: dict[str, str], requests: int, only: str) -> None:
    print(f"\n{'page':<54} {'first ms':>9} {'p50 ms':>8} {'p99 ms':>8} {'trip p99':>9} {'KB':>6}")
    over = []
    for template in PAGES:
        path = template.format(**values)
        if only and only not in path:
            continue
        began = time.perf_counter()
        first = client.get(path)
        first_ms = app_ms(first, (time.perf_counter() - began) * 1000)
        if first.status_code == 404:
            print(f"{path:<54} {'absent':>9}")
            continue
        assert first.status_code == 200, (path, first.status_code, first.text[:300])
        samples, trips = [], []
        for _ in range(requests):
            began = time.perf_counter()
            response = client.get(path)
            trips.append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200
            samples.append(app_ms(response, trips[-1]))
        p50, p99 = percentiles(samples, 50, 99, digits=1)
        (trip99,) = percentiles(trips, 99, digits=1)
        if p99 > 100:
            over.append(path)
        print(
            f"{path:<54} {first_ms:>9.1f} {p50:>8.1f} {p99:>8.1f} {trip99:>9.1f} "
            f"{len(first.content) / 1024:>6.0f}"
        )
    print(f"\npages over the 100 ms p99 goal: {', '.join(over) if over else 'none'}")


def first_paint(base: str, key: str, paints: int) -> None:
    from playwright.sync_api import sync_playwright

    fcp, drawn = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(f"{base}/console/login")
        page.fill("#key", key)
        page.click("#sign-in")
        page.wait_for_url(f"{base}/console")
        for i in range(paints + 1):
            fresh = context.new_page()
            began = time.perf_counter()
            fresh.goto(f"{base}/console")
            fresh.wait_for_function(
                "() => [...document.querySelectorAll('.chart')]"
                ".every(c => c.dataset.rendered === 'true')"
            )
            charts_ms = (time.perf_counter() - began) * 1000
            paint = fresh.evaluate(
                "() => (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime"
            )
            fresh.close()
            if i:  # the first opening warms the server and the browser's cache
                fcp.append(float(paint))
                drawn.append(charts_ms)
        browser.close()
    print(
        f"\noverview in Chromium ({paints} openings): first contentful paint median "
        f"{statistics.median(fcp):.0f} ms, worst {max(fcp):.0f} ms; every chart drawn median "
        f"{statistics.median(drawn):.0f} ms, worst {max(drawn):.0f} ms"
    )


def page_values(client: httpx.Client) -> dict[str, str]:
    """The month the overview shows, a month with churn scores and a plan, for the drill-downs."""
    overview = client.get("/console").text
    month = overview.split("Figures for ", 1)[1][:7]
    churn = client.get("/console/churn").text
    scored = churn.split("/console/churn/scores?month=", 1)
    plans = overview.split('<option value="">All plans</option>', 1)[1].split("</select>")[0]
    plan = plans.split('<option value="', 1)
    return {
        "month": month,
        "scored": scored[1][:7] if len(scored) > 1 else month,
        "plan": plan[1].split('"', 1)[0] if len(plan) > 1 else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--paints", type=int, default=5)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--customers", type=int, default=None)
    parser.add_argument("--months", type=int, default=None)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--only", default="", help="time only the pages containing this")
    parser.add_argument("--key", default=None, help="time --database-url as it is (no load)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="aethercrown-web-bench-"))
    url = args.database_url or f"sqlite:///{tmp / 'web.db'}"
    if args.key:
        if not args.database_url:
            parser.error("--key needs --database-url")
        key = args.key
        print(f"database: {url.split('://')[0]} as it is; load average {load_average()}")
    else:
        migrate.upgrade(url)
        config = SimConfig()
        if args.customers or args.months:
            config = SimConfig(
                customers=args.customers or config.customers, months=args.months or config.months
            )
        engine = make_engine(url)
        began = time.perf_counter()
        result = load_demo(make_session_factory(engine), "demo", config)
        engine.dispose()
        key = result.api_key or ""
        print(
            f"database: {url.split('://')[0]}; demo of {config.customers} customers × "
            f"{config.months} months loaded (with its replay) in "
            f"{time.perf_counter() - began:.0f} s; tenant key {key}; load average before "
            f"timing {load_average()}"
        )
    server, base = start_server(url, tmp / "data")
    try:
        with httpx.Client(base_url=base, timeout=120) as client:
            sign_in(client, key)
            server_times(client, page_values(client), args.requests, args.only)
        if not args.no_browser:
            first_paint(base, key, args.paints)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"\nload average after: {load_average()}")


if __name__ == "__main__":
    main()
