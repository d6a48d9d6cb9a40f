"""Answers a route builds itself."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response


def json_response(payload: Any) -> Response:
    """``payload`` serialised once by orjson, without FastAPI validating it against the route's
    response model: for figures a service already built in their final shape (the dashboards'
    24-month series), where validation would cost more than computing the answer from its
    snapshot. The response model still documents the shape in OpenAPI."""
    return Response(orjson.dumps(payload), media_type="application/json")
