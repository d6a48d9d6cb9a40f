"""The dashboard pages in headless Chromium: the charts draw, with data, from the vendored uPlot."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from tests.conftest import TenantHandle
from tests.web.conftest import CHROMIUM, chromium_or_skip

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _chart_points(page, chart_id: str) -> int:  # type: ignore[no-untyped-def]
    element = page.locator(f"#{chart_id}")
    assert element.get_attribute("data-rendered") == "true", chart_id
    assert element.locator("canvas").count() == 1, chart_id
    return int(element.get_attribute("data-points") or 0)


def test_dashboards_render_their_charts_in_chromium(
    live_server: str,
    tenant: TenantHandle,
    investor_key: str,
    company: dict[str, uuid.UUID],
    tmp_path: Path,
) -> None:
    chromium_or_skip()
    # Set AETHERCROWN_SCREENSHOT_DIR to keep the screenshots for a look.
    shots = Path(os.environ.get("AETHERCROWN_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("requestfailed", lambda req: errors.append(req.url))
            page.goto(f"{live_server}/console")
            assert "/console/login" in page.url
            page.fill("#key", tenant.key)
            page.click("#sign-in")
            page.wait_for_selector("#chart-mrr[data-rendered=true]", timeout=15000)
            # Every month since January 2026 has MRR; the forecast adds points after it.
            assert _chart_points(page, "chart-mrr") >= 6
            assert _chart_points(page, "chart-movements") >= 6
            assert _chart_points(page, "chart-customers") >= 6
            assert _chart_points(page, "chart-retention") >= 1
            assert "USD 467.33" in page.inner_text(".tiles")
            page.screenshot(path=str(shots / "executive.png"), full_page=True)

            investor = browser.new_page(viewport={"width": 1280, "height": 1000})
            investor.on("pageerror", lambda exc: errors.append(str(exc)))
            investor.goto(f"{live_server}/investor?key={investor_key}")
            investor.wait_for_selector("#chart-mrr[data-rendered=true]", timeout=15000)
            assert "key=" not in investor.url and investor.url.endswith("/console/investor")
            assert _chart_points(investor, "chart-mrr") >= 6
            assert _chart_points(investor, "chart-customers") >= 6
            investor.screenshot(path=str(shots / "investor.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert (shots / "executive.png").stat().st_size > 10_000


def test_api_docs_render_in_chromium_with_nothing_from_outside(live_server: str) -> None:
    """Swagger UI and Redoc draw the operations while every request off this machine is
    refused, as on a machine without internet."""
    chromium_or_skip()
    from playwright.sync_api import Route, sync_playwright

    outside: list[str] = []
    errors: list[str] = []

    def only_local(route: Route) -> None:
        if route.request.url.startswith(live_server) or route.request.url.startswith("data:"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.route("**/*", only_local)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.goto(f"{live_server}/docs")
            # Every tag is listed (collapsed); opening one draws its operations.
            page.wait_for_function(
                "() => document.querySelectorAll('.opblock-tag').length >= 15", timeout=30000
            )
            page.click("#operations-tag-content")
            page.wait_for_function(
                "() => document.querySelectorAll('.opblock').length >= 10", timeout=30000
            )
            page.goto(f"{live_server}/redoc")
            page.wait_for_selector("[data-section-id^='tag/']", timeout=30000)
            assert "AetherCrown" in page.inner_text("body")
        finally:
            browser.close()
    # The one thing the pages' Content-Security-Policy stops (see aethercrown.web.api).
    blocked = [e for e in errors if "Content Security Policy" in e]
    assert all("https://cdn.redoc.ly/redoc/logo-mini.svg" in e for e in blocked), blocked
    assert outside == [] and [e for e in errors if e not in blocked] == []
