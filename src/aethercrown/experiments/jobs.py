"""Periodic work: Thompson-sampling traffic weights for bandit experiments, hourly."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from aethercrown.core.jobs import JobSpec, count
from aethercrown.experiments import service


def rebalance_bandits(
    session: Session, tenant_id: uuid.UUID | None, period_start: datetime
) -> dict[str, Any]:
    if tenant_id is None:
        return {"reweighted": 0, "experiments": []}
    return service.rebalance_bandits(session, tenant_id, period_start.isoformat())


def reweight_headline(summary: dict[str, Any]) -> str:
    reweighted = summary.get("reweighted", 0)
    if not reweighted:
        return "no running bandit experiment"
    return f"reweighted {count(reweighted, 'bandit experiment')}"


JOBS: list[JobSpec] = [
    JobSpec(
        name="experiments.bandit_reweight",
        interval_seconds=3600,
        run=rebalance_bandits,
        description="Thompson-sampling weights (with a floor) for running bandit experiments",
        headline=reweight_headline,
    )
]
