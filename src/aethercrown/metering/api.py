"""``/api/v1/enterprise/usage``: usage events, meters, reports, alerts, upsell, renewal odds."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from aethercrown.core.auth import TenantReader, TenantWriter
from aethercrown.core.errors import InvalidInput, field_error
from aethercrown.core.limits import PERIOD_PATTERN
from aethercrown.core.pagination import Page, Pagination
from aethercrown.db.session import DbSession, WriteSession
from aethercrown.metering import renewal, schemas, service
from aethercrown.metering.fold import FoldedUsage
from aethercrown.metering.service import parse_period

router = APIRouter(prefix="/api/v1/enterprise/usage", tags=["usage"])


CustomerRef = Annotated[str, Path(min_length=1, max_length=200, description="External id")]
_EVENT_SCHEMA = schemas.UsageEventIn.model_json_schema()
# Inline (no $refs), since neither model is otherwise in the document's components.
_TRACK_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        _EVENT_SCHEMA,
                        {
                            "title": "UsageBatchIn",
                            "type": "object",
                            "properties": {
                                "events": {
                                    "type": "array",
                                    "items": _EVENT_SCHEMA,
                                    "minItems": 1,
                                    "maxItems": schemas.MAX_BATCH,
                                }
                            },
                            "required": ["events"],
                            "additionalProperties": False,
                        },
                    ]
                }
            }
        },
    }
}


def _invalid(exc: ValidationError, prefix: list[str | int]) -> InvalidInput:
    errors = [field_error([*prefix, *e["loc"]], e["msg"], e["type"]) for e in exc.errors()[:1000]]
    fields = ", ".join(e["field"] for e in errors[:10])
    return InvalidInput(f"The request is not valid: {fields}", errors)


@router.post("/track", response_model=schemas.TrackOut, openapi_extra=_TRACK_SCHEMA)
async def track(
    request: Request, principal: TenantWriter, session: WriteSession
) -> schemas.TrackOut:
    """Record one usage event or a batch of up to 10,000. Ids already recorded come back as
    ``duplicates`` (still 200). Nothing is written when any event is invalid. Stored events
    are durable when this answers; they reach the rollups and alerts a moment later, and any
    report or alert list read after this answer counts them."""
    body = await request.body()
    # Parsed off the event loop, with orjson: a 10,000-event body is megabytes of JSON.
    return await run_in_threadpool(_track, body, principal.tenant_id, session)


def _track(body: bytes, tenant_id: uuid.UUID, session: Session) -> schemas.TrackOut:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            "The request body is not valid JSON",
            [field_error(["body"], f"not valid JSON: {exc}", "json_invalid")],
        ) from exc
    if not isinstance(payload, dict):
        raise InvalidInput(
            "The request body must be an event or {events: [...]}",
            [field_error(["body"], "must be a JSON object", "dict_type")],
        )
    if "events" in payload:
        try:
            batch = schemas.UsageBatchIn.model_validate(payload)
        except ValidationError as exc:
            raise _invalid(exc, []) from exc
        return service.track(session, tenant_id, batch.events, batch=True)
    try:
        event = schemas.UsageEventIn.model_validate(payload)
    except ValidationError as exc:
        raise _invalid(exc, []) from exc
    return service.track(session, tenant_id, [event], batch=False)


@router.get("/meters", response_model=list[schemas.MeterOut])
def list_meters(principal: TenantReader, session: DbSession) -> list[schemas.MeterOut]:
    """Built-in meters and the tenant's own."""
    return service.list_meters(session, principal.tenant_id)


@router.post("/meters", response_model=schemas.MeterOut, status_code=201)
def create_meter(
    principal: TenantWriter, session: DbSession, body: schemas.MeterIn
) -> schemas.MeterOut:
    return service.create_meter(session, principal.tenant_id, body, principal.actor)


@router.get("/settings", response_model=schemas.SettingsOut)
def get_settings(principal: TenantReader, session: DbSession) -> Any:
    return service.current_settings(session, principal.tenant_id)


@router.patch("/settings", response_model=schemas.SettingsOut)
def patch_settings(principal: TenantWriter, session: DbSession, body: schemas.SettingsIn) -> Any:
    """Alert thresholds and upsell trigger parameters, in basis points of capacity."""
    return service.update_settings(session, principal.tenant_id, body, principal.actor)


@router.get("/alerts", response_model=Page[schemas.AlertOut])
def list_alerts(
    principal: TenantReader,
    session: DbSession,
    _folded: FoldedUsage,
    page: Pagination,
    customer: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    level: Annotated[str | None, Query(pattern="^(warning|critical)$")] = None,
) -> Page[schemas.AlertOut]:
    """Fired alerts, newest first."""
    items, cursor = service.list_alerts(
        session, principal.tenant_id, customer, level, page.limit, page.cursor
    )
    return Page(items=items, next_cursor=cursor)


@router.post("/analyze-upsell", response_model=schemas.UpsellAnalysis)
def analyze_upsell(
    principal: TenantReader,
    session: DbSession,
    _folded: FoldedUsage,
    body: schemas.UpsellRequest | None = None,
) -> schemas.UpsellAnalysis:
    """Customers meeting an upsell trigger this period, why, and the plan to offer."""
    customers = body.customers if body is not None else None
    return service.analyse_upsell(session, principal.tenant_id, customers)


@router.get("/{customer}/report", response_model=schemas.UsageReport)
def usage_report(
    principal: TenantReader,
    session: DbSession,
    _folded: FoldedUsage,
    customer: CustomerRef,
    period: Annotated[
        str | None, Query(pattern=PERIOD_PATTERN, description="YYYY-MM (2000-01 to 2999-12)")
    ] = None,
) -> schemas.UsageReport:
    """Usage per metric over the billing period (calendar month, UTC): % of capacity, daily
    series, growth against the same days of the previous period, projection to period end."""
    return service.usage_report(session, principal.tenant_id, customer, parse_period(period))


@router.post("/{customer}/trigger-upsell", response_model=schemas.CampaignOut)
def trigger_upsell(
    principal: TenantWriter, _folded: FoldedUsage, session: DbSession, customer: CustomerRef
) -> schemas.CampaignOut:
    """Open this period's upsell campaign (once; a repeat returns it with created=false)."""
    return service.trigger_upsell(session, principal.tenant_id, customer, principal.actor)


@router.get(
    "/{customer}/renewal-probability",
    response_model=schemas.RenewalOut,
    responses={409: {"description": "Not enough renewal history to estimate from yet"}},
)
def renewal_probability(
    principal: TenantReader, _folded: FoldedUsage, session: DbSession, customer: CustomerRef
) -> schemas.RenewalOut:
    """The calibrated probability that the customer renews at its next renewal date."""
    return renewal.predict_for_customer(session, principal.tenant_id, customer, principal.actor)
