"""The content calendar: schedule, reschedule, cancel, ranges, iCalendar, and the runner
marking items due with a signed content.due webhook."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import icalendar
import orjson
import pytest
from fastapi.testclient import TestClient

from aethercrown import clock
from aethercrown.automation.service import Runner
from aethercrown.content import jobs
from aethercrown.webhooks.service import deliver_due, verify
from tests.conftest import TenantHandle
from tests.content.conftest import BASE, put_profile
from tests.webhooks.test_service import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def social_items(client: TestClient, tenant: TenantHandle, *platforms: str) -> list[str]:
    put_profile(client, tenant)
    response = client.post(
        f"{BASE}/generate/social",
        json={"topic": "failed payments", "platforms": list(platforms)},
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text
    return [i["id"] for i in response.json()["items"]]


def iso(moment: datetime) -> str:
    return moment.isoformat()


def test_schedule_reschedule_cancel_and_list(client: TestClient, tenant: TenantHandle) -> None:
    x_id, linkedin_id = social_items(client, tenant, "x", "linkedin")
    now = clock.utcnow()
    day = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=2)
    for content_id, hours in ((x_id, 9), (linkedin_id, 15)):
        response = client.post(
            f"{BASE}/items/{content_id}/schedule",
            json={"at": iso(day + timedelta(hours=hours))},
            headers=tenant.headers,
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "scheduled"

    window = {"from": iso(day), "to": iso(day + timedelta(days=1))}
    listed = client.get(f"{BASE}/calendar", params=window, headers=tenant.headers).json()
    assert [i["id"] for i in listed["items"]] == [x_id, linkedin_id]
    only_x = client.get(
        f"{BASE}/calendar", params=window | {"channel": "x"}, headers=tenant.headers
    ).json()
    assert [i["id"] for i in only_x["items"]] == [x_id]

    # Reschedule X to the next day: it leaves this day's window.
    moved = client.post(
        f"{BASE}/items/{x_id}/schedule",
        json={"at": iso(day + timedelta(days=1, hours=10))},
        headers=tenant.headers,
    )
    assert moved.status_code == 200
    listed = client.get(f"{BASE}/calendar", params=window, headers=tenant.headers).json()
    assert [i["id"] for i in listed["items"]] == [linkedin_id]

    cancelled = client.post(f"{BASE}/items/{linkedin_id}/cancel", headers=tenant.headers)
    assert cancelled.json()["status"] == "cancelled"
    assert (
        client.get(f"{BASE}/calendar", params=window, headers=tenant.headers).json()["items"] == []
    )
    again = client.post(f"{BASE}/items/{linkedin_id}/cancel", headers=tenant.headers)
    assert again.status_code == 409

    ics = client.get(
        f"{BASE}/calendar.ics",
        params={"from": iso(day), "to": iso(day + timedelta(days=3))},
        headers=tenant.headers,
    )
    assert ics.status_code == 200 and ics.headers["content-type"].startswith("text/calendar")
    events = icalendar.Calendar.from_ical(ics.content).walk("VEVENT")
    by_uid = {str(e["uid"]).split("@")[0]: e for e in events}
    assert set(by_uid) == {x_id, linkedin_id}
    assert by_uid[linkedin_id]["status"] == "CANCELLED"
    assert by_uid[x_id].decoded("dtstart") == day + timedelta(days=1, hours=10)


def test_bad_calendar_input_is_refused(client: TestClient, tenant: TenantHandle) -> None:
    (x_id,) = social_items(client, tenant, "x")
    past = clock.utcnow() - timedelta(hours=1)
    for body in (
        {"at": iso(past)},
        {"at": "2030-01-01T10:00:00"},
        {"at": "tomorrow"},
        {},
        {"at": "9999-12-31T23:59:59-14:00"},
        {"at": "0001-01-01T00:00:00+14:00"},
    ):
        response = client.post(f"{BASE}/items/{x_id}/schedule", json=body, headers=tenant.headers)
        assert response.status_code == 422, body
    now = clock.utcnow()
    for params in (
        {"from": iso(now), "to": iso(now - timedelta(days=1))},
        {"from": iso(now), "to": iso(now + timedelta(days=400))},
        {"from": "2030-01-01T00:00:00", "to": "2030-01-02T00:00:00"},
        {"from": iso(now)},
        {"from": "0001-01-01T00:00:00+14:00", "to": "0001-01-02T00:00:00+14:00"},
        {"from": "9999-12-30T00:00:00-14:00", "to": "9999-12-31T00:00:00-14:00"},
    ):
        response = client.get(f"{BASE}/calendar", params=params, headers=tenant.headers)
        assert response.status_code == 422, params
    item = client.get(f"{BASE}/items/{x_id}", headers=tenant.headers).json()
    assert item["status"] == "draft" and item["scheduled_at"] is None


def test_runner_marks_due_and_sends_a_signed_webhook(
    client: TestClient,
    tenant: TenantHandle,
    receiver: Receiver,
    session_factory,  # type: ignore[no-untyped-def]
    settings,  # type: ignore[no-untyped-def]
) -> None:
    hooked = client.patch(
        f"/api/v1/tenants/{tenant.id}", json={"webhook_url": receiver.url}, headers=tenant.headers
    )
    assert hooked.status_code == 200
    (x_id,) = social_items(client, tenant, "x")
    at = (clock.utcnow() + timedelta(hours=2)).replace(microsecond=0)
    client.post(f"{BASE}/items/{x_id}/schedule", json={"at": iso(at)}, headers=tenant.headers)
    # The calendar's job alone (the campaign emails' job is tested with the campaigns).
    due_job = [job for job in jobs.JOBS if job.name == "content.mark_due"]
    runner = Runner(session_factory, due_job, settings=settings)

    runner.tick()
    assert (
        client.get(f"{BASE}/items/{x_id}", headers=tenant.headers).json()["status"] == "scheduled"
    )
    with clock.travel(at + timedelta(minutes=1)):
        results = runner.tick()
        assert [r.summary for r in results] == [{"due": 1, "webhooks": 1}]
        assert deliver_due(session_factory)["delivered"] == 1
        # A later period finds nothing new to announce.
        later = runner.tick(at + timedelta(days=1))
        assert later and all(r.summary == {"due": 0, "webhooks": 0} for r in later)
        keys = client.get(
            "/api/v1/operational/security/keys",
            params={"kind": "webhook_secret"},
            headers=tenant.headers,
        ).json()["items"]
        secret = client.get(
            f"/api/v1/operational/security/keys/{keys[0]['id']}/secret", headers=tenant.headers
        ).json()["secret"]
        (request,) = receiver.requests
        assert verify(request["headers"]["AetherCrown-Signature"], secret, request["body"])
    event = orjson.loads(request["body"])
    assert event["type"] == "content.due"
    assert event["data"]["content_id"] == x_id
    assert event["data"]["body"]["posts"][0]["valid"] is True
    item = client.get(f"{BASE}/items/{x_id}", headers=tenant.headers).json()
    assert item["status"] == "due"
    assert datetime.fromisoformat(item["scheduled_at"]) == at.astimezone(UTC)
