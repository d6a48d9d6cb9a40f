"""The /api/v1/data routes end to end: bulk writes, reads, CSV export, auth and bad input."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from aethercrown.app import create_app
from aethercrown.data import formats
from aethercrown.data.kinds import KINDS
from aethercrown.settings import Settings
from tests.conftest import TenantHandle, bearer
from tests.data.conftest import typed

BASE = "/api/v1/data"


def post(client: TestClient, tenant: TenantHandle, kind: str, rows: Any) -> Any:
    return client.post(f"{BASE}/{kind}", json=rows, headers=tenant.headers)


def load_all(client: TestClient, tenant: TenantHandle, rows: dict[str, Any]) -> None:
    for kind in KINDS:
        response = post(client, tenant, kind, rows[kind])
        assert response.status_code == 200, response.text


def list_all(
    client: TestClient, tenant: TenantHandle, kind: str, params: dict[str, Any] | None = None
) -> list[Any]:
    items: list[Any] = []
    cursor = None
    while True:
        query = {**(params or {}), "limit": 2} | ({"cursor": cursor} if cursor else {})
        response = client.get(f"{BASE}/{kind}", params=query, headers=tenant.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


def read_csv(text: str) -> list[dict[str, Any]]:
    """The export read back the way the importer reads a file (JSON cells parsed)."""
    header = next(csv.reader(io.StringIO(text)))
    return [row for _, row in formats.iter_csv(io.StringIO(text), header)]


def test_every_kind_round_trips_through_the_api(
    client: TestClient, tenant: TenantHandle, rows: dict[str, Any]
) -> None:
    load_all(client, tenant, rows)
    for kind, spec in KINDS.items():
        listed = list_all(client, tenant, kind)
        assert typed(kind, listed) == typed(kind, rows[kind]), kind
        one = listed[-1]
        got = client.get(f"{BASE}/{kind}/{one['id']}", headers=tenant.headers)
        assert got.status_code == 200 and got.json() == one
        if "external_id" in spec.fields:
            by_ext = client.get(
                f"{BASE}/{kind}/by-external/{one['external_id']}", headers=tenant.headers
            )
            assert by_ext.status_code == 200 and by_ext.json()["id"] == one["id"]
        exported = client.get(f"{BASE}/{kind}/export.csv", headers=tenant.headers)
        assert exported.status_code == 200
        assert exported.headers["content-type"].startswith("text/csv")
        assert exported.text.splitlines()[0] == ",".join(spec.fields)
        assert typed(kind, read_csv(exported.text)) == typed(kind, rows[kind]), kind


def test_a_retried_batch_changes_nothing(
    client: TestClient, tenant: TenantHandle, rows: dict[str, Any]
) -> None:
    load_all(client, tenant, rows)
    before = list_all(client, tenant, "subscriptions")
    again = post(client, tenant, "subscriptions", rows["subscriptions"]).json()
    assert again == {
        "kind": "subscriptions",
        "received": 2,
        "inserted": 0,
        "updated": 0,
        "unchanged": 2,
    }
    assert list_all(client, tenant, "subscriptions") == before  # updated_at untouched too


def test_idempotency_key_replays_the_first_answer(
    client: TestClient, tenant: TenantHandle, rows: dict[str, Any]
) -> None:
    headers = {**tenant.headers, "Idempotency-Key": "batch-1"}
    first = client.post(f"{BASE}/customers", json=rows["customers"], headers=headers)
    second = client.post(f"{BASE}/customers", json=rows["customers"], headers=headers)
    assert first.json()["inserted"] == 3 and second.json() == first.json()
    assert second.headers.get("idempotent-replayed") == "true"


def test_ndjson_bodies_and_malformed_lines(
    client: TestClient, tenant: TenantHandle, rows: dict[str, Any]
) -> None:
    body = b"\n".join(orjson.dumps(r) for r in rows["customers"]) + b"\n\n"
    headers = {**tenant.headers, "Content-Type": "application/x-ndjson"}
    response = client.post(f"{BASE}/customers", content=body, headers=headers)
    assert response.status_code == 200 and response.json()["inserted"] == 3
    broken = b'{"external_id": "c9", "name": "N", "signup_date": "2025-01-01"}\n{"external_id": \n'
    response = client.post(f"{BASE}/customers", content=broken + b"[1,\n", headers=headers)
    assert response.status_code == 422
    problem = response.json()
    assert [e["loc"] for e in problem["errors"]] == [["body", 2], ["body", 3]]
    assert "line 2" in problem["errors"][0]["msg"]
    assert len(list_all(client, tenant, "customers")) == 3
    text = client.post(
        f"{BASE}/customers", content=b"x", headers={**tenant.headers, "Content-Type": "text/csv"}
    )
    assert text.status_code == 415


def test_bad_batches_are_422_listing_every_bad_row_and_write_nothing(
    client: TestClient, tenant: TenantHandle, rows: dict[str, Any]
) -> None:
    post(client, tenant, "customers", rows["customers"])
    batch = [dict(r) for r in rows["subscriptions"]]
    batch[0]["amount"] = -5
    batch.append({**batch[1], "external_id": "s3", "customer": "ghost", "interval": "weekly"})
    response = post(client, tenant, "subscriptions", batch)
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == "urn:aethercrown:problem:validation-error"
    assert problem["bad_rows"] == [0, 2]
    assert {e["field"] for e in problem["errors"]} == {"0.amount", "2.interval", "2.customer"}
    assert list_all(client, tenant, "subscriptions") == []
    for body in ({"external_id": "x"}, "rows", [1, 2]):
        response = post(client, tenant, "customers", body)
        assert response.status_code == 422, body
    bad_json = client.post(
        f"{BASE}/customers",
        content=b"[{,}]",
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert bad_json.status_code == 422 and bad_json.json()["errors"][0]["field"] == "body"
    nan = client.post(
        f"{BASE}/marketing",
        content=b'[{"channel": "a", "day": "2025-01-01", "spend": NaN}]',
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert nan.status_code == 422


def test_oversized_batch_is_413_naming_the_limit(
    settings: Settings, tenant: TenantHandle, rows: dict[str, Any]
) -> None:
    small = settings.model_copy(update={"max_batch_rows": 2})
    with TestClient(create_app(small)) as client:
        response = post(client, tenant, "customers", rows["customers"])
        assert response.status_code == 413
        assert response.json()["limit"] == 2 and "at most 2 rows" in response.json()["detail"]
        assert list_all(client, tenant, "customers") == []


def test_quota_exceeded_is_403(
    client: TestClient, admin_key: str, tenant: TenantHandle, rows: dict[str, Any]
) -> None:
    response = client.patch(
        "/api/v1/platform/tiers/professional",
        json={"max_stored_rows": 2},
        headers=bearer(admin_key),
    )
    assert response.status_code == 200
    response = post(client, tenant, "customers", rows["customers"])
    assert response.status_code == 403
    assert response.json()["type"] == "urn:aethercrown:problem:quota-exceeded"
    assert list_all(client, tenant, "customers") == []


def test_lists_filter_and_paginate_in_a_stable_order(
    client: TestClient, tenant: TenantHandle, rows: dict[str, Any]
) -> None:
    load_all(client, tenant, rows)
    ids = [a["external_id"] for a in list_all(client, tenant, "activity")]
    assert ids == ["a1", "a2", "a3", "a4"]

    def ext(table: str, **params: Any) -> list[str]:
        return [
            r.get("external_id") or r.get("channel")
            for r in list_all(client, tenant, table, params)
        ]

    assert ext("activity", customer="c2") == ["a3", "a4"]
    assert ext("activity", customer="ghost") == []
    assert ext("activity", kind="feature", feature="exports") == ["a4"]
    assert ext("activity", since="2025-03-01T10:00:00Z", until="2025-03-05T00:00:00Z") == [
        "a1",
        "a3",
    ]
    assert ext("activity", user_id="u1") == ["a1", "a2"]
    assert ext("subscriptions", plan="starter") == ["s2"]
    assert ext("subscriptions", interval="month") == ["s1"]
    assert ext("tickets", priority="normal") == ["t2"]
    assert ext("payments", status="failed") == ["p2"]
    assert ext("payments", customer="c1") == ["p1"]
    assert ext("customers", since="2025-02-01") == ["c2", "c3"]
    assert ext("customers", country="de") == ["c1"]
    assert ext("marketing", channel="search") == ["search", "search"]
    assert ext("marketing", since="2025-03-02") == ["search"]
    filtered = client.get(
        f"{BASE}/activity/export.csv", params={"customer": "c2"}, headers=tenant.headers
    )
    assert [r["external_id"] for r in read_csv(filtered.text)] == ["a3", "a4"]
    empty = client.get(
        f"{BASE}/tickets/export.csv", params={"priority": "urgent"}, headers=tenant.headers
    )
    assert empty.text == ",".join(KINDS["tickets"].fields) + "\n"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/activity?kind=dance", 422),
        ("/activity?since=yesterday", 422),
        ("/activity?cursor=%25%25", 400),
        ("/activity?limit=100000", 422),
        ("/activity/0", 422),
        ("/activity/99999999999999999999999", 422),
        ("/activity/123", 404),
        ("/customers/not-a-uuid", 422),
        ("/customers/0190a0f4-0000-7000-8000-000000000000", 404),
        ("/customers/by-external/ghost", 404),
        ("/customers/by-external/a%00b", 422),
        ("/activity?customer=a%00b", 422),
        ("/marketing?channel=%00", 422),
        ("/invoices", 404),
    ],
)
def test_bad_reads_are_4xx(
    client: TestClient, tenant: TenantHandle, path: str, status: int
) -> None:
    assert client.get(BASE + path, headers=tenant.headers).status_code == status


def test_readers_read_and_only_writers_write(
    client: TestClient, tenant: TenantHandle, rows: dict[str, Any]
) -> None:
    load_all(client, tenant, rows)
    issued = client.post(
        "/api/v1/operational/security/keys/register",
        json={
            "name": "reader",
            "kind": "api_key",
            "security_level": "low",
            "scopes": ["tenant:read"],
        },
        headers=tenant.headers,
    )
    assert issued.status_code == 201, issued.text
    reader = bearer(issued.json()["secret"])
    assert client.get(f"{BASE}/customers", headers=reader).status_code == 200
    assert client.get(f"{BASE}/customers/export.csv", headers=reader).status_code == 200
    denied = client.post(f"{BASE}/customers", json=rows["customers"], headers=reader)
    assert denied.status_code == 403
    assert client.get(f"{BASE}/customers").status_code == 401


def test_operator_acts_for_the_tenant_named_in_x_tenant(
    client: TestClient, admin_key: str, tenant: TenantHandle, rows: dict[str, Any]
) -> None:
    headers = bearer(admin_key, **{"X-Tenant": tenant.slug})
    response = client.post(f"{BASE}/customers", json=rows["customers"], headers=headers)
    assert response.status_code == 200
    assert len(list_all(client, tenant, "customers")) == 3


def test_tenants_never_see_each_others_rows(
    client: TestClient, tenant: TenantHandle, other_tenant: TenantHandle, rows: dict[str, Any]
) -> None:
    load_all(client, tenant, rows)
    for kind in KINDS:
        assert list_all(client, other_tenant, kind) == []
        exported = client.get(f"{BASE}/{kind}/export.csv", headers=other_tenant.headers)
        assert len(exported.text.splitlines()) == 1
    customer = list_all(client, tenant, "customers")[0]
    assert (
        client.get(f"{BASE}/customers/{customer['id']}", headers=other_tenant.headers).status_code
        == 404
    )
    assert (
        client.get(f"{BASE}/customers/by-external/c1", headers=other_tenant.headers).status_code
        == 404
    )
    # Another tenant's customer cannot be referenced either.
    response = post(client, other_tenant, "activity", rows["activity"])
    assert response.status_code == 422
