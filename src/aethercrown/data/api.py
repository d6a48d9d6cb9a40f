"""Routes under /api/v1/data/{kind}: bulk upsert, cursor-paginated lists, get, CSV export.

The routes of the six kinds are made by one factory from ``kinds.KINDS`` (this module avoids
``from __future__ import annotations`` because the factory's annotations name per-kind types).
"""

import uuid
from collections.abc import Callable, Iterator
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, TypeAdapter

from aethercrown.core.auth import TenantReader, TenantWriter
from aethercrown.core.errors import InvalidInput, ProblemError, field_error
from aethercrown.core.pagination import Page, Pagination
from aethercrown.data import formats, service
from aethercrown.data.kinds import KINDS, KindSpec
from aethercrown.data.schemas import MAX_BIGINT, NO_NUL, IngestResult
from aethercrown.db.session import DbSession, WriteSession

router = APIRouter(prefix="/api/v1/data", tags=["data"])

# Path parameter name of each kind's id (distinct names keep the isolation test exact).
ID_PARAMS = {
    "customers": "customer_id",
    "subscriptions": "subscription_id",
    "activity": "activity_id",
    "tickets": "ticket_id",
    "payments": "payment_id",
    "marketing": "marketing_id",
}


async def read_rows(request: Request) -> list[Any]:
    """The body as a list of rows: a JSON array, or NDJSON (one object a line)."""
    body = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in formats.NDJSON_TYPES:
        rows: list[Any] = []
        errors = []
        for line, row in formats.iter_ndjson(body.splitlines()):
            if isinstance(row, formats.RowSyntaxError):
                errors.append({**field_error(["body", line], row.message, "json_invalid")})
            else:
                rows.append(row)
        if errors:
            bad = ", ".join(str(e["loc"][1]) for e in errors[:20])
            raise InvalidInput(f"Malformed NDJSON on line(s) {bad}; nothing was written", errors)
        return rows
    if content_type not in ("", "application/json"):
        raise ProblemError(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "Send application/json (an array of rows) or application/x-ndjson",
        )
    try:
        return formats.parse_json_array(body)
    except ValueError as exc:
        raise InvalidInput(
            f"The body {exc}", [field_error(["body"], str(exc), "json_invalid")]
        ) from exc


BodyRows = Annotated[list[Any], Depends(read_rows)]


def _request_body_doc(spec: KindSpec) -> dict[str, Any]:
    row_schema = TypeAdapter(spec.row_type).json_schema()
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "array", "items": row_schema}},
                "application/x-ndjson": {
                    "schema": {"type": "string", "description": "One row object a line"}
                },
            },
        }
    }


def _id_annotation(spec: KindSpec) -> Any:
    """The path parameter of a kind's id: a positive BIGINT or a UUID, under its own name."""
    id_param = ID_PARAMS[spec.name]
    if spec.id_type is int:
        return Annotated[int, Path(alias=id_param, ge=1, le=MAX_BIGINT)]
    return Annotated[uuid.UUID, Path(alias=id_param)]


# Each route is a closure over its kind: FastAPI reads the body, filter and id types from the
# closure's annotations, and those differ per kind.


def _ingest_route(spec: KindSpec) -> Callable[..., IngestResult]:
    kind = spec.name

    def ingest(
        request: Request, principal: TenantWriter, rows: BodyRows, session: WriteSession
    ) -> IngestResult:
        # The principal comes before the body: an unauthenticated request gets 401, not 422.
        # WriteSession: on SQLite the batch reads (references, stored rows, the quota count) and
        # writes under one BEGIN IMMEDIATE, so a concurrent writer cannot invalidate the reads.
        limit = request.app.state.settings.max_batch_rows
        return service.ingest_rows(session, principal.tenant_id, kind, rows, max_rows=limit)

    return ingest


def _list_route(spec: KindSpec, page_model: Any) -> Callable[..., Any]:
    kind, out, filters_model = spec.name, spec.out_schema, spec.filters

    def list_rows(
        principal: TenantReader,
        session: DbSession,
        page: Pagination,
        filters: Annotated[filters_model, Query()],  # type: ignore[valid-type]
    ) -> Any:
        items, cursor = service.list_rows(
            session, principal.tenant_id, kind, cast(BaseModel, filters).model_dump(), page
        )
        return page_model(items=[out.model_validate(i) for i in items], next_cursor=cursor)

    return list_rows


def _export_route(spec: KindSpec) -> Callable[..., StreamingResponse]:
    kind, filters_model = spec.name, spec.filters

    def export_csv(
        request: Request,
        principal: TenantReader,
        filters: Annotated[filters_model, Query()],  # type: ignore[valid-type]
    ) -> StreamingResponse:
        factory = request.app.state.session_factory
        tenant_id = principal.tenant_id
        wanted = cast(BaseModel, filters).model_dump()

        def body() -> Iterator[str]:
            # Its own session: the request's is closed once the route returns, before streaming.
            with factory() as session:
                rows = service.iter_export_rows(session, tenant_id, kind, wanted)
                yield from formats.csv_chunks(spec.fields, rows)

        return StreamingResponse(
            body(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{kind}.csv"'},
        )

    return export_csv


def _get_by_external_route(spec: KindSpec) -> Callable[..., Any]:
    kind, out = spec.name, spec.out_schema

    def get_by_external(
        principal: TenantReader,
        session: DbSession,
        external_id: Annotated[str, Path(min_length=1, max_length=200, pattern=NO_NUL)],
    ) -> Any:
        row = service.get_row_by_external(session, principal.tenant_id, kind, external_id)
        return out.model_validate(row)

    return get_by_external


def _get_one_route(spec: KindSpec) -> Callable[..., Any]:
    kind, out = spec.name, spec.out_schema
    id_annotation: Any = _id_annotation(spec)

    def get_one(row_id: id_annotation, principal: TenantReader, session: DbSession) -> Any:
        return out.model_validate(service.get_row(session, principal.tenant_id, kind, row_id))

    return get_one


def _add_kind_routes(spec: KindSpec) -> None:
    kind, out, label = spec.name, spec.out_schema, spec.name.capitalize()
    page_model: Any = Page[out]  # type: ignore[valid-type]
    router.add_api_route(
        f"/{kind}",
        _ingest_route(spec),
        methods=["POST"],
        response_model=IngestResult,
        summary=f"{label}: bulk upsert (JSON array or NDJSON, all or nothing)",
        openapi_extra=_request_body_doc(spec),
        name=f"ingest_{kind}",
    )
    router.add_api_route(
        f"/{kind}",
        _list_route(spec, page_model),
        methods=["GET"],
        response_model=page_model,
        summary=f"{label}: list (cursor pagination, filters)",
        name=f"list_{kind}",
    )
    router.add_api_route(
        f"/{kind}/export.csv",
        _export_route(spec),
        methods=["GET"],
        response_class=StreamingResponse,
        summary=f"{label}: CSV export (header row; same filters as the list)",
        name=f"export_{kind}",
    )
    if "external_id" in spec.fields:
        router.add_api_route(
            f"/{kind}/by-external/{{external_id}}",
            _get_by_external_route(spec),
            methods=["GET"],
            response_model=out,
            summary=f"{label}: get by the tenant's external_id",
            name=f"get_{kind}_by_external",
        )
    router.add_api_route(
        f"/{kind}/{{{ID_PARAMS[kind]}}}",
        _get_one_route(spec),
        methods=["GET"],
        response_model=out,
        summary=f"{label}: get by id",
        name=f"get_{kind}",
    )


for _spec in KINDS.values():
    _add_kind_routes(_spec)
