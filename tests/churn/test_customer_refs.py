"""Churn names customers as usage and pricing do: by the tenant's own external id, the internal
UUID accepted too, and every list shows the external id and the name."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient

from aethercrown.data.models import Customer
from aethercrown.db.session import write_transaction
from tests.conftest import TenantHandle

BASE = "/api/v1/optimization/churn"


def _customers(session_factory, tenant: TenantHandle) -> dict[str, str]:  # type: ignore[no-untyped-def]
    ids = {}
    with write_transaction(session_factory) as session:
        for ext, name in (("cus_00001", "Acme Ltd"), ("cus_00002", "Globex")):
            row = Customer(
                tenant_id=tenant.uid, external_id=ext, name=name, signup_date=date(2025, 1, 1)
            )
            session.add(row)
            session.flush()
            ids[ext] = str(row.id)
    return ids


def test_predict_by_external_id_or_uuid_names_each_customer(
    client: TestClient,
    tenant: TenantHandle,
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    ids = _customers(session_factory, tenant)
    response = client.post(
        f"{BASE}/predict",
        json={"customer_ids": ["cus_00001", ids["cus_00002"], "cus_00001"]},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [(p["external_id"], p["name"], p["customer_id"]) for p in predictions] == [
        ("cus_00001", "Acme Ltd", ids["cus_00001"]),
        ("cus_00002", "Globex", ids["cus_00002"]),
    ]
    unknown = client.post(
        f"{BASE}/predict", json={"customer_ids": ["cus_00001", "cus_404"]}, headers=tenant.headers
    )
    assert unknown.status_code == 422
    assert [e["field"] for e in unknown.json()["errors"]] == ["customer_ids.1"]


def test_usage_and_pricing_take_the_uuid_too_and_answer_with_the_external_id(
    client: TestClient,
    tenant: TenantHandle,
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    ids = _customers(session_factory, tenant)
    report = client.get(
        f"/api/v1/enterprise/usage/{ids['cus_00002']}/report", headers=tenant.headers
    )
    assert report.status_code == 200, report.text
    assert report.json()["customer"] == "cus_00002"
    analysis = client.post(
        "/api/v1/enterprise/usage/analyze-upsell",
        json={"customers": [ids["cus_00001"], "cus_00002"]},
        headers=tenant.headers,
    )
    assert analysis.status_code == 200 and analysis.json()["analysed"] == 2
    bad = client.post(
        "/api/v1/enterprise/usage/analyze-upsell",
        json={"customers": ["cus_00001", "nobody"]},
        headers=tenant.headers,
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "customers.1"
