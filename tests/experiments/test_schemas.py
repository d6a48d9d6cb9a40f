"""Numeric edge cases of the stateless power calculator and analysis are 422s, never 500s."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TenantHandle


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"baseline_mean": 5e-324, "mde": 5e-324}, "baseline_mean"),
        ({"baseline_mean": 0.1, "mde": 5e-324}, "mde"),
        ({"baseline_mean": 0.1, "mde": 0.05, "alpha": 1e-300}, "alpha"),
        (
            {"metric_type": "mean", "baseline_mean": 1, "baseline_stddev": 5e-324, "mde": 0.1},
            "baseline_stddev",
        ),
    ],
)
def test_power_edge_cases_are_422(
    client: TestClient, tenant: TenantHandle, body: dict[str, Any], field: str
) -> None:
    response = client.post("/api/v1/experiments/power", json=body, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]


def test_the_smallest_allowed_power_inputs_answer(client: TestClient, tenant: TenantHandle) -> None:
    body = {"baseline_mean": 1e-9, "mde": 1e-6, "alpha": 1e-10, "power": 0.9999999}
    response = client.post("/api/v1/experiments/power", json=body, headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert response.json()["users_per_variant"] > 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"variants": [], "weights": []}, "variants"),
        ({"variants": [{"name": "a", "n": 10, "sum": 1}]}, "variants"),
        (
            {
                "variants": [{"name": "a", "n": 10, "sum": 1}, {"name": "b", "n": 10, "sum": 2}],
                "weights": [1.0],
            },
            "weights",
        ),
    ],
)
def test_analysis_edge_cases_are_422(
    client: TestClient, tenant: TenantHandle, body: dict[str, Any], field: str
) -> None:
    response = client.post("/api/v1/experiments/analyze", json=body, headers=tenant.headers)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert any(field in (e["field"] + e["msg"]) for e in problem["errors"]), problem
