"""Health routes (seed section 6: /api/v1/operational/health/*)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from aethercrown.core.auth import Authenticated
from aethercrown.db.session import DbSession, WriteSession
from aethercrown.health import schemas, service

router = APIRouter(prefix="/api/v1/operational/health", tags=["health"])


def _scope(principal: Authenticated) -> uuid.UUID | None:
    # The operator sees the installation; a tenant key its own view (see health.service).
    return None if principal.is_operator else principal.tenant_id


@router.get("/check")
def health_check(
    request: Request, principal: Authenticated, session: WriteSession
) -> schemas.HealthReport:
    return service.run_checks(session, request.app.state.settings, _scope(principal), "api")


@router.get("/trends")
def health_trends(
    principal: Authenticated,
    session: DbSession,
    hours: Annotated[int, Query(ge=1, le=24 * 90, description="Window in hours")] = 24,
    component: Annotated[str | None, Query(max_length=120)] = None,
) -> schemas.HealthTrends:
    return service.health_trends(session, _scope(principal), hours, component)
