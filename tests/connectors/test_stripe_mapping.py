"""Stripe webhooks acknowledged once stored and mapped by a job in batches: duplicates,
arrival order, failures retried with backoff without blocking others, concurrent mappers."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from aethercrown import clock
from aethercrown.cli import app as cli_app
from aethercrown.connectors import stripe_service
from aethercrown.connectors.repository import StripeEventRepository, StripeSegmentRepository
from aethercrown.core.errors import InvalidInput
from aethercrown.core.jobs import all_jobs
from aethercrown.db.session import read_transaction
from aethercrown.settings import Settings, get_settings
from tests.conftest import TenantHandle, create_tenant
from tests.connectors.conftest import connect_stripe, map_stripe, send_event
from tests.connectors.stripe_fakes import customer, event, invoice, item, price, subscription
from tests.connectors.test_stripe import JAN, _comparable, _mapping, _rows, history

DAY = 86_400
PLANS = [price("price_s", 2900, nickname="starter"), price("price_p", 9900, nickname="pro")]


def _history(prefix: str, n: int) -> list[dict[str, Any]]:
    """Four events per customer: created, subscribed, changed plan, invoice paid."""
    out = []
    for i in range(n):
        cus, sub, si = f"cus_{prefix}{i}", f"sub_{prefix}{i}", f"si_{prefix}{i}"
        t = JAN + i
        first = subscription(sub, cus, [item(si, PLANS[i % 2], 1, t)], start=t)
        changed = subscription(sub, cus, [item(si, PLANS[(i + 1) % 2], 1, t)], start=t)
        paid = invoice(
            f"in_{prefix}{i}", cus, sub, created=t + 15 * DAY, status="paid", amount=2900, paid=True
        )
        out += [
            event(f"evt_{prefix}{i}_c", "customer.created", t, customer(cus, t, f"C {i}")),
            event(f"evt_{prefix}{i}_s", "customer.subscription.created", t, first),
            event(f"evt_{prefix}{i}_u", "customer.subscription.updated", t + 14 * DAY, changed),
            event(f"evt_{prefix}{i}_i", "invoice.paid", t + 15 * DAY, paid),
        ]
    return out


def _store(client: TestClient, tenant: TenantHandle, events: Sequence[dict[str, Any]]) -> None:
    for e in events:
        response = send_event(client, tenant, e, map_after=False)
        assert response.status_code == 200, response.text


def _data(client: TestClient, tenant: TenantHandle) -> dict[str, Any]:
    return {
        kind: _comparable(_rows(client, tenant, kind))
        for kind in ("customers", "subscriptions", "payments")
    }


def test_stored_events_are_mapped_in_batches_in_any_order_as_one_by_one(
    client: TestClient, admin_key: str
) -> None:
    events = history() + _history("a", 5)
    one_by_one = create_tenant(client, admin_key, tier="professional")
    connect_stripe(client, one_by_one)
    for e in events:  # in order, mapped after each delivery
        assert send_event(client, one_by_one, e).status_code == 200
    expected = _data(client, one_by_one)
    for seed, batch_size in ((1, 2), (2, 5), (3, 500)):
        tenant = create_tenant(client, admin_key, tier="professional")
        connect_stripe(client, tenant)
        order = list(events)
        random.Random(seed).shuffle(order)
        _store(client, tenant, order + order[:4])  # and some redelivered
        assert _mapping(client, tenant)[:4] == (len(events), 0, len(events), 0)
        assert _rows(client, tenant, "customers") == []  # acknowledged, not mapped yet
        report = stripe_service.map_pending(
            client.app.state.session_factory,  # type: ignore[attr-defined]
            tenant.uid,
            batch_size=batch_size,
        )
        assert report.mapped == len(events)
        assert report.batches == -(-len(events) // batch_size)
        assert _data(client, tenant) == expected, (seed, batch_size)
        assert _mapping(client, tenant)[:4] == (len(events), len(events), 0, 0)


def _invoices(client: TestClient, tenant: TenantHandle) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 500}
    while True:
        page = client.get(
            "/api/v1/connectors/stripe/invoices", params=params, headers=tenant.headers
        ).json()
        out.extend(page["items"])
        if not page["next_cursor"]:
            return sorted(out, key=lambda r: str(r["external_id"]))
        params["cursor"] = page["next_cursor"]


def _mapped_in(
    client: TestClient, admin_key: str, events: Sequence[dict[str, Any]], batch_size: int
) -> tuple[dict[str, Any], set[str]]:
    """A new tenant's customers, subscriptions, payments and invoices once ``events`` (in this
    order) are stored and mapped ``batch_size`` a transaction, and the segments the connector
    recorded as written for its Stripe subscriptions."""
    tenant = create_tenant(client, admin_key, tier="professional")
    connect_stripe(client, tenant)
    _store(client, tenant, events)
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    report = stripe_service.map_pending(factory, tenant.uid, batch_size=batch_size)
    assert (report.mapped, report.failed) == (len({e["id"] for e in events}), 0)
    subscriptions = {
        e["data"]["object"]["id"] for e in events if e["type"].startswith("customer.s")
    }
    with read_transaction(factory) as session:
        recorded = StripeSegmentRepository(session, tenant.uid).recorded(subscriptions)
    return {**_data(client, tenant), "invoices": _invoices(client, tenant)}, recorded


def test_two_arrival_orders_and_batch_sizes_map_to_the_same_rows(
    client: TestClient, admin_key: str
) -> None:
    """The same events in two orders, mapped 3 and 7 a batch (so plan changes, invoices and
    payments often arrive in another batch than their subscription, and superseded segments
    are deleted from a later one), give the same customers, subscriptions (segments), invoices
    and payments; the connector's record of written segments is exactly the segments stored."""
    events = history() + _history("o", 6)
    shuffled = list(events)
    random.Random(7).shuffle(shuffled)
    first, recorded_first = _mapped_in(client, admin_key, shuffled, 3)
    second, recorded_second = _mapped_in(client, admin_key, [*reversed(events), *events[:3]], 7)
    assert first == second
    assert {row["external_id"] for row in first["subscriptions"]} == recorded_first
    assert recorded_first == recorded_second
    # Plan changes closed segments and opened new ones: more segments than subscriptions.
    assert len(first["subscriptions"]) > len({s.split(":")[0] for s in recorded_first})
    assert first["invoices"] and first["payments"]


def _bad_and_flaky(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[dict[str, Any], dict[str, Any], set[str]]:
    """A subscription event that can never map, a customer event whose object fails to map
    while its id is in the returned set (the mapping is patched so), and that set."""
    bad_price = {"id": "p", "unit_amount": "9"}  # not a Stripe amount: the object cannot map
    bad = event(
        "evt_bad",
        "customer.subscription.created",
        JAN,
        subscription("sub_bad", "cus_bad", [item("si_bad", bad_price, 1, JAN)], start=JAN),
    )
    flaky = event("evt_flaky", "customer.created", JAN, customer("cus_flaky", JAN, "Flaky"))
    failing = {"cus_flaky"}
    real_map_objects = stripe_service.map_objects

    def map_objects(session: Any, tenant_id: Any, object_ids: Any, without: Any = None) -> int:
        wanted = set(object_ids)
        if wanted & failing:
            raise InvalidInput("the flaky customer cannot be mapped just now")
        return real_map_objects(session, tenant_id, wanted, without)

    monkeypatch.setattr(stripe_service, "map_objects", map_objects)
    return bad, flaky, failing


def test_a_failing_event_is_retried_with_backoff_and_blocks_nothing(
    client: TestClient, stripe_tenant: TenantHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad, flaky, failing = _bad_and_flaky(monkeypatch)
    good = _history("g", 3)
    # The malformed object is acknowledged (Stripe would retry a refusal for days) and kept.
    _store(client, stripe_tenant, [bad, flaky, *good])
    report = map_stripe(client, stripe_tenant)
    assert (report.mapped, report.failed) == (len(good), 2)
    received, mapped, pending, failed, failures = _mapping(client, stripe_tenant)
    assert (received, mapped, pending, failed) == (len(good) + 2, len(good), 0, 2)
    by_id = {f["event_id"]: f for f in failures}
    assert "unit_amount" in by_id["evt_bad"]["error"]
    assert "flaky" in by_id["evt_flaky"]["error"]
    assert by_id["evt_bad"]["attempts"] == 1
    # The others were mapped all the same.
    assert sorted(c["external_id"] for c in _rows(client, stripe_tenant, "customers")) == [
        "cus_g0",
        "cus_g1",
        "cus_g2",
    ]
    # Not claimed again before its retry time (30 s after the first failure)...
    assert map_stripe(client, stripe_tenant).batches == 0
    failing.clear()  # the flaky object's trouble is over
    later = clock.utcnow() + timedelta(seconds=31)
    with clock.travel(later, tick=False):
        report = map_stripe(client, stripe_tenant)
        assert (report.mapped, report.failed) == (1, 1)
        _, mapped, pending, failed, failures = _mapping(client, stripe_tenant)
        assert (mapped, pending, failed) == (len(good) + 1, 0, 1)
        assert [(f["event_id"], f["attempts"]) for f in failures] == [("evt_bad", 2)]
        # ...and backing off: the second failure waits 60 s.
        assert map_stripe(client, stripe_tenant).batches == 0
    assert "cus_flaky" in {c["external_id"] for c in _rows(client, stripe_tenant, "customers")}


def _dead(client: TestClient, tenant: TenantHandle) -> dict[str, Any]:
    response = client.get("/api/v1/connectors/stripe/mapping", headers=tenant.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _act(client: TestClient, tenant: TenantHandle, event_id: str, action: str) -> Any:
    return client.post(
        f"/api/v1/connectors/stripe/events/{event_id}/{action}", headers=tenant.headers
    )


def test_an_event_failing_too_often_is_set_aside_dead_then_retried_or_discarded(
    client: TestClient,
    stripe_tenant: TenantHandle,
    other_tenant: TenantHandle,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = stripe_service.get_settings().model_copy(update={"stripe_mapping_max_attempts": 2})
    monkeypatch.setattr(stripe_service, "get_settings", lambda: settings)
    bad, flaky, failing = _bad_and_flaky(monkeypatch)
    good = event("evt_good", "customer.created", JAN, customer("cus_good", JAN, "Good"))
    _store(client, stripe_tenant, [bad, flaky, good])
    assert map_stripe(client, stripe_tenant).failed == 2
    with clock.travel(clock.utcnow() + timedelta(seconds=31), tick=False):
        report = map_stripe(client, stripe_tenant)
    assert (report.failed, report.dead) == (2, 2)
    status = _dead(client, stripe_tenant)
    assert [status[k] for k in ("pending", "failed", "dead", "discarded")] == [0, 0, 2, 0]
    dead = {d["event_id"]: d for d in status["dead_events"]}
    assert set(dead) == {"evt_bad", "evt_flaky"} and status["recent_failures"] == []
    assert dead["evt_bad"]["attempts"] == 2 and "unit_amount" in dead["evt_bad"]["error"]
    assert dead["evt_bad"]["object_id"] == "sub_bad"
    # Dead: never claimed again, however long one waits.
    with clock.travel(clock.utcnow() + timedelta(days=30), tick=False):
        assert map_stripe(client, stripe_tenant).batches == 0

    # Bad requests: problem+json 4xx, never another tenant's event.
    for event_id, action, code in [
        ("evt_good", "retry", 409),  # mapped, not dead
        ("evt_nope", "discard", 404),
        ("x" * 256, "retry", 422),
    ]:
        answer = _act(client, stripe_tenant, event_id, action)
        assert answer.status_code == code, (event_id, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
    connect_stripe(client, other_tenant)
    assert _act(client, other_tenant, "evt_bad", "discard").status_code == 404
    assert _dead(client, stripe_tenant)["dead"] == 2

    # Retried once its trouble is over: pending again with fresh attempts, then mapped.
    failing.clear()
    retried = _act(client, stripe_tenant, "evt_flaky", "retry")
    assert retried.status_code == 200, retried.text
    assert retried.json() == {"event_id": "evt_flaky", "status": "pending"}
    assert (_dead(client, stripe_tenant)["pending"], _dead(client, stripe_tenant)["dead"]) == (1, 1)
    assert map_stripe(client, stripe_tenant).mapped == 1
    assert "cus_flaky" in {c["external_id"] for c in _rows(client, stripe_tenant, "customers")}

    # Discarded: kept (a redelivery is a duplicate), never mapped, not dead any more.
    discarded = _act(client, stripe_tenant, "evt_bad", "discard")
    assert discarded.json() == {"event_id": "evt_bad", "status": "discarded"}
    assert _act(client, stripe_tenant, "evt_bad", "retry").status_code == 409
    again = send_event(client, stripe_tenant, bad)
    assert again.json()["duplicates"] == 1
    status = _dead(client, stripe_tenant)
    assert [status[k] for k in ("pending", "failed", "dead", "discarded")] == [0, 0, 0, 1]
    assert status["dead_events"] == []
    subscriptions = _rows(client, stripe_tenant, "subscriptions")
    assert "sub_bad" not in {s["external_id"] for s in subscriptions}


def test_a_dead_event_does_not_block_its_object(
    client: TestClient, stripe_tenant: TenantHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The object is mapped from its other events while one of them is dead."""
    settings = stripe_service.get_settings().model_copy(update={"stripe_mapping_max_attempts": 1})
    monkeypatch.setattr(stripe_service, "get_settings", lambda: settings)
    created = customer("cus_x", JAN, "First name")
    broken = {**customer("cus_x", JAN, "Broken"), "currency": "not a currency"}
    renamed = customer("cus_x", JAN, "Second name")
    send_event(client, stripe_tenant, event("evt_x1", "customer.created", JAN, created))
    send_event(client, stripe_tenant, event("evt_x2", "customer.updated", JAN + 10, broken))
    assert _dead(client, stripe_tenant)["dead"] == 1
    send_event(client, stripe_tenant, event("evt_x3", "customer.updated", JAN + 20, renamed))
    names = {c["external_id"]: c["name"] for c in _rows(client, stripe_tenant, "customers")}
    assert names == {"cus_x": "Second name"}
    assert _dead(client, stripe_tenant)["failed"] == 0


def test_a_bad_event_fails_alone_not_with_the_good_events_of_its_object_in_its_batch(
    client: TestClient, stripe_tenant: TenantHandle
) -> None:
    """Three events of one customer claimed in one batch, one of them bad: the object is mapped
    from the other two, and only the bad one waits for a retry."""
    created = customer("cus_y", JAN, "First name")
    broken = {**customer("cus_y", JAN, "Broken"), "currency": "not a currency"}
    renamed = customer("cus_y", JAN, "Second name")
    other = customer("cus_z", JAN, "Zed")
    _store(
        client,
        stripe_tenant,
        [
            event("evt_y1", "customer.created", JAN, created),
            event("evt_y2", "customer.updated", JAN + 20, broken),  # the newest: it counts
            event("evt_y3", "customer.updated", JAN + 10, renamed),
            event("evt_z1", "customer.created", JAN, other),
        ],
    )
    report = map_stripe(client, stripe_tenant)
    assert (report.mapped, report.failed, report.objects) == (3, 1, 2)
    names = {c["external_id"]: c["name"] for c in _rows(client, stripe_tenant, "customers")}
    assert names == {"cus_y": "Second name", "cus_z": "Zed"}
    status = _dead(client, stripe_tenant)
    assert (status["mapped"], status["failed"], status["pending"]) == (3, 1, 0)
    assert [f["event_id"] for f in status["recent_failures"]] == ["evt_y2"]
    assert "currency" in status["recent_failures"][0]["error"]


def test_two_concurrent_mappers_map_each_event_once(
    client: TestClient, stripe_tenant: TenantHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _history("p", 60)
    _store(client, stripe_tenant, events)
    marked: list[int] = []
    lock = threading.Lock()
    real_mark = StripeEventRepository.mark_mapped

    def mark_mapped(self: StripeEventRepository, ids: Sequence[int], now: Any) -> None:
        with lock:
            marked.extend(ids)
        real_mark(self, ids, now)

    monkeypatch.setattr(StripeEventRepository, "mark_mapped", mark_mapped)
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    reports: list[stripe_service.MappingReport] = []
    start = threading.Barrier(2)

    def mapper() -> None:
        start.wait()
        reports.append(stripe_service.map_pending(factory, stripe_tenant.uid, batch_size=20))

    threads = [threading.Thread(target=mapper) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sum(r.mapped for r in reports) == len(events)
    counts = Counter(marked)
    assert len(counts) == len(events) and set(counts.values()) == {1}
    assert _mapping(client, stripe_tenant)[:4] == (len(events), len(events), 0, 0)
    subs = _rows(client, stripe_tenant, "subscriptions")
    assert len(subs) == 2 * 60  # two segments each: the plan change closed the first


def test_the_job_and_the_api_map_pending_events(
    client: TestClient, stripe_tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    connect_stripe(client, other_tenant, secret="whsec_globex_secret_987654")
    _store(client, stripe_tenant, _history("j", 2))
    other = event("evt_o", "customer.created", JAN, customer("cus_o", JAN, "Other"))
    assert (
        send_event(
            client, other_tenant, other, secret="whsec_globex_secret_987654", map_after=False
        ).status_code
        == 200
    )
    job = next(j for j in all_jobs() if j.name == "stripe_mapping")
    assert job.run_in_units is not None and not job.per_tenant
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    summary = job.run_in_units(factory, None, clock.utcnow())
    assert summary["tenants"] == 2 and summary["events_mapped"] == 9
    assert job.describe(summary) == "9 Stripe events mapped"
    assert [c["external_id"] for c in _rows(client, other_tenant, "customers")] == ["cus_o"]
    # The API: a writer maps now; a reader sees the status.
    _store(client, stripe_tenant, _history("k", 1))
    ran = client.post("/api/v1/connectors/stripe/mapping/run", headers=stripe_tenant.headers)
    assert ran.status_code == 200, ran.text
    assert (ran.json()["mapped"], ran.json()["pending"]) == (12, 0)


def test_a_webhook_is_mapped_moments_later_by_the_api_process(
    client: TestClient, stripe_tenant: TenantHandle
) -> None:
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    kicker = stripe_service.MappingKicker(factory, delay=0.05)
    kicker.start()
    client.app.state.stripe_kicker = kicker  # type: ignore[attr-defined]
    try:
        e = event("evt_k", "customer.created", JAN, customer("cus_k", JAN, "Kicked"))
        assert send_event(client, stripe_tenant, e, map_after=False).status_code == 200
        deadline = time.monotonic() + 20
        while _mapping(client, stripe_tenant)[1] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [c["name"] for c in _rows(client, stripe_tenant, "customers")] == ["Kicked"]
    finally:
        client.app.state.stripe_kicker = None  # type: ignore[attr-defined]
        kicker.stop()


def _bulk(client: TestClient, tenant: TenantHandle, action: str, body: Any) -> Any:
    return client.post(
        f"/api/v1/connectors/stripe/events/{action}", json=body, headers=tenant.headers
    )


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("AETHERCROWN_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("AETHERCROWN_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_dead_events_are_retried_or_discarded_in_bulk(
    client: TestClient,
    stripe_tenant: TenantHandle,
    other_tenant: TenantHandle,
    monkeypatch: pytest.MonkeyPatch,
    cli: CliRunner,
) -> None:
    """All of a tenant's dead events, those of a type or those of an object, by the API and the
    CLI; a bad filter is 422 problem+json and changes nothing; another tenant's are untouched."""
    settings = stripe_service.get_settings().model_copy(update={"stripe_mapping_max_attempts": 1})
    monkeypatch.setattr(stripe_service, "get_settings", lambda: settings)
    bad_price = {"id": "p", "unit_amount": "9"}  # not a Stripe amount: never maps

    def bad_sub(event_id: str, sub: str, kind: str) -> dict[str, Any]:
        items = [item(f"si_{sub}", bad_price, 1, JAN)]
        return event(event_id, kind, JAN, subscription(sub, "cus_b", items, start=JAN))

    broken = {**customer("cus_c", JAN, "Broken"), "currency": "not a currency"}
    dead = [
        bad_sub("evt_b1", "sub_b1", "customer.subscription.created"),
        bad_sub("evt_b2", "sub_b1", "customer.subscription.updated"),
        bad_sub("evt_b3", "sub_b2", "customer.subscription.created"),
        event("evt_c1", "customer.updated", JAN, broken),
    ]
    _store(client, stripe_tenant, dead)
    connect_stripe(client, other_tenant)
    _store(client, other_tenant, [bad_sub("evt_o1", "sub_o1", "customer.subscription.created")])
    assert map_stripe(client, stripe_tenant).dead == 4
    assert map_stripe(client, other_tenant).dead == 1

    for body in [{}, {"all": False}, {"all": True, "object_id": "sub_b1"}, {"event_type": ""},
                 {"object_id": "x" * 201}, {"all": True, "extra": 1}, [], "all"]:  # fmt: skip
        for action in ("retry", "discard"):
            answer = _bulk(client, stripe_tenant, action, body)
            assert answer.status_code == 422, (body, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
    assert _dead(client, stripe_tenant)["dead"] == 4

    retried = _bulk(client, stripe_tenant, "retry", {"object_id": "sub_b1"})
    assert retried.status_code == 200, retried.text
    assert retried.json() == {"status": "pending", "affected": 2}
    status = _dead(client, stripe_tenant)
    assert (status["pending"], status["dead"]) == (2, 2)
    assert map_stripe(client, stripe_tenant).dead == 2  # still bad: dead again

    discarded = _bulk(client, stripe_tenant, "discard", {"event_type": "customer.updated"})
    assert discarded.json() == {"status": "discarded", "affected": 1}
    both = {"event_type": "customer.subscription.created", "object_id": "sub_b2"}
    assert _bulk(client, stripe_tenant, "retry", both).json()["affected"] == 1
    assert map_stripe(client, stripe_tenant).dead == 1

    # The CLI: the same choices, and one way only.
    command = ["connectors", "stripe", "discard", "--tenant", stripe_tenant.slug]
    result = cli.invoke(cli_app, [*command, "--type", "customer.subscription.updated"])
    assert result.exit_code == 0, result.output
    assert "1 dead events: discarded" in result.output
    assert cli.invoke(cli_app, [*command, "--all", "--object", "sub_b1"]).exit_code == 1
    assert cli.invoke(cli_app, command).exit_code == 1
    result = cli.invoke(cli_app, [*command, "--all"])
    assert result.exit_code == 0, result.output
    assert "2 dead events: discarded" in result.output
    status = _dead(client, stripe_tenant)
    assert (status["dead"], status["discarded"], status["pending"]) == (0, 4, 0)
    # The other tenant's dead event was never touched.
    assert _dead(client, other_tenant)["dead"] == 1
    assert _bulk(client, other_tenant, "retry", {"all": True}).json()["affected"] == 1
