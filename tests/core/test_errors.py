import pytest
from fastapi.testclient import TestClient

from aethercrown.app import create_app
from aethercrown.settings import Settings
from tests.conftest import bearer

PROBLEM = "application/problem+json"


def test_bad_json_wrong_types_and_unknown_routes_are_problem_json(
    client: TestClient, admin_key: str
) -> None:
    h = bearer(admin_key, **{"content-type": "application/json"})
    cases = [
        ("POST", "/api/v1/tenants/create", b"{not json", 422, "body"),
        ("POST", "/api/v1/tenants/create", b'{"name": 5, "slug": ["x"]}', 422, "name"),
        ("POST", "/api/v1/tenants/create", b"[]", 422, None),
        # Tenant and experiment ids are matched as UUIDs (so ".../create" is not an id): a
        # malformed one matches no route.
        ("GET", "/api/v1/tenants/not-a-uuid", None, 404, None),
        ("GET", "/api/v1/nowhere", None, 404, None),
        ("DELETE", "/api/v1/tenants/create", None, 405, None),
        ("PATCH", "/api/v1/tenants/create", b"{}", 405, None),
        ("GET", "/api/v1/content/ab-test/create", None, 405, None),
    ]
    for method, url, content, status, field in cases:
        response = client.request(method, url, content=content, headers=h)
        assert response.status_code == status, (url, response.text)
        assert response.headers["content-type"].startswith(PROBLEM)
        problem = response.json()
        assert problem["status"] == status and problem["type"].startswith(
            "urn:aethercrown:problem:"
        )
        if field:
            assert any(e["field"].endswith(field) for e in problem["errors"])


def test_oversized_bodies_are_413(settings: Settings, admin_key: str) -> None:
    small = settings.model_copy(update={"max_body_bytes": 2048})
    with TestClient(create_app(small)) as c:
        big = b'{"name": "' + b"x" * 5000 + b'", "slug": "big"}'
        for headers in ({}, {"Idempotency-Key": "big"}):
            response = c.post(
                "/api/v1/tenants/create",
                content=big,
                headers=bearer(admin_key, **{"content-type": "application/json"}, **headers),
            )
            assert response.status_code == 413
            assert response.headers["content-type"].startswith(PROBLEM)


@pytest.mark.parametrize("value", ["1e400", "NaN", "-1", "99999999999999999999"])
def test_out_of_range_values_name_the_field(client: TestClient, admin_key: str, value: str) -> None:
    response = client.patch(
        "/api/v1/platform/tiers/starter",
        content=f'{{"max_seats": {value}}}'.encode(),
        headers=bearer(admin_key, **{"content-type": "application/json"}),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] in {"max_seats", "body"}


def test_a_busy_sqlite_writer_is_a_503_to_retry(settings: Settings) -> None:
    import sqlite3

    from sqlalchemy.exc import OperationalError

    app = create_app(settings)

    def busy() -> None:
        raise OperationalError("INSERT …", {}, sqlite3.OperationalError("database is locked"))

    def broken() -> None:
        raise OperationalError("SELECT …", {}, sqlite3.OperationalError("disk I/O error"))

    app.add_api_route("/test/busy", busy)
    app.add_api_route("/test/broken", broken)
    with TestClient(app, raise_server_exceptions=False) as c:
        response = c.get("/test/busy")
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert response.json()["type"] == "urn:aethercrown:problem:database-busy"
        assert c.get("/test/broken").status_code == 500
