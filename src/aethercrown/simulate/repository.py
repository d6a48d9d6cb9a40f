"""Queries over the stored simulated truth."""

from __future__ import annotations

import uuid

from aethercrown.core.models import Decision
from aethercrown.core.tenancy import TenantRepository
from aethercrown.simulate.models import SimulatedTruth


class SimulatedTruthRepository(TenantRepository[SimulatedTruth]):
    model = SimulatedTruth
    noun = "Simulated truth"

    def current(self) -> SimulatedTruth | None:
        return self.session.scalars(self.select()).first()


class VerdictRepository(TenantRepository[Decision]):
    """The experiments engine's verdicts in the ledger, to join the simulator's truth to."""

    model = Decision

    def latest(self, experiment_id: uuid.UUID) -> Decision | None:
        return self.session.scalars(
            self.select()
            .where(Decision.kind == "experiment_verdict", Decision.subject_id == str(experiment_id))
            .order_by(Decision.created_at.desc(), Decision.id.desc())
            .limit(1)
        ).first()
