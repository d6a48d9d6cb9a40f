"""Routes for API keys and managed secrets (seed section 6, key rotation)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from pydantic import BaseModel

from aethercrown.core.auth import Authenticated, TenantWriter
from aethercrown.core.crypto import SecretBox, secret_box
from aethercrown.core.errors import ProblemError
from aethercrown.core.models import ApiKey
from aethercrown.core.pagination import Pagination, paginate
from aethercrown.db.session import DbSession
from aethercrown.security import schemas, service
from aethercrown.security.repository import KeyRepository
from aethercrown.tenants.service import resolve_tenant_ref

router = APIRouter(prefix="/api/v1/operational/security/keys", tags=["security"])


def key_manager(request: Request, principal: Authenticated, session: DbSession) -> KeyRepository:
    """Keys the caller manages: a tenant admin its own; the operator all, or one X-Tenant's."""
    if principal.is_operator:
        named = request.headers.get("x-tenant")
        tenant_id = resolve_tenant_ref(session, named).id if named else None
        return KeyRepository(session, tenant_id)
    if not principal.has("tenant:write"):
        raise ProblemError(403, "forbidden", "Forbidden", "Managing keys needs 'tenant:write'")
    return KeyRepository(session, principal.tenant_id)


def box(request: Request) -> SecretBox:
    return secret_box(request.app.state.settings)


Keys = Annotated[KeyRepository, Depends(key_manager)]
Box = Annotated[SecretBox, Depends(box)]


class SecretOut(BaseModel):
    id: uuid.UUID
    secret: str


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=schemas.KeyWithSecret)
def register_key(
    body: schemas.KeyRegister, principal: TenantWriter, session: DbSession, sealer: Box
) -> schemas.KeyWithSecret:
    issued = service.register(session, principal, principal.tenant_id, body, sealer)
    return service.with_secret(issued)


@router.get("", response_model=schemas.KeyPage)
def list_keys(
    keys: Keys,
    page: Pagination,
    session: DbSession,
    kind: schemas.KeyKind | None = None,
    active: bool | None = None,
) -> schemas.KeyPage:
    stmt = keys.list_statement(kind=kind, active=active)
    rows, cursor = paginate(session, stmt, ApiKey.id, page, parse=uuid.UUID)
    return schemas.KeyPage(items=[service.key_out(k) for k in rows], next_cursor=cursor)


@router.get("/due-rotation", response_model=schemas.DueRotation)
def due_rotation(
    keys: Keys, within_days: Annotated[int, Query(ge=0, le=3650)] = 7
) -> schemas.DueRotation:
    return schemas.DueRotation(within_days=within_days, keys=service.due_keys(keys, within_days))


@router.get("/report", response_model=schemas.KeyReport)
def key_report(keys: Keys, session: DbSession) -> schemas.KeyReport:
    return service.report(session, keys)


@router.post("/auto-rotate", response_model=schemas.AutoRotateResult)
def auto_rotate(
    keys: Keys,
    principal: Authenticated,
    session: DbSession,
    sealer: Box,
    body: schemas.AutoRotate | None = None,
) -> schemas.AutoRotateResult:
    body = body or schemas.AutoRotate()
    return service.auto_rotate(
        session,
        keys,
        grace_seconds=body.grace_seconds,
        actor=principal.actor,
        box=sealer,
        dry_run=body.dry_run,
    )


@router.post("/{key_id}/rotate", response_model=schemas.RotatedKey)
def rotate_key(
    key_id: uuid.UUID,
    keys: Keys,
    principal: Authenticated,
    session: DbSession,
    sealer: Box,
    body: schemas.KeyRotate | None = None,
) -> schemas.RotatedKey:
    body = body or schemas.KeyRotate()
    old, issued = service.rotate(
        session,
        keys,
        key_id,
        grace_seconds=body.grace_seconds,
        actor=principal.actor,
        box=sealer,
        new_secret=body.secret,
    )
    return schemas.RotatedKey(
        previous_id=old.id, previous_expires_at=old.expires_at, key=service.with_secret(issued)
    )


@router.post("/{key_id}/revoke", response_model=schemas.KeyOut)
def revoke_key(
    key_id: uuid.UUID, keys: Keys, principal: Authenticated, session: DbSession
) -> schemas.KeyOut:
    return service.key_out(service.revoke(session, keys, key_id, principal.actor))


@router.get(
    "/{key_id}/secret",
    response_model=SecretOut,
    responses={409: {"description": "Not a webhook secret: only those can be read back"}},
)
def reveal_secret(key_id: uuid.UUID, keys: Keys, sealer: Box) -> SecretOut:
    return SecretOut(id=key_id, secret=service.reveal_webhook_secret(keys, key_id, sealer))
