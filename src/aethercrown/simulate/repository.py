"""Queries over the stored simulated truth."""

from __future__ import annotations

from aethercrown.core.tenancy import TenantRepository
from aethercrown.simulate.models import SimulatedTruth


class SimulatedTruthRepository(TenantRepository[SimulatedTruth]):
    model = SimulatedTruth
    noun = "Simulated truth"

    def current(self) -> SimulatedTruth | None:
        return self.session.scalars(self.select()).first()
