"""Queries over automation runs."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from aethercrown.automation.models import AutomationRun
from aethercrown.core.models import Tenant, Tier
from aethercrown.core.tenancy import TenantRepository, where_given
from aethercrown.db.tenant_scope import scope_to_all_tenants


class RunRepository(TenantRepository[AutomationRun]):  # type: ignore[type-var]
    """A tenant's runs; with ``tenant_id=None`` every run of the installation (operator)."""

    model = AutomationRun
    noun = "Run"

    def __init__(self, session: Session, tenant_id: uuid.UUID | None) -> None:
        super().__init__(session, tenant_id)  # type: ignore[arg-type]

    def select(self, *columns: Any) -> Select[Any]:
        if self.tenant_id is None:
            return select(*columns) if columns else select(AutomationRun)
        return super().select(*columns)

    def list_statement(self, *, job: str | None, status: str | None) -> Select[Any]:
        # An empty job or status means "any", as None does.
        return where_given(
            self.select(), (AutomationRun.job, job or None), (AutomationRun.status, status or None)
        )

    def latest(
        self, limit: int, *, job: str | None = None, status: str | None = None
    ) -> Sequence[AutomationRun]:
        """The latest runs (of one job, in one status, when given), newest first."""
        return self.newest(AutomationRun.id, limit, self.list_statement(job=job, status=status))


class RunnerRepository:
    """The runner's own queries; it works across tenants by design."""

    def __init__(self, session: Session) -> None:
        self.session = session
        scope_to_all_tenants(session)

    def active_tenants(self) -> list[tuple[uuid.UUID, int]]:
        rows = self.session.execute(
            select(Tenant.id, Tier.automation_min_interval_seconds)
            .join(Tier, Tier.slug == Tenant.tier_slug)
            .where(Tenant.status == "active")
            .order_by(Tenant.id)
        )
        return [(r[0], int(r[1])) for r in rows]

    def latest_attempts(
        self, period_starts: Sequence[datetime]
    ) -> dict[tuple[str, str, datetime], AutomationRun]:
        """The latest attempt of every (job, scope) run for one of the given periods."""
        rows = self.session.scalars(
            select(AutomationRun)
            .where(AutomationRun.period_start.in_(list(period_starts)))
            .order_by(AutomationRun.attempt)
        )
        latest: dict[tuple[str, str, datetime], AutomationRun] = {}
        for run in rows:
            latest[(run.job, run.scope, run.period_start)] = run
        return latest

    def claim(self, values: dict[str, Any]) -> int | None:
        """INSERT … ON CONFLICT DO NOTHING: the run id if this caller won the claim, else None."""
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = (
            insert(AutomationRun)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["job", "scope", "period_start", "attempt"])
            .returning(AutomationRun.id)
        )
        return self.session.scalar(stmt)

    def finish(self, run_id: int, **values: Any) -> bool:
        """Close a running run; False when it is no longer running (another runner gave up on
        it), so the caller can roll back the job's work instead of doing it twice."""
        result = self.session.execute(
            update(AutomationRun)
            .where(AutomationRun.id == run_id, AutomationRun.status == "running")
            .values(**values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def last_succeeded(self) -> dict[tuple[str, str], datetime]:
        rows = self.session.execute(
            select(AutomationRun.job, AutomationRun.scope, func.max(AutomationRun.period_start))
            .where(AutomationRun.status == "succeeded")
            .group_by(AutomationRun.job, AutomationRun.scope)
        )
        return {(r[0], r[1]): r[2] for r in rows}

    def failures_since(self, since: datetime) -> dict[str, int]:
        rows = self.session.execute(
            select(AutomationRun.job, func.count())
            .where(
                AutomationRun.status.in_(("failed", "abandoned")),
                AutomationRun.started_at >= since,
            )
            .group_by(AutomationRun.job)
        )
        return {r[0]: int(r[1]) for r in rows}

    def runs(self, ids: Sequence[int]) -> list[AutomationRun]:
        return list(self.session.scalars(select(AutomationRun).where(AutomationRun.id.in_(ids))))
