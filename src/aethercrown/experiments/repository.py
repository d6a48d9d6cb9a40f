"""Every query of the experiments domain. Sums are computed in the database: one row per variant."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, Select, cast, func, literal, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from aethercrown.core.tenancy import TenantRepository
from aethercrown.db.bulk import sqlite_executemany
from aethercrown.experiments.models import (
    Experiment,
    ExperimentAssignment,
    ExperimentCovariate,
    ExperimentEvent,
)


class ExperimentRepository(TenantRepository[Experiment]):
    model = Experiment
    noun = "Experiment"

    def by_name(self, name: str) -> Experiment | None:
        return self.session.scalars(self.select().where(Experiment.name == name).limit(1)).first()

    def list_statement(self, *, status: str | None) -> Select[Any]:
        stmt = self.select()
        return stmt.where(Experiment.status == status) if status else stmt

    def in_id_order(self, *, status: str | None) -> Sequence[Experiment]:
        """The experiments (in ``status`` when given), oldest id first: the CLI's list."""
        return self.all(self.list_statement(status=status).order_by(Experiment.id))

    def running_bandits(self) -> Sequence[Experiment]:
        return self.all(
            self.select()
            .where(Experiment.status == "running", Experiment.bandit.is_(True))
            .order_by(Experiment.id)
        )


class AssignmentRepository(TenantRepository[ExperimentAssignment]):
    model = ExperimentAssignment

    def variants_of(self, experiment_id: uuid.UUID, user_ids: Sequence[str]) -> dict[str, int]:
        A = ExperimentAssignment
        rows = self.session.execute(
            self.select(A.user_id, A.variant).where(
                A.experiment_id == experiment_id, A.user_id.in_(list(user_ids))
            )
        ).all()
        return {user: variant for user, variant in rows}

    def users_per_variant(self, experiment_id: uuid.UUID) -> dict[int, int]:
        A = ExperimentAssignment
        rows = self.session.execute(
            self.select(A.variant, func.count())
            .where(A.experiment_id == experiment_id)
            .group_by(A.variant)
        ).all()
        return {int(v): int(c) for v, c in rows}


class CovariateRepository(TenantRepository[ExperimentCovariate]):
    model = ExperimentCovariate


class EventRepository(TenantRepository[ExperimentEvent]):
    model = ExperimentEvent

    def impressions_per_variant(self, experiment_id: uuid.UUID) -> dict[int, int]:
        E = ExperimentEvent
        rows = self.session.execute(
            self.select(E.variant, func.count())
            .where(E.experiment_id == experiment_id, E.kind == "impression")
            .group_by(E.variant)
        ).all()
        return {int(v): int(c) for v, c in rows}


def insert_ignoring_duplicates(
    session: Session, model: type[Any], rows: list[dict[str, Any]], unique: list[str]
) -> int:
    """INSERT … ON CONFLICT DO NOTHING; returns how many rows were new. Safe under concurrency:
    two processes recording the same exposure or event id store it once."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # RETURNING counts the rows really inserted on both backends (rowcount is unreliable for
    # a multi-row INSERT … ON CONFLICT through some drivers). Executed as an executemany on the
    # table, SQLAlchemy renders the statement once and batches the rows ("insertmanyvalues"),
    # several times faster than compiling one VALUES clause per row.
    table = model.__table__
    if dialect == "sqlite":
        # The driver's executemany counts the rows really inserted (skipped conflicts change
        # nothing), without SQLAlchemy's per-row parameter work: a demo's 100,000 events.
        done = sqlite_executemany(
            session,
            insert(table).on_conflict_do_nothing(index_elements=unique),
            table,
            rows,
        )
        if done is not None:
            return done
    stmt = insert(table).on_conflict_do_nothing(index_elements=unique).returning(table.c.id)
    return len(session.execute(stmt, rows).all())


@dataclass(frozen=True)
class VariantSums:
    """Per-user sufficient statistics of one metric in one variant (users without an event
    count as 0; a binomial metric counts each user at most once)."""

    users: int
    conversions: float
    total: float
    sum_squares: float
    covariates: int
    pre_total: float
    pre_sum_squares: float
    post_pre_sum: float


def metric_sums(
    session: Session,
    tenant_id: uuid.UUID,
    experiment_id: uuid.UUID,
    metric_key: str,
    kind: str,
) -> dict[int, VariantSums]:
    A, E, C = ExperimentAssignment, ExperimentEvent, ExperimentCovariate
    assignments = AssignmentRepository(session, tenant_id)
    events = EventRepository(session, tenant_id)
    covariates = CovariateRepository(session, tenant_id)
    if kind == "binomial":
        per_user_value: Any = literal(1.0, Float)
    elif kind == "count":
        per_user_value = cast(func.count(), Float)
    else:
        per_user_value = func.sum(E.value)
    per_user = (
        events.select(E.user_id, per_user_value.label("v"), func.count().label("events"))
        .where(
            E.experiment_id == experiment_id,
            E.kind == "conversion",
            E.metric_key == metric_key,
        )
        .group_by(E.user_id)
        .subquery()
    )
    pre = (
        covariates.select(C.user_id, C.value)
        .where(C.experiment_id == experiment_id, C.metric_key == metric_key)
        .subquery()
    )
    y = func.coalesce(per_user.c.v, 0.0)
    x = func.coalesce(pre.c.value, 0.0)
    conversions = per_user.c.v if kind == "binomial" else per_user.c.events
    stmt = (
        assignments.select(
            A.variant,
            func.count(),
            func.coalesce(func.sum(conversions), 0),
            func.coalesce(func.sum(y), 0.0),
            func.coalesce(func.sum(y * y), 0.0),
            func.count(pre.c.value),
            func.coalesce(func.sum(x), 0.0),
            func.coalesce(func.sum(x * x), 0.0),
            func.coalesce(func.sum(y * x), 0.0),
        )
        .outerjoin(per_user, per_user.c.user_id == A.user_id)
        .outerjoin(pre, pre.c.user_id == A.user_id)
        .where(A.experiment_id == experiment_id)
        .group_by(A.variant)
    )
    out: dict[int, VariantSums] = {}
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # Right after a bulk load the planner has no statistics for these tables and picks a
        # nested loop over the aggregated subqueries (minutes for 50k users); hash joins take
        # milliseconds whatever the estimates, so ask for them for this one query.
        session.execute(text("SET LOCAL enable_nestloop = off"))
    rows = session.execute(stmt).all()
    if postgres:
        session.execute(text("SET LOCAL enable_nestloop = on"))
    for row in rows:
        out[int(row[0])] = VariantSums(
            users=int(row[1]),
            conversions=float(row[2]),
            total=float(row[3]),
            sum_squares=float(row[4]),
            covariates=int(row[5]),
            pre_total=float(row[6]),
            pre_sum_squares=float(row[7]),
            post_pre_sum=float(row[8]),
        )
    return out


def data_fingerprints(
    session: Session, tenant_id: uuid.UUID, experiment_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[Any, ...]]:
    """Per experiment, the count and last id of its assignments, events and covariates (rows
    are only ever added): equal fingerprints, equal results. Three grouped queries."""
    out: dict[uuid.UUID, list[Any]] = {i: [] for i in experiment_ids}
    for repo, model in (
        (AssignmentRepository(session, tenant_id), ExperimentAssignment),
        (EventRepository(session, tenant_id), ExperimentEvent),
        (CovariateRepository(session, tenant_id), ExperimentCovariate),
    ):
        column = model.experiment_id
        rows = session.execute(
            repo.select(column, func.count(), func.max(model.id))
            .where(column.in_(list(experiment_ids)))
            .group_by(column)
        ).all()
        found = {r[0]: (int(r[1]), r[2]) for r in rows}
        for i in experiment_ids:
            out[i].extend(found.get(i, (0, None)))
    return {i: tuple(parts) for i, parts in out.items()}
