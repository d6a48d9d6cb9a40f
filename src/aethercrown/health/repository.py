"""Queries for health checks: samples, and the installation- or tenant-wide figures they probe.

With ``tenant_id=None`` (the operator and the hourly job) the queries span the installation;
otherwise every query carries the tenant filter through ``TenantRepository``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.orm import Session

from aethercrown.automation.models import AutomationRun
from aethercrown.core.models import Tenant, Tier
from aethercrown.core.tenancy import TenantRepository, where_given
from aethercrown.health.models import HealthSample
from aethercrown.tasks.models import RUNNING, Task, TaskWorker
from aethercrown.webhooks.models import WebhookDelivery


class _Scoped(TenantRepository[Any]):
    def __init__(self, session: Session, tenant_id: uuid.UUID | None) -> None:
        super().__init__(session, tenant_id)  # type: ignore[arg-type]

    def select(self, *columns: Any) -> Select[Any]:
        if self.tenant_id is None:
            return select(*columns) if columns else select(self.model)
        return super().select(*columns)


class SampleRepository(_Scoped):
    model = HealthSample

    def add_all(self, samples: Sequence[HealthSample]) -> None:
        for sample in samples:
            sample.tenant_id = self.tenant_id
            self.session.add(sample)

    def window(
        self, since: datetime, until: datetime, shared_components: Sequence[str]
    ) -> list[HealthSample]:
        """Samples in the window: the scope's own, plus (for a tenant) the installation's
        samples of the components every tenant shares."""
        stmt = select(HealthSample).where(
            HealthSample.checked_at >= since, HealthSample.checked_at <= until
        )
        if self.tenant_id is None:
            stmt = stmt.where(HealthSample.tenant_id.is_(None))
        else:
            stmt = stmt.where(
                or_(
                    HealthSample.tenant_id == self.tenant_id,
                    HealthSample.tenant_id.is_(None)
                    & HealthSample.component.in_(list(shared_components)),
                )
            )
        return list(self.session.scalars(stmt.order_by(HealthSample.checked_at, HealthSample.id)))


class WorkerHealthRepository(_Scoped):
    model = TaskWorker

    def silent_workers(self, fresh_since: datetime) -> int:
        return int(
            self.session.scalar(
                self.select(func.count()).where(
                    TaskWorker.status == "active", TaskWorker.last_heartbeat_at < fresh_since
                )
            )
            or 0
        )

    def live_workers(self, fresh_since: datetime) -> int:
        return int(
            self.session.scalar(
                self.select(func.count()).where(
                    TaskWorker.status == "active", TaskWorker.last_heartbeat_at >= fresh_since
                )
            )
            or 0
        )


class LeaseHealthRepository(_Scoped):
    model = Task

    def overdue_leases(self, now: datetime) -> int:
        return int(
            self.session.scalar(
                self.select(func.count()).where(Task.status == RUNNING, Task.lease_expires_at < now)
            )
            or 0
        )


class WebhookHealthRepository(_Scoped):
    model = WebhookDelivery

    def outcomes_since(self, since: datetime) -> dict[str, int]:
        """Deliveries created since ``since``: gave up (failed), still retrying after a failed
        attempt, delivered, and in total."""
        retrying = (WebhookDelivery.status == "pending") & (WebhookDelivery.attempts > 0)
        row = self.session.execute(
            self.select(
                func.count(),
                func.count(case((WebhookDelivery.status == "failed", 1))),
                func.count(case((retrying, 1))),
                func.count(case((WebhookDelivery.status == "delivered", 1))),
            ).where(WebhookDelivery.created_at >= since)
        ).one()
        return {
            "total": int(row[0] or 0),
            "failed": int(row[1] or 0),
            "retrying": int(row[2] or 0),
            "delivered": int(row[3] or 0),
        }


class RunHealthRepository(_Scoped):
    model = AutomationRun

    def last_succeeded(self) -> dict[tuple[str, str], datetime]:
        rows = self.session.execute(
            self.select(
                AutomationRun.job, AutomationRun.scope, func.max(AutomationRun.period_start)
            )
            .where(AutomationRun.status == "succeeded")
            .group_by(AutomationRun.job, AutomationRun.scope)
        )
        return {(r[0], r[1]): r[2] for r in rows}

    def failures_since(self, since: datetime) -> dict[str, int]:
        rows = self.session.execute(
            self.select(AutomationRun.job, func.count())
            .where(
                AutomationRun.status.in_(("failed", "abandoned")),
                AutomationRun.started_at >= since,
            )
            .group_by(AutomationRun.job)
        )
        return {r[0]: int(r[1]) for r in rows}

    def first_run(self) -> datetime | None:
        return self.session.scalar(self.select(func.min(AutomationRun.started_at)))


def tenants_with_tiers(session: Session, tenant_id: uuid.UUID | None) -> list[tuple[Tenant, Tier]]:
    stmt = (
        select(Tenant, Tier)
        .join(Tier, Tier.slug == Tenant.tier_slug)
        .where(Tenant.status == "active")
    )
    stmt = where_given(stmt, (Tenant.id, tenant_id))
    return [(r[0], r[1]) for r in session.execute(stmt.order_by(Tenant.id))]
