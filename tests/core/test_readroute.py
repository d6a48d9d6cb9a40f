"""core.readroute: the hot authenticated reads answer exactly as FastAPI's own route would
(headers, problem+json errors, 405), close their read unit whatever happens, and a route that
does not fit the rule is refused when it is built. The index in front of the router sends a
GET to a read route only where the router would have picked the same route."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

import aethercrown.app as app_module
from aethercrown.core.auth import AuthenticatedReader
from aethercrown.core.readroute import ReadIndex, ReadRoute, _index, _may_overlap, read_route
from aethercrown.db.prepared import kept_readers
from aethercrown.settings import Settings
from tests.conftest import TenantHandle, bearer


class _Out(BaseModel):
    id: uuid.UUID


def _checked_in(client: TestClient) -> bool:
    """Every read unit's connection is back: in the pool, or kept for the next read unit
    (SQLite) with no transaction open."""
    engine = client.app.state.engine  # type: ignore[attr-defined]
    kept = kept_readers(engine)
    idle = not any(c.driver_connection.in_transaction for c in kept)
    return bool(engine.pool.checkedout() == len(kept) and idle)


def test_the_tenant_read_is_a_read_route() -> None:
    routes = [r for x in app_module.ROUTERS for r in x.routes if isinstance(r, ReadRoute)]
    assert [r.path for r in routes] == ["/api/v1/tenants/{tenant_id:uuid}"]


def test_answers_and_errors_are_those_of_the_api(
    client: TestClient, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    url = f"/api/v1/tenants/{tenant.id}"
    ok = client.get(url, headers=tenant.headers)
    assert ok.status_code == 200 and ok.json()["id"] == tenant.id
    assert ok.headers["content-type"] == "application/json"
    assert ok.headers["RateLimit-Limit"] == "3000" and "RateLimit-Remaining" in ok.headers
    assert ok.headers["content-length"] == str(len(ok.content))
    assert _checked_in(client)

    # Another tenant's id: 404 problem+json, raised by the endpoint inside the open unit.
    hidden = client.get(f"/api/v1/tenants/{other_tenant.id}", headers=tenant.headers)
    assert hidden.status_code == 404
    assert hidden.headers["content-type"].startswith("application/problem+json")
    assert hidden.json()["instance"] == f"/api/v1/tenants/{other_tenant.id}"
    assert _checked_in(client)

    unknown = client.get(url, headers=bearer("ack_" + "x" * 43))
    assert unknown.status_code == 401 and unknown.headers["www-authenticate"] == "Bearer"

    # A method the path does not serve: FastAPI's 405, with the methods it does.
    refused = client.delete(url, headers=tenant.headers)
    assert refused.status_code == 405
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert set(refused.headers["allow"].split(", ")) >= {"GET", "PATCH"}
    assert client.head(url, headers=tenant.headers).status_code == 405  # GET only, as before
    assert _checked_in(client)


def test_the_rate_limit_applies(client: TestClient, admin_key: str, tenant: TenantHandle) -> None:
    patched = client.patch(
        "/api/v1/platform/tiers/professional",
        json={"requests_per_minute": 2},
        headers=bearer(admin_key),
    )
    assert patched.status_code == 200
    url = f"/api/v1/tenants/{tenant.id}"
    assert [client.get(url, headers=tenant.headers).status_code for _ in range(2)] == [200, 200]
    limited = client.get(url, headers=tenant.headers)
    assert limited.status_code == 429
    assert limited.headers["content-type"].startswith("application/problem+json")
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["RateLimit-Remaining"] == "0"
    assert _checked_in(client)


def test_the_reader_closes_its_unit_on_an_ordinary_route_too(
    settings: Settings, tenant: TenantHandle, admin_key: str
) -> None:
    """Declared on a plain APIRoute, the reader is FastAPI's function-scoped yield dependency."""
    seen: list[Any] = []
    application = app_module.create_app(settings)

    @application.get("/plain/{tenant_id}")
    async def plain(tenant_id: uuid.UUID, read: AuthenticatedReader) -> dict[str, str]:
        seen.append(read.principal.tenant_id)
        return {"id": str(tenant_id)}

    with TestClient(application) as client:
        response = client.get(f"/plain/{tenant.id}", headers=tenant.headers)
        assert response.status_code == 200 and response.headers["RateLimit-Limit"] == "3000"
        assert seen == [tenant.uid] and _checked_in(client)


async def _reader_only(tenant_id: uuid.UUID, read: AuthenticatedReader) -> _Out:
    return _Out(id=tenant_id)


async def _extra(tenant_id: uuid.UUID, read: AuthenticatedReader, q: str = "") -> _Out:
    return _Out(id=tenant_id)


def _sync(tenant_id: uuid.UUID, read: AuthenticatedReader) -> _Out:
    return _Out(id=tenant_id)


async def _other_dependency(
    tenant_id: uuid.UUID, read: AuthenticatedReader, x: int = Depends(lambda: 1)
) -> _Out:
    return _Out(id=tenant_id)


@pytest.mark.parametrize(
    ("path", "endpoint", "options", "why"),
    [
        ("/{tenant_id}", _reader_only, {}, "convertor"),  # a str converted, a UUID declared
        ("/{tenant_id:uuid}", _extra, {}, "only path parameters"),
        ("/{tenant_id:uuid}", _sync, {}, "async def"),
        ("/{tenant_id:uuid}", _other_dependency, {}, "exactly one dependency"),
        ("/{tenant_id:uuid}", _reader_only, {"response_model": None}, "response_model"),
        ("/{tenant_id:uuid}", _reader_only, {"status_code": 203}, "default status"),
        ("/{tenant_id:uuid}", _reader_only, {"response_model_exclude_none": True}, "default ser"),
    ],
)
def test_a_route_that_does_not_fit_is_refused_when_built(
    path: str, endpoint: Any, options: dict[str, Any], why: str
) -> None:
    router = APIRouter()
    with pytest.raises(TypeError, match=why):
        read_route(router, path, **{"response_model": _Out, **options})(endpoint)


def test_router_dependencies_are_refused() -> None:
    router = APIRouter(dependencies=[Depends(lambda: None)])
    with pytest.raises(TypeError, match="exactly one dependency"):
        read_route(router, "/{tenant_id:uuid}", response_model=_Out)(_reader_only)


def test_the_app_includes_its_routers_without_dependencies(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ReadRoute cannot see dependencies given to include_router (see core.readroute)."""
    included: list[dict[str, Any]] = []
    original = FastAPI.include_router

    def spy(self: FastAPI, router: APIRouter, **options: Any) -> None:
        included.append(options)
        original(self, router, **options)

    monkeypatch.setattr(FastAPI, "include_router", spy)
    application = app_module.create_app(settings)
    assert len(included) >= len(app_module.ROUTERS)
    assert all(not options.get("dependencies") for options in included)
    assert not application.router.dependencies


def _unindexed(application: FastAPI) -> FastAPI:
    stack = application.router.middleware_stack
    assert isinstance(stack, ReadIndex)
    application.router.middleware_stack = stack.app
    return application


def test_the_index_serves_the_tenant_read_as_the_router_does(
    settings: Settings, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    indexed = app_module.create_app(settings)
    stack = indexed.router.middleware_stack
    assert isinstance(stack, ReadIndex)
    assert [route.path for _, _, route in stack.entries] == ["/api/v1/tenants/{tenant_id:uuid}"]
    plain = _unindexed(app_module.create_app(settings))
    varying = {"x-request-id", "server-timing", "ratelimit-remaining", "ratelimit-reset"}
    cases = [
        (f"/api/v1/tenants/{tenant.id}", tenant.headers),
        (f"/api/v1/tenants/{tenant.id.replace('-', '')}", tenant.headers),  # uuid without dashes
        (f"/api/v1/tenants/{other_tenant.id}", tenant.headers),
        (f"/api/v1/tenants/{tenant.id}", bearer("ack_" + "x" * 43)),
        (f"/api/v1/tenants/{tenant.id}/", tenant.headers),  # the router's slash redirect
        ("/api/v1/tenants/create", tenant.headers),  # POST only: 405
    ]
    with TestClient(indexed) as fast, TestClient(plain) as slow:
        for url, headers in cases:
            a = fast.get(url, headers=headers, follow_redirects=False)
            b = slow.get(url, headers=headers, follow_redirects=False)
            assert (a.status_code, a.content) == (b.status_code, b.content), url
            assert {k: v for k, v in a.headers.items() if k not in varying} == {
                k: v for k, v in b.headers.items() if k not in varying
            }, url
        # The access log and the metrics name the route from the scope the index set.
        metrics = fast.app.state.http_metrics  # type: ignore[attr-defined]
        served = metrics.registry.get_sample_value(
            "aethercrown_http_requests_total",
            {"route": "/api/v1/tenants/{tenant_id}", "method": "GET", "status": "200"},
        )
        assert served == 2


async def _first(name: str) -> dict[str, str]:
    return {"name": name}


def test_a_read_route_behind_a_route_that_may_match_first_is_not_indexed() -> None:
    application = FastAPI()
    application.get("/things/{name}")(_first)  # tried first: it takes every /things/x
    application.get("/stuff/{name:path}")(_first)
    router = APIRouter(prefix="/things")
    read_route(router, "/{tenant_id:uuid}", response_model=_Out)(_reader_only)
    application.include_router(router)
    assert _index(application.router.routes) == ()
    second = FastAPI()
    second.post("/things/{name}")(_first)  # no GET: it could only ever be a partial match
    second.get("/things/named/{name}")(_first)
    second.get("/things/create")(_first)  # a literal the uuid convertor cannot match
    second.include_router(router)
    second.get("/things/{name}")(_first)  # after it: never tried first
    assert [route.path for _, _, route in _index(second.router.routes)] == [
        "/things/{tenant_id:uuid}"
    ]


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        ("/a/create", "/a/{id:uuid}", False),
        ("/a/create", "/a/{id}", True),
        ("/a/{x}/b", "/a/{id:uuid}", False),
        ("/a/{x}", "/a/{id:uuid}", True),
        ("/b/{x}", "/a/{id:uuid}", False),
        ("/static/{path:path}", "/a/{id:uuid}", False),
        ("/a/{path:path}", "/a/{id:uuid}", True),
        ("/a/v{n}", "/a/{id:uuid}", True),
        ("/a/12", "/a/{n:int}", True),
    ],
)
def test_may_overlap(first: str, second: str, overlap: bool) -> None:
    assert _may_overlap(first, second) is overlap
    assert _may_overlap(second, first) is overlap
