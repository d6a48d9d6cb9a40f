"""Tracked views, clicks and conversions: idempotent by event id, rates with Wilson intervals,
by channel and by item; headline tests through the experiments engine."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import TenantHandle
from tests.content.conftest import BASE
from tests.content.test_calendar import social_items


def events(content_id: str, prefix: str, views: int, clicks: int, conversions: int) -> list[dict]:
    out = []
    for kind, n in (("view", views), ("click", clicks), ("conversion", conversions)):
        out += [
            {"event_id": f"{prefix}-{kind}-{i}", "content_id": content_id, "kind": kind}
            for i in range(n)
        ]
    return out


def test_tracking_is_idempotent_and_rates_have_wilson_intervals(
    client: TestClient, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    x_id, linkedin_id = social_items(client, tenant, "x", "linkedin")
    batch = events(x_id, "x", 100, 10, 2) + events(linkedin_id, "li", 50, 0, 0)
    first = client.post(f"{BASE}/track", json={"events": batch}, headers=tenant.headers)
    assert first.json() == {"recorded": 162, "duplicates": 0}
    replay = client.post(f"{BASE}/track", json={"events": batch[:20]}, headers=tenant.headers)
    assert replay.json() == {"recorded": 0, "duplicates": 20}

    metrics = client.get(f"{BASE}/metrics", headers=tenant.headers).json()
    assert metrics["items_generated"] == 2 and metrics["by_kind"] == {"social": 2}
    totals = metrics["totals"]
    assert (totals["views"], totals["clicks"], totals["conversions"]) == (150, 10, 2)
    x = next(c for c in metrics["by_channel"] if c["channel"] == "x")
    assert x["ctr"]["rate"] == 0.1
    assert abs(x["ctr"]["low"] - 0.05523) < 1e-4 and abs(x["ctr"]["high"] - 0.17437) < 1e-4
    assert x["conversion_rate"]["rate"] == 0.2
    linkedin = next(c for c in metrics["by_channel"] if c["channel"] == "linkedin")
    assert linkedin["ctr"]["rate"] == 0.0 and linkedin["conversion_rate"]["rate"] is None
    assert [i["content_id"] for i in metrics["by_item"]] == [x_id, linkedin_id]

    one = client.get(f"{BASE}/items/{x_id}/metrics", headers=tenant.headers).json()
    assert one["totals"]["views"] == 100 and len(one["by_item"]) == 1

    # Another tenant can neither see nor count against these items.
    assert (
        client.get(f"{BASE}/metrics", headers=other_tenant.headers).json()["totals"]["views"] == 0
    )
    stolen = client.post(
        f"{BASE}/track",
        json={"events": events(x_id, "evil", 1, 0, 0)},
        headers=other_tenant.headers,
    )
    assert stolen.status_code == 422
    assert (
        client.get(f"{BASE}/items/{x_id}/metrics", headers=other_tenant.headers).status_code == 404
    )


def test_bad_events_change_nothing(client: TestClient, tenant: TenantHandle) -> None:
    (x_id,) = social_items(client, tenant, "x")
    good = {"event_id": "ok-1", "content_id": x_id, "kind": "view"}
    for batch in (
        [
            good,
            {"event_id": "b", "content_id": "00000000-0000-0000-0000-000000000000", "kind": "view"},
        ],
        [good, {"event_id": "b", "content_id": x_id, "kind": "like"}],
        [good, {"event_id": "", "content_id": x_id, "kind": "view"}],
        [good, {"event_id": "b\x00", "content_id": x_id, "kind": "view"}],
        [good, {"event_id": "b", "content_id": x_id, "kind": "view", "occurred_at": "2030-01-01"}],
        [
            good,
            {
                "event_id": "b",
                "content_id": x_id,
                "kind": "view",
                "occurred_at": "0001-01-01T00:00:00+14:00",
            },
        ],
        [
            good,
            {
                "event_id": "b",
                "content_id": x_id,
                "kind": "view",
                "occurred_at": "9999-12-31T23:59:59-14:00",
            },
        ],
        [],
    ):
        response = client.post(f"{BASE}/track", json={"events": batch}, headers=tenant.headers)
        assert response.status_code == 422, batch
    assert client.get(f"{BASE}/metrics", headers=tenant.headers).json()["totals"]["views"] == 0


def test_headline_test_picks_a_winner_and_writes_it_back(
    client: TestClient, tenant: TenantHandle
) -> None:
    (x_id,) = social_items(client, tenant, "x")
    original = client.get(f"{BASE}/items/{x_id}", headers=tenant.headers).json()["title"]
    started = client.post(
        f"{BASE}/items/{x_id}/headline-test",
        json={"headlines": ["Stop losing revenue to failed cards"], "engine": "frequentist"},
        headers=tenant.headers,
    )
    assert started.status_code == 201, started.text
    test = started.json()
    assert [v["headline"] for v in test["variants"]] == [
        original,
        "Stop losing revenue to failed cards",
    ]
    experiment_id = test["experiment_id"]
    # 2,000 readers per headline: 5 % click the original, 12 % the new one.
    tracked = []
    for variant, rate in (("h0", 0.05), ("h1", 0.12)):
        for u in range(2000):
            user = f"{variant}-u{u}"
            tracked.append(
                {"event_id": f"i-{user}", "user_id": user, "variant": variant, "kind": "impression"}
            )
            if u < rate * 2000:
                tracked.append(
                    {
                        "event_id": f"c-{user}",
                        "user_id": user,
                        "variant": variant,
                        "kind": "conversion",
                        "metric": "click",
                    }
                )
    response = client.post(
        f"/api/v1/content/ab-test/{experiment_id}/track",
        json={"events": tracked},
        headers=tenant.headers,
    )
    assert response.status_code in (200, 201), response.text[:500]

    result = client.get(f"{BASE}/items/{x_id}/headline-test", headers=tenant.headers).json()
    assert result["verdict"] == "winner"
    assert result["winner"] == "Stop losing revenue to failed cards"
    assert result["applied"] is True
    item = client.get(f"{BASE}/items/{x_id}", headers=tenant.headers).json()
    assert item["title"] == "Stop losing revenue to failed cards" and item["version"] == 2
    # Asking again changes nothing more.
    again = client.get(f"{BASE}/items/{x_id}/headline-test", headers=tenant.headers).json()
    assert again["applied"] is False
    assert client.get(f"{BASE}/items/{x_id}", headers=tenant.headers).json()["version"] == 2
    duplicate = client.post(
        f"{BASE}/items/{x_id}/headline-test",
        json={"headlines": ["Another"]},
        headers=tenant.headers,
    )
    assert duplicate.status_code == 409
