from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aethercrown.content.facts import Feature, Link, ProductFacts
from tests.conftest import TenantHandle
from tests.content.llm_server import LLMServer, llm_server

BASE = "/api/v1/content"

PROFILE: dict[str, Any] = {
    "product_name": "Acme Recover",
    "audience": "finance teams at subscription businesses",
    "value_propositions": [
        "recover failed payments automatically",
        "keep more of the revenue they earn",
    ],
    "features": [
        {"name": "Smart retries", "does": "retries failed cards at the hour most likely to work"},
        {"name": "Dunning emails", "does": "sends friendly reminders before a card expires"},
        {"name": "Churn alerts", "does": "flags accounts whose payments keep failing"},
    ],
    "proof_points": ["Customers recover 38 % of failed payments in their first quarter"],
    "tone": "friendly",
    "banned_words": ["revolutionary", "synergy"],
    "links": [
        {"title": "our retry playbook", "url": "https://acme.example/playbook", "kind": "internal"},
        {
            "title": "a guide to card declines",
            "url": "https://cards.example/declines",
            "kind": "external",
        },
        {"title": "Start a free trial", "url": "https://acme.example/trial", "kind": "cta"},
    ],
    "postal_address": "Acme Inc., 1 Main Street, Springfield, OR 97477, USA",
    "sender_name": "Acme Recover",
}

FACTS = ProductFacts(
    product_name="Acme Recover",
    audience="finance teams at subscription businesses",
    value_propositions=("recover failed payments automatically",),
    features=(
        Feature("Smart retries", "retries failed cards at the hour most likely to work"),
        Feature("Churn alerts", "flags accounts whose payments keep failing"),
    ),
    proof_points=("Customers recover 38 % of failed payments in their first quarter",),
    banned_words=("revolutionary",),
    links=(
        Link("our retry playbook", "https://acme.example/playbook", "internal"),
        Link("Start a free trial", "https://acme.example/trial", "cta"),
    ),
)


def put_profile(client: TestClient, tenant: TenantHandle, **overrides: Any) -> dict[str, Any]:
    response = client.put(f"{BASE}/profile", json=PROFILE | overrides, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.fixture
def llm() -> Iterator[LLMServer]:
    with llm_server() as server:
        yield server
