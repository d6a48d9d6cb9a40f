"""Request bodies are as strictly typed as the OpenAPI document says.

FastAPI validates a JSON body in pydantic's lax mode, which reads ``true`` as 1, ``5.0`` as 5
and ``1`` or ``"true"`` as a boolean. Every boolean and number a JSON body carries must be
strict (``StrictInt``/``StrictFloat``/``StrictBool`` or ``Field(strict=True)``). Query and path
parameters arrive as text and stay lax, and so do form fields.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from typing import Any

from fastapi import params
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field, StrictBool
from typing_extensions import is_typeddict

from aethercrown.app import create_app
from aethercrown.core.openapi import iter_route_contexts
from aethercrown.metering.schemas import UsageBatchIn
from tests.conftest import TenantHandle

# Bodies a route reads and validates by hand (documented through openapi_extra).
HAND_VALIDATED: list[tuple[str, type[BaseModel]]] = [
    ("/api/v1/enterprise/usage/track", UsageBatchIn),
]

SCALARS = (bool, int, float)


def _strict(metadata: typing.Iterable[Any]) -> bool | None:
    """The last word of the metadata on strictness, or None when it says nothing."""
    said = None
    for item in metadata:
        value = getattr(item, "strict", None)
        if value is not None:
            said = bool(value)
        # A FieldInfo nested in Annotated keeps its own metadata.
        nested = _strict(getattr(item, "metadata", ()))
        if nested is not None:
            said = nested
    return said


def _lax_scalars(
    annotation: Any, where: str, metadata: tuple[Any, ...], default: bool, seen: set[Any]
) -> Iterator[str]:
    """Every bool/int/float leaf of a type that is not strict, named by where it sits."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        inner, *extra = typing.get_args(annotation)
        yield from _lax_scalars(inner, where, (*metadata, *extra), default, seen)
        return
    if origin is typing.Literal:
        return
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:
            return
        seen.add(annotation)
        name = f"{annotation.__module__}.{annotation.__qualname__}"
        strict_model = bool(annotation.model_config.get("strict", False))
        for field_name, field in annotation.model_fields.items():
            yield from _lax_scalars(
                field.annotation, f"{name}.{field_name}", tuple(field.metadata), strict_model, seen
            )
        return
    if is_typeddict(annotation):
        if annotation in seen:
            return
        seen.add(annotation)
        name = f"{annotation.__module__}.{annotation.__qualname__}"
        hints = typing.get_type_hints(annotation, include_extras=True)
        for field_name, hint in hints.items():
            yield from _lax_scalars(hint, f"{name}.{field_name}", (), default, seen)
        return
    if annotation in SCALARS:
        strict = _strict(metadata)
        if not (default if strict is None else strict):
            yield f"{where}: {annotation.__name__}"
        return
    if origin is typing.Union or isinstance(annotation, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        # pydantic applies a field's constraints (strict too) to the type inside an Optional.
        inherited = metadata if len(members) == 1 else ()
        for arg in members:
            yield from _lax_scalars(arg, where, inherited, default, seen)
        return
    # Containers: strictness on the container does not reach its items.
    for arg in typing.get_args(annotation):
        yield from _lax_scalars(arg, where, (), default, seen)


def lax_body_fields() -> list[str]:
    app = create_app()
    found: set[str] = set()
    seen: set[Any] = set()
    routes = 0
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue
        for param in route.dependant.body_params:
            if isinstance(param.field_info, params.Form):  # forms arrive as text
                continue
            routes += 1
            found.update(
                _lax_scalars(
                    param.field_info.annotation,
                    f"{context.path_format} body {param.name}",
                    tuple(param.field_info.metadata),
                    False,
                    seen,
                )
            )
    assert routes > 30, "the walk found too few JSON bodies to be walking the app"
    for path, model in HAND_VALIDATED:
        found.update(_lax_scalars(model, path, (), False, seen))
    return sorted(found)


def test_every_json_body_number_and_boolean_is_strict() -> None:
    lax = lax_body_fields()
    assert not lax, "lax bool/int/float fields in request bodies:\n" + "\n".join(lax)


def test_the_walk_sees_a_lax_field() -> None:
    # The guard itself: a lax leaf anywhere in a nested shape is found, a strict one is not.
    class Inner(BaseModel):
        ok: typing.Annotated[int, Field(strict=True)]
        also: StrictBool
        maybe: float | None = Field(None, strict=True)  # reaches the float
        weight: float
        counts: list[int] = Field(default_factory=list, strict=True)  # does not reach the items

    class Outer(BaseModel):
        rows: list[tuple[Inner, dict[str, bool | None]]]

    found = sorted(_lax_scalars(Outer, "x", (), False, set()))
    assert found == [
        f"{__name__}.{Inner.__qualname__}.counts: int",
        f"{__name__}.{Inner.__qualname__}.weight: float",
        f"{__name__}.{Outer.__qualname__}.rows: bool",
    ]


def test_wrong_json_types_are_422_and_change_nothing(
    client: TestClient, tenant: TenantHandle
) -> None:
    # The fuzzer's examples: a boolean for an amount, a number for a boolean.
    before = client.get("/api/v1/revenue/tiers", headers=tenant.headers).json()
    plan = {"slug": "starter", "name": "Starter", "rank": 0, "monthly_price": 1000}
    for bad in (
        {**plan, "overage": {"api_calls": {"unit_amount": True}}},
        {**plan, "monthly_price": 1000.0},
        {**plan, "rank": False},
    ):
        answer = client.put("/api/v1/revenue/tiers", json={"plans": [bad]}, headers=tenant.headers)
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert client.get("/api/v1/revenue/tiers", headers=tenant.headers).json() == before

    sla = "/api/v1/enterprise/onboarding/sla-tiers/premium"
    tiers = client.get("/api/v1/enterprise/onboarding/sla-tiers", headers=tenant.headers).json()
    for bad_sla in (
        {"custom_integration": 1},
        {"dedicated_support": "true"},
        {"response_minutes": 5.0},
    ):
        answer = client.patch(sla, json=bad_sla, headers=tenant.headers)
        assert answer.status_code == 422, answer.text
    after = client.get("/api/v1/enterprise/onboarding/sla-tiers", headers=tenant.headers).json()
    assert after == tiers
    # The right types still pass; a JSON integer is a number too.
    ok = client.patch(
        sla, json={"custom_integration": True, "response_minutes": 30}, headers=tenant.headers
    )
    assert ok.status_code == 200, ok.text
