"""Hot authenticated reads served without FastAPI's per-request dependency machinery.

A ``ReadRoute`` is an ``APIRoute`` (same path, OpenAPI operation, 405 handling and error
answers) for the one shape the hot GET routes share: an ``async def`` endpoint taking its path
parameters and one ``AuthenticatedReader`` (``core.auth``), returning plain values that its
``response_model`` validates. For that shape FastAPI's solver, its two exit stacks and its
exception wrapper per request cost more than the read itself (about a quarter of the
authenticated tenant read's CPU), so the route does their work inline:

- the Bearer key authenticated and rate-limited, the read unit opened in the scope the key
  resolves to (``core.auth.open_authenticated_read``, what the dependency does);
- the path parameters as the router's convertors give them (``{id:uuid}`` is a ``uuid.UUID``:
  the route refuses, at import, a parameter whose annotation the convertor does not produce);
- the unit closed when the endpoint returns or raises, before the response is sent;
- the answer validated and serialised by the response model as FastAPI does, with the rate
  limit's headers; an exception (a ``ProblemError``, a database error) goes to the
  application's exception handlers, so the problem+json answers are the same.

The rule is checked when the route is built: anything else (a query parameter, another
dependency, a router's dependencies, a status code or response class of its own) raises
``TypeError`` at import instead of being served without its part. Dependencies given to
``include_router`` are not seen by a route; the platform includes its routers without any
(``tests/core/test_readroute.py`` checks).
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.datastructures import DefaultPlaceholder
from fastapi.exceptions import ResponseValidationError
from fastapi.routing import APIRoute
from starlette import convertors
from starlette.types import Receive, Scope, Send

from aethercrown.core.auth import authenticated_read, open_authenticated_read

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])

# What each path convertor hands the route, so an annotation can be checked against it.
_CONVERTED: dict[type[convertors.Convertor[Any]], type] = {
    convertors.StringConvertor: str,
    convertors.PathConvertor: str,
    convertors.IntegerConvertor: int,
    convertors.FloatConvertor: float,
    convertors.UUIDConvertor: uuid.UUID,
}


class ReadRoute(APIRoute):
    """An ``APIRoute`` for a hot authenticated read (see the module's doc)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        super().__init__(path, endpoint, **options)
        self._path_names, self._reader_name = _check_shape(self)
        self._served = frozenset(self.methods or ())

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in self._served:  # the 405 answer, as FastAPI gives it
            await super().handle(scope, receive, send)
            return
        read, headers = await open_authenticated_read(Request(scope, receive, send))
        try:
            path_params = scope["path_params"]
            arguments = {name: path_params[name] for name in self._path_names}
            arguments[self._reader_name] = read
            content = await self.endpoint(**arguments)
        finally:
            read.unit.close()
        field = self.response_field
        assert field is not None  # _check_shape
        value, errors = field.validate(content, {}, loc=("response",))
        if errors:
            raise ResponseValidationError(errors=errors, body=content)
        response = Response(field.serialize_json(value), media_type="application/json")
        response.headers.update(headers)
        await response(scope, receive, send)


def _check_shape(route: ReadRoute) -> tuple[tuple[str, ...], str]:
    """(path parameter names, the reader's parameter name), or TypeError naming what does not
    fit the rule."""
    dependant = route.dependant

    def refuse(why: str) -> TypeError:
        return TypeError(f"ReadRoute {route.path}: {why}")

    if not inspect.iscoroutinefunction(route.endpoint):
        raise refuse("the endpoint must be an async def")
    if (
        dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
    ):
        raise refuse("only path parameters and one AuthenticatedReader")
    if (
        dependant.request_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.security_scopes_param_name
    ):
        raise refuse("only path parameters and one AuthenticatedReader")
    readers = dependant.dependencies
    if len(readers) != 1 or readers[0].call is not authenticated_read or not readers[0].name:
        raise refuse("exactly one dependency, an AuthenticatedReader (no router dependencies)")
    for param in dependant.path_params:
        convertor = route.param_convertors.get(param.name)
        converted = _CONVERTED.get(type(convertor)) if convertor is not None else None
        if converted is None or param.field_info.annotation is not converted:
            raise refuse(f"path parameter {param.name} must be annotated as its convertor's type")
    if route.response_field is None:
        raise refuse("a response_model is required")
    if route.status_code not in (None, 200) or not isinstance(
        route.response_class, DefaultPlaceholder
    ):
        raise refuse("the default status code and response class only")
    if (
        route.response_model_include is not None
        or route.response_model_exclude is not None
        or not route.response_model_by_alias
        or route.response_model_exclude_unset
        or route.response_model_exclude_defaults
        or route.response_model_exclude_none
    ):
        raise refuse("the response model's default serialisation only")
    return tuple(p.name for p in dependant.path_params), readers[0].name


def read_route(router: APIRouter, path: str, **options: Any) -> Callable[[Endpoint], Endpoint]:
    """``@router.get(path, **options)`` as a ``ReadRoute``."""

    def register(endpoint: Endpoint) -> Endpoint:
        router.add_api_route(
            path, endpoint, methods=["GET"], route_class_override=ReadRoute, **options
        )
        return endpoint

    return register
