"""Periodic metering work for the automation runner."""

from __future__ import annotations

from aethercrown.core.jobs import JobSpec
from aethercrown.metering.renewal import retrain_job

JOBS = [
    JobSpec(
        name="renewal_model_training",
        interval_seconds=24 * 3600,
        run=retrain_job,
        per_tenant=True,
        description="Retrain each tenant's renewal model on its latest outcomes",
    )
]
