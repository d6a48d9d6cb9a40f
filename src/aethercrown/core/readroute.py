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

``ReadIndex`` sits in front of the application's router and sends a GET that a read route's
path matches straight to that route: FastAPI 0.165 matches an included router's path twice per
request (once to pick the router, once to pick its route), walking every earlier route each
time, about a tenth of the read's CPU. A read route is indexed only if no route the router
tries before it could also answer that GET (see ``_may_overlap``), so the router would have
picked the same route; everything else goes to the router as before.
"""

from __future__ import annotations

import inspect
import re
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.datastructures import DefaultPlaceholder
from fastapi.exceptions import ResponseValidationError
from fastapi.routing import APIRoute, iter_route_contexts
from starlette import convertors
from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute, compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

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


# Header name -> its lowercased bytes, as a response's raw headers hold it.
_RAW_NAMES: dict[str, bytes] = {}


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
        # What response.headers.update(headers) gives (the rate limit's headers after the
        # response's own, none of the same name) without its scan of the list per header;
        # the few names (the rate limit's) encoded once.
        raw_headers = response.raw_headers
        for name, value in headers.items():
            raw_name = _RAW_NAMES.get(name)
            if raw_name is None:
                raw_name = name.lower().encode("latin-1")
                if len(_RAW_NAMES) < 64:
                    _RAW_NAMES[name] = raw_name
            raw_headers.append((raw_name, value.encode("latin-1")))
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


# One indexed read route: its path's regex and convertors as the router matches it.
_Entry = tuple[re.Pattern[str], dict[str, convertors.Convertor[Any]], ReadRoute]


class ReadIndex:
    """In front of ``router`` (its ``middleware_stack``): a GET whose path an indexed read
    route matches goes to that route with the scope the router would give it (``router``,
    ``endpoint``, ``path_params``, ``route``); every other request goes to ``app``, the
    router's own stack. Built at the app's warm start or its first request, when every route
    has been added; routes are only appended after that, and cannot come before an indexed one.
    Not installed with FastAPI's OpenTelemetry on (the router also names the span's route)."""

    def __init__(self, router: APIRouter, app: ASGIApp) -> None:
        self.router = router
        self.app = app
        self._entries: tuple[_Entry, ...] | None = None

    @property
    def entries(self) -> tuple[_Entry, ...]:
        if self._entries is None:
            self._entries = _index(self.router.routes)
        return self._entries

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path = get_route_path(scope)
            for regex, path_convertors, route in self.entries:
                match = regex.match(path)
                if match is None:
                    continue
                # What Router.app and the included router set before calling the route.
                path_params = dict(scope.get("path_params", {}))
                for name, value in match.groupdict().items():
                    path_params[name] = path_convertors[name].convert(value)
                if "router" not in scope:
                    scope["router"] = self.router
                scope["endpoint"] = route.endpoint
                scope["path_params"] = path_params
                scope["route"] = route
                await route.handle(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install_read_index(router: APIRouter) -> None:
    """Put a ``ReadIndex`` in front of ``router`` (an application's ``app.router``)."""
    router.middleware_stack = ReadIndex(router, router.middleware_stack)


def _index(routes: list[BaseRoute]) -> tuple[_Entry, ...]:
    """The read routes that are the first route able to answer a GET on their path, in the
    router's order (its effective routes: included routers flattened, prefixes applied)."""
    entries: list[_Entry] = []
    earlier: list[str | None] = []  # path templates that may answer a GET; None: any path
    for context in iter_route_contexts(routes):
        route, path = context.original_route, context.path
        if isinstance(route, ReadRoute) and path is not None and _first_for(path, earlier):
            regex, _, path_convertors = compile_path(path)
            entries.append((regex, path_convertors, route))
        if isinstance(route, WebSocketRoute):
            continue
        if isinstance(route, Route):
            if route.methods is None or "GET" in route.methods:
                earlier.append(path)
        elif isinstance(route, Mount) and path is not None:
            earlier.append(path.rstrip("/") + "/{path:path}")
        else:  # a Host or an unknown kind of route: it may match anything
            earlier.append(None)
    return tuple(entries)


def _first_for(path: str, earlier: list[str | None]) -> bool:
    """Whether no earlier route (its template; None: any path) may answer a GET on ``path``."""
    return not any(other is None or _may_overlap(other, path) for other in earlier)


_PARAM = re.compile(r"^\{([a-zA-Z_][a-zA-Z0-9_]*)(?::([a-zA-Z_][a-zA-Z0-9_]*))?\}$")


def _may_overlap(first: str, second: str) -> bool:
    """Whether some path could match both templates. Conservative: True unless they differ in
    their number of segments (neither has a ``:path`` parameter, which spans segments) or, at
    some segment, in two literals, or a literal that the other's parameter cannot match."""
    left, right = first.split("/"), second.split("/")
    spanning = [_spanning(left), _spanning(right)]
    if spanning != [None, None]:
        # Only the segments before the first spanning parameter can tell them apart.
        start = min(i for i in spanning if i is not None)
        pairs = zip(left[:start], right[:start], strict=False)
        return all(_segments_may_overlap(a, b) for a, b in pairs)
    if len(left) != len(right):
        return False
    return all(_segments_may_overlap(a, b) for a, b in zip(left, right, strict=True))


def _spanning(segments: list[str]) -> int | None:
    """The index of the first ``{name:path}`` segment, which matches any number of segments."""
    return next((i for i, s in enumerate(segments) if s.endswith(":path}")), None)


def _segments_may_overlap(first: str, second: str) -> bool:
    if "{" not in first and "{" not in second:
        return first == second
    if "{" in first and "{" in second:
        return True
    literal, template = (first, second) if "{" in second else (second, first)
    param = _PARAM.match(template)
    if param is None:  # a parameter inside a literal ("v{n}"): not worth deciding
        return True
    convertor = convertors.CONVERTOR_TYPES.get(param.group(2) or "str")
    if convertor is None:
        return True
    return re.fullmatch(convertor.regex, literal) is not None
