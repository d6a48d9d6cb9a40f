"""Running the folder: each fold is its own write transaction (see service.fold_pending).

Three things fold: a daemon thread in every API process, a few hundred milliseconds after
events arrive; any read of the rollups through the API or CLI, which first folds what its
tenant still has pending, so a report always counts every acknowledged event; and the
``usage_fold`` automation job, for a database that receives events while no API runs.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from aethercrown.core.auth import TenantReader
from aethercrown.db.session import DbSession, read_transaction, write_transaction
from aethercrown.metering import schemas, service
from aethercrown.metering.repository import FoldRepository


def _pending(factory: sessionmaker[Session], tenant_id: uuid.UUID | None) -> bool:
    with read_transaction(factory) as session:
        if tenant_id is not None:
            return service.has_unfolded(session, tenant_id)
        folds = FoldRepository(session)
        return folds.has_pending(folds.last_folded())


def catch_up(
    factory: sessionmaker[Session],
    tenant_id: uuid.UUID | None = None,
    *,
    limit: int = service.FOLD_CHUNK,
) -> schemas.FoldOut:
    """Fold until nothing is left unfolded (of the tenant's, when one is given), one write
    transaction per ``limit`` events. A cheap read first: most calls find nothing to do."""
    total = schemas.FoldOut(events=0, tenants=0, alerts=0, last_event_id=0, caught_up=True)
    while _pending(factory, tenant_id):
        with write_transaction(factory) as session:
            out = service.fold_pending(session, limit=limit)
        total = schemas.FoldOut(
            events=total.events + out.events,
            tenants=max(total.tenants, out.tenants),
            alerts=total.alerts + out.alerts,
            last_event_id=out.last_event_id,
            caught_up=out.caught_up,
            blocked=out.blocked,
        )
        # Blocked: the rest waits on another transaction; reads answer with what is folded.
        if out.blocked or (out.caught_up and tenant_id is None):
            break
    return total


def _fold_for_reader(request: Request, principal: TenantReader, session: DbSession) -> None:
    if not service.has_unfolded(session, principal.tenant_id):
        return
    # End the request's read transaction first: on SQLite its snapshot predates the fold.
    session.commit()
    catch_up(request.app.state.session_factory, principal.tenant_id)


# For routes that read the rollups: every event acknowledged before the request is counted.
FoldedUsage = Annotated[None, Depends(_fold_for_reader)]
