"""RFC 9457 problem details: one error shape for every failure, with a stable ``type``."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Receive, Scope, Send

from aethercrown.core.asgi import HttpMiddleware
from aethercrown.db.session import is_database_busy

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:aethercrown:problem:"

log = logging.getLogger("aethercrown.errors")

_STATUS_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "rate-limited",
    500: "internal-error",
    503: "unavailable",
}


class ProblemError(Exception):
    """Raised anywhere below the routes; rendered as problem+json by the handler."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra


class NotFound(ProblemError):
    def __init__(self, what: str, ident: object | None = None) -> None:
        detail = f"{what} {ident} was not found" if ident is not None else f"{what} was not found"
        super().__init__(404, "not-found", "Not found", detail)


class Conflict(ProblemError):
    def __init__(self, detail: str, slug: str = "conflict", **extra: Any) -> None:
        super().__init__(409, slug, "Conflict", detail, **extra)


class InvalidInput(ProblemError):
    """A semantic validation failure the schema could not express; names the fields at fault."""

    def __init__(self, detail: str, errors: Sequence[Mapping[str, Any]] | None = None) -> None:
        extra: dict[str, Any] = {}
        if errors is not None:
            extra["errors"] = [dict(e) for e in errors]
        super().__init__(422, "validation-error", "Invalid input", detail, **extra)


def field_error(loc: Sequence[str | int], msg: str, kind: str = "value_error") -> dict[str, Any]:
    return {"loc": list(loc), "field": ".".join(str(p) for p in loc), "msg": msg, "type": kind}


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str | None = None,
    *,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": TYPE_PREFIX + slug, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(
        body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_JSON
    )


def database_busy() -> ProblemError:
    return ProblemError(
        503,
        "database-busy",
        "Database busy",
        "The database's single writer stayed busy; retry shortly",
        headers={"Retry-After": "1"},
    )


def _clean_validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    cleaned = []
    for err in errors:
        if err.get("type") == "json_invalid":
            loc: list[str | int] = ["body"]
        else:
            loc = [p for p in err.get("loc", ()) if p != "body"] or list(err.get("loc", ()))
        item = field_error(loc, str(err.get("msg", "invalid")), str(err.get("type", "value_error")))
        cleaned.append(item)
    return cleaned


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route serves at ``path``: Starlette's 405 names only the methods of the
    first route whose path matched (GET /meters, not POST /meters too). A path that a template
    without parameters names (``/tasks/schedule``) answers for that template alone, not for
    ``/tasks/{task_id}`` too."""
    by_template: dict[str, set[str]] = {}
    for route in iter_route_contexts(app.routes):
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            template = route.path_format or path
            by_template.setdefault(template, set()).update(route.methods or ())
    exact = by_template.get(path)
    if exact is not None:
        return sorted(exact)
    return sorted(set().union(*by_template.values()))


def _internal_error(instance: str) -> JSONResponse:
    return problem_response(
        500,
        "internal-error",
        "Internal error",
        "An unexpected error occurred; it was logged.",
        instance=instance,
    )


class UnexpectedErrorMiddleware(HttpMiddleware):
    """Answers an unexpected exception from a route with a 500 problem and ends there.

    Starlette's own last-resort handler answers too, but then re-raises, and uvicorn closes the
    connection of a request whose application raised: a keep-alive client's next request on it
    failed. Installed innermost (just outside the routes' own exception handling), so the
    exception stops here. One raised after the answer began still propagates: that answer cannot
    be completed."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:
                raise
            log.exception("unhandled error", extra={"path": scope["path"]})
            await _internal_error(scope["path"])(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """The problem+json handlers. Call before adding other middleware: the unexpected-error
    middleware added here must be the innermost."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return problem_response(
            exc.status,
            exc.slug,
            exc.title,
            exc.detail,
            instance=request.url.path,
            headers=exc.headers,
            **exc.extra,
        )

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = _clean_validation_errors(exc.errors())
        fields = ", ".join(e["field"] or "body" for e in errors[:10])
        return problem_response(
            422,
            "validation-error",
            "Invalid input",
            f"The request is not valid: {fields}",
            instance=request.url.path,
            errors=errors,
        )

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        slug = _STATUS_SLUGS.get(exc.status_code, "error")
        title = slug.replace("-", " ").capitalize()
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            assert isinstance(request.app, FastAPI)
            headers["Allow"] = ", ".join(allowed_methods(request.app, request.url.path))
        return problem_response(
            exc.status_code,
            slug,
            title,
            str(exc.detail) if exc.detail else None,
            instance=request.url.path,
            headers=headers,
        )

    async def on_database(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, OperationalError)
        if is_database_busy(exc):
            return await on_problem(request, database_busy())
        return await on_unexpected(request, exc)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return _internal_error(request.url.path)

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(OperationalError, on_database)
    app.add_exception_handler(Exception, on_unexpected)
    app.add_middleware(UnexpectedErrorMiddleware)
