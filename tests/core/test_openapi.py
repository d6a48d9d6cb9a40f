"""The OpenAPI document states the error contract on every operation (core.openapi)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from aethercrown.core.errors import PROBLEM_JSON
from aethercrown.core.openapi import NO_NUL_PATTERN

METHODS = {"get", "post", "put", "patch", "delete"}


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_every_operation_documents_its_problem_answers(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    operations = _operations(document)
    assert len(operations) > 100
    for path, method, operation in operations:
        responses = operation["responses"]
        for status in ("422", "503"):
            content = responses[status]["content"]
            assert list(content) == [PROBLEM_JSON], (path, method, status)
            assert content[PROBLEM_JSON]["schema"] == {"$ref": "#/components/schemas/Problem"}
        errors = [code for code in responses if code.isdigit() and int(code) >= 400]
        for code in errors:
            assert PROBLEM_JSON in responses[code]["content"], (path, method, code)
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_authenticated_operations_document_auth_and_rate_limit_answers(
    client: TestClient,
) -> None:
    document = client.get("/openapi.json").json()
    tenant = document["paths"]["/api/v1/tenants/{tenant_id}"]["patch"]["responses"]
    assert {"400", "401", "403", "404", "409", "413", "415", "422", "429", "503"} <= set(tenant)
    assert set(document["paths"]["/livez"]["get"]["responses"]) == {"200", "422", "503"}


def test_the_input_limits_are_in_the_schemas(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    worker = schemas["WorkerRegister"]["properties"]["name"]
    assert worker["pattern"] == NO_NUL_PATTERN and worker["maxLength"] == 200
    # A pattern of the field's own is kept (it excludes NUL already).
    assert schemas["TenantCreate"]["properties"]["slug"]["pattern"].startswith("^[a-z0-9]")
