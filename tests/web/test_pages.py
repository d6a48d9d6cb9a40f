"""The console in-process: sessions, CSRF, scopes, filters, every page and its drill-down."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from aethercrown import clock
from tests.conftest import TenantHandle

ORIGIN = {"origin": "http://testserver"}
PAGES = (
    "/console",
    "/console/churn",
    "/console/budget",
    "/console/experiments",
    "/console/usage",
    "/console/content",
    "/console/connectors",
    "/console/operations",
    "/console/alerts",
    "/console/investor",
    "/console/public",
)


def sign_in(client: TestClient, key: str, next_page: str = "/console") -> str:
    response = client.post(
        "/console/login",
        data={"key": key, "next": next_page},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return str(response.headers["location"])


def test_pages_send_to_sign_in_with_the_reason(client: TestClient) -> None:
    for path in ("/console", "/console/churn", "/console/investor", "/investor/report"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/console/login?next=")
        assert "reason=signin" in response.headers["location"]
    client.cookies.set("aethercrown_session", "not-a-session")
    gone = client.get("/console", follow_redirects=False)
    assert "reason=expired" in gone.headers["location"]
    page = client.get(gone.headers["location"])
    assert page.status_code == 200 and "Your session ended" in page.text
    # Off-site return addresses are ignored; the old addresses lead to the console.
    login = client.get("/console/login", params={"next": "https://evil.example/x"})
    assert 'value="/console"' in login.text
    assert client.get("/dashboard", follow_redirects=False).headers["location"] == "/console"


def test_sign_in_keeps_a_hashed_session_never_the_key(
    client: TestClient, tenant: TenantHandle, company: dict[str, uuid.UUID], session_factory
) -> None:  # type: ignore[no-untyped-def]
    bad = client.post(
        "/console/login",
        data={"key": "ack_wrong", "next": "/console"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert "reason=invalid" in bad.headers["location"]
    assert "not a valid API key" in client.get(bad.headers["location"]).text
    good = client.post(
        "/console/login",
        data={"key": tenant.key, "next": "/console"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert good.status_code == 303 and good.headers["location"] == "/console"
    cookie = good.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    assert tenant.key not in cookie
    session_id = client.cookies["aethercrown_session"]
    from aethercrown.web.models import WebSession

    with session_factory() as db:
        stored = db.scalars(select(WebSession)).all()
    assert [s.id_hash for s in stored] == [hashlib.sha256(session_id.encode()).hexdigest()]
    assert stored[0].expires_at > stored[0].created_at
    page = client.get("/console")
    assert page.status_code == 200 and "USD 467.33" in page.text
    # Signing out ends the session on the server: the old cookie opens nothing.
    assert client.post("/console/logout", headers=ORIGIN, follow_redirects=False).status_code == 303
    client.cookies.set("aethercrown_session", session_id)
    assert client.get("/console", follow_redirects=False).status_code == 303


def test_posts_from_another_site_are_refused(client: TestClient, tenant: TenantHandle) -> None:
    for headers in ({}, {"origin": "https://evil.example"}, {"referer": "https://evil.example/"}):
        response = client.post(
            "/console/login", data={"key": tenant.key}, headers=headers, follow_redirects=False
        )
        assert response.status_code == 403
        assert response.headers["content-type"].startswith("application/problem+json")
    referer = client.post(
        "/console/login",
        data={"key": tenant.key},
        headers={"referer": "http://testserver/console/login"},
        follow_redirects=False,
    )
    assert referer.status_code == 303


def test_an_investor_key_opens_the_investor_pages_only(
    client: TestClient, investor_key: str, company: dict[str, uuid.UUID]
) -> None:
    # Asked for the overview, an investor key lands on the investor page, signed in.
    assert sign_in(client, investor_key, "/console") == "/console/investor"
    page = client.get("/console/investor")
    assert page.status_code == 200 and "USD 467.33" in page.text
    assert 'href="/console"' not in page.text  # the navigation lists what the key may open
    overview = client.get("/console", follow_redirects=False)
    assert overview.status_code == 303 and overview.headers["location"] == "/console/investor"
    report = client.get("/investor/report", params={"month": "2026-03"})
    assert report.status_code == 200 and "USD 279.00" in report.text
    pdf = client.get("/investor/report", params={"month": "2026-03", "format": "pdf"})
    assert pdf.content.startswith(b"%PDF")


def test_investor_share_link_signs_in_and_drops_the_key(
    client: TestClient, investor_key: str, company: dict[str, uuid.UUID]
) -> None:
    link = client.get("/investor", params={"key": investor_key}, follow_redirects=False)
    assert link.status_code == 303 and link.headers["location"] == "/console/investor"
    assert investor_key not in link.headers["set-cookie"]
    assert client.get("/console/investor").status_code == 200


def test_every_page_renders_with_navigation_and_accessible_charts(
    client: TestClient, tenant: TenantHandle, company: dict[str, uuid.UUID]
) -> None:
    sign_in(client, tenant.key)
    for path in PAGES:
        page = client.get(path)
        assert page.status_code == 200, (path, page.text[:500])
        assert '<nav aria-label="Console">' in page.text and 'aria-current="page"' in page.text
        if 'class="chart"' in page.text:
            assert 'role="img"' in page.text and "Data table:" in page.text
            assert "/web/static/uPlot.iife.min.js" in page.text
    overview = client.get("/console").text
    # Tiles compare the last complete month with the one before it, never the current month.
    assert "vs 2026-" in overview or "vs 2027-" in overview or "vs 20" in overview
    for chart in ("chart-mrr", "chart-movements", "chart-plans", "chart-retention", "chart-funnel"):
        assert f'id="{chart}"' in overview
    assert 'id="cohorts"' in overview


def test_filters_stay_in_every_link_and_bad_ones_are_422(
    client: TestClient, tenant: TenantHandle, company: dict[str, uuid.UUID]
) -> None:
    sign_in(client, tenant.key)
    page = client.get("/console", params={"range": "custom", "from": "2026-02", "to": "2026-05"})
    assert page.status_code == 200
    assert "Figures for 2026-05" in page.text
    assert 'href="/console/churn?range=custom&amp;from=2026-02&amp;to=2026-05"' in page.text
    six = client.get("/console", params={"range": "6m"})
    assert 'href="/console/churn?range=6m"' in six.text
    for params in (
        {"range": "9y"},
        {"from": "2026-13"},
        {"range": "custom", "from": "2026-06", "to": "2026-01"},
        {"segment": "x"},
    ):
        bad = client.get("/console", params=params)
        assert bad.status_code == 422, params
        assert bad.headers["content-type"].startswith("application/problem+json")


def test_a_figure_drills_down_to_its_customers(
    client: TestClient, tenant: TenantHandle, company: dict[str, uuid.UUID]
) -> None:
    sign_in(client, tenant.key)
    page = client.get("/console/customers", params={"month": "2026-03", "movement": "paying"})
    assert page.status_code == 200
    assert 'id="customers"' in page.text and "<td>" in page.text
    assert (
        client.get("/console/customers", params={"month": "2026-03", "movement": "x"}).status_code
        == 422
    )


@pytest.mark.parametrize("scope", ["tenant:read"])
def test_experiments_are_created_and_stopped_from_the_page(
    client: TestClient, tenant: TenantHandle, scope: str
) -> None:
    sign_in(client, tenant.key)
    created = client.post(
        "/console/experiments",
        data={"name": "pricing-page", "variants": "control, cheaper", "metric": "signup"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    page = client.get("/console/experiments")
    assert "pricing-page" in page.text and "Stop pricing-page" in page.text
    action = page.text.split('action="/console/experiments/')[1].split("/stop")[0]
    refused = client.post(f"/console/experiments/{action}/stop", follow_redirects=False)
    assert refused.status_code == 403
    stopped = client.post(
        f"/console/experiments/{action}/stop", headers=ORIGIN, follow_redirects=False
    )
    assert stopped.status_code == 303
    assert "Stop pricing-page" not in client.get("/console/experiments").text
    bad = client.post(
        "/console/experiments", data={"name": "x", "variants": "only"}, headers=ORIGIN
    )
    assert bad.status_code == 422


def test_vendored_assets_are_served(client: TestClient) -> None:
    js = client.get("/web/static/uPlot.iife.min.js")
    assert js.status_code == 200 and "uPlot" in js.text[:2000]
    for path in ("/web/static/uPlot.min.css", "/web/static/console.css", "/web/static/filters.js"):
        assert client.get(path).status_code == 200
    assert "data-rendered" in client.get("/web/static/dashboard.js").text


def test_the_investor_feed_groups_like_decisions(
    client: TestClient, tenant: TenantHandle, investor_key: str, session_factory
) -> None:  # type: ignore[no-untyped-def]
    from aethercrown.core.ledger import record_decision
    from aethercrown.db.session import write_transaction

    with write_transaction(session_factory) as session:
        for i in range(5):
            record_decision(
                session,
                tenant_id=tenant.uid,
                kind="churn.campaign",
                subject_type="customer",
                subject_id=f"c{i % 4}",
                inputs={},
                output={},
                model="rules",
                model_version="1",
            )
    sign_in(client, investor_key, "/console/investor")
    text = client.get("/console/investor").text
    assert "5 churn campaigns started for 4 customers" in text


def test_the_overview_shows_the_measured_ai_performance(
    client: TestClient, tenant: TenantHandle, company: dict[str, uuid.UUID], session_factory
) -> None:  # type: ignore[no-untyped-def]
    """Churn AUC and Brier score, campaign uplift against the holdout and budget predicted vs
    realised, each from ledger decisions joined with what happened."""
    from aethercrown.core.ledger import record_decision, record_outcome
    from aethercrown.db.session import write_transaction

    def decide(session, kind: str, predicted: float, outcome: float, **output: object) -> None:  # type: ignore[no-untyped-def]
        d = record_decision(
            session,
            tenant_id=tenant.uid,
            kind=kind,
            subject_type="customer",
            subject_id="c",
            inputs={},
            output=output,
            model="m",
            model_version="1",
            predicted_value=predicted,
        )
        record_outcome(d, {"value": outcome}, outcome)

    with write_transaction(session_factory) as session:
        for score, churned in ((0.9, 1.0), (0.2, 1.0), (0.7, 0.0), (0.1, 0.0)):
            decide(session, "churn.score", score, churned)
        for holdout, churned in ((False, 0.0), (False, 0.0), (True, 1.0)):
            decide(session, "churn.campaign", 0.8, churned, holdout=holdout)
        decide(session, "budget_allocation", 150_000.0, 100_000.0)
    sign_in(client, tenant.key)
    page = client.get("/console")
    assert page.status_code == 200
    text = page.text
    # AUC: 3 of 4 positive–negative pairs ordered right; Brier: (0.01 + 0.64 + 0.49 + 0.01) / 4.
    assert "<td>0.750 (4, 2)</td>" in text and "Brier score / ECE</td><td>0.287" in text
    assert "+100.0 pts" in text and "treated 2 of 2 retained, held out 0 of 1" in text
    assert "USD 1,500.00 vs USD 1,000.00 (1; MAPE 50.0%, bias 50.0%)" in text


def test_churn_quality_by_month_savings_and_renewals_drill_down(
    client: TestClient,
    tenant: TenantHandle,
    investor_key: str,
    company: dict[str, uuid.UUID],
    frozen_now,
    churn_history,
    session_factory,
) -> None:  # type: ignore[no-untyped-def]
    """AUC per scoring month from ledger scores and their outcomes, with the customers behind
    it; the campaigns' expected saving (MRR × uplift measured against the holdout) on the churn
    page and in the investor feed; each paying customer's renewal probability (its latest churn
    score spread over the days to its renewal) on the usage page and in the drill-down."""
    from datetime import timedelta

    from aethercrown.analytics.metrics import month_of
    from aethercrown.churn import renewal

    now = frozen_now
    made = churn_history
    sign_in(client, tenant.key)
    churn = client.get("/console/churn")
    assert churn.status_code == 200, churn.text[:500]
    month = month_of(made)
    assert 'id="chart-auc-months"' in churn.text
    link = f'href="/console/churn/scores?month={month}"'
    assert link in churn.text and "<td>0.75</td>" in churn.text
    # a's MRR (USD 100.00) × the measured +100 pts.
    assert "1 churn campaign started for 1 customer, expected to save 100 USD MRR" in churn.text
    assert 'href="/console/churn/campaigns"' in churn.text

    scores = client.get("/console/churn/scores", params={"month": month})
    assert scores.status_code == 200
    assert "4 scores made in" in scores.text and "ROC AUC 0.75" in scores.text
    rows = scores.text.split('id="scores"')[1]
    assert rows.index("Customer A") < rows.index("Customer C") < rows.index("Customer B")
    assert "<td>90.0%</td><td>churned</td>" in rows
    assert client.get("/console/churn/scores", params={"month": "2026-13"}).status_code == 422

    campaigns = client.get("/console/churn/campaigns")
    assert campaigns.status_code == 200
    assert "<td>USD 100.00</td><td>+100.0 pts</td><td>USD 100.00</td>" in campaigns.text

    # Renewal: a pays USD 100.00 a month from 10 January; 19% over 30 days at a constant hazard.
    due = renewal.next_renewal(datetime_of(2026, 1, 10), "month", now)
    assert due is not None
    # The service answers 4 decimals (as the API does); the page shows that value.
    chance = round(renewal.survival(0.19, 30, (due - now).total_seconds() / 86400), 4)
    usage = client.get("/console/usage")
    assert usage.status_code == 200
    table = usage.text.split('id="renewals"')[1].split("</table>")[0]
    assert f"<td>{due:%Y-%m-%d}</td><td>19.0%</td><td>{chance * 100:.1f}%</td>" in table
    assert 'href="/console/usage/renewals"' in usage.text
    # The kept renewals follow a new score at once (the latest score is in the fingerprint).
    from aethercrown.churn.models import ChurnScore
    from aethercrown.db.session import write_transaction

    with write_transaction(session_factory) as session:
        session.add(
            ChurnScore(
                tenant_id=tenant.uid, customer_id=company["c"], scored_at=now, probability=0.55,
                risk_level="high", model_source="tenant", model_version="1", factors=[],
            )
        )  # fmt: skip
    again = client.get("/console/usage").text.split('id="renewals"')[1].split("</table>")[0]
    assert "<td>55.0%</td>" in again
    every = client.get("/console/usage/renewals")
    assert every.status_code == 200 and "Customer F" in every.text
    drill = client.get(
        "/console/customers",
        params={"month": month_of(now - timedelta(days=now.day)), "movement": "paying"},
    )
    assert f"<td>{due:%Y-%m-%d}</td><td>{chance * 100:.1f}%</td>" in drill.text

    client.post("/console/logout", headers=ORIGIN)
    sign_in(client, investor_key, "/console/investor")
    feed = client.get("/console/investor").text
    assert "1 churn campaign started for 1 customer, expected to save 100 USD MRR" in feed
    assert client.get("/console/churn/campaigns", follow_redirects=False).status_code == 303


def datetime_of(year: int, month: int, day: int):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime(year, month, day, tzinfo=UTC)


def chart_specs(html: str) -> dict[str, Any]:
    """The chart specifications a page embeds for its script, by chart id."""
    raw = html.split('<script type="application/json" id="chart-data">', 1)[1]
    return {spec["id"]: spec for spec in json.loads(raw.split("</script>", 1)[0])}


def test_budget_curves_draw_the_observed_periods_they_were_fitted_to(
    client: TestClient, tenant: TenantHandle, marketing_days: list[date]
) -> None:
    """Each channel's chart carries, beside its fitted curve and band, every day of the history
    the fit read (spend and return), and a data table lists those days."""
    days = marketing_days
    sign_in(client, tenant.key)
    page = client.get("/console/budget")
    assert page.status_code == 200, page.text[:500]
    specs = chart_specs(page.text)
    for i, channel in enumerate(("search", "social")):
        spec = specs[f"chart-curve-{i}"]
        assert spec["title"].startswith(channel)
        assert len(spec["x"]) == 12  # the fitted curve
        points = spec["points"]
        assert len(points["x"]) == len(points["y"]) == 90
        assert points["x"][0] == 10_000.0
        assert "90 observed periods" in spec["aria"]
        assert f'aria-label="{channel}: observed spend and return per period"' in page.text
    table = page.text.split("search: observed spend and return per period</caption>")[1]
    rows = table.split("<tbody>")[1].split("</tbody>")[0].count("<tr>")
    assert rows == 90
    assert f'<th scope="row">{date.isoformat(days[0])}</th><td>10,000</td>' in table
    # The allocation table says how many periods each curve was fitted to.
    assert "<td>90</td></tr>" in page.text.split('id="allocation"')[1].split("</table>")[0]


def test_usage_lists_every_customer_against_capacity(
    client: TestClient, tenant: TenantHandle, session_factory
) -> None:  # type: ignore[no-untyped-def]
    """Every customer on a plan with limits is listed with each meter's use against its limit,
    the fullest first, the ones without usage too; not only those that raised an alert."""
    from aethercrown.db.session import write_transaction
    from aethercrown.metering import schemas, service
    from tests.metering.conftest import add_customer

    now = clock.utcnow()
    with write_transaction(session_factory) as session:
        for ext in ("cap-busy", "cap-half", "cap-idle"):
            add_customer(session, tenant.uid, ext, "starter")
        add_customer(session, tenant.uid, "cap-none", None)
    events = [
        schemas.UsageEventIn(id="e1", customer="cap-busy", metric="api_calls", value=12_000,
                             timestamp=now),
        schemas.UsageEventIn(id="e2", customer="cap-half", metric="api_calls", value=5_000,
                             timestamp=now),
    ]  # fmt: skip
    with write_transaction(session_factory) as session:
        service.track(session, tenant.uid, events, now=now)
    with write_transaction(session_factory) as session:
        service.fold_pending(session, now=now)
    sign_in(client, tenant.key)
    page = client.get("/console/usage")
    assert page.status_code == 200, page.text[:500]
    table = page.text.split('id="capacity"')[1].split("</table>")[0]
    order = [ext for ext in ("cap-busy", "cap-half", "cap-idle") if ext in table]
    assert order == ["cap-busy", "cap-half", "cap-idle"]
    assert table.index("cap-busy") < table.index("cap-half") < table.index("cap-idle")
    assert "cap-none" not in table  # no plan, no limit
    assert "<td>12,000 / 10,000 (120.0%)</td>" in table
    assert "<td>5,000 / 10,000 (50.0%)</td>" in table
    assert "<td>0 / 10,000 (0.0%)</td>" in table
    assert "3 customers on a plan with usage limits" in page.text
    assert "1 at or over a limit" in page.text
    spec = chart_specs(page.text)["chart-capacity"]
    assert sum(spec["series"][0]["values"]) == 3 and spec["series"][0]["values"][-1] == 1
