"""The dashboard pages in headless Chromium: the charts draw, with data, from the vendored uPlot."""

from __future__ import annotations

import os
import uuid
from datetime import date, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TenantHandle
from tests.web.conftest import CHROMIUM, chromium_or_skip

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


ASSETS = Path(__file__).parent / "assets"
# Screenshots of every page at both widths land here (CI keeps the folder as an artefact).
SHOTS = Path(
    os.environ.get("AETHERCROWN_SCREENSHOT_DIR")
    or Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
)
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
CONSOLE_PAGES = (
    "Overview",
    "Churn",
    "Budget",
    "Experiments",
    "Usage",
    "Content",
    "Connectors",
    "Operations",
    "Alerts",
    "Investor",
    "Public metrics",
)
AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations
    .filter(v => v.impact === "serious" || v.impact === "critical")
    .map(v => `${v.id} (${v.impact}): `
      + v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", "));
}"""


def _chart_points(page, chart_id: str) -> int:  # type: ignore[no-untyped-def]
    element = page.locator(f"#{chart_id}")
    assert element.get_attribute("data-rendered") == "true", chart_id
    assert element.locator("canvas").count() == 1, chart_id
    return int(element.get_attribute("data-points") or 0)


def _settle(page) -> None:  # type: ignore[no-untyped-def]
    """Wait until every chart on the page has drawn."""
    page.wait_for_load_state("load")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.chart')].every(c => c.dataset.rendered === 'true')",
        timeout=15000,
    )


def _check(page, name: str, axe_source: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Screenshots at desktop and phone width, no sideways scrolling on the phone, and axe's
    serious or critical violations (answered, not asserted, so one run lists them all)."""
    problems: list[str] = []
    slug = name.lower().replace(" ", "-")
    page.set_viewport_size(DESKTOP)
    _settle(page)
    page.screenshot(path=str(SHOTS / f"{slug}-desktop.png"), full_page=True)
    page.add_script_tag(content=axe_source)
    problems += [f"{name}: {v}" for v in page.evaluate(AXE_RUN)]
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(300)  # the charts redraw at the new width
    _settle(page)
    overflow = page.evaluate("() => document.documentElement.scrollWidth")
    if overflow > PHONE["width"]:
        problems.append(f"{name}: {overflow} px wide at 390 px")
    page.screenshot(path=str(SHOTS / f"{slug}-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
    return problems


def test_the_console_in_chromium(
    live_server: str,
    tenant: TenantHandle,
    investor_key: str,
    company: dict[str, uuid.UUID],
    churn_history: datetime,
    marketing_days: list[date],
) -> None:
    """One browser, one server, one company: sign in, every page (accessible, no console
    error, nothing fetched from outside, no sideways scroll at 390 px), a drill-down, a date
    range change, sign out, and the investor's share link."""
    chromium_or_skip()
    from playwright.sync_api import Route, sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    axe_source = (ASSETS / "axe.min.js").read_text()
    errors: list[str] = []
    outside: list[str] = []
    problems: list[str] = []

    def only_local(route: Route) -> None:
        if route.request.url.startswith(live_server) or route.request.url.startswith("data:"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            context = browser.new_context(viewport=DESKTOP)
            context.route("**/*", only_local)
            page = context.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{live_server}/console")
            assert "/console/login" in page.url and "Sign in to open the console" in page.content()
            problems += _check(page, "Sign in", axe_source)
            page.fill("#key", tenant.key)
            page.click("#sign-in")
            page.wait_for_url(f"{live_server}/console")
            _settle(page)
            # Every month since January 2026 has MRR; the forecast adds points after it.
            assert _chart_points(page, "chart-mrr") >= 6
            assert _chart_points(page, "chart-movements") >= 6
            assert _chart_points(page, "chart-customers") >= 6
            assert "USD 467.33" in page.inner_text(".tiles")

            for name in CONSOLE_PAGES:
                page.click(f"nav >> text={name}")
                page.wait_for_load_state("load")
                assert page.locator("nav [aria-current=page]").inner_text() == name
                problems += _check(page, name, axe_source)
                if name == "Budget":
                    # Each fitted curve (12 points, its band) is drawn beside the 90 observed
                    # days it was fitted to.
                    assert _chart_points(page, "chart-curve-0") >= 12 + len(marketing_days)

            # The churn model's AUC per scoring month leads to the customers scored that month,
            # the campaigns' expected saving to the campaigns, the renewals to every renewal.
            page.click("nav >> text=Churn")
            _settle(page)
            assert _chart_points(page, "chart-auc-months") >= 1
            assert "expected to save 100 USD MRR" in page.inner_text("#savings")
            page.locator("#auc-months a").first.click()
            page.wait_for_url("**/console/churn/scores?**")
            assert page.locator("#scores tbody tr").count() == 4
            problems += _check(page, "Churn scores", axe_source)
            page.go_back()
            page.click("#savings a")
            page.wait_for_url("**/console/churn/campaigns**")
            assert page.locator("#campaigns tbody tr").count() == 1
            problems += _check(page, "Retention campaigns", axe_source)
            page.click("nav >> text=Usage")
            _settle(page)
            assert _chart_points(page, "chart-renewals") >= 1
            page.click("text=every renewal")
            page.wait_for_url("**/console/usage/renewals")
            assert page.locator("#renewals tbody tr").count() >= 4
            problems += _check(page, "Renewals", axe_source)

            # A figure leads to the customers behind it.
            page.click("nav >> text=Overview")
            _settle(page)
            page.locator(".tile a").first.click()
            page.wait_for_url("**/console/customers?**")
            assert page.locator("#customers tbody tr").count() >= 1
            problems += _check(page, "Customers", axe_source)

            # A preset applies at once and stays in the navigation's links.
            page.click("nav >> text=Overview")
            _settle(page)
            page.select_option("#range", "6m")
            page.wait_for_url("**range=6m**")
            _settle(page)
            assert "range=6m" in (page.get_attribute("nav >> text=Churn", "href") or "")

            page.click("#sign-out")
            page.wait_for_url("**/console/login?**")
            page.goto(f"{live_server}/console")
            assert "/console/login" in page.url

            page.goto(f"{live_server}/investor?key={investor_key}")
            page.wait_for_url(f"{live_server}/console/investor")
            _settle(page)
            assert _chart_points(page, "chart-mrr") >= 6
            assert page.locator("nav >> text=Churn").count() == 0
        finally:
            browser.close()
    assert outside == [] and errors == [] and problems == [], (outside, errors, problems)


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


def test_the_connectors_page_with_dead_events_in_chromium(
    live_server: str,
    client: TestClient,
    tenant: TenantHandle,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A connected Stripe account with dead events: the page is accessible and fits a phone
    with its table of buttons, and a Retry button puts its event back in the queue."""
    chromium_or_skip()
    from playwright.sync_api import sync_playwright

    from tests.connectors.conftest import connect_stripe
    from tests.web.test_connectors_page import dead_events

    connect_stripe(client, tenant, api_key="sk_test_123")
    dead_events(client, tenant, monkeypatch)
    axe_source = (ASSETS / "axe.min.js").read_text()
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport=DESKTOP)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{live_server}/console/login?next=/console/connectors")
            page.fill("#key", tenant.key)
            page.click("#sign-in")
            page.wait_for_url(f"{live_server}/console/connectors")
            assert page.locator("#stripe-dead tbody tr").count() == 2
            problems = _check(page, "Connectors with dead events", axe_source)
            page.click("button[aria-label='Retry evt_dead1']")
            page.wait_for_url("**/console/connectors?notice=stripe-retry*")
            assert "Put back in the mapping queue" in page.inner_text(".notice")
            assert page.locator("#stripe-dead tbody tr").count() == 1
        finally:
            browser.close()
    assert errors == [] and problems == [], (errors, problems)
