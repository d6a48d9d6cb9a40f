"""Stripe: signed webhooks, idempotent mapping in any order, MRR, isolation and backfill."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi.testclient import TestClient

from aethercrown import clock
from aethercrown.analytics.metrics import SubscriptionRecord, subscription_mrr
from tests.conftest import TenantHandle, create_tenant
from tests.connectors.conftest import connect_stripe, map_stripe, send_event
from tests.connectors.stripe_fakes import (
    WEBHOOK_SECRET,
    customer,
    event,
    invoice,
    item,
    price,
    stripe_server,
    stripe_signature,
    subscription,
)

DAY = 86_400
JAN = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())


def _rows(client: TestClient, tenant: TenantHandle, kind: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 500}
        if cursor:
            params["cursor"] = cursor
        page = client.get(f"/api/v1/data/{kind}", params=params, headers=tenant.headers).json()
        out.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return out


def _mapping(client: TestClient, tenant: TenantHandle) -> tuple[Any, ...]:
    """(received, mapped, pending, failed, recent failures) from the connector's status."""
    response = client.get("/api/v1/connectors/stripe/mapping", headers=tenant.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    return (
        body["received"],
        body["mapped"],
        body["pending"],
        body["failed"],
        body["recent_failures"],
    )


def _comparable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    drop = {"id", "customer_id", "subscription_id", "created_at", "updated_at"}
    return sorted(
        ({k: v for k, v in r.items() if k not in drop} for r in rows),
        key=lambda r: str(r.get("external_id")),
    )


def _mrr_at(rows: list[dict[str, Any]], instant: datetime) -> int:
    total = 0
    for r in rows:
        started = datetime.fromisoformat(r["started_at"])
        ended = datetime.fromisoformat(r["ended_at"]) if r["ended_at"] else None
        trial = datetime.fromisoformat(r["trial_end"]) if r["trial_end"] else None
        if (
            started <= instant
            and (ended is None or ended > instant)
            and (trial is None or trial <= instant)
        ):
            total += subscription_mrr(
                SubscriptionRecord(
                    customer=r["customer"],
                    plan=r["plan"],
                    amount=r["amount"],
                    interval=r["interval"],
                    started_at=started,
                    ended_at=ended,
                    quantity=r["quantity"],
                    discount_percent=r["discount_percent"],
                    discount_amount=r["discount_amount"],
                    trial_end=trial,
                )
            )
    return total


STARTER = price("price_starter", 2900, nickname="starter")
PRO = price("price_pro", 9900, nickname="professional")
YEARLY = price("price_year", 120_000, "year", nickname="professional-yearly")
QUARTERLY = price("price_q", 30_000, "month", 3, nickname="quarterly")
METERED = price("price_api", 5, usage="metered", nickname="api-calls")


def history() -> list[dict[str, Any]]:
    """Two customers, a mid-month plan change with a proration invoice, a yearly plan with a
    25 % coupon, a quarterly plan, a metered item, a failed then a paid invoice."""
    c1, c2 = (
        customer("cus_1", JAN, "Alpha", "a@alpha.example"),
        customer("cus_2", JAN + DAY, "Beta"),
    )
    s1_items = [item("si_1", STARTER, 2, JAN + 4 * DAY), item("si_m", METERED, 1, JAN + 4 * DAY)]
    s1 = subscription("sub_1", "cus_1", s1_items, start=JAN + 4 * DAY)
    changed = JAN + 44 * DAY  # 14 February
    s1_pro = subscription(
        "sub_1", "cus_1", [item("si_1", PRO, 2, JAN + 4 * DAY), s1_items[1]], start=JAN + 4 * DAY
    )
    coupon = {"coupon": {"id": "25OFF", "percent_off": 25.0, "duration": "forever"}}
    s2 = subscription(
        "sub_2",
        "cus_2",
        [item("si_2", YEARLY, 1, JAN + 9 * DAY)],
        start=JAN + 9 * DAY,
        discount=coupon,
    )
    s3 = subscription(
        "sub_3", "cus_2", [item("si_3", QUARTERLY, 1, JAN + 19 * DAY)], start=JAN + 19 * DAY
    )
    proration = [
        {"amount": -2900, "proration": True, "period": {"start": changed, "end": changed}},
        {"amount": 9900, "proration": True, "period": {"start": changed, "end": changed}},
    ]
    failed = invoice(
        "in_1", "cus_1", "sub_1", created=changed, status="open", amount=7000, lines=proration
    )
    paid = {
        **invoice(
            "in_1",
            "cus_1",
            "sub_1",
            created=changed,
            status="paid",
            amount=7000,
            lines=proration,
            paid=True,
        ),
        "attempt_count": 2,
    }
    return [
        event("evt_1", "customer.created", JAN, c1),
        event("evt_2", "customer.created", JAN + DAY, c2),
        event("evt_3", "customer.subscription.created", JAN + 4 * DAY, s1),
        event("evt_4", "customer.subscription.created", JAN + 9 * DAY, s2),
        event("evt_5", "customer.subscription.created", JAN + 19 * DAY, s3),
        event("evt_6", "customer.subscription.updated", changed, s1_pro),
        event("evt_7", "invoice.payment_failed", changed + 60, failed),
        event("evt_8", "invoice.paid", changed + 3 * DAY, paid),
    ]


def test_signed_events_are_stored_once_and_mapped(
    client: TestClient, stripe_tenant: TenantHandle
) -> None:
    first = event("evt_c", "customer.created", JAN, customer("cus_9", JAN, "Nine", "n@x.example"))
    response = send_event(client, stripe_tenant, first, map_after=False)
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 1, "stored": 1, "duplicates": 0}
    # Acknowledged once stored; mapped by the job, not in the request.
    assert _rows(client, stripe_tenant, "customers") == []
    assert _mapping(client, stripe_tenant)[:4] == (1, 0, 1, 0)
    assert map_stripe(client, stripe_tenant).mapped == 1
    assert _mapping(client, stripe_tenant)[:4] == (1, 1, 0, 0)
    again = send_event(client, stripe_tenant, first, map_after=False)
    assert again.json() == {"received": 1, "stored": 0, "duplicates": 1}
    assert _mapping(client, stripe_tenant)[:4] == (1, 1, 0, 0)  # nothing new to map
    rows = _rows(client, stripe_tenant, "customers")
    assert [(r["external_id"], r["name"], r["email"], r["country"]) for r in rows] == [
        ("cus_9", "Nine", "n@x.example", "DE")
    ]
    events = client.get("/api/v1/connectors/stripe/events", headers=stripe_tenant.headers).json()
    assert [e["event_id"] for e in events["items"]] == ["evt_c"]


def test_bad_or_stale_signatures_are_400_and_store_nothing(
    client: TestClient, stripe_tenant: TenantHandle
) -> None:
    body = event("evt_x", "customer.created", JAN, customer("cus_x", JAN))
    payload = orjson.dumps(body)
    now = int(clock.utcnow().timestamp())
    url = f"/api/v1/connectors/stripe/webhook/{stripe_tenant.id}"
    cases = {
        "missing": {},
        "wrong secret": {"Stripe-Signature": stripe_signature("whsec_other_secret", payload, now)},
        "stale": {"Stripe-Signature": stripe_signature(WEBHOOK_SECRET, payload, now - 301)},
        "future": {"Stripe-Signature": stripe_signature(WEBHOOK_SECRET, payload, now + 330)},
        "garbage": {"Stripe-Signature": "nonsense"},
    }
    for name, headers in cases.items():
        response = client.post(url, content=payload, headers=headers)
        assert response.status_code == 400, name
        assert response.headers["content-type"] == "application/problem+json", name
    tampered = payload.replace(b"Acme", b"Evil")
    signed = {"Stripe-Signature": stripe_signature(WEBHOOK_SECRET, payload, now)}
    assert client.post(url, content=tampered, headers=signed).status_code == 400
    assert client.post(url, content=payload, headers=signed).status_code == 200  # inside 300 s
    fresh = {**body, "id": "evt_y"}
    fresh_payload = orjson.dumps(fresh)
    within = stripe_signature(WEBHOOK_SECRET, fresh_payload, now - 290)
    assert (
        client.post(url, content=fresh_payload, headers={"Stripe-Signature": within}).status_code
        == 200
    )
    events = client.get("/api/v1/connectors/stripe/events", headers=stripe_tenant.headers).json()
    assert sorted(e["event_id"] for e in events["items"]) == ["evt_x", "evt_y"]


def test_malformed_events_are_4xx_and_store_nothing(
    client: TestClient, stripe_tenant: TenantHandle
) -> None:
    bad_events: list[Any] = [
        [],
        {"object": "event"},
        {**event("evt_b", "customer.created", JAN, {"object": "customer"})},
        {**event("evt_b", "customer.created", -5, customer("cus_b", JAN))},
        event("evt_b", "customer.created", JAN, {**customer("cus_b", JAN), "name": "a\x00b"}),
    ]
    for body in bad_events:
        response = send_event(client, stripe_tenant, body)
        assert 400 <= response.status_code < 500, body
        assert response.headers["content-type"] == "application/problem+json"
    not_json = b"{not json"
    now = int(clock.utcnow().timestamp())
    response = client.post(
        f"/api/v1/connectors/stripe/webhook/{stripe_tenant.id}",
        content=not_json,
        headers={"Stripe-Signature": stripe_signature(WEBHOOK_SECRET, not_json, now)},
    )
    assert response.status_code == 422
    assert (
        client.get("/api/v1/connectors/stripe/events", headers=stripe_tenant.headers).json()[
            "items"
        ]
        == []
    )
    assert _rows(client, stripe_tenant, "customers") == []
    assert _rows(client, stripe_tenant, "subscriptions") == []


def test_any_arrival_order_maps_to_the_same_rows(client: TestClient, admin_key: str) -> None:
    events = history()
    results = []
    for seed in (None, 1, 2, 3):
        tenant = create_tenant(client, admin_key, tier="professional")
        connect_stripe(client, tenant)
        order = list(events)
        if seed is not None:
            random.Random(seed).shuffle(order)
        for e in order + order[:3]:  # and some redelivered
            response = send_event(client, tenant, e)
            assert response.status_code == 200, response.text
        results.append(
            {
                kind: _comparable(_rows(client, tenant, kind))
                for kind in ("customers", "subscriptions", "payments")
            }
        )
    assert all(r == results[0] for r in results[1:])
    customers = {c["external_id"]: c for c in results[0]["customers"]}
    assert customers["cus_1"]["name"] == "Alpha"  # the customer's event replaced any placeholder
    payments = {p["external_id"]: p for p in results[0]["payments"]}
    assert payments["in_1:failed:1"]["status"] == "failed"
    assert payments["in_1:paid"]["status"] == "succeeded"
    assert payments["in_1:paid"]["amount"] == 7000
    assert payments["in_1:paid"]["subscription"].startswith("sub_1:si_1:")


def test_mrr_from_stripe_history_equals_what_the_subscriptions_say(
    client: TestClient, stripe_tenant: TenantHandle
) -> None:
    for e in history():
        assert send_event(client, stripe_tenant, e).status_code == 200
    rows = _rows(client, stripe_tenant, "subscriptions")
    jan_end = datetime(2025, 1, 31, 23, 59, tzinfo=UTC)
    feb_13 = datetime(2025, 2, 13, 23, 59, tzinfo=UTC)
    feb_end = datetime(2025, 2, 28, 23, 59, tzinfo=UTC)
    yearly = 120_000 * 75 // 100 // 12  # 7,500 a month after the 25 % coupon
    quarterly = 30_000 // 3
    assert _mrr_at(rows, jan_end) == 2 * 2900 + yearly + quarterly
    assert _mrr_at(rows, feb_13) == 2 * 2900 + yearly + quarterly
    # From the change on: the new plan, with no trace of the proration lines.
    assert _mrr_at(rows, feb_end) == 2 * 9900 + yearly + quarterly
    plans = sorted((r["external_id"].split(":")[1], r["plan"], r["ended_at"] is None) for r in rows)
    assert plans == [
        ("si_1", "professional", True),
        ("si_1", "starter", False),
        ("si_2", "professional-yearly", True),
        ("si_3", "quarterly", True),
    ]
    revenue = client.post(
        "/api/v1/dashboard/metrics/revenue",
        json={"start": "2025-01", "end": "2025-02", "currency": "USD"},
        headers=stripe_tenant.headers,
    )
    assert revenue.status_code == 200, revenue.text
    mrr = [m["mrr"] for m in revenue.json()["months"]]
    assert mrr == [_mrr_at(rows, jan_end), _mrr_at(rows, feb_end)]
    invoices = client.get("/api/v1/connectors/stripe/invoices", headers=stripe_tenant.headers)
    [inv] = invoices.json()["items"]
    assert (inv["status"], inv["proration_amount"], inv["recurring_amount"]) == ("paid", 7000, 0)


def test_trials_cancellations_at_period_end_and_pauses(
    client: TestClient, stripe_tenant: TenantHandle
) -> None:
    start = JAN
    items = [item("si_t", PRO, 1, start)]
    trialing = subscription(
        "sub_t", "cus_t", items, start=start, status="trialing", trial_end=start + 14 * DAY
    )
    active = {**trialing, "status": "active"}
    cancelling = {**active, "cancel_at_period_end": True, "current_period_end": start + 75 * DAY}
    paused = {**cancelling, "cancel_at_period_end": False, "pause_collection": {"behavior": "void"}}
    resumed = {**paused, "pause_collection": None}
    sequence = [
        event("e1", "customer.subscription.created", start, trialing),
        event("e2", "customer.subscription.updated", start + 14 * DAY, active),
        event("e3", "customer.subscription.updated", start + 20 * DAY, cancelling),
        event("e4", "customer.subscription.paused", start + 40 * DAY, paused),
        event("e5", "customer.subscription.resumed", start + 50 * DAY, resumed),
    ]
    for e in sequence[:3]:
        assert send_event(client, stripe_tenant, e).status_code == 200
    [row] = _rows(client, stripe_tenant, "subscriptions")
    assert row["trial_end"] is not None
    assert datetime.fromisoformat(row["ended_at"]) == datetime.fromtimestamp(start + 75 * DAY, UTC)
    for e in sequence[3:]:
        assert send_event(client, stripe_tenant, e).status_code == 200
    rows = sorted(_rows(client, stripe_tenant, "subscriptions"), key=lambda r: r["started_at"])
    spans = [(r["started_at"][:10], (r["ended_at"] or "")[:10]) for r in rows]
    assert spans == [("2025-01-01", "2025-02-10"), ("2025-02-20", "")]
    assert _mrr_at(rows, datetime(2025, 2, 15, tzinfo=UTC)) == 0  # paused
    assert _mrr_at(rows, datetime(2025, 2, 25, tzinfo=UTC)) == 9900
    customers = _rows(client, stripe_tenant, "customers")
    assert customers[0]["attributes"]["placeholder"] is True  # no customer event yet


def test_a_tenant_never_sees_another_tenants_stripe_events(
    client: TestClient, stripe_tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    connect_stripe(client, other_tenant, secret="whsec_globex_secret_987654")
    e = event("evt_iso", "customer.created", JAN, customer("cus_iso", JAN))
    # Signed with acme's secret but sent to globex's endpoint: refused.
    assert send_event(client, other_tenant, e).status_code == 400
    assert send_event(client, stripe_tenant, e).status_code == 200
    assert _rows(client, other_tenant, "customers") == []
    other_events = client.get("/api/v1/connectors/stripe/events", headers=other_tenant.headers)
    assert other_events.json()["items"] == []
    # The same event id is a different event in another tenant's account.
    signed = send_event(client, other_tenant, e, secret="whsec_globex_secret_987654")
    assert signed.json()["stored"] == 1
    unknown = send_event(client, other_tenant, e)
    assert unknown.status_code == 400
    nowhere = client.post(
        "/api/v1/connectors/stripe/webhook/00000000-0000-0000-0000-000000000000",
        content=b"{}",
        headers={"Stripe-Signature": "t=1,v1=00"},
    )
    assert nowhere.status_code == 404


def _account(n: int) -> dict[str, list[dict[str, Any]]]:
    customers = [customer(f"cus_{i:05d}", JAN + i, f"Customer {i}") for i in range(n)]
    subs = [
        subscription(
            f"sub_{i:05d}",
            f"cus_{i:05d}",
            [item(f"si_{i:05d}", STARTER if i % 2 else YEARLY, 1 + i % 3, JAN + i)],
            start=JAN + i,
            status="canceled" if i % 10 == 0 else "active",
            ended_at=JAN + 90 * DAY if i % 10 == 0 else None,
        )
        for i in range(n)
    ]
    invoices = [
        invoice(
            f"in_{i:05d}",
            f"cus_{i:05d}",
            f"sub_{i:05d}",
            created=JAN + i,
            status="paid",
            amount=2900,
            paid=True,
        )
        for i in range(0, n, 5)
    ]
    return {"customers": customers, "subscriptions": subs, "invoices": invoices}


def test_backfill_pages_resumes_and_honours_rate_limits(
    client: TestClient, stripe_tenant: TenantHandle
) -> None:
    account = _account(250)
    with stripe_server(account) as server:
        connect_stripe(client, stripe_tenant, api_key="sk_test_backfill_key", api_base=server.url)
        # Subscriptions fail (500, past the client's own retries) after their second page.
        server.fail_after["subscriptions"] = 2
        server.failures = [(429, {"Stripe-Should-Retry": "true", "Retry-After": "0"}), (500, {})]
        stopped = client.post("/api/v1/connectors/stripe/backfill", headers=stripe_tenant.headers)
        assert stopped.status_code == 424, stopped.text
        assert stopped.headers["content-type"] == "application/problem+json"
        state = client.get("/api/v1/connectors/stripe", headers=stripe_tenant.headers).json()
        assert state["backfill_status"] == "failed"
        assert state["backfill"]["customers"]["done"] is True
        assert state["backfill"]["subscriptions"]["fetched"] == 200
        assert len(_rows(client, stripe_tenant, "subscriptions")) == 200
        del server.fail_after["subscriptions"]
        server.requests.clear()
        # A rate limit the client is not told to retry: the backfill waits and resumes itself.
        server.failures = [(429, {"Retry-After": "0"})]
        done = client.post("/api/v1/connectors/stripe/backfill", headers=stripe_tenant.headers)
        assert done.status_code == 200, done.text
        body = done.json()
        assert body["status"] == "complete"
        assert body["rate_limited"] == 1
        assert body["resources"]["subscriptions"]["fetched"] == 250
        assert body["resources"]["invoices"]["fetched"] == 50
        # Resumed after the last stored subscription, never from the start.
        assert not any(r.startswith("/v1/customers") for r in server.requests)
        assert "starting_after=sub_00199" in server.requests[1]
    subs = _rows(client, stripe_tenant, "subscriptions")
    assert len(subs) == 250
    assert sum(1 for s in subs if s["ended_at"] is not None) == 25
    assert len(_rows(client, stripe_tenant, "customers")) == 250
    assert len(_rows(client, stripe_tenant, "payments")) == 50


def test_backfill_needs_an_api_key_and_a_connection(
    client: TestClient, tenant: TenantHandle
) -> None:
    missing = client.post("/api/v1/connectors/stripe/backfill", headers=tenant.headers)
    assert missing.status_code == 404
    connect_stripe(client, tenant)
    no_key = client.post("/api/v1/connectors/stripe/backfill", headers=tenant.headers)
    assert no_key.status_code == 422
    bad = client.put(
        "/api/v1/connectors/stripe",
        json={"webhook_secret": "short", "api_base": "not a url"},
        headers=tenant.headers,
    )
    assert bad.status_code == 422
