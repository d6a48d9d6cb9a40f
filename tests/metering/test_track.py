import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from aethercrown.clock import utcnow
from aethercrown.metering.fold import catch_up
from aethercrown.metering.models import UsageDaily, UsageEvent, UsageUniqueValue
from tests.conftest import TenantHandle

TRACK = "/api/v1/enterprise/usage/track"


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_single_and_batch_events_count_once_and_duplicates_come_back(
    client: TestClient,
    tenant: TenantHandle,
    customers,
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    customers(tenant.uid, "c-1", "c-2")
    now = utcnow() - timedelta(minutes=1)
    one = {"id": "e-0", "customer": "c-1", "metric": "api_calls", "value": 5, "timestamp": iso(now)}
    response = client.post(TRACK, json=one, headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 1, "accepted": 1, "duplicates": []}

    batch = [
        {
            "id": f"e-{i}",
            "customer": f"c-{1 + i % 2}",
            "metric": "api_calls",
            "value": i,
            "timestamp": iso(now),
        }
        for i in range(10)
    ] + [{"id": "e-3", "customer": "c-1", "metric": "api_calls", "value": 1000}]
    response = client.post(TRACK, json={"events": batch}, headers=tenant.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["received"] == 11 and body["accepted"] == 9
    assert sorted(body["duplicates"]) == ["e-0", "e-3"]  # stored before, and twice in the batch

    again = client.post(TRACK, json={"events": batch}, headers=tenant.headers).json()
    assert again["accepted"] == 0 and len(again["duplicates"]) == 11

    assert catch_up(session_factory).events == 10
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(UsageEvent)) == 10
        sums = dict(s.execute(select(UsageDaily.customer_id, UsageDaily.value_sum)).all())
    # c-1 got e-0 (5) and the even ids 2+4+6+8 (e-0 of the batch was a duplicate); c-2 the odd.
    assert sorted(sums.values()) == [1 + 3 + 5 + 7 + 9, 5 + 2 + 4 + 6 + 8]


def test_rollups_agree_with_the_raw_events_for_every_aggregation(
    client: TestClient,
    tenant: TenantHandle,
    customers,
    track,
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    from tests.metering.conftest import event

    customers(tenant.uid, "c-1", "c-2")
    for name, aggregation, extra in (
        ("active_users", "unique", {"unique_property": "user"}),
        ("plan_seats", "latest", {}),
    ):
        response = client.post(
            "/api/v1/enterprise/usage/meters",
            json={"name": name, "aggregation": aggregation, "unit": "u", **extra},
            headers=tenant.headers,
        )
        assert response.status_code == 201, response.text
    now = datetime(2026, 3, 20, 12, tzinfo=UTC)
    events = []
    for i in range(300):
        at = now - timedelta(hours=7 * i)
        cust = f"c-{1 + i % 2}"
        events.append(event(f"a{i}", cust, "api_calls", float(i % 17), at))
        events.append(event(f"s{i}", cust, "storage_gb", float((i * 7) % 23), at))
        events.append(event(f"u{i}", cust, "active_users", 1, at, user=f"user-{i % 11}"))
        events.append(event(f"p{i}", cust, "plan_seats", float(i % 5), at))
    # a tie on time: the event that arrives later is the latest
    tie = now  # the time of p0, the newest plan_seats event of c-1
    events.append(event("p-tie", "c-1", "plan_seats", 42.0, tie))
    for start in range(0, len(events), 250):  # several batches: the upserts must add up
        track(tenant.uid, events[start : start + 250], now)

    expected: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    latest: dict[tuple[str, str, str], tuple[datetime, int, float]] = {}
    users: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for order, e in enumerate(events):
        assert e.timestamp is not None
        key = (e.customer, e.metric, e.timestamp.date().isoformat())
        expected[key].append(e.value)
        latest[key] = max(latest.get(key, (e.timestamp, -1, 0.0)), (e.timestamp, order, e.value))
        if e.metric == "active_users":
            users[key].add(e.properties["user"])
    assert latest[("c-1", "plan_seats", tie.date().isoformat())][2] == 42.0
    with session_factory() as s:
        rows = s.execute(select(UsageDaily)).scalars().all()
        from aethercrown.data.models import Customer

        ext = dict(s.execute(select(Customer.id, Customer.external_id)).all())
        distinct = s.scalar(select(func.count()).select_from(UsageUniqueValue))
    assert len(rows) == len(expected)
    for r in rows:
        values = expected[(ext[r.customer_id], r.metric, r.day.isoformat())]
        assert r.event_count == len(values)
        assert math.isclose(r.value_sum, sum(values))
        assert r.value_max == max(values)
        key = (ext[r.customer_id], r.metric, r.day.isoformat())
        assert r.latest_value == latest[key][2] and r.latest_at == latest[key][0]
        assert r.unique_count == len(users.get(key, ()))
    # unique values per (customer, day) of user ids
    seen = {
        (e.customer, e.timestamp.date(), e.properties["user"])  # type: ignore[union-attr]
        for e in events
        if e.metric == "active_users"
    }
    assert distinct == len(seen)


def test_bad_input_is_rejected_by_field_and_nothing_is_written(
    client: TestClient,
    tenant: TenantHandle,
    customers,
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    customers(tenant.uid, "c-1")
    good = {"id": "ok", "customer": "c-1", "metric": "api_calls", "value": 1}
    future = iso(utcnow() + timedelta(hours=1))
    cases = [
        ({**good, "customer": "nobody"}, "events.1.customer"),
        ({**good, "metric": "bananas"}, "events.1.metric"),
        ({**good, "value": -1}, "events.1.value"),
        ({**good, "timestamp": future}, "events.1.timestamp"),
        ({**good, "value": "lots"}, "events.1.value"),
        ({**good, "value": 1e300}, "events.1.value"),
        ({**good, "id": ""}, "events.1.id"),
        ({**good, "extra": 1}, "events.1.extra"),
    ]
    for bad, field in cases:
        bad = {**bad, "id": bad["id"] and "bad"}
        response = client.post(
            TRACK, json={"events": [{**good, "id": "first"}, bad]}, headers=tenant.headers
        )
        assert response.status_code == 422, (bad, response.text)
        assert field in [e["field"] for e in response.json()["errors"]], response.json()
    nan = client.post(
        TRACK,
        content=b'{"id": "n", "customer": "c-1", "metric": "api_calls", "value": NaN}',
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert nan.status_code == 422
    for raw in (b"{not json", b"", b'"x"'):
        broken = client.post(
            TRACK, content=raw, headers={**tenant.headers, "Content-Type": "application/json"}
        )
        assert broken.status_code == 422, raw
        assert [e["field"] for e in broken.json()["errors"]] == ["body"], broken.text
    for body in ({"events": []}, {"events": [good] * 10_001}, [], "x", {"events": "x"}):
        response = client.post(TRACK, json=body, headers=tenant.headers)
        assert response.status_code == 422, body
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(UsageEvent)) == 0
        assert s.scalar(select(func.count()).select_from(UsageDaily)) == 0


def test_meters_list_builtins_and_reject_clashes(client: TestClient, tenant: TenantHandle) -> None:
    url = "/api/v1/enterprise/usage/meters"
    names = {m["name"] for m in client.get(url, headers=tenant.headers).json()}
    assert names == {"api_calls", "storage_gb", "compute_units", "seats"}
    for body, status in (
        ({"name": "api_calls", "aggregation": "sum"}, 409),
        ({"name": "gpu_hours", "aggregation": "median"}, 422),
        ({"name": "Bad Name", "aggregation": "sum"}, 422),
        ({"name": "x", "aggregation": "sum", "unique_property": "u"}, 422),
        ({"name": "gpu_hours", "aggregation": "sum", "unit": "h"}, 201),
        ({"name": "gpu_hours", "aggregation": "sum"}, 409),
    ):
        assert client.post(url, json=body, headers=tenant.headers).status_code == status, body


def test_concurrent_identical_batches_count_each_event_once(
    tenant: TenantHandle,
    customers,
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    import threading

    from aethercrown.db.session import write_transaction
    from aethercrown.metering import service
    from tests.metering.conftest import event

    customers(tenant.uid, "c-1", "c-2")
    now = datetime(2026, 3, 20, 12, tzinfo=UTC)
    events = [
        event(f"e{i}", f"c-{1 + i % 2}", "api_calls", 1, now - timedelta(minutes=i))
        for i in range(2_000)
    ]
    accepted: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def send(batch: list) -> None:  # type: ignore[type-arg]
        barrier.wait()
        try:
            with write_transaction(session_factory) as s:
                accepted.append(service.track(s, tenant.uid, batch, now=now).accepted)
        except BaseException as exc:  # reported below
            errors.append(exc)

    # three overlapping senders: all events, all events reversed, the first half
    threads = [
        threading.Thread(target=send, args=(b,))
        for b in (events, list(reversed(events)), events[:1_000])
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sum(accepted) == 2_000
    with write_transaction(session_factory) as s:
        assert service.fold_pending(s, now=now).events == 2_000
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(UsageEvent)) == 2_000
        assert s.scalar(select(func.sum(UsageDaily.event_count))) == 2_000
        assert s.scalar(select(func.sum(UsageDaily.value_sum))) == 2_000
