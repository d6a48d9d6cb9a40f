"""Onboarding fixtures: loopback support webhooks allowed, a receiver, a request body."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from aethercrown.settings import Settings
from tests.webhooks.test_service import Receiver

BASE = "/api/v1/enterprise/onboarding"
PORTAL = "/api/v1/enterprise/portal"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"onboarding_allow_loopback_webhooks": True})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def request_body(url: str, external_id: str = "big-co", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer": {"external_id": external_id, "name": "Big Co", "country": "DE"},
        "sla_tier": "enterprise",
        "contacts": [
            {
                "name": "Ada",
                "email": "ada@big.example",
                "role": "admin",
                "time_zone": "Europe/Berlin",
            },
            {"name": "Bo", "email": "bo@big.example", "role": "technical"},
        ],
        "plan": "enterprise",
        "meters": [{"name": "api_calls", "capacity": 1_000_000}],
        "training": {"sessions": 3, "duration_minutes": 60},
        "support_webhook_url": url,
    }
    body.update(changes)
    return body
