"""The onboarding pages in headless Chromium: the console's list and one report (signed in with
the console's session) and the customer portal (signed in with the customer's portal key); the
figures shown are the API's, axe finds nothing serious, screenshots land with the others."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import TenantHandle, bearer
from tests.onboarding.conftest import BASE, PORTAL, request_body
from tests.web.conftest import CHROMIUM, chromium_or_skip
from tests.web.conftest import live_server as live_server  # the fixture, for this module
from tests.web.test_browser import ARGS, ASSETS, DESKTOP, SHOTS, _check
from tests.webhooks.test_service import Receiver


def _cells(page: Any, table: str, header: bool = True) -> list[list[str]]:  # a playwright Page
    """The table's rows as the browser shows them (its header row left out)."""
    rows = page.eval_on_selector_all(
        f"#{table} tr", "rows => rows.map(r => [...r.cells].map(c => c.innerText))"
    )
    return [[cell.strip() for cell in row] for row in rows[1 if header else 0 :]]


def test_onboarding_report_and_portal_in_chromium(
    live_server: str, client: TestClient, tenant: TenantHandle, receiver: Receiver
) -> None:
    chromium_or_skip()
    from playwright.sync_api import Route, sync_playwright

    created = client.post(f"{BASE}/create", json=request_body(receiver.url), headers=tenant.headers)
    assert created.status_code == 201, created.text
    ident, portal_key = created.json()["id"], created.json()["portal_api_key"]
    tracked = client.post(
        "/api/v1/enterprise/usage/track",
        json={"id": "u-1", "customer": "big-co", "metric": "api_calls", "value": 1234},
        headers=tenant.headers,
    )
    assert tracked.status_code in (200, 201, 202), tracked.text
    report = client.get(f"{BASE}/{ident}/report", headers=tenant.headers).json()
    # The portal's API first: it counts every acknowledged event, so the page reads the same.
    portal = bearer(portal_key)
    usage = client.get(f"{PORTAL}/usage", headers=portal).json()
    sla = client.get(f"{PORTAL}/sla", headers=portal).json()
    invoice = client.get(f"{PORTAL}/invoice-preview", headers=portal).json()

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

            # The console asks to sign in, then returns to the onboarding list.
            page.goto(f"{live_server}/console/onboarding")
            assert "/console/login" in page.url
            page.fill("#key", tenant.key)
            page.click("#sign-in")
            page.wait_for_url(f"{live_server}/console/onboarding")
            (row,) = _cells(page, "onboardings")
            assert row[:4] == ["big-co", "enterprise", report["status"], report["current_step"]]
            problems += _check(page, "Onboarding", axe_source)

            page.click("#onboardings >> text=big-co")
            page.wait_for_url(f"{live_server}/console/onboarding/{ident}")
            assert page.inner_text("#status").strip() == report["status"] == "blocked"
            steps = _cells(page, "steps")
            assert [(int(s[0]), s[2], int(s[3])) for s in steps] == [
                (s["position"], s["status"], s["attempts"]) for s in report["steps"]
            ]
            assert [b[1] for b in _cells(page, "blockers")] == [
                b["reason"] for b in report["blockers"]
            ]
            assert f"{report['target_hours']} h" in page.inner_text(".tiles")
            problems += _check(page, "Onboarding report", axe_source)

            # The customer's portal, in a browser that holds no console session.
            customer = browser.new_context(viewport=DESKTOP)
            customer.route("**/*", only_local)
            page = customer.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{live_server}/portal")
            problems += _check(page, "Portal sign in", axe_source)
            page.fill("#key", portal_key)
            page.click("#sign-in")
            page.wait_for_selector("#usage")
            assert "Customer portal: big-co" in page.inner_text("header")
            shown = {r[0]: r for r in _cells(page, "usage")}
            for m in usage["metrics"]:
                assert shown[m["metric"]][1] == f"{m['usage']:,.0f} {m['unit']}"
                capacity = "—" if m["capacity"] is None else f"{m['capacity']:,.0f}"
                assert shown[m["metric"]][2] == capacity
            assert shown["api_calls"][1].startswith("1,234")
            tier = sla["tier"]
            heading = page.inner_text("h2 >> text=SLA:")
            assert f"{tier['response_minutes']} min first response" in heading
            assert f"{tier['uptime_target_percent']} % uptime" in heading
            totals = {r[0]: r[1] for r in _cells(page, "invoice", header=False)}
            assert totals["Total to date"] == (
                f"{invoice['total_to_date'] / 100:,.2f} {invoice['currency']}"
            )
            assert totals["Base"] == f"{invoice['base'] / 100:,.2f} {invoice['currency']}"
            problems += _check(page, "Portal", axe_source)
        finally:
            browser.close()
    assert outside == [] and errors == [] and problems == [], (outside, errors, problems)
