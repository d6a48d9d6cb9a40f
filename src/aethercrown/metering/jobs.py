"""Periodic metering work for the automation runner."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from aethercrown.core.jobs import JobSpec
from aethercrown.metering.renewal import retrain_job
from aethercrown.metering.service import fold_pending


def fold_job(
    session: Session, tenant_id: uuid.UUID | None, period_start: datetime
) -> dict[str, Any]:
    # One chunk per run: an API process, when one runs, folds continuously anyway.
    return fold_pending(session).model_dump()


JOBS = [
    JobSpec(
        name="usage_fold",
        interval_seconds=60,
        run=fold_job,
        per_tenant=False,
        description="Fold stored usage events into the rollups and fire the alerts they cross",
    ),
    JobSpec(
        name="renewal_model_training",
        interval_seconds=24 * 3600,
        run=retrain_job,
        per_tenant=True,
        description="Retrain each tenant's renewal model on its latest outcomes",
    ),
]
