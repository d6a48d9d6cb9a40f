"""The tenant's plans, the seed pricing formula, tier recommendations and invoice previews,
checked against figures computed by hand."""

from datetime import UTC, date, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from aethercrown.core.models import Decision
from aethercrown.data.models import ActivityEvent
from aethercrown.db.session import write_transaction
from aethercrown.metering import service as metering
from aethercrown.pricing import schemas, service
from tests.conftest import TenantHandle
from tests.metering.conftest import add_customer, event

BASE = "/api/v1/revenue"
NOW = datetime(2026, 3, 11, 12, tzinfo=UTC)


def test_default_plans_are_seeded_per_tenant_and_editable(
    client: TestClient, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    tiers = client.get(f"{BASE}/tiers", headers=tenant.headers).json()
    assert [(p["slug"], p["monthly_price"]) for p in tiers["plans"]] == [
        ("starter", 2900),
        ("professional", 9900),
        ("enterprise", 49900),
    ]
    assert tiers["plans"][0]["capacities"]["api_calls"] == 10_000
    assert tiers["factors"]["max_engagement_discount_bp"] == 2500

    patched = client.patch(
        f"{BASE}/tiers",
        json={
            "plans": [
                {"slug": "starter", "monthly_price": 3900, "capacities": {"api_calls": 20_000}},
                {"slug": "scale", "name": "Scale", "rank": 4, "monthly_price": 99_900},
            ],
            "factors": {"max_engagement_discount_bp": 1000},
        },
        headers=tenant.headers,
    )
    assert patched.status_code == 200, patched.text
    plans = {p["slug"]: p for p in patched.json()["plans"]}
    assert plans["starter"]["monthly_price"] == 3900
    assert plans["starter"]["capacities"] == {"api_calls": 20_000}
    assert plans["scale"]["rank"] == 4
    assert patched.json()["factors"]["max_engagement_discount_bp"] == 1000
    # the other tenant's plans are its own
    other = client.get(f"{BASE}/tiers", headers=other_tenant.headers).json()
    assert other["plans"][0]["monthly_price"] == 2900

    replaced = client.put(
        f"{BASE}/tiers",
        json={"plans": [{"slug": "solo", "name": "Solo", "rank": 1, "monthly_price": 500}]},
        headers=tenant.headers,
    )
    assert [p["slug"] for p in replaced.json()["plans"]] == ["solo"]

    for method, body in (
        ("patch", {"plans": [{"slug": "new", "monthly_price": 1}]}),  # a new plan needs more
        ("patch", {"factors": {"engagement_discounts": {"tenure_months": [[5, 100]]}}}),
        ("patch", {"factors": {"usage_multipliers": {"api_calls": [[0, 1], [0, 2]]}}}),
        ("patch", {"factors": {"usage_multipliers": {"api_calls": [[0.0, False]]}}}),  # bool
        ("patch", {"plans": [{"slug": "solo", "monthly_price": -1}]}),
        ("put", {"plans": []}),
        ("put", {"plans": [{"slug": "a", "name": "A", "rank": 1, "monthly_price": 1}] * 2}),
        (
            "put",
            {
                "plans": [
                    {
                        "slug": "a",
                        "name": "A",
                        "rank": 1,
                        "monthly_price": 1,
                        "capacities": {"api_calls": 1e300},
                    }
                ]
            },
        ),
    ):
        response = client.request(method, f"{BASE}/tiers", json=body, headers=tenant.headers)
        assert response.status_code == 422, (body, response.text)


def test_quote_by_the_seed_formula_line_by_line(client: TestClient, tenant: TenantHandle) -> None:
    body = {
        "plan": "professional",
        "usage": {"api_calls": 60_000, "storage_gb": 50, "seats": 30},
        "company_size": 300,
        "annual_revenue": 2_000_000_000,
        "activity_rate": 0.9,
        "tenure_months": 14,
        "feature_adoption": 0.4,
    }
    response = client.post(f"{BASE}/pricing/calculate", json=body, headers=tenant.headers)
    assert response.status_code == 200, response.text
    quote = response.json()
    steps = [(ln["factor"], ln["value_bp"], ln["amount_after"]) for ln in quote["lines"]]
    assert steps == [
        ("api_calls", 11_000, 10_890),  # 60,000 calls: band from 50,000
        ("seats", 11_000, 11_979),  # 30 seats: band from 25
        ("storage_gb", 10_000, 11_979),  # 50 GB: band from 0
        ("annual_revenue", 11_500, 13_776),  # $20M: band from $10M; 13,775.85 rounds up
        ("company_size", 12_500, 17_220),  # 300 employees: band from 250
        ("engagement", 1_750, 14_207),  # 1,000 + 250 + 500 bp; 17,220 × 0.825 = 14,206.5
    ]
    assert quote["final_price"] == 14_207 and quote["base_price"] == 9_900
    assert quote["usage_multiplier_bp"] == 12_100 and quote["enterprise_multiplier_bp"] == 14_375
    assert "17220 × (10000 − 1750) / 10000 = 14207" in quote["lines"][-1]["explanation"]
    # figures for people are grouped, never in scientific notation ("2e+09")
    revenue = next(ln for ln in quote["lines"] if ln["factor"] == "annual_revenue")
    assert revenue["explanation"].startswith(
        "annual_revenue 2,000,000,000 is in the band from 1,000,000,000:"
    )
    assert "60,000 per period is in the band from 50,000" in quote["lines"][0]["explanation"]

    for bad in (
        {"plan": "platinum"},
        {"usage": {"api_calls": -1}},
        {"activity_rate": 2},
        {"customer": "ghost"},
        {"tenure_months": "long"},
    ):
        response = client.post(f"{BASE}/pricing/calculate", json=bad, headers=tenant.headers)
        assert response.status_code in (404, 422), bad


def test_quote_from_a_customers_own_data(tenant: TenantHandle, session_factory) -> None:  # type: ignore[no-untyped-def]
    with write_transaction(session_factory) as s:
        customer = add_customer(
            s, tenant.uid, "c-1", "starter", company_size=60, signup_date=date(2024, 1, 15)
        )
        other = add_customer(s, tenant.uid, "c-2", "starter")
        # 20 active days in the last 30; c-1 used 2 of the 4 features seen this month
        for d in range(20):
            s.add(
                ActivityEvent(
                    tenant_id=tenant.uid,
                    external_id=f"a{d}",
                    customer_id=customer.id,
                    user_id="u",
                    kind="feature",
                    occurred_at=NOW - timedelta(days=d, hours=1),
                    feature=["export", "search"][d % 2],
                )
            )
        for i, feature in enumerate(["export", "search", "alerts", "api"]):
            s.add(
                ActivityEvent(
                    tenant_id=tenant.uid,
                    external_id=f"o{i}",
                    customer_id=other.id,
                    user_id="v",
                    kind="feature",
                    occurred_at=NOW - timedelta(days=1),
                    feature=feature,
                )
            )
    with write_transaction(session_factory) as s:
        quote = service.calculate(
            s, tenant.uid, schemas.QuoteRequest(customer="c-1"), "key:test", now=NOW
        )
    assert quote.plan == "starter"
    assert quote.inputs["activity_rate_bp"] == 6667  # 20 / 30
    assert quote.inputs["feature_adoption_bp"] == 5000  # 2 / 4
    assert quote.inputs["tenure_months"] == 25  # 2024-01-15 → 2026-03-11
    # 2900 × 1 (no usage) × 1 (revenue unknown) × 1.1 (60 staff) = 3190;
    # discount 500 + 250 + 1000 = 1750 bp: 3190 × 0.825 = 2631.75 → 2632
    assert quote.final_price == 2632
    with session_factory() as s:
        decision = s.scalars(select(Decision).where(Decision.kind == "price_quote")).one()
    assert decision.predicted_value == 2632 and decision.output["plan"] == "starter"


def test_recommend_tier_cheapest_covering_with_overage_comparison(
    client: TestClient, tenant: TenantHandle
) -> None:
    url = f"{BASE}/pricing/recommend-tier"
    body = {"usage": {"api_calls": 20_000, "storage_gb": 5, "seats": 3}}
    out = client.post(url, json=body, headers=tenant.headers).json()
    assert out["recommended"]["slug"] == "professional" and out["recommended"]["total"] == 9_900
    starter = out["comparison"][0]
    # 10,000 calls over: 10 packages of 1,000 at 50
    assert (starter["slug"], starter["covers"], starter["overage_total"]) == ("starter", False, 500)
    assert out["cheapest_total"]["slug"] == "starter" and out["cheapest_total"]["total"] == 3_400

    huge = client.post(url, json={"usage": {"api_calls": 2_000_000}}, headers=tenant.headers).json()
    totals = {c["slug"]: c["total"] for c in huge["comparison"]}
    assert totals == {"starter": 102_400, "professional": 104_900, "enterprise": 99_900}
    assert huge["recommended"]["slug"] == "enterprise" and not huge["recommended"]["covers"]
    assert client.post(url, json={}, headers=tenant.headers).status_code == 422


def test_invoice_preview_base_plus_overage(
    client: TestClient,
    tenant: TenantHandle,
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    with write_transaction(session_factory) as s:
        add_customer(s, tenant.uid, "c-1", "starter")
        add_customer(s, tenant.uid, "c-free", None)
    with write_transaction(session_factory) as s:
        metering.track(
            s,
            tenant.uid,
            [
                event("a", "c-1", "api_calls", 12_345, NOW - timedelta(days=1)),
                event("s", "c-1", "storage_gb", 12.5, NOW - timedelta(days=1)),
            ],
            now=NOW,
        )
    with write_transaction(session_factory) as s:
        metering.fold_pending(s, now=NOW)
    with session_factory() as s:
        preview = service.invoice_preview(s, tenant.uid, "c-1", now=NOW)
    lines = {o.metric: (o.packages, o.amount) for o in preview.overage}
    assert lines["api_calls"] == (3, 150)  # 2,345 over: 3 started packages of 1,000
    assert lines["storage_gb"] == (3, 75)  # 2.5 GB over: 3 started GB
    assert preview.base == 2_900 and preview.total_to_date == 3_125
    assert preview.projected_total >= preview.total_to_date
    url = f"{BASE}/invoices/c-free/preview"
    assert client.get(url, headers=tenant.headers).status_code == 404
