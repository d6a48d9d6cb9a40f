"""The hand-computed company, keys for both pages, and a live server for the browser."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from tests.analytics.fixtures import load_company
from tests.conftest import TenantHandle
from tests.servers import free_port

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def company(session_factory, tenant: TenantHandle) -> dict[str, uuid.UUID]:  # type: ignore[no-untyped-def]
    return load_company(session_factory, tenant.uid)


@pytest.fixture
def investor_key(client: TestClient, tenant: TenantHandle) -> str:
    response = client.post(
        "/api/v1/operational/security/keys/register",
        json={"name": "board", "kind": "api_key", "security_level": "low", "scopes": ["investor"]},
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["secret"])


@pytest.fixture
def live_server(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The test app served by uvicorn on a free port in a thread."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise TimeoutError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def chromium_or_skip() -> None:
    """Browser tests skip only on a machine without Chromium, never in CI (.ci/run installs it)."""
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        pytest.fail("CI needs /usr/bin/chromium for the browser tests")
    pytest.skip("/usr/bin/chromium is not installed (apt-get install -y chromium)")
