"""Every query of the onboarding domain."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select

from aethercrown.core.tenancy import TenantRepository, where_given
from aethercrown.data.models import Customer, SupportTicket
from aethercrown.health.models import HealthSample
from aethercrown.metering.models import UsageEvent
from aethercrown.onboarding.models import (
    Onboarding,
    OnboardingStep,
    SlaBreach,
    SlaTier,
    TicketFirstResponse,
)


class SlaTierRepository(TenantRepository[SlaTier]):
    model = SlaTier
    noun = "SLA tier"

    def ordered(self) -> Sequence[SlaTier]:
        return self.all(self.select().order_by(SlaTier.rank))

    def by_slug(self, slug: str) -> SlaTier | None:
        return self.session.scalars(self.select().where(SlaTier.slug == slug)).first()


class OnboardingRepository(TenantRepository[Onboarding]):
    model = Onboarding
    noun = "Onboarding"

    def by_customer(self, external_id: str) -> Onboarding | None:
        return self.session.scalars(
            self.select().where(Onboarding.customer_external_id == external_id)
        ).first()

    def locked(self, ident: uuid.UUID) -> Onboarding | None:
        """The onboarding, its row locked until the unit ends (PostgreSQL; SQLite's unit
        already holds the one write lock), so two runners never work one step at once."""
        return self.session.scalars(
            self.select().where(Onboarding.id == ident).with_for_update()
        ).first()

    def locked_at_current_step(self, ident: uuid.UUID) -> tuple[Onboarding, OnboardingStep] | None:
        """``locked`` and its current step, in one query (the flow asks once a step)."""
        row = self.session.execute(
            self.select(Onboarding, OnboardingStep)
            .join(
                OnboardingStep,
                (OnboardingStep.onboarding_id == Onboarding.id)
                & (OnboardingStep.position == Onboarding.current_step)
                & (OnboardingStep.tenant_id == self.tenant_id),
            )
            .where(Onboarding.id == ident)
            .with_for_update(of=Onboarding)
        ).first()
        return None if row is None else (row[0], row[1])

    def by_portal_key(self, key_id: uuid.UUID) -> Onboarding | None:
        return self.session.scalars(self.select().where(Onboarding.portal_key_id == key_id)).first()

    def listing(self, status: str | None) -> Sequence[Onboarding]:
        stmt = self.select().order_by(Onboarding.started_at.desc(), Onboarding.id)
        return self.all(where_given(stmt, (Onboarding.status, status)))

    def due(self, now: datetime) -> list[uuid.UUID]:
        """Unfinished onboardings whose current step may be worked on now: not yet started,
        waiting past its next attempt, or running under a lease that expired (a crash)."""
        stmt = (
            select(Onboarding.id)
            .join(OnboardingStep, OnboardingStep.onboarding_id == Onboarding.id)
            .where(
                Onboarding.tenant_id == self.tenant_id,
                Onboarding.status != "completed",
                OnboardingStep.position == Onboarding.current_step,
                or_(
                    OnboardingStep.status == "pending",
                    (OnboardingStep.status == "waiting") & (OnboardingStep.next_attempt_at <= now),
                    (OnboardingStep.status == "running")
                    & or_(
                        OnboardingStep.claimed_until.is_(None),
                        OnboardingStep.claimed_until <= now,
                    ),
                ),
            )
            .order_by(Onboarding.started_at)
        )
        return list(self.session.scalars(stmt))

    def completed(self) -> Sequence[Onboarding]:
        return self.all(
            self.select().where(Onboarding.status == "completed").order_by(Onboarding.started_at)
        )


class StepRepository(TenantRepository[OnboardingStep]):
    model = OnboardingStep
    noun = "Onboarding step"

    def of(self, onboarding_id: uuid.UUID) -> Sequence[OnboardingStep]:
        return self.all(
            self.select()
            .where(OnboardingStep.onboarding_id == onboarding_id)
            .order_by(OnboardingStep.position)
        )

    def of_many(self, onboarding_ids: Sequence[uuid.UUID]) -> Sequence[OnboardingStep]:
        return self.all(
            self.select()
            .where(OnboardingStep.onboarding_id.in_(onboarding_ids))
            .order_by(OnboardingStep.onboarding_id, OnboardingStep.position)
        )

    def at(self, onboarding_id: uuid.UUID, position: int) -> OnboardingStep | None:
        return self.session.scalars(
            self.select().where(
                OnboardingStep.onboarding_id == onboarding_id,
                OnboardingStep.position == position,
            )
        ).first()


class BreachRepository(TenantRepository[SlaBreach]):
    model = SlaBreach
    noun = "SLA breach"

    def keys(self, onboarding_id: uuid.UUID) -> set[tuple[str, str, str]]:
        rows = self.session.execute(
            self.select(SlaBreach.kind, SlaBreach.month, SlaBreach.subject).where(
                SlaBreach.onboarding_id == onboarding_id
            )
        )
        return {(kind, month.isoformat(), subject) for kind, month, subject in rows}


class CustomerReads(TenantRepository[Customer]):
    """What onboarding reads of the tenant's business data (customers, tickets, usage)."""

    model = Customer
    noun = "Customer"

    def by_external_id(self, external_id: str) -> Customer | None:
        return self.session.scalars(
            self.select().where(Customer.external_id == external_id)
        ).first()

    def first_usage_at(self, customer_id: uuid.UUID) -> datetime | None:
        return self.session.scalar(
            select(func.min(UsageEvent.occurred_at)).where(
                UsageEvent.tenant_id == self.tenant_id, UsageEvent.customer_id == customer_id
            )
        )

    def tickets(
        self, customer_id: uuid.UUID, since: datetime
    ) -> list[tuple[str, datetime, datetime | None]]:
        """The customer's tickets opened since ``since``: external id, opened, first answered
        (None while no first response is recorded)."""
        rows = self.session.execute(
            select(
                SupportTicket.external_id,
                SupportTicket.opened_at,
                TicketFirstResponse.responded_at,
            )
            .outerjoin(
                TicketFirstResponse,
                (TicketFirstResponse.ticket_id == SupportTicket.id)
                & (TicketFirstResponse.tenant_id == self.tenant_id),
            )
            .where(
                SupportTicket.tenant_id == self.tenant_id,
                SupportTicket.customer_id == customer_id,
                SupportTicket.opened_at >= since,
            )
            .order_by(SupportTicket.opened_at)
        )
        return [(ext, opened, responded) for ext, opened, responded in rows]

    def ticket(self, ref: str) -> SupportTicket | None:
        """A ticket by its external id, or by its id (the external id wins)."""
        by_external = SupportTicket.external_id == ref
        match = by_external
        with contextlib.suppress(ValueError):
            match = match | (SupportTicket.id == uuid.UUID(ref))
        return self.session.scalars(
            select(SupportTicket)
            .where(SupportTicket.tenant_id == self.tenant_id, match)
            .order_by(by_external.desc())
            .limit(1)
        ).first()

    def external_id_of(self, customer_id: uuid.UUID) -> str | None:
        return self.session.scalar(
            select(Customer.external_id).where(
                Customer.tenant_id == self.tenant_id, Customer.id == customer_id
            )
        )

    def health_samples(self, since: datetime, until: datetime) -> list[tuple[datetime, str]]:
        """The installation's samples and the tenant's own, since ``since``."""
        rows = self.session.execute(
            select(HealthSample.checked_at, HealthSample.status).where(
                or_(HealthSample.tenant_id.is_(None), HealthSample.tenant_id == self.tenant_id),
                HealthSample.checked_at >= since,
                HealthSample.checked_at <= until,
            )
        )
        return [(at, status) for at, status in rows]


class FirstResponseRepository(TenantRepository[TicketFirstResponse]):
    model = TicketFirstResponse
    noun = "First response"

    def of_ticket(self, ticket_id: uuid.UUID) -> TicketFirstResponse | None:
        return self.session.scalars(
            self.select().where(TicketFirstResponse.ticket_id == ticket_id)
        ).first()
