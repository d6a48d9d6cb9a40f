"""Business-data fixtures: a small hand-written company, one batch per kind."""

from __future__ import annotations

from typing import Any

import pytest


def sample_rows() -> dict[str, list[dict[str, Any]]]:
    """Rows of every kind, in the order they must be ingested (references point backwards)."""
    return {
        "customers": [
            {
                "external_id": "c1",
                "name": "Alpha Ltd",
                "email": "ops@alpha.example",
                "company_size": 40,
                "annual_revenue": 250_000_000,
                "currency": "EUR",
                "country": "de",
                "signup_date": "2025-01-15",
                "attributes": {"segment": "smb", "tags": ["a", "b"]},
            },
            {"external_id": "c2", "name": "Beta Inc", "signup_date": "2025-02-01"},
            {"external_id": "c3", "name": "Gamma GmbH", "signup_date": "2025-03-10"},
        ],
        "subscriptions": [
            {
                "external_id": "s1",
                "customer": "c1",
                "plan": "professional",
                "amount": 9900,
                "currency": "EUR",
                "interval": "month",
                "quantity": 3,
                "started_at": "2025-01-15T00:00:00Z",
                "ended_at": "2025-06-15T00:00:00Z",
                "discount_percent": 12.5,
                "trial_end": "2025-01-29T00:00:00Z",
            },
            {
                "external_id": "s2",
                "customer": "c2",
                "plan": "starter",
                "amount": 2900,
                "currency": "USD",
                "interval": "year",
                "started_at": "2025-02-01T08:30:00+02:00",
                "discount_amount": 500,
            },
        ],
        "activity": [
            {
                "external_id": "a1",
                "customer": "c1",
                "user_id": "u1",
                "kind": "session",
                "occurred_at": "2025-03-01T10:00:00Z",
                "duration_seconds": 600,
            },
            {
                "external_id": "a2",
                "customer": "c1",
                "user_id": "u1",
                "kind": "login",
                "occurred_at": "2025-03-01T09:59:00Z",
            },
            {
                "external_id": "a3",
                "customer": "c2",
                "user_id": "u7",
                "kind": "feature",
                "occurred_at": "2025-03-02T12:00:00Z",
                "feature": "reports",
            },
            {
                "external_id": "a4",
                "customer": "c2",
                "user_id": "u7",
                "kind": "feature",
                "occurred_at": "2025-03-05T12:00:00Z",
                "feature": "exports",
            },
        ],
        "tickets": [
            {
                "external_id": "t1",
                "customer": "c1",
                "opened_at": "2025-03-03T09:00:00Z",
                "closed_at": "2025-03-03T17:00:00Z",
                "priority": "high",
                "satisfaction": 4,
                "subject": 'Cannot export, "quoted", with comma',
            },
            {"external_id": "t2", "customer": "c3", "opened_at": "2025-04-01T09:00:00Z"},
        ],
        "payments": [
            {
                "external_id": "p1",
                "customer": "c1",
                "subscription": "s1",
                "occurred_at": "2025-02-15T00:00:00Z",
                "status": "succeeded",
                "amount": 26_000,
                "currency": "EUR",
            },
            {
                "external_id": "p2",
                "customer": "c2",
                "subscription": "s2",
                "occurred_at": "2025-02-01T00:00:00Z",
                "status": "failed",
                "amount": 2400,
                "reason": "card_declined",
            },
            {
                "external_id": "p3",
                "customer": "c3",
                "occurred_at": "2025-03-01T00:00:00Z",
                "status": "refunded",
                "amount": 100,
            },
        ],
        "marketing": [
            {
                "channel": "search",
                "day": "2025-03-01",
                "spend": 120_000,
                "impressions": 50_000,
                "clicks": 1_200,
                "conversions": 30,
                "attributed_revenue": 300_000,
            },
            {"channel": "social", "day": "2025-03-01", "spend": 40_000, "currency": "usd"},
            {"channel": "search", "day": "2025-03-02", "spend": 0},
        ],
    }


@pytest.fixture
def rows() -> dict[str, list[dict[str, Any]]]:
    return sample_rows()


def typed(kind: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as the contract reads them (types parsed, defaults filled), for comparing sources
    that spell the same values differently (JSON input, CSV cells, API output)."""
    from aethercrown.data.kinds import KINDS

    spec = KINDS[kind]
    out = []
    for row in rows:
        present = {k: v for k, v in row.items() if k in spec.fields and v not in ("", None)}
        clean = spec.row_adapter.validate_python(present)
        out.append({f: clean.get(f, spec.defaults.get(f)) for f in spec.fields})
    return out


def stored_row(client: Any, tenant: Any, kind: str) -> dict[str, Any]:
    """The first stored row of ``kind`` for a tenant, loading the sample company if needed
    (used by tests/test_isolation.py to make a victim tenant's resources)."""
    from aethercrown.data.kinds import KINDS

    rows = sample_rows()
    for name in KINDS:
        response = client.post(f"/api/v1/data/{name}", json=rows[name], headers=tenant.headers)
        assert response.status_code == 200, response.text
    page = client.get(f"/api/v1/data/{kind}", params={"limit": 1}, headers=tenant.headers)
    return dict(page.json()["items"][0])
