"""The investor routes against the hand-computed company."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from aethercrown.core.ledger import record_decision, record_outcome
from aethercrown.db.session import write_transaction
from tests.conftest import TenantHandle, bearer

BASE = "/api/v1/investor"


def test_live_dashboard(
    client: TestClient,
    tenant: TenantHandle,
    investor_key: str,
    company: dict[str, uuid.UUID],
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    with write_transaction(session_factory) as session:
        running = record_decision(
            session,
            tenant_id=tenant.uid,
            kind="task_assignment",
            subject_type="task",
            subject_id="t1",
            inputs={},
            output={},
            model="scheduler",
            model_version="1",
        )
        done = record_decision(
            session,
            tenant_id=tenant.uid,
            kind="task_assignment",
            subject_type="task",
            subject_id="t2",
            inputs={},
            output={},
            model="scheduler",
            model_version="1",
        )
        record_outcome(done, {"status": "done"}, 1.0)
        assert running.outcome_at is None
    body = client.get(f"{BASE}/dashboard/live", headers=bearer(investor_key)).json()
    # The fixture company's subscriptions are all still running today (open-ended), as in June.
    assert body["mrr"] == 46733 and body["arr"] == 46733 * 12 and body["customers"] == 5
    assert body["ai_tasks_running"] == 0  # the task queue is empty; ledger entries aren't tasks
    assert body["active_users_30d"] == 0  # its activity is from March 2026
    assert body["uptime"] == {"status": "no samples yet", "value": None, "samples": 0}


def test_activity_feed_is_paginated_and_sanitised(
    client: TestClient,
    tenant: TenantHandle,
    investor_key: str,
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    with write_transaction(session_factory) as session:
        for i in range(5):
            record_decision(
                session,
                tenant_id=tenant.uid,
                kind="churn_prediction",
                subject_type="customer",
                subject_id=f"jane{i}@example.com",
                inputs={"email": "jane@example.com"},
                output={"email": "jane@example.com", "p": 0.4},
                model="churn-gbm",
                model_version="3",
                predicted_value=0.4,
            )
        record_decision(
            session,
            tenant_id=tenant.uid,
            kind="budget_allocation",
            subject_type="channel",
            subject_id="search",
            inputs={},
            output={},
            model="budget",
            model_version="1",
        )
    seen, cursor = [], None
    while True:
        params = {"limit": 4} | ({"cursor": cursor} if cursor else {})
        page = client.get(f"{BASE}/activity-feed", params=params, headers=bearer(investor_key))
        assert page.status_code == 200
        seen += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    # Newest first by UUIDv7 id (ordered to the millisecond; these share one).
    assert sorted(i["kind"] for i in seen) == ["budget_allocation"] + ["churn_prediction"] * 5
    assert len({i["id"] for i in seen}) == 6
    assert "jane" not in str(seen) and "example.com" not in str(seen)
    churn = next(i for i in seen if i["kind"] == "churn_prediction")
    assert churn["summary"] == "churn prediction on a customer by churn-gbm 3"
    only = client.get(
        f"{BASE}/activity-feed", params={"kind": "budget"}, headers=bearer(investor_key)
    ).json()
    assert [i["kind"] for i in only["items"]] == ["budget_allocation"]
    bad = client.get(f"{BASE}/activity-feed", params={"cursor": "!!"}, headers=bearer(investor_key))
    assert bad.status_code == 400


def test_kpis(client: TestClient, investor_key: str, company: dict[str, uuid.UUID]) -> None:
    body = client.get(f"{BASE}/kpis", params={"months": 120}, headers=bearer(investor_key)).json()
    months = {m["month"]: m for m in body["months"]}
    assert months["2026-03"]["mrr"] == 27900 and months["2026-03"]["arpa"] == 9300
    assert months["2026-04"]["nrr"] == pytest.approx(1.5018)
    assert body["latest"]["mrr"] == 46733
    assert {"mrr", "customers", "churn_rate"} <= set(body["forecasts"])
    assert (
        client.get(f"{BASE}/kpis", params={"months": 0}, headers=bearer(investor_key)).status_code
        == 422
    )


def test_monthly_report_json_html_pdf(
    client: TestClient, investor_key: str, company: dict[str, uuid.UUID]
) -> None:
    h = bearer(investor_key)
    body = client.get(f"{BASE}/reports/monthly", params={"month": "2026-03"}, headers=h).json()
    assert body["month"] == "2026-03" and body["tenant"] == "Acme"
    assert body["figures"]["mrr"] == 27900 and body["figures"]["churn"] == 5220
    assert body["previous"] == {"month": "2026-02", "mrr": 25220, "customers": 3}
    assert [r["month"] for r in body["trend"]] == ["2026-01", "2026-02", "2026-03"]
    assert body["highlights"][0] == "MRR USD 279.00 (ARR USD 3,348.00) from 3 paying customers."
    assert len(body["forecast"]["mean"]) == 3
    html = client.get(
        f"{BASE}/reports/monthly", params={"month": "2026-03", "format": "html"}, headers=h
    )
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "USD 279.00" in html.text and 'id="chart-mrr"' in html.text
    assert "data:image/png;base64," in html.text
    pdf = client.get(
        f"{BASE}/reports/monthly", params={"month": "2026-03", "format": "pdf"}, headers=h
    )
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and b"/Image" in pdf.content
    empty = client.get(f"{BASE}/reports/monthly", params={"month": "2020-01"}, headers=h).json()
    assert empty["figures"] is None and empty["trend"] == []
    empty_pdf = client.get(
        f"{BASE}/reports/monthly", params={"month": "2020-01", "format": "pdf"}, headers=h
    )
    assert empty_pdf.content.startswith(b"%PDF")
    for params in (
        {"month": "2026-13"},
        {"month": "26-01"},
        {"month": "2999-01"},
        {"format": "docx"},
    ):
        assert client.get(f"{BASE}/reports/monthly", params=params, headers=h).status_code == 422


def test_public_metrics_only_when_opted_in_with_chosen_rounding(
    client: TestClient, tenant: TenantHandle, investor_key: str, company: dict[str, uuid.UUID]
) -> None:
    public = f"{BASE}/metrics/public"
    assert client.get(public, params={"tenant": "acme"}).status_code == 404
    assert client.get(public, params={"tenant": "nobody"}).status_code == 404
    settings = {
        "enabled": True,
        "figures": {"mrr": {"round_to": 1000}, "customers": {}, "milestones": {}},
    }
    # Investors read the settings but may not change them.
    assert (
        client.put(f"{public}/settings", json=settings, headers=bearer(investor_key)).status_code
        == 403
    )
    saved = client.put(f"{public}/settings", json=settings, headers=tenant.headers)
    assert saved.status_code == 200, saved.text
    body = client.get(public, params={"tenant": "acme"}).json()
    assert body["figures"]["mrr"] == 47000  # 46733 to the nearest 1000 minor units
    assert body["figures"]["customers"] == 5
    assert set(body["figures"]) == {"mrr", "customers", "milestones"}
    assert "arr" not in body["figures"] and "email" not in str(body)
    assert {"metric": "mrr", "level": 100000, "month": None} not in body["figures"]["milestones"]
    assert body["figures"]["milestones"] == []  # 467.33 USD of MRR crossed no level yet
    for bad in (
        {"enabled": True, "figures": {"profit": {}}},
        {"enabled": True, "figures": {"mrr": {"round_to": -5}}},
        {"enabled": True, "figures": {"mrr": {"round_to": "NaN"}}},
        {"enabled": "maybe"},
    ):
        assert (
            client.put(f"{public}/settings", json=bad, headers=tenant.headers).status_code == 422
        ), bad
    client.put(f"{public}/settings", json={"enabled": False, "figures": {}}, headers=tenant.headers)
    assert client.get(public, params={"tenant": "acme"}).status_code == 404


def test_scopes(
    client: TestClient, other_tenant: TenantHandle, company: dict[str, uuid.UUID]
) -> None:
    assert client.get(f"{BASE}/dashboard/live").status_code == 401
    other = client.get(f"{BASE}/dashboard/live", headers=other_tenant.headers).json()
    assert other["mrr"] == 0 and other["customers"] == 0
