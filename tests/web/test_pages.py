"""The dashboard pages: sign-in, scopes, and server-rendered figures."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from tests.conftest import TenantHandle


def test_pages_redirect_to_sign_in_without_a_valid_key(client: TestClient) -> None:
    for path in ("/dashboard", "/investor", "/investor/report"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and "/dashboard/login" in response.headers["location"]
    client.cookies.set("aethercrown_key", "ack_not-a-real-key")
    assert client.get("/dashboard", follow_redirects=False).status_code == 303
    login = client.get("/dashboard/login")
    assert login.status_code == 200 and 'name="key"' in login.text
    assert client.get("/dashboard/login", params={"next": "https://evil"}).status_code == 422


def test_sign_in_then_the_executive_page_shows_computed_figures(
    client: TestClient, tenant: TenantHandle, company: dict[str, uuid.UUID]
) -> None:
    bad = client.post(
        "/dashboard/login",
        data={"key": "ack_wrong", "next": "/dashboard"},
        follow_redirects=False,
    )
    assert bad.status_code == 303 and "error=1" in bad.headers["location"]
    good = client.post(
        "/dashboard/login",
        data={"key": tenant.key, "next": "/dashboard"},
        follow_redirects=False,
    )
    assert good.status_code == 303 and good.headers["location"] == "/dashboard"
    cookie = good.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    page = client.get("/dashboard")
    assert page.status_code == 200
    # The fixture company's subscriptions all run on, so today's MRR is June's 46733.
    assert "USD 467.33" in page.text and "USD 5,607.96" in page.text
    assert 'id="chart-data"' in page.text and "/web/static/uPlot.iife.min.js" in page.text
    assert "no samples yet" in page.text
    assert client.post("/dashboard/logout", follow_redirects=False).status_code == 303


def test_investor_share_link_and_scope(
    client: TestClient, tenant: TenantHandle, investor_key: str, company: dict[str, uuid.UUID]
) -> None:
    link = client.get("/investor", params={"key": investor_key}, follow_redirects=False)
    assert link.status_code == 303 and link.headers["location"] == "/investor"
    page = client.get("/investor")
    assert page.status_code == 200 and "USD 467.33" in page.text
    report = client.get("/investor/report", params={"month": "2026-03"})
    assert report.status_code == 200 and "USD 279.00" in report.text
    pdf = client.get("/investor/report", params={"month": "2026-03", "format": "pdf"})
    assert pdf.content.startswith(b"%PDF")
    # An investor key does not open the executive dashboard.
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_vendored_chart_library_is_served(client: TestClient) -> None:
    js = client.get("/web/static/uPlot.iife.min.js")
    assert js.status_code == 200 and "uPlot" in js.text[:2000]
    assert client.get("/web/static/uPlot.min.css").status_code == 200
    assert "data-rendered" in client.get("/web/static/dashboard.js").text


def test_the_executive_page_shows_the_measured_ai_performance(
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
    client.cookies.set("aethercrown_key", tenant.key)
    page = client.get("/dashboard")
    assert page.status_code == 200
    text = page.text
    # AUC: 3 of 4 positive–negative pairs ordered right; Brier: (0.01 + 0.64 + 0.49 + 0.01) / 4.
    assert "<td>0.750 (4, 2)</td>" in text and "Brier score / ECE</td><td>0.287" in text
    assert "+100.0 pts" in text and "treated 2 of 2 retained, held out 0 of 1" in text
    assert "USD 1,500.00 vs USD 1,000.00 (1; MAPE 50.0%, bias 50.0%)" in text
