"""Routes: the seed's A/B-test endpoints under /api/v1/content/ab-test, and the stateless
analysis and power calculator under /api/v1/experiments."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status

from aethercrown.core.auth import TenantReader, TenantWriter
from aethercrown.core.pagination import Pagination, paginate
from aethercrown.db.session import DbSession, SessionFactory, write_transaction
from aethercrown.experiments import schemas, service
from aethercrown.experiments.models import Experiment
from aethercrown.experiments.repository import ExperimentRepository

router = APIRouter(prefix="/api/v1/content/ab-test", tags=["experiments"])
stateless_router = APIRouter(prefix="/api/v1/experiments", tags=["experiments"])


@router.post("/create", status_code=status.HTTP_201_CREATED, response_model=schemas.ExperimentOut)
def create_experiment(
    body: schemas.ExperimentCreate, principal: TenantWriter, session: DbSession
) -> schemas.ExperimentOut:
    experiment, normalised = service.create(session, principal.tenant_id, body, principal.actor)
    return service.to_out(experiment, normalised)


def _list(
    session: DbSession, tenant_id: uuid.UUID, page: Pagination, state: str | None
) -> schemas.ExperimentPage:
    repo = ExperimentRepository(session, tenant_id)
    stmt = repo.list_statement(status=state)
    rows, cursor = paginate(session, stmt, Experiment.id, page, parse=uuid.UUID)
    return schemas.ExperimentPage(items=[service.to_out(e) for e in rows], next_cursor=cursor)


@router.get("/active", response_model=schemas.ExperimentPage)
def active_experiments(
    principal: TenantReader, session: DbSession, page: Pagination
) -> schemas.ExperimentPage:
    return _list(session, principal.tenant_id, page, "running")


@router.get("", response_model=schemas.ExperimentPage)
def list_experiments(
    principal: TenantReader,
    session: DbSession,
    page: Pagination,
    status_filter: Annotated[
        Literal["running", "stopped", "archived"] | None, Query(alias="status")
    ] = None,
) -> schemas.ExperimentPage:
    return _list(session, principal.tenant_id, page, status_filter)


# ":uuid": "/create" (POST) must not match this path, so a GET on it answers 405.
@router.get("/{experiment_id:uuid}", response_model=schemas.ExperimentOut)
def get_experiment(
    experiment_id: uuid.UUID, principal: TenantReader, session: DbSession
) -> schemas.ExperimentOut:
    repo = ExperimentRepository(session, principal.tenant_id)
    return service.to_out(repo.get_or_404(experiment_id))


@router.get("/{experiment_id}/results", response_model=schemas.ExperimentResults)
def experiment_results(
    experiment_id: uuid.UUID,
    principal: TenantReader,
    session: DbSession,
    units: SessionFactory,
    engine: schemas.Engine | None = None,
) -> schemas.ExperimentResults:
    experiment = ExperimentRepository(session, principal.tenant_id).get_or_404(experiment_id)
    out, batch = service.evaluate(session, principal.tenant_id, experiment, engine)
    if service.has_new_verdict(experiment, out):
        # A read never writes: the new verdict goes to the ledger in a short write unit.
        with write_transaction(units) as writer:
            service.record_verdict(writer, principal.tenant_id, experiment.id, out, batch)
    return out


@router.post("/{experiment_id}/assign", response_model=schemas.AssignOut)
def assign_user(
    experiment_id: uuid.UUID, body: schemas.AssignIn, principal: TenantWriter, session: DbSession
) -> schemas.AssignOut:
    experiment = ExperimentRepository(session, principal.tenant_id).get_or_404(experiment_id)
    return service.assign(session, principal.tenant_id, experiment, body)


@router.post("/{experiment_id}/track", response_model=schemas.TrackOut)
def track_events(
    experiment_id: uuid.UUID,
    body: schemas.TrackEvent | schemas.TrackBatch,
    principal: TenantWriter,
    session: DbSession,
) -> schemas.TrackOut:
    experiment = ExperimentRepository(session, principal.tenant_id).get_or_404(experiment_id)
    events = body.events if isinstance(body, schemas.TrackBatch) else [body]
    return service.track(session, principal.tenant_id, experiment, events)


@router.post("/{experiment_id}/stop", response_model=schemas.ExperimentOut)
def stop_experiment(
    experiment_id: uuid.UUID, principal: TenantWriter, session: DbSession
) -> schemas.ExperimentOut:
    return service.to_out(
        service.stop(session, principal.tenant_id, experiment_id, principal.actor)
    )


@router.post("/{experiment_id}/archive", response_model=schemas.ExperimentOut)
def archive_experiment(
    experiment_id: uuid.UUID, principal: TenantWriter, session: DbSession
) -> schemas.ExperimentOut:
    repo = ExperimentRepository(session, principal.tenant_id)
    return service.to_out(service.archive(session, repo, experiment_id, principal.actor))


@stateless_router.post("/analyze", response_model=schemas.AnalyzeOut)
def analyze(body: schemas.AnalyzeIn, principal: TenantReader) -> schemas.AnalyzeOut:
    return service.analyze(body)


@stateless_router.post("/power", response_model=schemas.PowerOut)
def power_calculator(body: schemas.PowerIn, principal: TenantReader) -> schemas.PowerOut:
    return service.power_calculation(body)
