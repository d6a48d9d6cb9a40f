"""The web console on the default demo company (2,000 customers × 18 months with its replayed
past, as ``aethercrown serve --demo`` loads it): every page's server time, warm, and the first
paint of the overview in headless Chromium on loopback.

Server time: each page requested in-process (FastAPI TestClient, signed in with a session
cookie, sequential), one warm-up request, then ``--requests`` timed ones; p50 and p99 in ms.
First paint: uvicorn on a free loopback port, Debian's Chromium through playwright, the
overview opened ``--paints`` times after a warm-up; the browser's own first-contentful-paint
and the time until every chart has drawn, median and worst. Goals (issue 19): p99 ≤ 100 ms per
page, first paint ≤ 1 s. Prints the load average (the machine may be shared). Run by hand.

    .venv/bin/python benchmarks/web.py [--requests 50] [--paints 5] [--database-url URL]
        [--customers N] [--months M] [--key KEY]

With ``--key`` (the tenant key printed when that database's demo was loaded) the database named
by ``--database-url`` is timed as it is, without loading a demo: the same data can then be
timed by two versions of the code. A page a version does not have is reported as absent.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from fastapi.testclient import TestClient

from aethercrown.app import create_app
from aethercrown.core.numbers import percentiles
from aethercrown.db import migrate
from aethercrown.db.engine import make_engine, make_session_factory
from aethercrown.settings import Settings
from aethercrown.simulate import SimConfig
from aethercrown.simulate.service import load_demo

PAGES = (
    "/console",
    "/console?range=24m",
    "/console/customers?month={month}&movement=paying",
    "/console/churn",
    "/console/churn/scores?month={month}",
    "/console/churn/campaigns",
    "/console/budget",
    "/console/experiments",
    "/console/usage",
    "/console/content",
    "/console/operations",
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


def sign_in(client: TestClient, key: str) -> None:
    response = client.post(
        "/console/login",
        data={"key": key, "next": "/console"},
        headers={"origin": str(client.base_url)},
        follow_redirects=False,
    )
    assert response.status_code == 303 and "reason=" not in response.headers["location"]


def server_times(client: TestClient, month: str, requests: int) -> None:
    print(f"\n{'page':<52} {'first ms':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for template in PAGES:
        path = template.format(month=month)
        began = time.perf_counter()
        first = client.get(path)
        first_ms = (time.perf_counter() - began) * 1000
        if first.status_code == 404:
            print(f"{path:<52} {'absent':>9}")
            continue
        assert first.status_code == 200, (path, first.status_code, first.text[:300])
        samples = []
        for _ in range(requests):
            began = time.perf_counter()
            response = client.get(path)
            samples.append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200
        p50, p99 = percentiles(samples, 50, 99, digits=1)
        print(f"{path:<52} {first_ms:>9.1f} {p50:>8.1f} {p99:>8.1f}")


def first_paint(settings: Settings, key: str, paints: int) -> None:
    from playwright.sync_api import sync_playwright

    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    fcp, drawn = [], []
    try:
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
                    "() => (performance.getEntriesByName('first-contentful-paint')[0]"
                    " || {}).startTime"
                )
                fresh.close()
                if i:  # the first opening warms the server and the browser's cache
                    fcp.append(float(paint))
                    drawn.append(charts_ms)
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    print(
        f"\noverview in Chromium ({paints} openings): first contentful paint median "
        f"{statistics.median(fcp):.0f} ms, worst {max(fcp):.0f} ms; every chart drawn median "
        f"{statistics.median(drawn):.0f} ms, worst {max(drawn):.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--paints", type=int, default=5)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--customers", type=int, default=None)
    parser.add_argument("--months", type=int, default=None)
    parser.add_argument("--no-browser", action="store_true")
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
            f"{time.perf_counter() - began:.0f} s; load average before timing {load_average()}"
        )
    settings = Settings(
        database_url=url,
        data_dir=tmp / "data",
        log_level="WARNING",
        redis_url=None,
        run_automation=False,
    )
    with TestClient(create_app(settings)) as client:
        sign_in(client, key)
        overview = client.get("/console").text
        month = overview.split("Figures for ", 1)[1][:7]
        server_times(client, month, args.requests)
    if not args.no_browser:
        first_paint(settings, key, args.paints)
    print(f"\nload average after: {load_average()}")


if __name__ == "__main__":
    main()
