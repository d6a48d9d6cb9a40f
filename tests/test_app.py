import re
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from aethercrown.app import create_app
from aethercrown.db import migrate
from aethercrown.db.tenant_scope import scope_to_all_tenants
from aethercrown.health.models import HealthSample
from aethercrown.settings import Settings
from tests.conftest import TenantHandle, bearer


def test_liveness_and_readiness_are_open(client: TestClient) -> None:
    assert client.get("/livez").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "migrations": "current"}


def test_a_warm_start_builds_before_the_first_request(settings: Settings) -> None:
    # What the first request would otherwise pay for (see app._warm_start); the suite's
    # settings turn it off, so this is where it runs.
    migrate.expected_heads.cache_clear()
    app = create_app(settings.model_copy(update={"warm_start": True}))
    with TestClient(app) as c:
        assert migrate.expected_heads.cache_info().currsize == 1
        assert c.get("/readyz").json()["checks"] == {"database": "ok", "migrations": "current"}
        # The health check it ran to compile its statements was rolled back: no sample kept.
        with app.state.session_factory() as session:
            scope_to_all_tenants(session)
            assert session.scalar(select(func.count()).select_from(HealthSample)) == 0


def test_readiness_fails_with_pending_migrations(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'empty.db'}", data_dir=tmp_path, log_level="WARNING"
    )
    with TestClient(create_app(settings)) as c:
        response = c.get("/readyz")
    assert response.status_code == 503 and response.json()["checks"]["migrations"] == "pending"


def test_prometheus_metrics_need_admin_and_use_route_templates(
    client: TestClient, admin_key: str, tenant: TenantHandle
) -> None:
    client.get(f"/api/v1/tenants/{tenant.id}", headers=tenant.headers)
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=tenant.headers).status_code == 403
    text = client.get("/metrics", headers=bearer(admin_key)).text
    assert 'route="/api/v1/tenants/{tenant_id}"' in text
    assert "aethercrown_http_request_duration_seconds_bucket" in text
    assert tenant.id not in text


def test_every_response_carries_a_request_id(client: TestClient) -> None:
    assert len(client.get("/livez").headers["x-request-id"]) == 32
    assert client.get("/livez", headers={"X-Request-ID": "abc"}).headers["x-request-id"] == "abc"


def test_every_route_except_open_ones_needs_a_key(client: TestClient) -> None:
    # Stripe sends no key: its signature under the tenant's endpoint secret authenticates it
    # (tests/connectors/test_stripe.py: a missing or bad one is 400 and stores nothing).
    signed_by_stripe = "/api/v1/connectors/stripe/webhook/{tenant_id}"
    open_paths = {"/livez", "/readyz", "/api/v1/investor/metrics/public", signed_by_stripe}
    checked = 0
    for path, operations in client.app.openapi()["paths"].items():  # type: ignore[attr-defined]
        if path in open_paths:
            continue
        for method in operations:
            # Any id, shaped as a UUID so that routes matching ids as UUIDs match it too.
            url = re.sub(r"{\w+}", "00000000-0000-4000-8000-000000000000", path)
            assert client.request(method, url).status_code == 401, (method, path)
            checked += 1
    assert checked >= 15
