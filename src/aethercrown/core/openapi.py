"""The OpenAPI document states the error contract: every operation lists the problem+json answers
it can give, with one ``Problem`` schema, added here to all routes at once rather than per route.

Which answers an operation documents follows from what it is:

- every operation: 422 (the input limits of ``core.limits`` apply to every path and query) and
  503 (the database busy or unreachable);
- one that reads a body: 400 (a body that cannot be parsed), 413 (too large), 415 (a media type
  it does not read);
- one that authenticates: 400 (an operator key naming no tenant), 401, 403, 404 (the tenant or a
  resource not found, or another tenant's), 429 (the key's rate limit);
- one with parameters: 404 (what they name is not there);
- one that writes (POST, PUT, PATCH, DELETE): 409 (a conflict, an idempotency key reused with
  another body).

FastAPI's own 422 (``HTTPValidationError``, application/json) is replaced by the problem, and
an error answer a route declares itself gets the problem schema too.

The input limits are stated in the schemas as well: every string without a pattern, format or
enum of its own gets a pattern that excludes NUL and a ``maxLength``; every free-form object
gets ``propertyNames`` with the key limits. A client generating data from the document then
produces what the API accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from aethercrown.core.auth import authenticate
from aethercrown.core.errors import PROBLEM_JSON, TYPE_PREFIX
from aethercrown.core.limits import MAX_JSON_DEPTH, MAX_KEY_CHARS, MAX_STRING_CHARS

PROBLEM_REF = "#/components/schemas/Problem"

FIELD_ERROR_SCHEMA: dict[str, Any] = {
    "title": "FieldError",
    "type": "object",
    "properties": {
        "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
        "field": {"type": "string", "description": "loc joined with dots"},
        "msg": {"type": "string"},
        "type": {"type": "string"},
        "limit": {"type": "string", "description": "The input limit broken, when one was"},
        "limit_value": {"type": "integer"},
    },
    "required": ["loc", "field", "msg", "type"],
}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": (
        "RFC 9457 problem details. `type` is stable (`" + TYPE_PREFIX + "<slug>`); a 422 lists "
        "the fields at fault in `errors`. Input limits: JSON nested at most "
        f"{MAX_JSON_DEPTH} levels, strings at most {MAX_STRING_CHARS} characters, JSON keys at "
        f"most {MAX_KEY_CHARS}, no NUL character anywhere (path, query, body)."
    ),
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
    },
    "required": ["type", "title", "status"],
    "additionalProperties": True,
}

DESCRIPTIONS = {
    400: "Bad request: a body that cannot be parsed, or an operator key naming no tenant",
    401: "Missing, unknown, expired or revoked API key",
    403: "The key lacks the scope this needs",
    404: "Not found (another tenant's resources are not found either)",
    409: "Conflict with the stored state, or an Idempotency-Key reused with another body",
    413: "The request body is too large",
    415: "Unsupported media type",
    422: "Invalid input: the fields at fault, or the input limit broken",
    429: "Rate limit exceeded; Retry-After says when to retry",
    503: "The database is busy or unavailable; retry shortly",
}

_WRITES = frozenset({"post", "put", "patch", "delete"})
_BODY_METHODS = frozenset({"post", "put", "patch"})


def _calls(dependant: Dependant) -> Iterable[Callable[..., Any] | None]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _authenticates(route: RouteContext) -> bool:
    return any(call is authenticate for call in _calls(route.dependant))


def error_statuses(method: str, route: RouteContext) -> set[int]:
    statuses = {422, 503}
    if method in _BODY_METHODS:
        statuses |= {400, 413, 415}
    if _authenticates(route):
        statuses |= {400, 401, 403, 404, 429}
    if route.dependant.path_params or route.dependant.query_params:
        statuses.add(404)
    if method in _WRITES:
        statuses.add(409)
    return statuses


def _problem_response(status: int) -> dict[str, Any]:
    return {
        "description": DESCRIPTIONS[status],
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
    }


NO_NUL_PATTERN = "^[^\\x00]*$"
_STRING_OWN_RULES = ("pattern", "format", "enum", "const", "contentMediaType")


def _is_type(node: dict[str, Any], name: str) -> bool:
    kind = node.get("type")
    return kind == name or (isinstance(kind, list) and name in kind)


def state_input_limits(node: Any) -> None:
    """Add the input limits to every string and free-form object schema below ``node``."""
    if isinstance(node, list):
        for item in node:
            state_input_limits(item)
        return
    if not isinstance(node, dict):
        return
    if _is_type(node, "string") and not any(rule in node for rule in _STRING_OWN_RULES):
        node["pattern"] = NO_NUL_PATTERN
        node.setdefault("maxLength", MAX_STRING_CHARS)
    if _is_type(node, "object") and node.get("additionalProperties", True) is not False:
        node.setdefault("propertyNames", {"maxLength": MAX_KEY_CHARS, "pattern": NO_NUL_PATTERN})
    for value in node.values():
        state_input_limits(value)


def add_error_responses(app: FastAPI, document: dict[str, Any]) -> dict[str, Any]:
    """The document with every operation's problem answers added (changed in place)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    state_input_limits(schemas)
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["FieldError"] = FIELD_ERROR_SCHEMA
    # Routes of included routers, as the document was made from them (FastAPI resolves them
    # lazily: app.routes holds the routers, not their routes).
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        item = document.get("paths", {}).get(route.path_format, {})
        for method in route.methods or ():
            operation = item.get(method.lower())
            if operation is None:
                continue
            state_input_limits(operation.get("parameters", []))
            state_input_limits(operation.get("requestBody", {}))
            responses = operation.setdefault("responses", {})
            for status in sorted(error_statuses(method.lower(), route)):
                responses[str(status)] = _problem_response(status)
            for code, response in responses.items():
                if code.isdigit() and int(code) >= 400 and "content" not in response:
                    response["content"] = _problem_response(int(code))["content"]
    # FastAPI's validation-error shapes are no longer referenced.
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    return document


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the document with the error contract (built once)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
                servers=app.servers,
            )
            app.openapi_schema = add_error_responses(app, document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
