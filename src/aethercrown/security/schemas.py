"""API shapes for API keys and managed secrets."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

KeyKind = Literal["api_key", "webhook_secret", "external"]
SecurityLevel = Literal["critical", "high", "medium", "low"]
Scope = Literal["admin", "tenant:write", "tenant:read", "investor"]
TenantScope = Literal["tenant:write", "tenant:read", "investor"]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]

ROTATION_DAYS: dict[str, int] = {"critical": 30, "high": 60, "medium": 90, "low": 180}
MAX_GRACE_SECONDS = 30 * 86400


class KeyRegister(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    kind: KeyKind = "api_key"
    security_level: SecurityLevel = "medium"
    scopes: list[TenantScope] | None = Field(
        default=None, description="api_key only; default: the caller's own scopes"
    )
    secret: Annotated[str, StringConstraints(min_length=16, max_length=4096)] | None = Field(
        default=None, description="external only: the third-party secret to track (kept hashed)"
    )


class KeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_seconds: int = Field(default=0, ge=0, le=MAX_GRACE_SECONDS, strict=True)
    secret: Annotated[str, StringConstraints(min_length=16, max_length=4096)] | None = Field(
        default=None, description="external only: the new third-party secret"
    )


class AutoRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_seconds: StrictInt = Field(default=86400, ge=0, le=MAX_GRACE_SECONDS)
    dry_run: StrictBool = False  # 0, 1 or "yes" are not booleans


class KeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    tenant_id: uuid.UUID | None
    name: str
    kind: str
    scopes: list[str]
    display_prefix: str
    managed: bool
    security_level: str | None
    rotation_interval_days: int | None
    lineage_id: uuid.UUID
    generation: int
    rotated_to_id: uuid.UUID | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    next_rotation_due: datetime | None = None


class KeyWithSecret(KeyOut):
    secret: str | None = Field(description="Shown only once (None for external keys)")


class DueKey(KeyOut):
    due_at: datetime
    overdue: bool
    overdue_days: int
    days_until_due: int


class DueRotation(BaseModel):
    within_days: int
    keys: list[DueKey]


class RotatedKey(BaseModel):
    previous_id: uuid.UUID
    previous_expires_at: datetime | None
    key: KeyWithSecret


class AutoRotateResult(BaseModel):
    dry_run: bool
    rotated: list[RotatedKey]
    due: list[DueKey]


class AuditEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    action: str
    actor: str
    target_id: str
    details: dict[str, Any]
    created_at: datetime


class KeyReportEntry(BaseModel):
    lineage_id: uuid.UUID
    current: KeyOut
    first_created_at: datetime
    age_days: int
    next_due: datetime | None
    overdue_days: int
    rotations: int
    history: list[KeyOut]
    audit: list[AuditEntry]


class KeyReport(BaseModel):
    generated_at: datetime
    total: int
    managed: int
    overdue: int
    due_within_7_days: int
    by_security_level: dict[str, int]
    keys: list[KeyReportEntry]


class KeyPage(BaseModel):
    items: list[KeyOut]
    next_cursor: str | None
