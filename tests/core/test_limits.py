"""Input limits (core.limits): NUL characters, JSON depth and string lengths give the same 422 on
both backends, over real HTTP, and nothing is stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from aethercrown.core import limits
from aethercrown.core.limits import MAX_JSON_DEPTH, MAX_KEY_CHARS, MAX_STRING_CHARS, check_body
from aethercrown.db.registry import metadata
from tests.conftest import TenantHandle, bearer

# --- the check itself (pure) ---------------------------------------------------------------------


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def test_a_clean_body_passes_without_parsing() -> None:
    body = json.dumps({"events": [{"id": f"e{i}", "properties": {"k": "v"}} for i in range(500)]})
    assert not limits._may_break_limits(body.encode())
    assert check_body(body.encode()) is None


@pytest.mark.parametrize(
    ("body", "limit", "loc"),
    [
        (b'{"name": "a\\u0000b"}', "nul-character", ("name",)),
        (b'{"p": {"k\\u0000": 1}}', "nul-character", ("p", "k\x00")),
        (b'[{"x": ["ok", "\\u0000"]}]', "nul-character", (0, "x", 1)),
        (
            json.dumps({"p": nested(MAX_JSON_DEPTH)}).encode(),
            "max-json-depth",
            ("p",) + ("a",) * 31,
        ),
        (b"[" * 5000 + b"]" * 5000, "max-json-depth", ()),
        (json.dumps({"s": "x" * (MAX_STRING_CHARS + 1)}).encode(), "max-string-length", ("s",)),
        (json.dumps({"k" * (MAX_KEY_CHARS + 1): 1}).encode(), "max-key-length", ("k" * 256,)),
        (b'{"s": "\\ud800"}', "lone-surrogate", ("s",)),
        (b'{"a": 1}\n{"b": "\\u0000"}\n', "nul-character", (2, "b")),  # NDJSON, by line
    ],
)
def test_violations_name_the_limit_and_the_field(
    body: bytes, limit: str, loc: tuple[Any, ...]
) -> None:
    found = check_body(body)
    assert found is not None and found.limit == limit and found.loc == loc


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"p": nested(MAX_JSON_DEPTH - 1)}).encode(),  # exactly the limit
        b'{"text": "an escaped backslash then u0000: \\\\u0000"}',
        b'{"emoji": "\\ud83d\\ude00", "brackets": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}',
        json.dumps({"s": "x" * MAX_STRING_CHARS, "t": ["y"] * 40}).encode(),
        b"not json at all",
    ],
)
def test_bodies_within_the_limits_pass(body: bytes) -> None:
    assert check_body(body) is None


# --- over HTTP ------------------------------------------------------------------------------------


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in metadata.sorted_tables
        }


def assert_refused(response: Any, limit: str, field: str) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:aethercrown:problem:input-limit"
    (error,) = problem["errors"]
    assert error["limit"] == limit
    assert error["field"] == field
    assert field in problem["detail"]
    return dict(problem)


USAGE = "/api/v1/enterprise/usage"
TASKS = "/api/v1/optimization/tasks"
KEYS = "/api/v1/operational/security/keys"


def _event(**extra: Any) -> dict[str, Any]:
    return {"id": "e1", "customer": "c1", "metric": "api_calls", **extra}


def _task(**extra: Any) -> dict[str, Any]:
    return {"tasks": [{"id": "t1", "type": "x", "priority": 1, "estimated_duration": 1, **extra}]}


NUL_BODIES: list[tuple[str, str, Callable[[], Any], str]] = [
    ("POST", f"{USAGE}/track", lambda: _event(id="a\x00b"), "body.id"),
    ("POST", f"{USAGE}/track", lambda: _event(properties={"k": "a\x00"}), "body.properties.k"),
    (
        "POST",
        f"{USAGE}/meters",
        lambda: {"name": "m", "aggregation": "sum", "unit": "\x00"},
        "body.unit",
    ),
    ("POST", f"{TASKS}/workers/register", lambda: {"name": "w\x00"}, "body.name"),
    ("POST", f"{TASKS}/schedule", lambda: _task(type="a\x00"), "body.tasks.0.type"),
    ("POST", f"{TASKS}/schedule", lambda: _task(payload={"\x00": 1}), "body.tasks.0.payload.\x00"),
    ("POST", f"{KEYS}/register", lambda: {"name": "k\x00"}, "body.name"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), NUL_BODIES)
def test_a_nul_in_a_body_is_a_422_that_stores_nothing(
    client: TestClient,
    tenant: TenantHandle,
    db: Engine,
    method: str,
    path: str,
    body: Callable[[], Any],
    field: str,
) -> None:
    before = row_counts(db)
    response = client.request(method, path, json=body(), headers=tenant.headers)
    assert_refused(response, "nul-character", field)
    assert row_counts(db) == before


def test_a_nul_in_a_tenant_name_is_refused_for_the_operator(
    client: TestClient, admin_key: str, db: Engine
) -> None:
    before = row_counts(db)
    response = client.post(
        "/api/v1/tenants/create",
        json={"name": "A\x00", "slug": "nul-co", "tier": "starter"},
        headers=bearer(admin_key),
    )
    assert_refused(response, "nul-character", "body.name")
    assert row_counts(db) == before


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (f"{USAGE}/a%00b/report", "path"),
        (f"{TASKS}/a%00b", "path"),
        ("/api/v1/tenants/?q=a%00b", "query.q"),
    ],
)
def test_a_nul_in_the_path_or_query_is_a_422(
    client: TestClient, tenant: TenantHandle, admin_key: str, path: str, field: str
) -> None:
    key = admin_key if path.startswith("/api/v1/tenants") else tenant.key
    assert_refused(client.get(path, headers=bearer(key)), "nul-character", field)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (f"{USAGE}/track", lambda: _event(properties=nested(300)), "body.properties"),
        (f"{TASKS}/schedule", lambda: _task(payload=nested(260)), "body.tasks.0.payload"),
        ("/api/v1/data/customers", None, "body.0.attributes"),
    ],
)
def test_json_nested_past_the_limit_is_a_422_that_stores_nothing(
    client: TestClient,
    tenant: TenantHandle,
    db: Engine,
    path: str,
    body: Callable[[], Any] | None,
    field: str,
) -> None:
    payload = (
        body()
        if body is not None
        else [
            {
                "external_id": "c1",
                "name": "C",
                "signup_date": "2026-01-01",
                "attributes": nested(280),
            }
        ]
    )
    before = row_counts(db)
    # Serialised here: the test client's encoder stops at Python's recursion limit.
    response = client.post(
        path,
        content=_dumps_deep(payload),
        headers={**tenant.headers, "content-type": "application/json"},
    )
    problem = assert_refused(response, "max-json-depth", response.json()["errors"][0]["field"])
    assert problem["errors"][0]["field"].startswith(field)
    assert problem["limits"]["max_json_depth"] == MAX_JSON_DEPTH
    assert row_counts(db) == before


def _dumps_deep(value: Any) -> bytes:
    """json.dumps without recursion (nesting of a few hundred levels)."""
    if isinstance(value, dict):
        return (
            b"{"
            + b",".join(json.dumps(k).encode() + b":" + _dumps_deep(v) for k, v in value.items())
            + b"}"
        )
    if isinstance(value, list):
        return b"[" + b",".join(_dumps_deep(v) for v in value) + b"]"
    return json.dumps(value).encode()


def test_json_within_the_depth_limit_is_stored(client: TestClient, tenant: TenantHandle) -> None:
    customer = {"external_id": "c1", "name": "C", "signup_date": "2026-01-01"}
    stored = client.post("/api/v1/data/customers", json=[customer], headers=tenant.headers)
    assert stored.status_code == 200, stored.text
    # The event object and its properties take two levels of the limit.
    event = _event(properties=nested(MAX_JSON_DEPTH - 2))
    response = client.post(f"{USAGE}/track", json=event, headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1


def test_a_string_past_the_length_limit_is_a_422(client: TestClient, tenant: TenantHandle) -> None:
    event = _event(properties={"note": "x" * (MAX_STRING_CHARS + 1)})
    response = client.post(f"{USAGE}/track", json=event, headers=tenant.headers)
    problem = assert_refused(response, "max-string-length", "body.properties.note")
    assert problem["errors"][0]["limit_value"] == MAX_STRING_CHARS
