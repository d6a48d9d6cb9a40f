from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from aethercrown.experiments.stats.hashing import assign
from tests.conftest import TenantHandle

BASE = "/api/v1/content/ab-test"


def create_experiment(client: TestClient, tenant: TenantHandle, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Pricing page CTA",
        "hypothesis": "A clearer button raises sign-ups",
        "variants": [{"key": "control"}, {"key": "treatment"}],
        "metrics": [
            {"key": "signup", "kind": "binomial", "role": "primary"},
            {"key": "revenue", "kind": "revenue", "role": "secondary"},
        ],
        "engine": "frequentist",
    } | overrides
    response = client.post(f"{BASE}/create", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def simulate(
    experiment: dict[str, Any],
    users: int,
    rates: list[float],
    seed: int = 1,
    revenue: list[float] | None = None,
) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    """Events for ``users`` users bucketed as the SDKs would, converting at the variant's true
    rate. Returns (events, users per variant, converters per variant)."""
    rng = np.random.default_rng(seed)
    weights = [v["weight"] for v in experiment["variants"]]
    events: list[dict[str, Any]] = []
    n = np.zeros(len(weights))
    conv = np.zeros(len(weights))
    for i in range(users):
        user = f"u{seed}-{i}"
        variant = assign(experiment["seed"], user, weights)
        n[variant] += 1
        events.append({"event_id": f"imp-{user}", "user_id": user, "kind": "impression"})
        if rng.random() < rates[variant]:
            conv[variant] += 1
            events.append({"event_id": f"cv-{user}", "user_id": user, "metric": "signup"})
            if revenue is not None:
                events.append(
                    {
                        "event_id": f"rev-{user}",
                        "user_id": user,
                        "metric": "revenue",
                        "value": float(rng.gamma(2.0, revenue[variant] / 2.0)),
                    }
                )
    return events, n, conv


def send(
    client: TestClient, tenant: TenantHandle, exp_id: str, events: list[dict[str, Any]]
) -> None:
    for start in range(0, len(events), 5000):
        response = client.post(
            f"{BASE}/{exp_id}/track",
            json={"events": events[start : start + 5000]},
            headers=tenant.headers,
        )
        assert response.status_code == 200, response.text


@pytest.fixture
def base() -> str:
    return BASE
